"""Listening across workers: a phone call held by daphne worker 1 is heard from a supervisor's
listen socket on worker 2 (the audio crosses on Redis pub/sub); the listener's stop leaves the call on."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import numpy as np
import pytest
import websockets

from calls.listen import PAGE_HEADER
from calls.models import SupervisorAction
from realtime.audio import ulaw_encode
from tests.calls.test_two_workers import open_stream, place_twilio_call, wait_active, workers  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_a_call_on_worker_1_is_heard_from_worker_2(workers: list[tuple[int, Any]],  # noqa: F811
                                                   django_user_model: Any) -> None:
    from django.test import Client

    (port_1, _), (port_2, _) = workers
    supervisor = django_user_model.objects.create_user("ear", password="hear-the-floor-123", is_staff=True)
    client = Client()
    client.force_login(supervisor)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    call_id, path = place_twilio_call(port_1)
    tone = ulaw_encode((np.sin(np.arange(160) * 2 * np.pi * 440 / 8000) * 12000).astype(np.int16))
    payload = base64.b64encode(tone).decode()

    async def scenario() -> list[bytes]:
        phone = await open_stream(port_1, path)
        await asyncio.to_thread(wait_active, call_id)
        ear = await websockets.connect(
            f"ws://127.0.0.1:{port_2}/ws/dashboard/calls/{call_id}/listen/?mode=caller",
            additional_headers={"Cookie": cookie, "Origin": f"http://127.0.0.1:{port_2}"})
        assert json.loads(await ear.recv())["type"] == "listening"
        heard: list[bytes] = []
        async with asyncio.timeout(20):
            while len(heard) < 10:
                await phone.send(json.dumps({"event": "media", "streamSid": "MZ" + "b" * 32,
                                             "media": {"track": "inbound", "payload": payload}}))
                try:
                    frame = await asyncio.wait_for(ear.recv(), 0.02)
                except TimeoutError:
                    continue
                if isinstance(frame, bytes):
                    heard.append(frame)
        await ear.send(json.dumps({"type": "stop"}))
        async for _ in ear:
            pass
        assert ear.close_code == 1000
        await phone.send(json.dumps({"event": "stop", "streamSid": "MZ" + "b" * 32}))
        await phone.close()
        return heard

    heard = asyncio.run(scenario())
    for frame in heard:
        side, rate, _ = PAGE_HEADER.unpack_from(frame)
        assert (side, rate) == (b"c", 8000)
        pcm = np.frombuffer(frame[PAGE_HEADER.size:], dtype="<i2")
        assert pcm.size == 160 and np.abs(pcm).max() > 10000  # the phone's tone, decoded from mu-law
    action = SupervisorAction.objects.get(call_id=call_id)
    assert (action.kind, action.text) == ("listen", "caller")
