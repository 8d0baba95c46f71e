"""Channels consumers that carry a live call: the browser call page and Twilio Media Streams.

A consumer decodes the transport's frames, feeds the engine (through `CallBridge`), plays the
agent's audio back, reports what the caller heard, and joins the call's channel group so Celery
and supervisors can reach it (rolling summaries, recreate requests, hang-ups). Audio never goes
through the channel layer; the ORM is only used on the records' threads (`on_records_thread`),
never on the thread Channels shares between every consumer and view of the process. A bad frame
is logged with its reason and ignored (or the socket closed cleanly); it never affects another call.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import re
import time
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any
from urllib.parse import parse_qs

from channels.exceptions import AcceptConnection, DenyConnection, StopConsumer
from django.conf import settings

from calls import actions, tokens
from calls.bridge import CallBridge, on_records_thread
from calls.events import caller_safe_event
from calls.lean import LeanLoop
from calls.limits import PENDING_TWILIO_STREAMS, USER_SOCKETS, RateLimit, SlotHolder, live_calls_of
from calls.live import LIVE, keep_heartbeat, refusal_message
from calls.models import Call, call_group
from calls.scenarios import UnknownScenario, compile_for_call, spec_of_call
from calls.twilio import TWILIO_MULAW, clear_message
from contactcenter import logs, metrics
from realtime.spec import ScenarioSpec

logger = logging.getLogger(__name__)

# Close codes (4xxx: daphne refuses 1003 and the like from an application): 4400 malformed message,
# 4401 no valid token, 4403 token of someone else / call not joinable, 4404 no scenario, 4408 no valid
# start in time, 4415 unsupported media format, 4429 over a limit (sockets, live calls).
CLOSE_BAD_MESSAGE = 4400
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_START_TIMEOUT = 4408
CLOSE_UNSUPPORTED = 4415
CLOSE_TOO_MANY = 4429
# An application may close only with 1000 or 3000-4999 (daphne refuses 1011 and the like).
CLOSE_INTERNAL_ERROR = 4500
CLOSE_TRY_AGAIN_LATER = 4503

#: A base64 payload that can be put inside a JSON string as it is (no quote, no backslash).
BASE64_PAYLOAD = re.compile(r"[A-Za-z0-9+/]*={0,2}")

MAX_TEXT_CHARS = 4000


def load_json(text: str) -> Any:
    """``json.loads`` that answers ValueError for nesting too deep to parse (RecursionError)."""
    try:
        return json.loads(text)
    except RecursionError as error:
        raise ValueError("JSON nested too deeply") from error


class CallConsumer(SlotHolder, LeanLoop):
    """What both transports share: the call record, its group, heartbeats and the engine bridge."""

    channel_label = "call"

    async def connect(self) -> None:
        self.call_id: int | None = None
        self.bridge: CallBridge | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._ending: asyncio.Task[None] | None = None
        self._finishing: asyncio.Task[None] | None = None
        await self.open_call()

    # --- every way out ends the call, exactly once ------------------------------------------------

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """The call itself ends in `on_application_end`, on every way out; this only makes sure
        the worker never counts a consumer that is gone."""
        try:
            await super().__call__(scope, receive, send)
        finally:
            LIVE.leave(self)

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Frames take the lean route: Channels' dispatch first runs `aclose_old_connections` on
        the thread the process shares for the ORM, a thread hop per frame that costs more than the
        frame is worth. Our handlers never touch the ORM on the event loop (only through
        `on_records_thread`, which does that connection hygiene on its own threads), so a
        `websocket.receive` goes straight to its handler. An exception anywhere in a handler ends
        the call (closed with 4500) instead of leaving the engine, the upstream session and the
        heartbeat running with nobody on the line."""
        try:
            if message["type"] == "websocket.receive":  # per frame: straight to receive()
                text = message.get("text")
                await self.receive(text, None if text is not None else message.get("bytes"))
            elif message["type"] == "call.listen":  # as often as listeners renew: no ORM hop either
                await self.call_listen(message)
            elif message["type"] == "call.event":  # published records of this call: nothing to do
                return
            elif message["type"] == "call.human_audio":  # people: a person's voice, per frame: lean route too
                from calls.takeover import on_human_audio

                on_human_audio(self, message)
            else:
                await super().dispatch(message)
        except (StopConsumer, AcceptConnection, DenyConnection):
            raise
        except Exception:
            logger.exception("%s call %s: the consumer failed on %s; ending the call", self.channel_label,
                             getattr(self, "call_id", None), message.get("type"))
            if not getattr(self, "_closing", True):
                self._closing = True
                await self.close(code=CLOSE_INTERNAL_ERROR)
            await self.end_call("transport_error")

    async def end_call(self, reason: str) -> None:
        """Leave the call's group, end the engine (upstream closed, tasks cancelled, the record
        ended with ``reason``) and stop the heartbeat. Once: later callers wait for the first."""
        if not hasattr(self, "_tasks"):  # never connected
            return
        if self._ending is None:
            self._ending = asyncio.ensure_future(self._end(reason))
        await asyncio.shield(self._ending)
        finishing = self._finishing  # the client told the call ended and the socket closed
        if finishing is not None and finishing is not asyncio.current_task():
            await asyncio.shield(finishing)

    async def _end(self, reason: str) -> None:
        current = asyncio.current_task()
        try:
            if self.call_id is not None:
                try:
                    await self.channel_layer.group_discard(call_group(self.call_id), self.channel_name)
                except Exception:
                    logger.warning("call %s: could not leave the call's group", self.call_id, exc_info=True)
            if self.bridge is not None:
                await self.bridge.close(reason)
                self.bridge.session.playback.clear()
        finally:
            LIVE.leave(self)  # after the upstream closed: never a paid session without a live call
            for task in list(self._tasks):
                if task is not current and task is not self._ending:
                    task.cancel()

    def admit(self) -> str | None:
        """Count this call in on this worker, or say why it is refused."""
        return LIVE.admit(self)

    # --- helpers -----------------------------------------------------------------------------------

    def query_param(self, name: str) -> str:
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        values = query.get(name) or [""]
        return values[0]

    def spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("%s call %s: background task failed", self.channel_label, self.call_id,
                         exc_info=task.exception())

    async def refuse(self, code: int, reason: str) -> None:
        """Accept only to close with a code the client can read (a refused handshake has none)."""
        logger.warning("%s socket refused (%s): %s", self.channel_label, code, reason)
        await self.accept()
        await self.close(code=code)

    def frame_problem(self, text_data: str | None, bytes_data: bytes | None) -> str | None:
        limit = settings.CALL_MAX_FRAME_BYTES
        if bytes_data is not None:
            size = len(bytes_data)
        else:  # a character is at most 4 bytes of UTF-8: only a long text is encoded to count them
            size = len(text_data or "")
            if size * 4 > limit:
                size = len((text_data or "").encode())
        if size > limit:
            return f"frame of {size} bytes is over the {settings.CALL_MAX_FRAME_BYTES}-byte limit"
        return None

    async def join_call(self, call_id: int, spec: ScenarioSpec, audio_format: str) -> None:
        self.call_id = call_id
        logs.bind_call(call_id)
        await self.channel_layer.group_add(call_group(call_id), self.channel_name)
        self.bridge = CallBridge(call_id, spec, audio_format, self)  # type: ignore[arg-type]
        self.spawn(self.bridge.start())
        self._heartbeat_task = self.spawn(self._heartbeat())

    async def _heartbeat(self) -> None:
        if self.call_id is not None:
            await keep_heartbeat(self.call_id)  # survives a database outage

    async def disconnect(self, code: int) -> None:
        self._closing = True  # the socket is gone: nothing more is sent on it
        await self.end_call(self.hangup_reason(code))

    def hangup_reason(self, code: int) -> str:
        return "caller_hung_up"

    async def on_application_end(self) -> None:
        """The one owner of ending the call on the consumer's way out, however it went: a hang-up
        (already ended: nothing left to do), a crash, or daphne cancelling it at shutdown (SIGTERM)
        or past its close timeout (an overloaded worker), when its disconnect never ran."""
        task = asyncio.current_task()
        cancelled = task is not None and task.cancelling() > 0
        reason = ("server_shutdown" if LIVE.draining else "server_overloaded") if cancelled else "lost"
        if self.bridge_running():
            logger.warning("%s call %s: the consumer ended without a hang-up; ending the call (%s)",
                           self.channel_label, self.call_id, reason)
        # Shielded: the server may cancel the consumer again while the record is written.
        await asyncio.shield(asyncio.ensure_future(self._end_on_exit(reason)))

    def bridge_running(self) -> bool:
        bridge = getattr(self, "bridge", None)
        return bridge is not None and not bridge.ended

    async def _end_on_exit(self, reason: str) -> None:
        try:
            await asyncio.wait_for(self.end_call(reason), 10)  # once: a no-op after a hang-up
        except Exception:
            logger.exception("%s call %s: the engine did not close cleanly", self.channel_label,
                             getattr(self, "call_id", None))
        if self.bridge_running() and self.call_id is not None:  # the engine never got going: end the record
            await on_records_thread(actions.do_end_call)(self.call_id, reason)
        if getattr(self, "bridge", None) is not None:
            self.bridge.session.playback.clear()

    async def send(self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False) -> None:
        """Send, unless the peer is already gone: its disconnect is on the way, and the engine's
        next event must not fail on a closed socket (daphne raises there)."""
        try:
            await super().send(text_data, bytes_data, close)
        except Exception as error:  # noqa: BLE001 - daphne raises its own Disconnected on a closed socket
            if not self._closing:
                logger.info("%s call %s: the socket closed under a send (%s)", self.channel_label, self.call_id,
                            type(error).__name__)
            self._closing = True

    async def send_text(self, text: str) -> None:
        """`send(text_data=...)` for a frame of audio: the ASGI message handed to the server at
        once, with the same guard against a socket that is gone."""
        try:
            await self.base_send({"type": "websocket.send", "text": text})
        except Exception as error:  # noqa: BLE001 - the server raises its own error on a closed socket
            if not self._closing:
                logger.info("%s call %s: the socket closed under a send (%s)", self.channel_label, self.call_id,
                            type(error).__name__)
            self._closing = True

    # --- Transport (called by the bridge) ----------------------------------------------------------

    async def forward_event(self, event: dict[str, Any]) -> None:
        return None

    async def call_ended(self, reason: str) -> None:
        LIVE.leave(self)  # the call is over, even while its socket closes
        if (heartbeat := getattr(self, "_heartbeat_task", None)) is not None:
            heartbeat.cancel()
        # Not one of the call's tasks: ending the call cancels those, and this one closes the socket.
        self._finishing = asyncio.ensure_future(self._finish(reason))

    async def _finish(self, reason: str) -> None:
        """The engine ended the call: write every record, tell the client, close the socket."""
        if self.bridge is not None:
            await self.bridge.flush()
        if not self._closing:
            self._closing = True
            await self.send_ended(reason)
            await self.close(code=1000)

    async def send_ended(self, reason: str) -> None:
        return None

    # --- channel-layer messages (group call.<id>) --------------------------------------------------

    async def call_event(self, message: dict[str, Any]) -> None:
        """Published records: this consumer already forwarded the engine event they came from."""

    async def call_summary(self, message: dict[str, Any]) -> None:
        if self.bridge is not None:
            self.bridge.deliver_summary(str(message.get("request_id", "")), str(message.get("text", "")))

    async def call_recreate(self, message: dict[str, Any]) -> None:
        if self.bridge is not None and not self.bridge.ended:
            logger.info("call %s: recreating the Realtime session (%s)", self.call_id, message.get("reason"))
            self.spawn(self.bridge.session.recreate(str(message.get("reason") or "max_session_length")))

    async def call_hangup(self, message: dict[str, Any]) -> None:
        if self.bridge is not None:
            self.spawn(self.bridge.session.close(str(message.get("reason") or "ended_by_supervisor")))

    async def call_listen(self, message: dict[str, Any]) -> None:
        """A supervisor listens (calls.listen): the call publishes its audio while anyone does."""
        if self.bridge is not None and not self.bridge.ended:
            self.bridge.listen.activate()

    async def call_takeover(self, message: dict[str, Any]) -> None:
        """A person takes the call over, renews it, or hands it back (calls.takeover)."""
        from calls.takeover import on_call_takeover

        self.spawn(on_call_takeover(self, message))

    async def call_supervisor(self, message: dict[str, Any]) -> None:
        """A supervisor's action from the dashboard (calls.actions.do_supervisor_action)."""
        if self.bridge is not None:
            self.spawn(self._supervise(message))

    async def _supervise(self, message: dict[str, Any]) -> None:
        assert self.bridge is not None
        problem = await self.bridge.supervise(
            str(message.get("action")), by=str(message.get("by") or ""), text=str(message.get("text") or ""),
            tool_call_id=str(message.get("tool_call_id") or ""))
        reply_channel = str(message.get("reply_channel") or "")
        if reply_channel:
            await self.channel_layer.send(reply_channel, {
                "type": "dashboard.reply", "action_id": message.get("action_id"), "action": message.get("action"),
                "ok": problem is None, "detail": problem or "",
            })


