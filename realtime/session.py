"""``CallSession``: one call, from greeting to hang-up, over a Realtime connection.

The session owns the call's state machine: which agent speaks (handoffs), whether a response is
active (response sequencing), what the caller heard (barge-in), which tools are running, the
transcript, usage and latency, the rolling context and the Realtime session's lifetime
(recreation). It reads a ``ScenarioSpec``, takes the caller's input through its methods and
reports everything through ``emit`` as ``realtime.events`` dataclasses.

States: ``idle`` -> ``connecting`` -> ``active`` <-> ``recreating`` -> ``ended``.

Sideband mode (``EngineConfig.sideband_call_id``, OpenAI SIP): the session joins a call the
provider carries. Everything above is the same except audio: none is sent, the audio formats stay
the provider's, barge-in truncation is the provider's, the session is not recreated on a timer
(the provider owns the call's lifetime) and a clean close of the sideband means the call is over.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import copy
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from realtime import events as ev
from realtime import takeover
from realtime.audio import bytes_per_second as audio_bytes_per_second
from realtime.config import DEFAULT_REALTIME_MODEL, DEFAULT_SUPERVISOR_MODEL, EngineConfig
from realtime.connection import ConnectionLost, RealtimeConnection, ServerEvent
from realtime.context import (
    SUMMARY_PREFIX,
    Summarizer,
    TranscriptItem,
    extractive_summary,
    text_item,
)
from realtime.guardrails import (
    ChainClassifier,
    Classifier,
    ModerationClassifier,
    SpecClassifier,
    StreamingCheck,
    Verdict,
)
from realtime.playback import PlaybackTracker
from realtime.spec import AgentSpec, ScenarioSpec, ToolSpec
from realtime.supervisor import Supervisor
from realtime.tools import BuiltinHandler, ToolOutcome, ToolRunner, parse_arguments
from realtime.usage import UsageMeter

log = logging.getLogger(__name__)

Emit = Callable[[ev.EngineEvent], Awaitable[None]]
State = Literal["idle", "connecting", "active", "recreating", "ended"]

HANDOFF_NOTE = (
    "\n\n(You are taking over a call already in progress: do not greet the caller again; "
    "continue from where the conversation is.)"
)
FORCED_TOOL_CHOICES = ("required",)
WHISPER_PREFIX = "Instruction from {by}, your supervisor (the caller cannot hear this; do not read it out): "
SAY_INSTRUCTIONS = (
    "Your supervisor is speaking to the caller through you. Say exactly the following words to the "
    "caller, word for word, and nothing else: "
)
_NOT_FORCED = ("auto", "none", "")


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


def _ms(since: float) -> float:
    return round((time.monotonic() - since) * 1000.0, 3)


@dataclass
class _Turn:
    """Latency bookkeeping for the current caller turn."""

    number: int
    stopped_at: float
    silence_ms: float
    first_audio: bool = False
    first_transcript: bool = False


class CallSession:
    def __init__(
        self,
        spec: ScenarioSpec,
        config: EngineConfig,
        tools: ToolRunner | None = None,
        emit: Emit | None = None,
        summarizer: Summarizer | None = None,
        classifier: Classifier | None = None,
        *,
        call_id: str | None = None,
    ) -> None:
        self.spec = spec
        self.config = config
        self.tools = tools or ToolRunner(max_response_bytes=config.webhook_max_response_bytes)
        self._emit_cb = emit
        self.summarizer: Summarizer = summarizer or extractive_summary
        self.call_id = call_id or _new_id("call")
        self.model = config.model or spec.root.model or DEFAULT_REALTIME_MODEL
        self.state: State = "idle"
        self.current_agent: str = spec.root_agent
        self.handoff_depth = 0
        self.transcript: list[TranscriptItem] = []
        self._items: dict[str, TranscriptItem] = {}
        self.playback = PlaybackTracker(config.audio_format)
        self.usage = UsageMeter(config.prices)
        self.summary = ""
        self._summary_item_id: str | None = None
        self._conn: RealtimeConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._deadline: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ready = asyncio.Event()
        self._closed = asyncio.Event()
        self._recreate_lock = asyncio.Lock()
        self._session_started_at = 0.0
        self._expired = False
        # Response sequencing.
        self._response_active = False
        self._active_response_id: str | None = None
        self._pending_response: dict[str, Any] | None = None
        self._response_event_ids: set[str] = set()
        # session.update events awaiting the server's session.updated (answered in order):
        # (event_id, monotonic time sent); and the handoff (to_agent, depth) of those that are one's.
        self._pending_updates: collections.deque[tuple[str, float]] = collections.deque()
        self._handoff_updates: dict[str, tuple[str, int]] = {}
        self._response_agent: dict[str, str] = {}
        self._response_had_audio = False
        self._forced_turns = 0
        self._end_after_next_response: str | None = None
        self._goodbye_response_id: str | None = None
        # Conversation on the Realtime server (for rolling context) and calls it knows.
        self._server_items: list[str] = []
        self._internal_items: set[str] = set()
        self._known_calls: set[str] = set()
        self._handled_calls: set[str] = set()
        self._approvals: dict[str, asyncio.Future[tuple[bool, str | None]]] = {}
        self._whispers: list[str] = []  # supervisor instructions, restored into a recreated session
        # people: a person who took the call over (realtime.takeover); None while the agent has it.
        self.human: takeover.Takeover | None = None
        # Voice: locked after the first audio of the call.
        self._voice: str = ""
        self._voice_locked = False
        self._session: dict[str, Any] = {}
        # Recreation.
        self._recreating = False
        self._audio_backlog: list[bytes] = []
        self._backlog_bytes = 0
        # Caller audio the open session holds but has not committed yet (end ms in that session's
        # input stream, bytes, the frame as sent): carried into a recreated session so that an
        # utterance cut by an expiry or a drop reaches the new session whole.
        self._uncommitted: collections.deque[tuple[float, int, bytes | str]] = collections.deque()
        self._uncommitted_bytes = 0
        self._sent_ms = 0.0
        self._speech_end_ms: float | None = None
        # Committed caller audio whose transcript has not come yet, by item: carried too when the
        # session goes before it comes (the words would otherwise be in no transcript).
        self._untranscribed: dict[str, list[bytes | str]] = {}
        self._bytes_per_ms = audio_bytes_per_second(config.audio_format) / 1000.0
        # Turns and latency.
        self._user_turns = 0
        self._turn: _Turn | None = None
        self.idle_timeouts = 0
        """How many times the caller stayed silent past the agent's idle_timeout_ms."""
        self._idle_items: set[str] = set()
        self._summarizing = False
        self._restored_count = 0
        self._http_client: Any = None
        self._base_url, self._api_key = config.base_url, config.api_key
        self.provider = "primary"
        # Guardrails.
        if classifier is None:
            spec_classifier = SpecClassifier(spec.guardrails)
            classifier = spec_classifier
            if config.moderation or spec.guardrails.moderation:  # the deployment's or the scenario's choice
                moderation = ModerationClassifier(self._client_for_http, config.moderation_model)
                classifier = ChainClassifier(spec_classifier, moderation)
        self.classifier: Classifier = classifier
        self._guard = StreamingCheck(every=config.guardrail_check_chars)

    # ---------------------------------------------------------------- public API

    @property
    def agent(self) -> AgentSpec:
        return self.spec.agent(self.current_agent)

    @property
    def ended(self) -> bool:
        return self.state == "ended"

    @property
    def sideband(self) -> bool:
        return bool(self.config.sideband_call_id)

    def accept_session(self) -> dict[str, Any]:
        """The root agent's session as a SIP call is accepted with (the model included): the same
        configuration the engine sends on connect, so the call is right before the sideband joins."""
        session = self._session_config(self.agent, continuing=False)
        return {**session, "model": self.model}

    async def start(self) -> None:
        """Connect, configure the root agent and let it greet the caller."""
        if self.state != "idle":
            return
        self.state = "connecting"
        self.usage.started_at = time.monotonic()
        await self._emit(ev.AgentChanged(agent=self.current_agent, previous=None))
        if not await self._connect_with_retries():
            if not self.ended:  # a hang-up while connecting ended the call already
                await self._give_up("could not connect to the Realtime endpoint")
            return
        if self.ended:
            return
        await self._flush_backlog()  # still "connecting": new frames queue behind these
        self.state = "active"
        self._ready.set()
        if self.config.greet_on_start:
            await self._request_response()

    async def send_audio(self, frame: bytes) -> None:
        """Caller audio in the call's audio format; buffered while the session is recreated."""
        if self.state == "ended" or not frame or self.sideband:
            return
        if self._recreating or self._conn is None or self.state == "connecting":
            self._buffer_audio(frame)
            return
        await self._send({"type": "input_audio_buffer.append", "audio": base64.b64encode(frame).decode("ascii")})

    async def send_audio_base64(self, payload: str) -> None:
        """Caller audio already base64-encoded in the call's format (a Twilio media payload,
        checked by the transport to hold only base64 characters): passed upstream as it is, with
        no decode and re-encode; decoded only when it has to wait in the buffer."""
        if self.state == "ended" or not payload or self.sideband:
            return
        conn = self._conn
        if (conn is None or self._recreating or self.state == "connecting"
                or (self.config.emit_protocol_events and self.config.protocol_audio_events)):
            await self.send_audio(base64.b64decode(payload))
            return
        try:
            await conn.send_json('{"type":"input_audio_buffer.append","audio":"' + payload + '"}')
        except ConnectionLost:  # the reader notices the close and recreates; audio is kept for it
            self._buffer_audio(base64.b64decode(payload))
            return
        self._keep_uncommitted(payload, len(payload) // 4 * 3 - payload.count("=", -2))

    async def send_text(self, text: str) -> None:
        """A typed message from the caller (chat channel, tests): a user turn."""
        if self.state == "ended" or not text.strip():
            return
        await self._ready.wait()
        item_id = _new_id("item")
        item = self._add_transcript(item_id, "user", text, done=True)
        await self._emit(ev.TranscriptDone(role="user", item_id=item_id, text=item.text, agent=self.current_agent))
        await self._send({"type": "conversation.item.create", "item": text_item(item_id, "user", text)})
        await self._request_response()
        self._count_user_turn()

    async def interrupt(self, reason: str = "caller_interrupted") -> None:
        """The caller cut in without speaking (typed, pressed push-to-talk): stop the agent at
        what was heard, as a spoken barge-in would."""
        if self.state == "ended":
            return
        item_id = self.playback.current_item_id
        if item_id is not None and (self.playback.is_playing(item_id) or self._response_active):
            await self._cut_assistant_audio(item_id, reason=reason)
        if self._response_active:
            await self._send({"type": "response.cancel"})

    async def push_to_talk(self, pressed: bool) -> None:
        """Push-to-talk: pressing stops the agent and starts a fresh input buffer; releasing
        commits what was said as the caller's turn and asks for an answer."""
        if self.state == "ended":
            return
        await self._ready.wait()
        if pressed:
            await self.interrupt(reason="push_to_talk")
            await self._send({"type": "input_audio_buffer.clear"})
        else:
            await self._send({"type": "input_audio_buffer.commit"})
            await self._request_response()

    async def report_playback(self, item_id: str, played_ms: float) -> None:
        """The transport played ``played_ms`` of ``item_id`` to the caller."""
        self.playback.report_played_ms(item_id, played_ms)

    async def resolve_approval(self, call_id: str, approved: bool, by: str = "") -> bool:
        """Approve or deny a waiting tool call; False if nothing waits for ``call_id``."""
        future = self._approvals.get(call_id)
        if future is None or future.done():
            return False
        future.set_result((approved, by or None))
        return True

    async def whisper(self, text: str, by: str = "") -> str | None:
        """A supervisor's instruction to the agent: a system item the agent sees from its next
        response on and the caller never hears (no response is asked for). Kept across session
        recreation. Returns the item's id, or None when the call has ended."""
        if self.state == "ended" or not text.strip():
            return None
        await self._ready.wait()
        if self.ended:  # the call may have ended while the session was opening
            return None
        instruction = WHISPER_PREFIX.format(by=by or "the supervisor") + text
        self._whispers.append(instruction)
        item_id = _new_id("wsp")
        self._internal_items.add(item_id)
        await self._send({"type": "conversation.item.create", "item": text_item(item_id, "system", instruction)})
        return item_id

    async def say(self, text: str, by: str = "") -> None:
        """A supervisor barges in: the agent is stopped at what the caller heard and its next
        response is only the supervisor's words, in the agent's voice (a response whose
        instructions ask for exactly that text, with no tools). A real model follows such an
        instruction closely, but the words are voiced by the model, not played back verbatim."""
        if self.state == "ended" or not text.strip():
            return
        await self._ready.wait()
        await self.interrupt(reason="supervisor")
        await self._request_response({"instructions": SAY_INSTRUCTIONS + json.dumps(text, ensure_ascii=False),
                                      "tool_choice": "none"})

    async def send_dtmf(self, digit: str) -> None:
        """A keypad digit from the transport: an event, and a user turn the agent can act on."""
        if self.state == "ended":
            return
        await self._emit(ev.DTMF(digit=digit))
        await self._ready.wait()
        item_id = _new_id("item")
        text = f"[The caller pressed {digit} on the keypad]"
        self._add_transcript(item_id, "user", text, done=True)
        await self._emit(ev.TranscriptDone(role="user", item_id=item_id, text=text, agent=self.current_agent))
        await self._send({"type": "conversation.item.create", "item": text_item(item_id, "user", text)})
        await self._request_response()

    async def apply_summary(self, text: str, up_to_item_id: str | None = None) -> int:
        """Replace the Realtime conversation's older items by one summary item.

        Deletes every server item up to ``up_to_item_id`` (default: all but the last
        ``keep_recent_turns`` caller turns), then creates the summary. Returns items removed.
        """
        if self.state == "ended" or self._conn is None or self._recreating:
            return 0
        if up_to_item_id is not None and up_to_item_id in self._server_items:
            cut = self._server_items.index(up_to_item_id) + 1
        else:
            cut = self._summary_cut()
        old = [i for i in self._server_items[:cut]]
        if self._summary_item_id and self._summary_item_id not in old and self._summary_item_id in self._server_items:
            old.append(self._summary_item_id)
        for item_id in old:
            await self._send({"type": "conversation.item.delete", "item_id": item_id})
            self._forget_server_item(item_id)
        self.summary = text
        summary_id = _new_id("sum")
        self._internal_items.add(summary_id)
        self._summary_item_id = summary_id
        await self._send({
            "type": "conversation.item.create",
            "previous_item_id": "root",
            "item": text_item(summary_id, "system", SUMMARY_PREFIX + text),
        })
        await self._emit(ev.ContextSummarized(summary=text, removed_items=len(old), turn=self._user_turns))
        return len(old)

    async def recreate(self, reason: str) -> bool:
        """Open a fresh Realtime session and restore the agent and context. False if given up."""
        if self.state == "ended":
            return False
        async with self._recreate_lock:
            if self.ended:  # the call may have ended while waiting for the lock
                return False
            return await self._recreate(reason)

    async def close(self, reason: str = "hangup") -> None:
        """End the call: stop tools, close the connection, emit CallEnded."""
        if self.state == "ended":
            return
        self.state = "ended"
        self._ready.set()
        current = asyncio.current_task()
        for future in self._approvals.values():
            if not future.done():
                future.set_result((False, None))
        for task in [self._reader, self._deadline, *self._tasks]:
            if task is not None and task is not current and not task.done():
                task.cancel()
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.aclose_client()
        if self._http_client is not None:
            try:
                await self._http_client.close()
            except Exception as exc:  # noqa: BLE001 — closing at hang-up is best effort
                log.debug("closing the HTTP client failed: %s", exc)
        await self._emit(ev.CallEnded(reason=reason))
        self._closed.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    # ---------------------------------------------------------------- connection

    def _client_for_http(self) -> Any:
        """The HTTP client at the Realtime base URL (Responses API, moderation), made once."""
        if self._http_client is None:
            from realtime.connection import async_client

            self._http_client = async_client(self._base_url, self._api_key, max_retries=0)
        return self._http_client

    async def _open(self) -> RealtimeConnection:
        # One client per call and provider (closed at the end of the call or on failover): a
        # recreation then costs the WebSocket handshake, not a new client and its TLS context.
        conn = RealtimeConnection(
            self._base_url,
            self._api_key,
            self.model,
            connect_timeout_s=self.config.connect_timeout_s,
            query=self.config.connect_query,
            call_id=self.config.sideband_call_id,
            client=self._client_for_http(),
        )
        try:
            await conn.open()
        except BaseException:
            await conn.aclose_client()
            raise
        return conn

    async def _connect_with_retries(self, restoring: bool = False) -> int:
        """Open and configure a connection; the number of attempts it took, 0 if it failed."""
        for attempt in range(1, max(1, self.config.retry_budget) + 1):
            if self.state == "ended":
                return 0
            try:
                conn = await self._open()
                if self.ended:  # the call ended while the connection was opening
                    await conn.aclose_client()
                    return 0
            except Exception as exc:  # noqa: BLE001 — best effort, reported
                await self._emit(ev.Error(code="connect_failed", message=f"{type(exc).__name__}: {exc}", source="engine"))
                if await self._fail_over(f"{type(exc).__name__}: {exc}"):
                    continue
                delay = min(self.config.retry_backoff_s * 2 ** (attempt - 1), self.config.retry_backoff_max_s)
                await asyncio.sleep(delay)
                continue
            self._conn = conn
            self._pending_updates.clear()  # a new session: earlier updates will never be answered
            self._handoff_updates.clear()
            self._expired = False
            self._session_started_at = time.monotonic()
            self._reader = asyncio.create_task(self._read_loop(conn), name=f"realtime-reader-{self.call_id}")
            try:
                await self._configure(restoring)
            except ConnectionLost:
                continue
            self._arm_deadline()
            return attempt
        return 0

    async def _fail_over(self, reason: str) -> bool:
        """Switch to the scenario's failover provider (once per call); False when there is none."""
        target = self.config.failover_base_url
        if self.sideband:  # the call itself lives at the provider: there is nowhere to fail over to
            return False
        if self.provider != "primary" or self.spec.failover_provider != "offline" or not target:
            return False
        if target.rstrip("/") == self._base_url.rstrip("/"):  # already on it (no key: the offline engine)
            return False
        self._base_url, self._api_key = target, self.config.failover_api_key
        self.provider = self.spec.failover_provider
        # The supervisor's Responses calls and moderation follow (the client is made again on use).
        old, self._http_client = self._http_client, None
        if old is not None:
            try:
                await old.close()
            except Exception as exc:  # noqa: BLE001 — closing is best effort
                log.debug("closing the HTTP client failed: %s", exc)
        await self._emit(ev.ProviderFailover(provider=self.provider, reason=reason))
        return True

    async def _configure(self, restoring: bool) -> None:
        session = self._session_config(self.agent, continuing=restoring)
        await self._send({"type": "session.update", "session": session})
        await takeover.reapply(self)  # people: a person has the call
        if restoring and not self.sideband:  # a sideband rejoins the same conversation
            await self._restore_context()

    def _arm_deadline(self) -> None:
        if self._deadline is not None and not self._deadline.done() and self._deadline is not asyncio.current_task():
            self._deadline.cancel()
        limit = float(self.spec.limits.max_session_seconds)
        if limit <= 0 or self.sideband:
            return
        margin = min(self.config.recreate_margin_s, limit * 0.2)
        self._deadline = asyncio.create_task(self._deadline_watch(limit - margin))

    async def _deadline_watch(self, after_s: float) -> None:
        await asyncio.sleep(after_s)
        # Prefer a pause between responses, but never wait past the hard limit's margin.
        waited = 0.0
        while self._response_active and waited < max(0.0, self.config.recreate_margin_s / 2):
            await asyncio.sleep(0.05)
            waited += 0.05
        self._spawn(self.recreate("max_session_length"))

    async def _read_loop(self, conn: RealtimeConnection) -> None:
        try:
            while True:
                event = await conn.recv()
                try:
                    await self._on_server_event(event)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.exception("engine failed on %s", event.type)
                    await self._emit(ev.Error(code="engine_error", message=f"{type(exc).__name__}: {exc}", source="engine"))
        except ConnectionLost as exc:
            if self.state == "ended" or conn is not self._conn:
                return
            if self._recreating:  # the new session went while being set up: once this one is done, again
                self._spawn(self.recreate("connection_lost"))
                return
            if self.sideband and exc.code == 1000:
                # The provider closes the sideband cleanly when the SIP call is over.
                self._spawn(self.close("caller_hung_up"))
                return
            if exc.code == 1013:  # "try again later": the provider is at capacity (the offline engine)
                await self._emit(ev.Error(code="engine_at_capacity", message=str(exc), source="connection", fatal=True))
                if await self._fail_over(str(exc)):
                    self._spawn(self.recreate("provider_at_capacity"))
                else:
                    self._spawn(self.close("engine_at_capacity"))
                return
            reason = "session_expired" if self._expired or exc.code == 1001 else "connection_lost"
            await self._emit(ev.Error(code=reason, message=str(exc), source="connection"))
            self._spawn(self.recreate(reason))

    async def _send(self, event: dict[str, Any]) -> None:
        conn = self._conn
        if conn is None or self.state == "ended":
            if event.get("type") == "input_audio_buffer.append" and self.state != "ended":
                self._buffer_audio(base64.b64decode(event["audio"]))
            return
        if event.get("type") == "session.update":
            self._pending_updates.append((event.setdefault("event_id", _new_id("evt")), time.monotonic()))
        if self.config.emit_protocol_events and (
            self.config.protocol_audio_events or event.get("type") != "input_audio_buffer.append"
        ):
            await self._emit(ev.ProtocolEvent(direction="client", payload=ev.elide_audio(event)))
        try:
            await conn.send(event)
        except ConnectionLost:
            # The reader notices the close and recreates; audio is kept for the new session.
            if event.get("type") == "input_audio_buffer.append":
                self._buffer_audio(base64.b64decode(event["audio"]))
            return
        if event.get("type") == "input_audio_buffer.append" and conn is self._conn:
            audio = event["audio"]
            self._keep_uncommitted(audio, len(audio) // 4 * 3 - audio.count("=", -2))

    async def _flush_backlog(self) -> int:
        """Send the caller audio buffered while no session was open (the first connect or a
        recreation), oldest first, once; returns how many bytes that was."""
        buffered = 0
        # Frames may arrive while these are sent; a connection lost meanwhile keeps them buffered
        # (and ends this loop: a failed send puts its frame back, the next session takes them).
        while self._audio_backlog and self.state != "ended" and self._conn is not None and not self._conn.closed:
            backlog, self._audio_backlog = self._audio_backlog, []
            buffered, self._backlog_bytes = buffered + self._backlog_bytes, 0
            for frame in backlog:
                await self._send({"type": "input_audio_buffer.append",
                                  "audio": base64.b64encode(frame).decode("ascii")})
        return buffered

    def _keep_uncommitted(self, frame: bytes | str, nbytes: int) -> None:
        """A frame the open session took: kept until the session commits it (bounded)."""
        self._sent_ms += nbytes / self._bytes_per_ms
        self._uncommitted.append((self._sent_ms, nbytes, frame))
        self._uncommitted_bytes += nbytes
        while self._uncommitted_bytes > self.config.max_buffered_audio_bytes and self._uncommitted:
            self._uncommitted_bytes -= self._uncommitted.popleft()[1]

    def _drop_committed(self, up_to_ms: float) -> list[bytes | str]:
        taken: list[bytes | str] = []
        while self._uncommitted and self._uncommitted[0][0] <= up_to_ms + 0.5:
            _, nbytes, frame = self._uncommitted.popleft()
            self._uncommitted_bytes -= nbytes
            taken.append(frame)
        return taken

    def _carry_uncommitted(self) -> int:
        """The session is going away: what it held uncommitted goes first into the backlog that
        the next session receives (the caller's utterance in progress); returns its bytes."""
        frames = [frame for pending in self._untranscribed.values() for frame in pending]
        frames += [frame for _, _, frame in self._uncommitted]
        carried = [base64.b64decode(frame) if isinstance(frame, str) else frame for frame in frames]
        self._uncommitted.clear()
        self._untranscribed.clear()
        self._uncommitted_bytes = 0
        self._sent_ms = 0.0
        self._speech_end_ms = None
        if carried:
            self._audio_backlog[:0] = carried
            self._backlog_bytes += sum(len(frame) for frame in carried)
            while self._backlog_bytes > self.config.max_buffered_audio_bytes and self._audio_backlog:
                self._backlog_bytes -= len(self._audio_backlog.pop(0))
        return sum(len(frame) for frame in carried)

    def _buffer_audio(self, frame: bytes) -> None:
        self._audio_backlog.append(frame)
        self._backlog_bytes += len(frame)
        while self._backlog_bytes > self.config.max_buffered_audio_bytes and self._audio_backlog:
            self._backlog_bytes -= len(self._audio_backlog.pop(0))

    async def _emit(self, event: ev.EngineEvent) -> None:
        if self.human is not None:  # people: what was said while a person has the call
            self.human.observe(event)
        if self._emit_cb is None:
            return
        try:
            await self._emit_cb(event)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("emit failed for %s", event.type)

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ---------------------------------------------------------------- session config

    def _audio_format(self) -> dict[str, Any]:
        fmt = self.config.audio_format
        return {"type": "audio/pcm", "rate": 24000} if fmt == "audio/pcm" else {"type": fmt}

    def _session_config(self, agent: AgentSpec, *, continuing: bool) -> dict[str, Any]:
        """The GA ``session`` for ``agent``: the compiled one, with the transport's audio format,
        the call's locked voice and, for an agent taking over, the no-greeting note."""
        session = copy.deepcopy(agent.session) if agent.session else {}
        session["type"] = "realtime"
        session.pop("model", None)
        session.setdefault("instructions", agent.instructions)
        if "tools" not in session:
            session["tools"] = [t.function_tool() for t in agent.tools]
        if "tool_choice" not in session and agent.tool_choice:
            choice = agent.tool_choice
            session["tool_choice"] = choice if choice in ("auto", "none", "required") else {"type": "function", "name": choice}
        if continuing:
            session["instructions"] = (session.get("instructions") or "") + HANDOFF_NOTE
        audio = session.setdefault("audio", {})
        audio_in = audio.setdefault("input", {})
        audio_out = audio.setdefault("output", {})
        if self.sideband:  # the SIP leg negotiated its codec with the provider
            audio_in.pop("format", None)
            audio_out.pop("format", None)
        else:
            audio_in["format"] = self._audio_format()
            audio_out["format"] = self._audio_format()
        wanted = audio_out.get("voice") or agent.voice
        if self._voice_locked and self._voice:
            audio_out["voice"] = self._voice
        elif wanted:
            audio_out["voice"] = wanted
            self._voice = wanted
        self._session = session
        return session

    def _turn_detection(self) -> dict[str, Any]:
        td = self._session.get("audio", {}).get("input", {}).get("turn_detection")
        return td if isinstance(td, dict) else {}

    # ---------------------------------------------------------------- responses

    def _tool_choice_is_forced(self, agent: AgentSpec) -> bool:
        choice = self._session.get("tool_choice", agent.tool_choice)
        if isinstance(choice, dict):
            return True
        return choice not in _NOT_FORCED

    async def _request_response(self, params: dict[str, Any] | None = None) -> None:
        """Ask for a response now, or queue it if one is active (never two at once)."""
        if self.state == "ended" or takeover.holds_responses(self):  # people: a person has the call
            return
        if self._response_active or self._recreating or self._conn is None:
            merged = dict(self._pending_response or {})
            merged.update(params or {})
            self._pending_response = merged
            return
        self._pending_response = None
        await self._create_response(params or {})

    async def _create_response(self, params: dict[str, Any]) -> None:
        response = dict(params)
        agent = self.agent
        limit = self.config.required_tool_turns_limit
        if limit > 0 and self._tool_choice_is_forced(agent) and self._forced_turns >= limit:
            response["tool_choice"] = "auto"
            await self._emit(ev.ToolChoiceRelaxed(agent=agent.slug, forced_turns=self._forced_turns))
            self._forced_turns = 0
        event_id = _new_id("evt")
        self._response_event_ids.add(event_id)
        self._response_active = True
        event: dict[str, Any] = {"type": "response.create", "event_id": event_id}
        if response:
            event["response"] = response
        await self._send(event)

    async def _flush_pending_response(self) -> None:
        if self._pending_response is not None and not self._response_active and not self._recreating:
            params, self._pending_response = self._pending_response, None
            await self._create_response(params)

    # ---------------------------------------------------------------- server events

    async def _on_server_event(self, event: ServerEvent) -> None:
        p = event.payload
        t = event.type
        if self.config.emit_protocol_events and (
            self.config.protocol_audio_events or t != "response.output_audio.delta"
        ):
            await self._emit(ev.ProtocolEvent(direction="server", payload=ev.elide_audio(p)))
        handler = self._handlers.get(t)
        if handler is not None:
            await handler(self, p)

    async def _on_error(self, p: dict[str, Any]) -> None:
        err = p.get("error") or {}
        code = str(err.get("code") or err.get("type") or "error")
        message = str(err.get("message") or "")
        event_id = err.get("event_id")
        await self._emit(ev.Error(code=code, message=message, source="server"))
        for pending in self._pending_updates:
            if event_id and pending[0] == event_id:
                self._pending_updates.remove(pending)
                await self._update_answered(pending, error=f"{code}: {message}")
                break
        if code == "session_expired":
            self._expired = True
        elif event_id in self._response_event_ids:
            self._response_event_ids.discard(event_id)
            if code == "conversation_already_has_active_response":
                # A server-created response (VAD) won the race: ours runs after it.
                self._pending_response = self._pending_response or {}
            elif not self._active_response_id:
                self._response_active = False
                await self._flush_pending_response()
        # Anything else (response_cancel_not_active, a bad truncate...) is reported, not fatal.

    async def _on_session_updated(self, p: dict[str, Any]) -> None:
        if self._pending_updates:
            await self._update_answered(self._pending_updates.popleft())

    async def _update_answered(self, pending: tuple[str, float], error: str = "") -> None:
        """The server applied (or refused) a session.update; for a handoff's, that is when the new
        agent's instructions and tools are in force."""
        event_id, sent_at = pending
        handoff = self._handoff_updates.pop(event_id, None)
        if handoff is None:
            return
        to_agent, depth = handoff
        await self._emit(ev.HandoffApplied(to_agent=to_agent, depth=depth, ms=_ms(sent_at), applied=not error,
                                           error=error))

    async def _on_item_added(self, p: dict[str, Any]) -> None:
        item = p.get("item") or {}
        item_id = item.get("id")
        if not item_id:
            return
        if item_id not in self._server_items:
            self._server_items.append(item_id)
        kind = item.get("type")
        if kind == "function_call":
            self._known_calls.add(item.get("call_id", ""))
        elif kind == "message" and not (
            item_id in self._internal_items or item_id in self._items or item_id in self._idle_items
        ):
            role = item.get("role")
            if role in ("user", "assistant"):
                text = _item_text(item)
                self._add_transcript(item_id, role, text, done=False)

    async def _on_item_deleted(self, p: dict[str, Any]) -> None:
        self._forget_server_item(p.get("item_id", ""))

    async def _on_input_transcript_delta(self, p: dict[str, Any]) -> None:
        if p.get("item_id") in self._idle_items and not (p.get("delta") or "").strip():
            return
        item = self._ensure_item(p.get("item_id", ""), "user")
        delta = p.get("delta") or ""
        item.text += delta
        await self._emit(ev.TranscriptDelta(role="user", item_id=item.item_id, text=delta, agent=self.current_agent))

    async def _on_input_transcript_done(self, p: dict[str, Any]) -> None:
        if p.get("item_id") in self._idle_items and not (p.get("transcript") or "").strip():
            return  # the idle timeout's silence: not a caller turn
        self._untranscribed.pop(str(p.get("item_id") or ""), None)
        item = self._ensure_item(p.get("item_id", ""), "user")
        item.text = p.get("transcript") or item.text
        item.done = True
        await self._emit(ev.TranscriptDone(role="user", item_id=item.item_id, text=item.text, agent=self.current_agent))
        if self._turn is not None:
            await self._emit(ev.Latency(kind="user_transcript", ms=self._since_speech_end(self._turn), turn=self._turn.number))
        self._count_user_turn()

    async def _on_speech_started(self, p: dict[str, Any]) -> None:
        item_id = self.playback.current_item_id
        if item_id is None or self.sideband or self.human is not None:  # people: no agent to cut off  # a SIP call's barge-in is the provider's to truncate
            return
        if not (self.playback.is_playing(item_id) or (self._response_active and self._response_had_audio)):
            return
        await self._cut_assistant_audio(item_id, reason="barge_in")
        if self._response_active and not self._turn_detection().get("interrupt_response", False):
            await self._send({"type": "response.cancel"})

    async def _cut_assistant_audio(self, item_id: str, reason: str) -> None:
        """Truncate ``item_id`` at what the caller heard and tell the transport to clear."""
        heard = self.playback.audio_end_ms(item_id)
        if self.playback.generated_ms(item_id) > 0 and item_id in self._server_items:
            await self._send({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": heard})
        await self._emit(ev.ClearPlayback(item_id=item_id, audio_end_ms=heard, reason=reason))
        item = self._items.get(item_id)
        if item is not None:
            item.interrupted = True
            item.heard_ms = heard
        self.playback.current_item_id = None

    async def _on_speech_stopped(self, p: dict[str, Any]) -> None:
        if isinstance(p.get("audio_end_ms"), (int, float)):
            self._speech_end_ms = float(p["audio_end_ms"])
        td = self._turn_detection()
        silence = float(td.get("silence_duration_ms") or 0) if td.get("type", "server_vad") == "server_vad" else 0.0
        self._turn = _Turn(number=self._user_turns + 1, stopped_at=time.monotonic(), silence_ms=silence)

    async def _on_committed(self, p: dict[str, Any]) -> None:
        """The session made an item of its input: that audio no longer needs carrying (up to the
        end of the speech the VAD heard, else all sent so far; a silent tail may stay)."""
        taken = self._drop_committed(self._speech_end_ms if self._speech_end_ms is not None else self._sent_ms)
        self._speech_end_ms = None
        item_id = str(p.get("item_id") or "")
        if item_id and taken and self._transcribing():
            self._untranscribed[item_id] = taken

    async def _on_transcript_failed(self, p: dict[str, Any]) -> None:
        self._untranscribed.pop(str(p.get("item_id") or ""), None)

    def _transcribing(self) -> bool:
        audio_input = (self._session.get("audio") or {}).get("input") or {}
        return bool(audio_input.get("transcription"))

    async def _on_cleared(self, p: dict[str, Any]) -> None:
        self._drop_committed(self._sent_ms)
        self._speech_end_ms = None

    async def _on_dtmf(self, p: dict[str, Any]) -> None:
        await self._emit(ev.DTMF(digit=str(p.get("event", ""))))

    async def _on_idle_timeout(self, p: dict[str, Any]) -> None:
        """The caller stayed silent: the server commits the silence as a user item (no transcript
        line for it unless words were heard) and answers it when create_response is on."""
        item_id = str(p.get("item_id") or "")
        self.idle_timeouts += 1
        self._idle_items.add(item_id)
        ms = max(0, int(p.get("audio_end_ms") or 0) - int(p.get("audio_start_ms") or 0))
        await self._emit(ev.CallerIdle(ms=ms, item_id=item_id, agent=self.current_agent))

    async def _on_response_created(self, p: dict[str, Any]) -> None:
        response_id = (p.get("response") or {}).get("id", "")
        self._response_active = True
        self._active_response_id = response_id
        self._response_had_audio = False
        self._response_agent[response_id] = self.current_agent
        if self._end_after_next_response and self._goodbye_response_id is None:
            self._goodbye_response_id = response_id
        await takeover.cancel_if_held(self)  # people: a person has the call

    async def _on_output_item_added(self, p: dict[str, Any]) -> None:
        await self._on_item_added(p)

    async def _on_audio_delta(self, p: dict[str, Any]) -> None:
        delta = p.get("delta") or ""
        audio = base64.b64decode(delta)
        item_id = p.get("item_id", "")
        self._voice_locked = True
        self._response_had_audio = True
        self.playback.on_audio_generated(item_id, len(audio), int(p.get("content_index") or 0))
        turn = self._turn
        if turn is not None and not turn.first_audio:
            turn.first_audio = True
            await self._emit(ev.Latency(kind="voice_to_voice", ms=self._since_speech_end(turn), turn=turn.number))
        await self._emit(ev.AudioOut(item_id=item_id, audio=audio, agent=self.current_agent,
                                     audio_base64=delta if isinstance(delta, str) else ""))

    async def _on_assistant_text_delta(self, p: dict[str, Any]) -> None:
        item = self._ensure_item(p.get("item_id", ""), "assistant")
        delta = p.get("delta") or ""
        item.text += delta
        turn = self._turn
        if turn is not None and not turn.first_transcript:
            turn.first_transcript = True
            await self._emit(ev.Latency(kind="first_transcript", ms=self._since_speech_end(turn), turn=turn.number))
        await self._emit(ev.TranscriptDelta(role="assistant", item_id=item.item_id, text=delta, agent=item.agent))
        if self._guard.due(item.item_id, item.text):
            self._spawn(self._check_guardrail(item.item_id, item.text))

    async def _on_assistant_text_done(self, p: dict[str, Any]) -> None:
        item = self._ensure_item(p.get("item_id", ""), "assistant")
        final = p.get("transcript") if "transcript" in p else p.get("text")
        if isinstance(final, str) and final:
            item.text = final
        item.done = True
        await self._emit(ev.TranscriptDone(role="assistant", item_id=item.item_id, text=item.text, agent=item.agent, interrupted=item.interrupted))
        if self._guard.final(item.item_id, item.text):
            self._spawn(self._check_guardrail(item.item_id, item.text))

    async def _on_arguments_done(self, p: dict[str, Any]) -> None:
        call_id = p.get("call_id", "")
        if not call_id or call_id in self._handled_calls:
            return
        self._handled_calls.add(call_id)
        self._known_calls.add(call_id)
        self._spawn(self._run_function_call(p.get("name", ""), call_id, p.get("arguments", ""), self.current_agent))

    async def _on_output_item_done(self, p: dict[str, Any]) -> None:
        item = p.get("item") or {}
        if item.get("type") == "function_call":
            await self._on_arguments_done(item)

    async def _on_response_done(self, p: dict[str, Any]) -> None:
        response = p.get("response") or {}
        response_id = response.get("id", "")
        agent_slug = self._response_agent.pop(response_id, self.current_agent)
        local = self.config.local or self.provider == "offline"
        tokens, cost = self.usage.add(agent_slug, self.model, response.get("usage"), local=local)
        await self._emit(ev.Usage(
            response_id=response_id,
            agent=agent_slug,
            model=self.model,
            tokens=tokens,
            cost_usd=cost,
            totals=dict(self.usage.totals),
            total_cost_usd=self.usage.cost_usd,
            cost_per_minute_usd=self.usage.cost_per_minute_usd,
            per_agent_cost_usd=dict(self.usage.per_agent_cost_usd),
            local=local,
        ))
        outputs = response.get("output") or []
        called_tool = any(o.get("type") == "function_call" for o in outputs if isinstance(o, dict))
        if self._tool_choice_is_forced(self.spec.agent(agent_slug)) and called_tool:
            self._forced_turns += 1
        elif not called_tool:
            self._forced_turns = 0
        for item in self._items.values():
            if item.role == "assistant" and not item.done and item.item_id in _output_ids(outputs):
                item.done = True
                item.interrupted = item.interrupted or response.get("status") != "completed"
                await self._emit(ev.TranscriptDone(role="assistant", item_id=item.item_id, text=item.text, agent=item.agent, interrupted=item.interrupted))
        self._response_active = False
        self._active_response_id = None
        if self._goodbye_response_id and self._goodbye_response_id == response_id:
            self._spawn(self._finish_after_goodbye())
            return
        await self._flush_pending_response()

    async def _finish_after_goodbye(self) -> None:
        await self.close(self._end_after_next_response or "end_call")

    _handlers: ClassVar[dict[str, Callable[[CallSession, dict[str, Any]], Awaitable[None]]]] = {
        "error": _on_error,
        "session.updated": _on_session_updated,
        "conversation.item.added": _on_item_added,
        "conversation.item.created": _on_item_added,
        "conversation.item.deleted": _on_item_deleted,
        "conversation.item.input_audio_transcription.delta": _on_input_transcript_delta,
        "conversation.item.input_audio_transcription.completed": _on_input_transcript_done,
        "input_audio_buffer.speech_started": _on_speech_started,
        "input_audio_buffer.speech_stopped": _on_speech_stopped,
        "input_audio_buffer.committed": _on_committed,
        "input_audio_buffer.cleared": _on_cleared,
        "conversation.item.input_audio_transcription.failed": _on_transcript_failed,
        "input_audio_buffer.dtmf_event_received": _on_dtmf,
        "input_audio_buffer.timeout_triggered": _on_idle_timeout,
        "response.created": _on_response_created,
        "response.output_item.added": _on_output_item_added,
        "response.output_audio.delta": _on_audio_delta,
        "response.output_audio_transcript.delta": _on_assistant_text_delta,
        "response.output_text.delta": _on_assistant_text_delta,
        "response.output_audio_transcript.done": _on_assistant_text_done,
        "response.output_text.done": _on_assistant_text_done,
        "response.function_call_arguments.done": _on_arguments_done,
        "response.output_item.done": _on_output_item_done,
        "response.done": _on_response_done,
    }

    # ---------------------------------------------------------------- transcript

    def _add_transcript(self, item_id: str, role: str, text: str, *, done: bool) -> TranscriptItem:
        item = TranscriptItem(item_id=item_id, role=role, text=text, agent=self.current_agent, done=done)
        self.transcript.append(item)
        self._items[item_id] = item
        return item

    def _ensure_item(self, item_id: str, role: str) -> TranscriptItem:
        item = self._items.get(item_id)
        if item is None:
            item = self._add_transcript(item_id, role, "", done=False)
        return item

    def _forget_server_item(self, item_id: str) -> None:
        if item_id in self._server_items:
            self._server_items.remove(item_id)

    def _since_speech_end(self, turn: _Turn) -> float:
        """Milliseconds since the caller stopped speaking (speech_stopped backdated by the VAD's silence)."""
        return round((time.monotonic() - turn.stopped_at) * 1000.0 + turn.silence_ms, 3)

    def _count_user_turn(self) -> None:
        self._user_turns += 1
        every = self.spec.limits.summarize_every_turns
        if every > 0 and self._user_turns % every == 0 and not self._summarizing:
            self._spawn(self._summarize())

    def _summary_cut(self) -> int:
        """Index in the server conversation before which items are condensed."""
        keep = max(1, self.config.keep_recent_turns)
        user_positions = [
            i for i, item_id in enumerate(self._server_items)
            if (item := self._items.get(item_id)) is not None and item.role == "user"
        ]
        if len(user_positions) <= keep:
            return 0
        return user_positions[-keep]

    async def _summarize(self) -> None:
        self._summarizing = True
        try:
            cut = self._summary_cut()
            if cut <= 0:
                return
            ids = self._server_items[:cut]
            turns = [self._items[i] for i in ids if i in self._items]
            if not turns:
                return
            try:
                text = await self.summarizer(turns, self.summary)
            except Exception as exc:  # noqa: BLE001 — best effort, reported
                await self._emit(ev.Error(code="summarizer_failed", message=f"{type(exc).__name__}: {exc}", source="engine"))
                return
            await self.apply_summary(text, up_to_item_id=ids[-1])
        finally:
            self._summarizing = False

    # ---------------------------------------------------------------- tools

    def _builtins(self, agent: AgentSpec, call_id: str) -> dict[str, BuiltinHandler]:
        async def escalate(args: dict[str, Any]) -> Any:
            reason = str(args.get("reason") or "requested by the agent")
            await self._emit(ev.Escalation(reason=reason, source="tool", agent=agent.slug))
            return {"status": "escalated", "note": "A human colleague has been asked to join. Tell the caller."}

        async def end_call(args: dict[str, Any]) -> Any:
            self._end_after_next_response = str(args.get("reason") or "end_call")
            return {"status": "ending", "note": "Say a short goodbye; the call ends after it."}

        async def ask_supervisor(args: dict[str, Any]) -> Any:
            return await self._ask_supervisor(args, call_id)

        return {"escalate": escalate, "end_call": end_call, "ask_supervisor": ask_supervisor}

    async def _ask_supervisor(self, args: dict[str, Any], call_id: str) -> Any:
        supervisor_spec = self.spec.supervisor
        if supervisor_spec is None:
            return {"error": "no supervisor is configured for this scenario"}
        context = str(
            args.get("relevant_context_and_last_user_message")
            or args.get("context")
            or json.dumps(args, ensure_ascii=False)
        )

        async def started(name: str, nested_call: str, arguments: dict[str, Any] | str) -> None:
            await self._emit(ev.ToolStarted(name=name, call_id=nested_call, arguments=arguments, agent=supervisor_spec.slug, source="supervisor"))

        async def finished(name: str, nested_call: str, arguments: dict[str, Any] | str, outcome: ToolOutcome) -> None:
            await self._emit(ev.ToolFinished(
                name=name, call_id=nested_call, arguments=arguments, agent=supervisor_spec.slug,
                result=outcome.result, error=outcome.error, duration_ms=outcome.duration_ms, source="supervisor",
                status=outcome.status or "failed",
            ))

        supervisor = Supervisor(
            self._client_for_http(),
            supervisor_spec,
            self.tools,
            model=supervisor_spec.model or self.config.supervisor_model or DEFAULT_SUPERVISOR_MODEL,
            timeout_s=self.config.supervisor_timeout_s,
            tool_timeout_s=self.config.tool_timeout_s,
            holding_line=self.config.supervisor_holding_line,
            max_tool_rounds=self.config.supervisor_max_tool_rounds,
            builtins={k: v for k, v in self._builtins(supervisor_spec, call_id).items() if k != "ask_supervisor"},
            on_tool_started=started,
            on_tool_finished=finished,
        )
        messages = [item.as_message() for item in self.transcript if item.text]
        answer = await supervisor.ask(messages, context)
        detail = "timeout" if answer.timed_out else (answer.error or "ok")
        await self._emit(ev.Latency(kind="supervisor", ms=answer.duration_ms, turn=self._user_turns, detail=detail))
        result: dict[str, Any] = {"next_response": answer.text}
        if answer.timed_out:
            result["note"] = "The supervisor is still working; say this holding line."
        return result

    async def _run_function_call(self, name: str, call_id: str, raw_arguments: str, agent_slug: str) -> None:
        agent = self.spec.agent(agent_slug)
        tool = agent.tool(name)
        arguments, parse_error = parse_arguments(raw_arguments)
        shown: dict[str, Any] | str = arguments if arguments is not None else raw_arguments
        await self._emit(ev.ToolStarted(name=name, call_id=call_id, arguments=shown, agent=agent_slug))
        approved_by: str | None = None
        if tool is None:
            outcome = ToolOutcome(error=f"the tool {name} is not available to the {agent.name} agent; refused")
        elif parse_error is not None or arguments is None:
            outcome = ToolOutcome(error=parse_error or "invalid arguments")
        elif tool.kind == "transfer":
            await self._handoff(tool, arguments, call_id, agent)
            return
        else:
            outcome, approved_by = await self._run_tool(tool, arguments, call_id, agent)
        await self._emit(ev.ToolFinished(
            name=name, call_id=call_id, arguments=shown, agent=agent_slug, result=outcome.result,
            error=outcome.error, duration_ms=outcome.duration_ms, approved_by=approved_by,
            status=outcome.status or "failed",
        ))
        await self._emit(ev.Latency(kind="tool", ms=outcome.duration_ms, turn=self._user_turns, detail=name))
        await self._deliver_output(call_id, name, outcome.output_text())

    async def _run_tool(self, tool: ToolSpec, arguments: dict[str, Any], call_id: str, agent: AgentSpec) -> tuple[ToolOutcome, str | None]:
        approved_by: str | None = None
        if tool.needs_approval:
            invalid = self.tools.validation_error(tool, arguments)
            if invalid is not None:
                return ToolOutcome(error=invalid), None
            started = time.monotonic()
            approved, approved_by = await self._await_approval(tool, arguments, call_id, agent)
            if not approved:
                why = "was denied" + (f" by {approved_by}" if approved_by else " (no approval in time)")
                return ToolOutcome(error=f"the action {tool.name} {why}; tell the caller it cannot be done now", duration_ms=_ms(started),
                                   status="denied" if approved_by else "timed_out"), approved_by
        timeout = self.config.tool_timeout_s
        if tool.kind == "builtin" and tool.builtin == "ask_supervisor":
            # The supervisor has its own timeout and answers with a holding line past it.
            timeout = max(timeout, self.config.supervisor_timeout_s + 1.0)
        outcome = await self.tools.run(tool, arguments, timeout_s=timeout, builtins=self._builtins(agent, call_id))
        return outcome, approved_by

    async def _await_approval(self, tool: ToolSpec, arguments: dict[str, Any], call_id: str, agent: AgentSpec) -> tuple[bool, str | None]:
        future: asyncio.Future[tuple[bool, str | None]] = asyncio.get_running_loop().create_future()
        self._approvals[call_id] = future
        await self._emit(ev.ApprovalRequested(name=tool.name, call_id=call_id, arguments=arguments, agent=agent.slug, timeout_s=self.config.approval_timeout_s))
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.config.approval_timeout_s)
        except TimeoutError:
            return False, None
        finally:
            self._approvals.pop(call_id, None)

    async def _deliver_output(self, call_id: str, name: str, output: str, params: dict[str, Any] | None = None) -> None:
        """Give a tool's output to the model and ask it to go on.

        If the session was recreated since the call, the function_call item is gone: the output
        goes in as a system text item instead, so the result is never lost."""
        await self._ready.wait()
        if self.state == "ended":
            return
        if call_id in self._known_calls:
            await self._send({"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": call_id, "output": output}})
        else:
            item_id = _new_id("res")
            self._internal_items.add(item_id)
            await self._send({"type": "conversation.item.create", "item": text_item(item_id, "system", f"Result of the tool {name}: {output}")})
        await self._request_response(params)

    # ---------------------------------------------------------------- handoffs

    async def _handoff(self, tool: ToolSpec, arguments: dict[str, Any], call_id: str, from_agent: AgentSpec) -> None:
        started = time.monotonic()
        invalid = self.tools.validation_error(tool, arguments)
        requested = tool.transfer_to
        target: str | None = requested
        fallback = False
        cap = self.spec.limits.max_handoff_depth
        target_ok = requested in self.spec.agents and self.spec.agents[requested].kind == "realtime"
        if invalid is None and (not target_ok or self.handoff_depth + 1 > cap):
            fb = self.spec.fallback_agent
            fb_ok = fb is not None and fb in self.spec.agents and self.spec.agents[fb].kind == "realtime"
            target, fallback = (fb, True) if fb_ok and fb != from_agent.slug else (None, True)
        if from_agent.slug != self.current_agent:
            invalid = f"the {from_agent.name} agent is no longer on the call; transfer refused"
        if invalid is not None or target is None:
            why = invalid or "the transfer is not possible right now; keep helping the caller yourself"
            outcome = ToolOutcome(error=why, duration_ms=_ms(started))
            await self._emit(ev.ToolFinished(name=tool.name, call_id=call_id, arguments=arguments, agent=from_agent.slug, error=why, duration_ms=outcome.duration_ms, status="failed"))
            await self._deliver_output(call_id, tool.name, outcome.output_text())
            return
        new_agent = self.spec.agent(target)
        requested_voice = (new_agent.session.get("audio", {}).get("output", {}).get("voice") if new_agent.session else None) or new_agent.voice
        await self._ready.wait()
        session = self._session_config(new_agent, continuing=True)
        voice_kept = self._voice if self._voice_locked and requested_voice and requested_voice != self._voice else None
        # session.update first, so the response that follows the output is the new agent's.
        update_id = _new_id("evt")
        self._handoff_updates[update_id] = (target, self.handoff_depth + 1)
        await self._send({"type": "session.update", "event_id": update_id, "session": session})
        previous = self.current_agent
        self.current_agent = target
        self.handoff_depth += 1
        self._forced_turns = 0
        await self._emit(ev.AgentChanged(agent=target, previous=previous))
        result = {"status": "transferred", "agent": new_agent.name, "note": f"You are now the {new_agent.name} agent. Continue without greeting again."}
        duration = _ms(started)
        await self._emit(ev.ToolFinished(name=tool.name, call_id=call_id, arguments=arguments, agent=previous, result=result, duration_ms=duration))
        await self._emit(ev.Handoff(
            from_agent=previous, to_agent=target, reason=str(arguments.get("reason", "")),
            context=str(arguments.get("conversation_summary", arguments.get("summary", ""))),
            depth=self.handoff_depth, duration_ms=duration, requested_agent=requested, fallback=fallback,
            voice_kept=voice_kept,
            fields={k: v for k, v in arguments.items() if k not in ("reason", "conversation_summary", "summary")},
        ))
        await self._deliver_output(call_id, tool.name, json.dumps(result, ensure_ascii=False))

    # ---------------------------------------------------------------- guardrails

    async def _check_guardrail(self, item_id: str, text: str) -> None:
        try:
            verdict = await self.classifier.classify(text)
        except Exception as exc:  # noqa: BLE001 — best effort, reported
            await self._emit(ev.Error(code="guardrail_failed", message=f"{type(exc).__name__}: {exc}", source="engine"))
            return
        if verdict is None or item_id in self._guard.tripped or self.state == "ended":
            return
        self._guard.tripped.add(item_id)
        await self._trip(item_id, text, verdict)

    async def _trip(self, item_id: str, text: str, verdict: Verdict) -> None:
        item = self._items.get(item_id)
        agent = item.agent if item else self.current_agent
        await self._emit(ev.GuardrailTripped(
            category=verdict.category, text=text, item_id=item_id, agent=agent,
            matched=verdict.matched,
            classifier=verdict.classifier or getattr(self.classifier, "name", ""),
        ))
        if self._response_active:
            await self._send({"type": "response.cancel"})
        if self.playback.generated_ms(item_id) > 0:
            await self._cut_assistant_audio(item_id, reason="guardrail")
        elif item_id in self._server_items:
            await self._send({"type": "conversation.item.delete", "item_id": item_id})
        if item is not None:
            item.interrupted = True
        correction_id = _new_id("fix")
        self._internal_items.add(correction_id)
        await self._send({"type": "conversation.item.create", "item": text_item(correction_id, "system", self.config.guardrail_correction)})
        await self._request_response()

    # ---------------------------------------------------------------- recreation

    async def _recreate(self, reason: str) -> bool:
        started = time.monotonic()
        self.state = "recreating"
        self._recreating = True
        self._ready.clear()
        old, self._conn = self._conn, None
        current = asyncio.current_task()
        if self._reader is not None and self._reader is not current:
            self._reader.cancel()
        if self._deadline is not None and self._deadline is not current:
            self._deadline.cancel()
        if old is not None:
            await old.aclose_client()
        had_response = self._response_active
        # A caller item still waiting for its transcript is said again in the new session (its
        # audio is carried): it leaves the transcript instead of ending empty.
        if self._untranscribed:
            waiting = set(self._untranscribed)
            self.transcript[:] = [i for i in self.transcript if i.item_id not in waiting or i.done]
            for item_id in waiting:
                if item_id in self._items and not self._items[item_id].done:
                    del self._items[item_id]
        carried = self._carry_uncommitted()
        # What was being said when the session went away stays in the transcript, marked.
        for item in self.transcript:
            if not item.done:
                item.done = True
                item.interrupted = item.role == "assistant"
                await self._emit(ev.TranscriptDone(role=item.role, item_id=item.item_id, text=item.text, agent=item.agent, interrupted=item.interrupted))  # type: ignore[arg-type]
        self._response_active = False
        self._active_response_id = None
        self._response_event_ids.clear()
        self._server_items.clear()
        self._known_calls.clear()
        self._summary_item_id = None
        self.playback.current_item_id = None
        attempts = await self._connect_with_retries(restoring=True)
        if attempts == 0:
            self._recreating = False
            await self._give_up(f"the Realtime session could not be recreated after {reason}")
            return False
        buffered = await self._flush_backlog()
        self._recreating = False
        self.state = "active"
        self._ready.set()
        await self._emit(ev.SessionRecreated(
            gap_ms=_ms(started), reason=reason, attempts=attempts, buffered_audio_bytes=buffered,
            restored_items=self._restored_count, carried_audio_bytes=carried,
        ))
        last = self.transcript[-1] if self.transcript else None
        if had_response or self._pending_response is not None or (last is not None and last.role == "user"):
            await self._request_response(self._pending_response)
        return True

    async def _restore_context(self) -> None:
        """Summary plus recent turns, as text items, into the fresh session."""
        items = [i for i in self.transcript if i.text.strip()]
        recent = items[-self.config.restore_recent_items:] if self.config.restore_recent_items > 0 else []
        older = items[: len(items) - len(recent)]
        summary = self.summary
        if older:
            covered = _after_summary(older, self.summary)
            if covered:
                summary = await extractive_summary(covered, self.summary)
        restored = 0
        if summary:
            self.summary = summary
            summary_id = _new_id("sum")
            self._internal_items.add(summary_id)
            self._summary_item_id = summary_id
            await self._send({"type": "conversation.item.create", "item": text_item(summary_id, "system", SUMMARY_PREFIX + summary)})
            restored += 1
        for instruction in self._whispers:
            whisper_id = _new_id("wsp")
            self._internal_items.add(whisper_id)
            await self._send({"type": "conversation.item.create", "item": text_item(whisper_id, "system", instruction)})
            restored += 1
        for item in recent:
            copy_id = _new_id("rst")
            self._internal_items.add(copy_id)
            text = item.text + (" [cut off]" if item.interrupted and item.role == "assistant" else "")
            await self._send({"type": "conversation.item.create", "item": text_item(copy_id, item.role, text)})
            restored += 1
        self._restored_count = restored

    async def _give_up(self, why: str) -> None:
        """Past the retry budget: the fallback path, and the call ends cleanly."""
        await self._emit(ev.Error(code="session_lost", message=why, source="engine", fatal=True))
        await self._emit(ev.Escalation(reason=why, source="engine", agent=self.spec.fallback_agent or self.current_agent))
        await self.close("session_lost")


def _item_text(item: Mapping[str, Any]) -> str:
    parts = item.get("content") or []
    texts = [str(p.get("text") or p.get("transcript") or "") for p in parts if isinstance(p, dict)]
    return "".join(texts)


def _output_ids(outputs: Sequence[Any]) -> set[str]:
    return {o.get("id", "") for o in outputs if isinstance(o, dict)}


def _after_summary(items: Sequence[TranscriptItem], summary: str) -> list[TranscriptItem]:
    """The older items not yet reflected in ``summary`` (all of them when there is none)."""
    return list(items) if not summary else [i for i in items if _first_words(i.text) not in summary]


def _first_words(text: str) -> str:
    return " ".join(text.split()[:6])
