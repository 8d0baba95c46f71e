"""Listening in (calls.listen) against a live browser call and the protocol server: a supervisor
hears the caller and the agent (mixed or one side), every listen is an audit row and timeline
events, only supervisors reach the socket, a bad frame closes the listener (4400) and a listener
that falls behind is dropped (4460) while the call goes on; the tap never holds more than its bound."""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
import pytest
from channels.db import database_sync_to_async

from calls.listen import PAGE_HEADER, ListenTap
from calls.models import CallEvent, SupervisorAction
from realtime.server import response
from tests.calls.conftest import CallClient, browser_call, speech_frames
from tests.dashboard.conftest import close, dashboard_socket

pytestmark = pytest.mark.django_db(transaction=True)


def is_frame(kind: str, **fields: Any) -> Any:
    return lambda f: isinstance(f, dict) and f.get("type") == kind and all(f.get(k) == v for k, v in fields.items())


def audio_frames(client: CallClient, side: bytes) -> list[tuple[int, bytes]]:
    """(sample rate, pcm16) of each binary frame of `side` the listener received."""
    found = []
    for frame in client.frames:
        if isinstance(frame, bytes):
            got_side, rate, _ = PAGE_HEADER.unpack_from(frame)
            if got_side == side:
                found.append((rate, frame[PAGE_HEADER.size:]))
    return found


def energy(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(samples ** 2))) if samples.size else 0.0


async def live_call(upstream: Any, operator: Any) -> tuple[CallClient, int]:
    upstream.script(response("Hello, how can I help?"), response("Your order ships tomorrow."),
                    response("Anything else?"), response("Goodbye then."))
    call = await browser_call(operator)
    hello = await call.wait_for(is_frame("call"))
    await call.wait_event("transcript.done", role="assistant")
    return call, hello["call_id"]


async def listen(user: Any, call_id: int, mode: str = "mixed") -> tuple[CallClient, bool]:
    return await dashboard_socket(user, f"/ws/dashboard/calls/{call_id}/listen/?mode={mode}")


@pytest.mark.parametrize("pubsub", ["redis", "in_process"])
async def test_a_supervisor_hears_both_sides_and_the_listen_is_on_the_timeline(
        live_demo: Any, upstream: Any, operator: Any, supervisor: Any, settings: Any, pubsub: str) -> None:
    if pubsub == "in_process":
        settings.REDIS_URL = ""  # one process without Redis: the in-process hub
    elif not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL")
    call, call_id = await live_call(upstream, operator)
    ear, connected = await listen(supervisor, call_id)
    assert connected
    await ear.wait_for(is_frame("listening", call_id=call_id, mode="mixed"))
    # The call's consumer turns its tap on when the listener's request arrives through the channel layer,
    # which may be in the middle of a tone or of the silence after it: send until the tone is heard.
    for _ in range(50):
        for frame in speech_frames(200, 100):
            await call.communicator.send_to(bytes_data=frame)
        await ear.drain(0.05)
        if any(energy(pcm) > 1000 for _, pcm in audio_frames(ear, b"c")):
            break
    caller = audio_frames(ear, b"c")
    assert caller and all(rate == 24000 for rate, _ in caller)
    assert max(energy(pcm) for _, pcm in caller) > 1000  # the caller's loud tone, as sent
    await call.communicator.send_json_to({"type": "text", "text": "Where is my order?"})
    await call.wait_event("transcript.done", role="assistant", text="Your order ships tomorrow.")
    await ear.wait_for(lambda f: isinstance(f, bytes) and f[:1] == b"a")
    await ear.drain(0.3)
    agent = audio_frames(ear, b"a")
    assert sum(len(pcm) for _, pcm in agent) > 4800  # more than 100 ms of the agent's voice
    assert max(energy(pcm) for _, pcm in agent) > 100

    await ear.communicator.send_to(text_data=json.dumps({"type": "stop"}))
    assert await ear.wait_closed() == 1000
    # The call goes on after the listener left.
    await call.communicator.send_json_to({"type": "text", "text": "Thanks"})
    await call.wait_event("transcript.done", role="assistant", text="Anything else?")

    row = await database_sync_to_async(SupervisorAction.objects.get)(call_id=call_id)
    assert (row.kind, row.username, row.text) == ("listen", "sam", "mixed")
    logged = await database_sync_to_async(
        lambda: [(e["action"], e["by"]) for e in CallEvent.objects.filter(call_id=call_id, type="supervisor")
                 .order_by("seq").values_list("event", flat=True)])()
    assert logged == [("listen", "sam"), ("listen_stop", "sam")]
    await call.communicator.send_json_to({"type": "hangup"})
    await call.wait_closed()