class BrowserCallConsumer(CallConsumer):
    """`/ws/calls/browser/?token=...`: the call page's audio and control messages."""

    channel_label = "browser"

    async def open_call(self) -> None:
        self._event_seq = 0
        self._audio_item: str | None = None
        self.staff = False
        self.limits = {
            "text": RateLimit(settings.CALL_TEXT_TURNS_PER_SECOND, settings.CALL_TEXT_TURNS_BURST),
            "ptt": RateLimit(settings.CALL_PTT_PER_SECOND, settings.CALL_PTT_BURST),
            "playback": RateLimit(settings.CALL_PLAYBACK_REPORTS_PER_SECOND, settings.CALL_PLAYBACK_REPORTS_BURST),
            "errors": RateLimit(5, 20),  # the error frames we answer refused frames with
        }
        try:
            grant = tokens.read_browser_token(self.query_param("token"))
        except tokens.TokenError as error:
            await self.refuse(CLOSE_UNAUTHENTICATED, str(error))
            return
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or user.pk != grant.user_id:
            await self.refuse(CLOSE_FORBIDDEN, "the token belongs to another user")
            return
        if not self.hold(USER_SOCKETS, user.pk, settings.USER_MAX_SOCKETS):
            await self.refuse(CLOSE_TOO_MANY, f"{user.get_username()} has {settings.USER_MAX_SOCKETS} sockets open")
            return
        if await on_records_thread(live_calls_of)(user.pk) >= settings.USER_MAX_LIVE_CALLS:
            await self.refuse(CLOSE_TOO_MANY, f"{user.get_username()} has {settings.USER_MAX_LIVE_CALLS} live calls")
            return
        if not await on_records_thread(tokens.claim_browser_token)(grant):
            await self.refuse(CLOSE_UNAUTHENTICATED, "the token has been used")
            return
        # The full protocol log (instructions, tools, whispers) is for staff; other callers get
        # the caller-safe view of each event (calls.events.caller_safe_event).
        self.staff = bool(user.is_active and user.is_staff)
        try:
            scenario, spec = await on_records_thread(compile_for_call)(grant.scenario)
        except UnknownScenario as error:
            await self.refuse(CLOSE_NOT_FOUND, str(error))
            return
        self.codec = grant.codec
        if (refused := self.admit()) is not None:
            await on_records_thread(actions.do_refuse_call)(
                channel=Call.Channel.BROWSER, spec=spec.to_dict(), scenario=scenario, user=user,
                caller_id=user.get_username(), codec=grant.codec, reason=refused)
            logger.warning("browser call refused: %s (%d live calls on this worker)", refused, len(LIVE))
            await self.accept()
            await self.send_json({"type": "refused", "reason": refused, "message": refusal_message(refused)})
            self._closing = True
            await self.close(code=CLOSE_TRY_AGAIN_LATER)
            return
        call = await on_records_thread(actions.do_start_call)(
            channel=Call.Channel.BROWSER, spec=spec.to_dict(), scenario=scenario, user=user,
            caller_id=user.get_username(), codec=grant.codec, consumer_channel=self.channel_name,
        )
        await self.accept()
        await self.send_json({"type": "call", "call_id": call.pk, "scenario": spec.slug, "agent": spec.root_agent})
        await self.join_call(call.pk, spec, "audio/pcmu" if grant.codec == "pcmu" else "audio/pcm")

    async def send_json(self, data: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(data, ensure_ascii=False, default=str))

    async def ignore(self, code: str, reason: str) -> None:
        """Answer a refused frame with an error event (a flood of them gets a few answers, not one each)."""
        if not self.limits["errors"].allow():
            return
        logger.warning("browser call %s: ignored a frame: %s", self.call_id, reason)
        await self.forward_event({"type": "error", "code": code, "message": reason, "source": "transport",
                                  "fatal": False})

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.bridge is None or self._closing:
            return
        if (problem := self.frame_problem(text_data, bytes_data)) is not None:
            await self.ignore("frame_too_large", problem)
            return
        if bytes_data is not None:
            if self.codec == "pcm16" and len(bytes_data) % 2:
                await self.ignore("bad_audio", f"pcm16 audio frame of {len(bytes_data)} bytes (odd byte count)")
                return
            started = time.perf_counter()
            await self.bridge.session.send_audio(bytes_data)
            metrics.frame("in", started)
            self.bridge.listen.caller(bytes_data)
            return
        try:
            message = load_json(text_data or "")
        except ValueError:
            await self.ignore("bad_json", "text frame is not JSON")
            return
        if not isinstance(message, dict):
            await self.ignore("bad_message", "message is not a JSON object")
            return
        await self.handle_message(message)

    async def handle_message(self, message: dict[str, Any]) -> None:
        assert self.bridge is not None
        kind = message.get("type")
        if kind == "text":
            text = message.get("text")
            if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT_CHARS:
                await self.ignore("bad_message", "text must be a non-empty string of at most 4000 characters")
                return
            if not self.limits["text"].allow():
                await self.ignore("rate_limited", "typed turns are coming too fast; this one was dropped")
                return
            await self.bridge.interrupt()
            self.spawn(self.bridge.session.send_text(text))
        elif kind == "playback":
            item_id, played_ms = message.get("item_id"), message.get("played_ms")
            if (not isinstance(item_id, str) or isinstance(played_ms, bool)
                    or not isinstance(played_ms, (int, float)) or not 0 <= played_ms <= 86_400_000
                    or not math.isfinite(played_ms)):
                await self.ignore("bad_message", "playback needs item_id (string) and played_ms (number >= 0)")
                return
            if not self.limits["playback"].allow():
                await self.ignore("rate_limited", "playback reports are coming too fast; this one was dropped")
                return
            if not self.bridge.session.playback.knows(item_id):
                await self.ignore("unknown_item", "playback names an item the agent did not send")
                return
            await self.bridge.session.report_playback(item_id, float(played_ms))
        elif kind == "ptt":
            state = message.get("state")
            if state not in ("down", "up"):
                await self.ignore("bad_message", "ptt state must be down or up")
                return
            if not self.limits["ptt"].allow():
                await self.ignore("rate_limited", "push-to-talk presses are coming too fast; this one was dropped")
                return
            await self.bridge.push_to_talk(state == "down")
        elif kind == "hangup":
            self.spawn(self.bridge.session.close("hangup"))
        else:
            await self.ignore("unknown_type", f"unknown message type {str(kind)[:40]!r}")

    # --- Transport -----------------------------------------------------------------------------------

    async def play_audio(self, item_id: str, audio: bytes) -> None:
        if self._closing:
            return
        if item_id != self._audio_item:
            self._audio_item = item_id
            await self.send_json({"type": "audio", "item_id": item_id})
        await self.send(bytes_data=audio)

    async def clear_playback(self, item_id: str) -> None:
        self._audio_item = None
        if not self._closing:
            await self.send_json({"type": "clear"})

    async def forward_event(self, event: dict[str, Any]) -> None:
        if self._closing:
            return
        if not self.staff:
            safe = caller_safe_event(event)
            if safe is None:
                return
            event = safe
        self._event_seq += 1
        await self.send_json({"type": "event", "seq": self._event_seq, "event": event})

    async def send_ended(self, reason: str) -> None:
        await self.send_json({"type": "ended", "reason": reason})


