"""Every way a call can end ends it exactly once: the upstream session closed, the call's tasks
and heartbeat stopped, the record ended with its reason, and the worker's live count back down.

The upstream here is the local protocol server; a slow handshake (a subclass that waits before
it answers the WebSocket) opens the window in which a caller can hang up while connecting."""

from __future__ import annotations

import asyncio
import base64
import re
import uuid
from typing import Any
from xml.etree import ElementTree

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.urls import path

from calls.consumers import TwilioMediaConsumer
from calls.live import LIVE
from calls.models import Call, call_group
from realtime.server import RealtimeServer, response
from tests.calls.conftest import CallClient
from tests.calls.test_twilio_call import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    STREAM_SID,
    TwilioStream,
)

pytestmark = pytest.mark.django_db(transaction=True)

SILENCE = bytes([0xFF]) * 160  # 20 ms of mu-law silence


class SlowHandshakeServer(RealtimeServer):
    """The protocol server, answering each WebSocket only after ``handshake_s``, and counting
    the Realtime sockets it holds open (``open_sockets``) whichever way they end."""

    handshake_s = 0.0
    open_sockets = 0
    answered = 0

    async def _websocket(self, scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(self.handshake_s)
        self.answered += 1
        self.open_sockets += 1
        try:
            await super()._websocket(scope, receive, send)
        finally:
            self.open_sockets -= 1


@pytest.fixture
async def upstream(settings: Any) -> Any:
    server = SlowHandshakeServer(api_key="sk-slow-handshake", validate_outgoing=True, max_session_seconds=60.0)
    await server.start("127.0.0.1", 0)
    settings.OPENAI_BASE_URL = server.base_url
    settings.OPENAI_API_KEY = server.api_key
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def twilio(settings: Any) -> None:
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.PUBLIC_BASE_URL = "https://cc.example.com"


async def twilio_webhook(scenario: str = "retail") -> str:
    """Twilio's signed voice webhook for a new call (its own CallSid); the TwiML it answers with."""
    from django.test import AsyncClient

    from calls.twilio import compute_signature

    params = {"CallSid": "CA" + uuid.uuid4().hex, "AccountSid": ACCOUNT_SID, "From": "+447700900123",
              "To": "+15550001111", "CallStatus": "ringing", "Direction": "inbound"}
    path = f"/twilio/voice?scenario={scenario}"
    signature = compute_signature(AUTH_TOKEN, "https://cc.example.com" + path, params.items())
    answer = await AsyncClient().post(path, params, headers={"X-Twilio-Signature": signature})
    assert answer.status_code == 200
    return answer.content.decode()


async def answer_call(scenario: str = "retail") -> str:
    """The media stream path (with its token) that the webhook's TwiML gives Twilio."""
    stream = ElementTree.fromstring(await twilio_webhook(scenario)).find("./Connect/Stream")
    assert stream is not None
    return re.sub(r"^wss://cc\.example\.com", "", stream.get("url", ""))


def open_sessions(server: SlowHandshakeServer) -> int:
    return server.open_sockets


async def active_rows() -> int:
    return await database_sync_to_async(lambda: Call.objects.exclude(status=Call.Status.ENDED).count())()


async def row(call_id: int) -> Call:
    return await database_sync_to_async(Call.objects.get)(pk=call_id)


async def settled(server: SlowHandshakeServer, live: int, timeout: float = 8.0) -> tuple[int, int, int]:
    """Wait until upstream sessions open == live calls == active rows == ``live``; the three counts."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        counts = (open_sessions(server), len(LIVE), await active_rows())
        if counts == (live, live, live) or loop.time() > deadline:
            return counts
        await asyncio.sleep(0.05)


async def media(stream: TwilioStream, frames: int) -> None:
    for _ in range(frames):
        await stream.media(SILENCE)


async def twilio_call_id() -> int:
    return await database_sync_to_async(lambda: Call.objects.order_by("-pk").values_list("pk", flat=True)[0])()


async def test_hang_up_while_connecting_closes_the_upstream(live_demo: Any, upstream: Any, twilio: Any) -> None:
    upstream.handshake_s = 0.6
    stream = TwilioStream(await answer_call())
    await stream.open()
    call_id = await twilio_call_id()
    await asyncio.sleep(0.2)  # the engine is opening the upstream connection
    await stream.send({"event": "stop", "streamSid": STREAM_SID, "stop": {}})
    # The socket's close handshake ends only after the upstream answered (a loaded server): the
    # late upstream connection must be closed, not kept.
    for _ in range(100):
        if upstream.answered and (await row(call_id)).status == Call.Status.ENDED:
            break
        await asyncio.sleep(0.1)
    assert (await row(call_id)).status == Call.Status.ENDED
    await asyncio.sleep(0.5)  # the engine has seen the late connection open by now
    assert open_sessions(upstream) == 0  # not left to the socket's close to clean up
    assert await stream.client.wait_closed() == 1000
    assert await settled(upstream, 0) == (0, 0, 0)
    call = await row(call_id)
    assert (call.status, call.end_reason) == (Call.Status.ENDED, "caller_hung_up")


async def test_first_frames_are_sent_when_the_session_opens(live_demo: Any, upstream: Any,
                                                            twilio: Any) -> None:
    upstream.handshake_s = 0.5
    upstream.script(response("Hello caller."))
    stream = TwilioStream(await answer_call())
    await stream.open()
    await media(stream, 10)  # while the upstream connection is still opening
    session = await upstream.wait_for_session(timeout=5)
    await stream.client.wait_for(lambda f: isinstance(f, dict) and f.get("event") == "media")
    await media(stream, 5)
    await stream.client.drain(0.5)
    appended = [e["audio"] for e in session.client_events if e.get("type") == "input_audio_buffer.append"]
    assert len(appended) == 15  # the 10 buffered first (once, in order), then the 5 sent live
    assert all(base64.b64decode(a) == SILENCE for a in appended)
    first_update = next(i for i, e in enumerate(session.client_events) if e.get("type") == "session.update")
    first_append = next(i for i, e in enumerate(session.client_events) if e.get("type") == "input_audio_buffer.append")
    assert first_update < first_append  # the session is configured before it hears the caller
    await stream.send({"event": "stop", "streamSid": STREAM_SID, "stop": {}})
    assert await stream.client.wait_closed() == 1000


class BuggyTwilioConsumer(TwilioMediaConsumer):
    """The Twilio consumer with a bug in one handler: what happens to an exception nobody foresaw
    (the known ones, deep JSON and non-object dtmf or mark, are refused as bad frames now)."""

    async def on_dtmf(self, message: dict[str, Any]) -> None:
        raise RuntimeError("a bug in a handler")


async def test_an_exception_in_the_consumer_ends_the_call(live_demo: Any, upstream: Any, twilio: Any) -> None:
    upstream.script(response("Hello caller."))
    stream_path = await answer_call()
    stream = TwilioStream(stream_path)
    stream.communicator = WebsocketCommunicator(
        URLRouter([path("twilio/media", BuggyTwilioConsumer.as_asgi())]), stream_path)
    stream.client = CallClient(stream.communicator)
    await stream.open()
    call_id = await twilio_call_id()
    await upstream.wait_for_session(timeout=5)
    assert await settled(upstream, 1) == (1, 1, 1)
    await stream.send({"event": "dtmf", "streamSid": STREAM_SID, "dtmf": {"digit": "5"}})
    assert await stream.client.wait_closed() is not None
    assert await settled(upstream, 0) == (0, 0, 0)
    call = await row(call_id)
    assert call.status == Call.Status.ENDED and call.end_reason


async def test_a_cancelled_consumer_ends_its_call(live_demo: Any, upstream: Any, twilio: Any, settings: Any) -> None:
    """Daphne cancels a consumer at shutdown, and when it outlives the close timeout (overload)."""
    settings.CALL_HEARTBEAT_SECONDS = 0.1
    upstream.script(response("Hello caller."))
    stream = TwilioStream(await answer_call())
    await stream.open()
    call_id = await twilio_call_id()
    await upstream.wait_for_session(timeout=5)
    assert await settled(upstream, 1) == (1, 1, 1)
    stream.communicator.future.cancel()
    assert await settled(upstream, 0) == (0, 0, 0)
    call = await row(call_id)
    assert (call.status, call.end_reason) == (Call.Status.ENDED, "server_overloaded")
    last_heartbeat = call.last_heartbeat
    await asyncio.sleep(0.4)
    assert (await row(call_id)).last_heartbeat == last_heartbeat  # the heartbeat stopped with the call


async def test_draining_ends_live_calls_and_refuses_new_ones(live_demo: Any, upstream: Any, twilio: Any) -> None:
    upstream.script(response("Hello caller."))
    stream = TwilioStream(await answer_call())
    await stream.open()
    call_id = await twilio_call_id()
    await upstream.wait_for_session(timeout=5)
    try:
        assert await LIVE.drain("server_shutdown") == 1
        assert await stream.client.wait_closed() == 1000
        assert await settled(upstream, 0) == (0, 0, 0)
        assert (await row(call_id)).end_reason == "server_shutdown"
        twiml = await twilio_webhook()  # a new caller is turned away while the worker drains
        assert "<Connect>" not in twiml and "<Say>" in twiml and "<Hangup/>" in twiml
        refused = await database_sync_to_async(lambda: Call.objects.order_by("-pk").first())()
        assert (refused.status, refused.end_reason) == (Call.Status.ENDED, "refused_shutting_down")
    finally:
        LIVE.draining = False


async def test_upstream_lost_for_good_ends_the_call(live_demo: Any, upstream: Any, twilio: Any,
                                                    settings: Any) -> None:
    settings.OPENAI_BASE_URL = upstream.base_url.replace(f":{upstream.port}/", ":9/")  # nothing listens there
    stream = TwilioStream(await answer_call())
    await stream.open()
    call_id = await twilio_call_id()
    assert await stream.client.wait_closed(20) == 1000
    assert await settled(upstream, 0, timeout=10) == (0, 0, 0)
    call = await row(call_id)
    assert (call.status, call.end_reason) == (Call.Status.ENDED, "session_lost")


async def test_churn_keeps_sessions_calls_and_rows_equal(live_demo: Any, upstream: Any, twilio: Any) -> None:
    """Calls start and end every way at once; at every sample no upstream session outlives its
    call and no live call lacks an active row; once settled the three counts are equal."""
    upstream.handshake_s = 0.15
    upstream.script_text()
    streams: list[TwilioStream] = []
    samples: list[tuple[int, int, int]] = []
    stop_sampling = asyncio.Event()

    async def sample() -> None:
        while not stop_sampling.is_set():
            before = await active_rows()
            open_now, live_now = open_sessions(upstream), len(LIVE)  # the same instant
            after = await active_rows()
            samples.append((open_now, live_now, max(before, after)))
            await asyncio.sleep(0.03)

    sampler = asyncio.ensure_future(sample())
    try:
        for _ in range(12):
            stream = TwilioStream(await answer_call())
            await stream.open()
            await media(stream, 2)
            streams.append(stream)
        early = streams[:3]  # these hang up while their upstream is still connecting
        for stream in early:
            await stream.send({"event": "stop", "streamSid": STREAM_SID, "stop": {}})
        for stream in early:
            assert await stream.client.wait_closed() == 1000
        assert await settled(upstream, 9) == (9, 9, 9)

        ends = []
        call_ids = await database_sync_to_async(lambda: list(
            Call.objects.order_by("id").values_list("id", flat=True)))()
        layer = get_channel_layer()
        for i, stream in enumerate(streams[3:]):
            if i % 3 == 0:
                ends.append(stream.send({"event": "stop", "streamSid": STREAM_SID, "stop": {}}))
            elif i % 3 == 1:  # a supervisor hangs up, through the call's group
                ends.append(layer.group_send(call_group(call_ids[3 + i]),
                                             {"type": "call.hangup", "reason": "ended_by_supervisor"}))
            else:
                ends.append(stream.communicator.send_input({"type": "websocket.disconnect", "code": 1001}))
        await asyncio.gather(*ends)
        assert await settled(upstream, 0) == (0, 0, 0)
    finally:
        stop_sampling.set()
        await sampler
        for stream in streams:
            if not stream.communicator.future.done():
                stream.communicator.future.cancel()
    # A session closing is seen by the server a moment after the engine closed it: a violation
    # counts when it lasts three samples in a row (a leaked session or call lasts for ever).
    broken = [open_upstream > live or live > active for open_upstream, live, active in samples]
    assert not any(all(broken[i:i + 3]) for i in range(len(broken) - 2)), samples