async def test_one_side_only_and_a_bad_frame_closes_the_listener_not_the_call(
        live_demo: Any, upstream: Any, operator: Any, supervisor: Any) -> None:
    call, call_id = await live_call(upstream, operator)
    ear, connected = await listen(supervisor, call_id, mode="agent")
    assert connected
    await ear.wait_for(is_frame("listening", mode="agent"))
    await ear.drain(0.3)
    for frame in speech_frames(200, 100):
        await call.communicator.send_to(bytes_data=frame)
    await call.communicator.send_json_to({"type": "text", "text": "Where is my order?"})
    await ear.wait_for(lambda f: isinstance(f, bytes) and f[:1] == b"a")
    await call.wait_event("transcript.done", role="assistant", text="Your order ships tomorrow.")
    await ear.drain(0.3)
    assert not audio_frames(ear, b"c")

    await ear.communicator.send_to(text_data="{not json")
    assert await ear.wait_closed() == 4400
    assert any(is_frame("stopped")(f) and "JSON object" in f["reason"] for f in ear.frames)
    await call.communicator.send_json_to({"type": "text", "text": "Thanks"})
    await call.wait_event("transcript.done", role="assistant", text="Anything else?")
    await call.communicator.send_json_to({"type": "hangup"})
    await call.wait_closed()


async def test_a_listener_that_falls_behind_is_dropped_and_the_call_goes_on(
        live_demo: Any, upstream: Any, operator: Any, supervisor: Any, settings: Any) -> None:
    settings.LISTEN_MAX_LAG_SECONDS = 0.0  # every frame is already "too old": this listener is too slow
    call, call_id = await live_call(upstream, operator)
    ear, connected = await listen(supervisor, call_id)
    assert connected
    await ear.wait_for(is_frame("listening"))
    for _ in range(50):
        for frame in speech_frames(100, 0):
            await call.communicator.send_to(bytes_data=frame)
        await ear.drain(0.05)
        if ear.close_code is not None:
            break
    assert await ear.wait_closed() == 4460
    assert not audio_frames(ear, b"c")
    await call.communicator.send_json_to({"type": "text", "text": "Where is my order?"})
    await call.wait_event("transcript.done", role="assistant", text="Your order ships tomorrow.")
    await call.communicator.send_json_to({"type": "hangup"})
    await call.wait_closed()


async def test_only_supervisors_may_listen(live_demo: Any, upstream: Any, operator: Any, supervisor: Any,
                                          outsider: Any) -> None:
    call, call_id = await live_call(upstream, operator)
    for user, code in ((None, 4401), (outsider, 4403), (operator, 4403)):  # the operator is this call's caller
        ear, _ = await listen(user, call_id)
        assert await ear.wait_closed() == code
    ear, _ = await listen(supervisor, call_id, mode="everything")
    assert await ear.wait_closed() == 4400
    ear, _ = await listen(supervisor, 999_999)
    assert await ear.wait_closed() == 4404
    assert not await database_sync_to_async(SupervisorAction.objects.filter(call_id=call_id).exists)()
    await call.communicator.send_json_to({"type": "hangup"})
    await call.wait_closed()
    ear, _ = await listen(supervisor, call_id)  # an ended call cannot be listened to
    assert await ear.wait_closed() == 4404
    await close(ear)


async def test_the_tap_is_bounded_and_costs_nothing_while_off(settings: Any) -> None:
    settings.LISTEN_TAP_MAX_FRAMES = 10
    tap = ListenTap(1, "audio/pcmu")
    tap.caller(b"\xff" * 160)
    assert not tap.frames  # off: nothing kept
    tap.active = True  # on, with its pump not yet run: frames pile up to the bound, oldest dropped
    for number in range(25):
        tap.agent(bytes([number]) * 160)
    assert len(tap.frames) == 10 and tap.dropped == 15
    assert tap.frames[0][struct.calcsize("!ccd"):][:1] == bytes([15])
    await tap.close()
    assert not tap.frames and not tap.active
