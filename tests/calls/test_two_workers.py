"""Two daphne workers (`contactcenter.worker`, as `make run` starts them) on one Redis and one
database: a call held by worker 1 is watched and hung up from a supervisor socket on worker 2;
then SIGTERM drains worker 1, ending its live call with a reason before it exits."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
import websockets
from django.conf import settings as django_settings

from bench.stack import with_raised_rate_limits
from calls.models import Call
from calls.twilio import compute_signature

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

AUTH_TOKEN = "twilio-auth-token-for-two-workers"
PUBLIC = "https://cc.example.com"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def workers(live_demo: Any, threaded_realtime_server: Any, tmp_path: Any) -> Iterator[list[tuple[int, Any]]]:
    from django.db import connection

    db = connection.settings_dict
    if "postgresql" not in db["ENGINE"] or not django_settings.REDIS_URL:
        pytest.skip("two workers need PostgreSQL and Redis (DATABASE_URL, REDIS_URL)")
    server = threaded_realtime_server.server
    env = with_raised_rate_limits({**os.environ,
           "DATABASE_URL": f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
           "REDIS_URL": django_settings.REDIS_URL, "OPENAI_BASE_URL": server.base_url,
           "OPENAI_API_KEY": server.api_key, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "PUBLIC_BASE_URL": PUBLIC,
           "DJANGO_SECRET_KEY": django_settings.SECRET_KEY, "LOG_LEVEL": "INFO"})
    env.pop("TEST_DATABASE_NAME", None)
    started: list[tuple[int, Any]] = []
    for number in (1, 2):
        port = free_port()
        with open(tmp_path / f"worker-{number}.log", "wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "contactcenter.worker", "--port", str(port)], env=env,
                                    stdout=log, stderr=subprocess.STDOUT, cwd=str(django_settings.BASE_DIR))
        started.append((port, proc))
    try:
        for port, proc in started:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    httpx.get(f"http://127.0.0.1:{port}/admin/login/", timeout=2)
                    break
                except httpx.HTTPError:
                    assert proc.poll() is None, (tmp_path / "worker-1.log").read_text()
                    time.sleep(0.3)
        yield started
    finally:
        for _, proc in started:
            if proc.poll() is None:
                proc.terminate()
        for _, proc in started:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


def place_twilio_call(port: int) -> tuple[int, str]:
    """The signed webhook on the worker at ``port``; the call's id and its media stream path."""
    call_sid = "CA" + uuid.uuid4().hex
    params = {"CallSid": call_sid, "AccountSid": "AC" + "c" * 32, "From": "+447700900123", "To": "+15550001111",
              "CallStatus": "ringing", "Direction": "inbound"}
    path = "/twilio/voice?scenario=retail"
    signature = compute_signature(AUTH_TOKEN, PUBLIC + path, params.items())
    answer = httpx.post(f"http://127.0.0.1:{port}{path}", data=params,
                        headers={"X-Twilio-Signature": signature}, timeout=10)
    assert answer.status_code == 200, answer.text
    stream = ElementTree.fromstring(answer.content).find("./Connect/Stream")
    assert stream is not None, answer.text
    call_id = Call.objects.get(external_id=call_sid).pk
    return call_id, re.sub(r"^wss://cc\.example\.com", "", stream.get("url", ""))


async def open_stream(port: int, path: str) -> Any:
    ws = await websockets.connect(f"ws://127.0.0.1:{port}{path}")
    await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
    await ws.send(json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": "MZ" + "b" * 32, "start": {
        "accountSid": "AC" + "c" * 32, "streamSid": "MZ" + "b" * 32, "callSid": "CA" + "a" * 32,
        "tracks": ["inbound"], "customParameters": {},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}))
    return ws


async def until_closed(ws: Any, timeout: float = 15.0) -> int | None:
    try:
        async with asyncio.timeout(timeout):
            async for _ in ws:
                pass
    except websockets.ConnectionClosed:
        pass
    return ws.close_code


def wait_ended(call_id: int, timeout: float = 15.0) -> Call:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        call = Call.objects.get(pk=call_id)
        if call.status == Call.Status.ENDED:
            return call
        time.sleep(0.1)
    raise AssertionError(f"call {call_id} never ended")


def wait_active(call_id: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while Call.objects.get(pk=call_id).status != Call.Status.ACTIVE:
        assert time.monotonic() < deadline, "the call was never answered"
        time.sleep(0.1)


def test_a_call_on_worker_1_is_hung_up_from_worker_2_then_sigterm_drains(
        workers: list[tuple[int, Any]], threaded_realtime_server: Any, django_user_model: Any) -> None:
    from django.test import Client

    (port_1, proc_1), (port_2, _) = workers
    supervisor = django_user_model.objects.create_user("lead", password="watch-the-floor-123", is_staff=True)
    client = Client()
    client.force_login(supervisor)
    cookie = f"sessionid={client.cookies['sessionid'].value}"

    call_id, path = place_twilio_call(port_1)

    async def scenario() -> tuple[list[dict[str, Any]], int | None]:
        phone = await open_stream(port_1, path)
        await asyncio.to_thread(wait_active, call_id)
        dashboard = await websockets.connect(
            f"ws://127.0.0.1:{port_2}/ws/dashboard/calls/{call_id}/",
            additional_headers={"Cookie": cookie, "Origin": f"http://127.0.0.1:{port_2}"})
        frames = [json.loads(await dashboard.recv())]
        assert frames[0]["type"] == "snapshot"
        await dashboard.send(json.dumps({"type": "action", "action": "hangup", "request_id": 1}))
        try:
            async with asyncio.timeout(15):
                while not any(f.get("type") == "event" and f["event"].get("type") == "call_ended" for f in frames):
                    frames.append(json.loads(await dashboard.recv()))
        finally:
            await dashboard.close()
        return frames, await until_closed(phone)

    frames, phone_close = asyncio.run(scenario())
    assert {"type": "action_result", "request_id": 1, "action": "hangup", "ok": True}.items() <= frames[1].items()
    ended = [f["event"] for f in frames if f.get("type") == "event" and f["event"].get("type") == "call_ended"]
    assert ended[0]["reason"] == "ended_by_supervisor"
    assert phone_close == 1000
    assert wait_ended(call_id).end_reason == "ended_by_supervisor"

    # SIGTERM drains worker 1: its live call ends with a reason, then the worker exits.
    call_id, path = place_twilio_call(port_1)

    async def drained() -> int | None:
        phone = await open_stream(port_1, path)
        await asyncio.to_thread(wait_active, call_id)
        proc_1.send_signal(signal.SIGTERM)
        return await until_closed(phone)

    assert asyncio.run(drained()) == 1000
    assert wait_ended(call_id).end_reason == "server_shutdown"
    assert proc_1.wait(20) == 0
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port_1}/admin/login/", timeout=2)