class TwilioMediaConsumer(CallConsumer):
    """`/twilio/media`: Twilio Media Streams (JSON text frames, mu-law 8 kHz both ways)."""

    channel_label = "twilio"
    wants_protocol_events = False  # Twilio is sent audio, marks and clears only

    async def open_call(self) -> None:
        self.stream_sid = ""
        self._marks_sent = 0
        self.grant: tokens.TwilioGrant | None = None
        if not self.hold(PENDING_TWILIO_STREAMS, "pending", settings.TWILIO_MAX_PENDING_STREAMS):
            await self.refuse(CLOSE_TOO_MANY, f"over {settings.TWILIO_MAX_PENDING_STREAMS} media sockets await a start")
            return
        token = self.query_param("token")
        if token:
            try:
                self.grant = tokens.read_twilio_stream_token(token)
            except tokens.TokenError as error:
                await self.refuse(CLOSE_UNAUTHENTICATED, f"stream token: {error}")
                return
        # No token in the URL: Twilio may drop query strings; the start message must then carry it.
        await self.accept()
        self.spawn(self._start_deadline())

    async def _start_deadline(self) -> None:
        """A socket that has not started a call in time is closed (and its ringing call ended)."""
        await asyncio.sleep(settings.TWILIO_START_TIMEOUT_SECONDS)
        if self.bridge is None and not self._closing:
            await self.close_stream(CLOSE_START_TIMEOUT,
                                    f"no valid start within {settings.TWILIO_START_TIMEOUT_SECONDS} s")

    async def disconnect(self, code: int) -> None:
        await super().disconnect(code)
        if self.bridge is None and self.grant is not None:
            await on_records_thread(end_ringing_call)(self.grant.call_id, "stream_not_started")

    async def on_application_end(self) -> None:
        await super().on_application_end()
        if self.bridge is None and self.grant is not None:
            await asyncio.shield(asyncio.ensure_future(
                on_records_thread(end_ringing_call)(self.grant.call_id, "stream_not_started")))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self._closing:
            return
        if (problem := self.frame_problem(text_data, bytes_data)) is not None:
            logger.warning("twilio call %s: ignored a frame: %s", self.call_id, problem)
            return
        if text_data is None:
            logger.warning("twilio call %s: ignored a binary frame (Media Streams speaks JSON)", self.call_id)
            return
        try:
            message = load_json(text_data)
        except ValueError:
            logger.warning("twilio call %s: ignored a frame: not JSON", self.call_id)
            return
        if not isinstance(message, dict):
            logger.warning("twilio call %s: ignored a frame: not a JSON object", self.call_id)
            return
        event = message.get("event")
        if event == "media":  # fifty a second: no lookup
            await self.on_media(message)
            return
        name = TWILIO_HANDLERS.get(event) if isinstance(event, str) else None
        if name is None:
            logger.warning("twilio call %s: ignored unknown event %r", self.call_id, str(event)[:40])
            return
        await getattr(self, name)(message)

    async def on_connected(self, message: dict[str, Any]) -> None:
        logger.info("twilio stream connected (protocol %s)", message.get("protocol"))

    async def on_start(self, message: dict[str, Any]) -> None:
        if self.bridge is not None:
            logger.warning("twilio call %s: ignored a second start", self.call_id)
            return
        start = message.get("start")
        if not isinstance(start, dict):
            await self.close_stream(CLOSE_BAD_MESSAGE, "start without a start object")
            return
        parameters = start.get("customParameters") if isinstance(start.get("customParameters"), dict) else {}
        grant = self.grant
        if grant is None:
            token = parameters.get("token")
            try:
                grant = tokens.read_twilio_stream_token(token if isinstance(token, str) else "")
            except tokens.TokenError as error:
                await self.close_stream(CLOSE_UNAUTHENTICATED, f"stream token: {error}")
                return
            self.grant = grant
        media_format = start.get("mediaFormat")
        if not isinstance(media_format, dict) or (
                media_format.get("encoding"), whole_number(media_format.get("sampleRate")),
                whole_number(media_format.get("channels", 1))) != (TWILIO_MULAW, 8000, 1):
            await self.close_stream(CLOSE_UNSUPPORTED, f"unsupported media format {str(media_format)[:200]}")
            return
        stream_sid, call_sid = message.get("streamSid") or start.get("streamSid"), start.get("callSid")
        if not isinstance(stream_sid, str | None) or not isinstance(call_sid, str | None):
            await self.close_stream(CLOSE_BAD_MESSAGE, "streamSid and callSid must be strings")
            return
        self.stream_sid = (stream_sid or "")[:64]
        self._sid_json = encode_basestring(self.stream_sid)
        if (refused := self.admit()) is not None:
            await on_records_thread(actions.do_end_call)(grant.call_id, refused)
            await self.close_stream(CLOSE_TRY_AGAIN_LATER, f"call {grant.call_id}: {refused}")
            return
        answered = await on_records_thread(actions.do_answer_call)(
            grant.call_id, consumer_channel=self.channel_name, external_id=call_sid or "")
        if not answered:
            self.grant = None  # not this socket's call: it must not end it
            await self.close_stream(CLOSE_FORBIDDEN, f"call {grant.call_id} is not ringing (token reused?)")
            return
        self.release(PENDING_TWILIO_STREAMS, "pending")
        spec = await on_records_thread(spec_of_call)(grant.call_id)
        logger.info("twilio call %s: stream %s started", grant.call_id, self.stream_sid)
        await self.join_call(grant.call_id, spec, "audio/pcmu")

    async def close_stream(self, code: int, reason: str) -> None:
        """Close a stream that has no running call; the ringing call its token named ends."""
        logger.warning("twilio stream closed (%s): %s", code, reason)
        self._closing = True
        await self.close(code=code)
        if self.bridge is None and self.grant is not None:
            await on_records_thread(end_ringing_call)(self.grant.call_id, "stream_refused")

    async def on_media(self, message: dict[str, Any]) -> None:
        if self.bridge is None:
            logger.debug("twilio media before start ignored")
            return
        media = message.get("media")
        if not isinstance(media, dict) or media.get("track", "inbound") not in ("inbound", "inbound_track"):
            return
        payload = media.get("payload")
        # Mu-law both ways: the payload goes upstream as it came, checked but not decoded.
        if not isinstance(payload, str):
            logger.warning("twilio call %s: ignored media without a string payload", self.call_id)
            return
        if len(payload) % 4 or BASE64_PAYLOAD.fullmatch(payload) is None:
            logger.warning("twilio call %s: ignored media with a bad base64 payload", self.call_id)
            return
        started = time.perf_counter()
        await self.bridge.session.send_audio_base64(payload)
        metrics.frame("in", started)
        self.bridge.listen.caller_base64(payload)

    async def on_dtmf(self, message: dict[str, Any]) -> None:
        dtmf = message.get("dtmf")
        digit = dtmf.get("digit") if isinstance(dtmf, dict) else None
        if self.bridge is not None and isinstance(digit, str) and len(digit) == 1 and digit in "0123456789*#ABCD":
            self.spawn(self.bridge.session.send_dtmf(digit))
        else:
            logger.warning("twilio call %s: ignored dtmf %r", self.call_id, str(digit)[:5])

    async def on_mark(self, message: dict[str, Any]) -> None:
        mark = message.get("mark")
        name = mark.get("name") if isinstance(mark, dict) else None
        if self.bridge is not None and isinstance(name, str) and name:
            self.bridge.session.playback.mark_played(name)
        elif not isinstance(name, str):
            logger.warning("twilio call %s: ignored a mark without a string name", self.call_id)

    async def on_stop(self, message: dict[str, Any]) -> None:
        logger.info("twilio call %s: stream stopped", self.call_id)
        if self.bridge is not None:
            self.spawn(self.bridge.session.close("caller_hung_up"))

    # --- Transport -----------------------------------------------------------------------------------

    async def play_audio(self, item_id: str, audio: bytes) -> None:
        await self.play_audio_base64(item_id, base64.b64encode(audio).decode("ascii"), len(audio))

    async def play_audio_base64(self, item_id: str, payload: str, size: int) -> None:
        """The agent's mu-law audio as the upstream sent it (base64), then a mark to know when
        the caller heard it. The frames are written as text: no dict and no re-encode per chunk."""
        if self._closing or not self.stream_sid:
            return
        await self.send_text(f'{{"event":"media","streamSid":{self._sid_json},"media":{{"payload":'
                             f'{encode_basestring(payload)}}}}}')
        self._marks_sent += 1
        name = f"{item_id}:{self._marks_sent}"
        assert self.bridge is not None
        self.bridge.session.playback.mark_sent(name, item_id)
        await self.send_text(f'{{"event":"mark","streamSid":{self._sid_json},"mark":{{"name":'
                             f'{encode_basestring(name)}}}}}')

    async def clear_playback(self, item_id: str) -> None:
        if not self._closing and self.stream_sid:
            await self.send(text_data=json.dumps(clear_message(self.stream_sid)))


#: Twilio's events other than `media`, and their handlers.
TWILIO_HANDLERS = {"connected": "on_connected", "start": "on_start", "dtmf": "on_dtmf", "mark": "on_mark",
                   "stop": "on_stop"}


def whole_number(value: Any) -> int | None:
    """An int from a JSON number or a string of digits (Twilio sends both); None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.isdigit() and len(value) <= 9:
        return int(value)
    return None


def end_ringing_call(call_id: int, reason: str) -> None:
    """End a call that is still ringing: its media stream was refused or never started."""
    if Call.objects.filter(pk=call_id, status=Call.Status.RINGING).exists():
        actions.do_end_call(call_id, reason)
