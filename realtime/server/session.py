"""One Realtime session: conversation state, the protocol rules, the input buffer, VAD, and the
responder, transcriber and synthesizer behind responses.

This is the production session of the offline engine: it keeps what the protocol needs and nothing
else. Event logs (``client_events``, ``server_events``, ``event_times``, ``errors``,
``responses``) are kept only when the server runs with ``debug=True``. Scripts, recordings and
faults belong to the test peer (`realtime.server.peer`), which wraps this class.

Transport-agnostic: it reads client JSON via `handle_raw` and writes through a `Transport`."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from realtime import audio
from realtime.vad import VadConfig

from .pool import EARLY, WORK_URGENCY, Urgency
from .responders import (
    TRANSCRIPTION_CONTEXT,
    FunctionCallOutput,
    Responder,
    ResponseContext,
    Synthesizer,
    TextOutput,
    Transcriber,
)
from .state import (
    Item,
    Segment,
    default_session,
    input_segments,
    merge_session,
    new_id,
    output_audio_tokens,
    text_tokens,
    usage,
)
from .vad import VoiceActivityDetector
from .validation import ClientEventError, ServerEventInvalid, check_server_event, validate_client_event

log = logging.getLogger(__name__)

MAX_INPUT_BUFFER_BYTES = 15 * 1024 * 1024
"""The API's cap on audio in the input buffer (and in one append): 15 MiB."""
MAX_LATENCY_SAMPLES = 1000


class Transport(Protocol):
    async def send_text(self, text: str) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...

    async def abort(self) -> None:
        """Drop the connection without a close frame (fault injection)."""
        ...


@dataclass
class SessionDeps:
    """What a session borrows from its server."""

    responder: Responder
    transcriber: Transcriber
    synthesizer: Synthesizer
    vad_factory: Callable[[], VoiceActivityDetector]
    validate_outgoing: bool = False
    validation_failures: list[str] = field(default_factory=list)
    """The last server events that did not validate (with ``validate_outgoing``), at most 100."""
    debug: bool = False
    """Keep each session's event logs (memory grows with the session: for diagnosis and tests)."""


@dataclass
class ActiveResponse:
    id: str
    conversation: bool
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    cancel_reason: str | None = None
    task: asyncio.Task[None] | None = None
    output: list[Item] = field(default_factory=list)


class RealtimeSession:
    """State of one WebSocket session; inspect ``items``, ``client_events``, ``server_events``."""

    def __init__(
        self,
        transport: Transport,
        deps: SessionDeps,
        *,
        model: str,
        max_seconds: float | None,
        initial_session: dict[str, Any] | None = None,
    ) -> None:
        self.id = new_id("sess")
        self.transport = transport
        self.deps = deps
        self.model = model
        self.max_seconds = max_seconds
        self.started_at = time.time()
        expires = int(self.started_at + (max_seconds if max_seconds is not None else 3600))
        self.config = default_session(self.id, model, expires)
        if initial_session:
            merge_session(self.config, initial_session)
            self.config["model"] = model
        self.conversation_id = new_id("conv")
        self.items: list[Item] = []
        self.debug = deps.debug
        # the event logs: filled only with debug (see the module docstring)
        self.client_events: list[dict[str, Any]] = []
        self.server_events: list[dict[str, Any]] = []
        self.event_times: list[float] = []
        """`time.perf_counter()` when each of ``server_events`` was sent (latency breakdowns)."""
        self.errors: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []
        self.responder: Responder = deps.responder
        self.transcriber: Transcriber = deps.transcriber
        self.vad: VoiceActivityDetector = deps.vad_factory()
        self.input_buffer = bytearray()
        self.input_buffer_format = audio.PCM
        self.audio_clock_ms = 0.0
        self.buffer_start_ms = 0.0
        """Position of the input buffer's first byte on the session's audio clock."""
        self.speech_start_ms: int | None = None
        self._speculation: asyncio.Task[str | None] | None = None
        self._speculation_urgency = Urgency(EARLY)
        self._transcribing: dict[str, asyncio.Task[None]] = {}
        self._stopped_at: float | None = None
        self.voice_to_voice_ms: list[float] = []
        """Server-side latency per answered turn: speech_stopped sent -> first audio delta sent."""
        self.speech_item_id: str | None = None
        self.in_speech = False
        # server_vad idle_timeout_ms: where the idle count starts on the audio clock (None: not
        # armed) and the same moment in wall-clock time (`time.monotonic()`), for the fallback.
        self.idle_from_ms: float | None = None
        self._idle_from_wall = 0.0
        self._last_append_wall = 0.0
        self._idle_task: asyncio.Task[None] | None = None
        self.audio_produced = False
        self.active: ActiveResponse | None = None
        self.previous_input: list[Segment] | None = None
        self.closed = False
        self.close_code: int | None = None
        self.close_reason = ""
        self.closed_event = asyncio.Event()
        self._send_lock = asyncio.Lock()
        self._expiry: asyncio.Task[None] | None = None

    def item(self, item_id: str) -> Item | None:
        for item in self.items:
            if item.id == item_id:
                return item
        return None

    # hooks for the test peer: what is scripted for this session takes precedence
    def scripted_transcripts_pending(self) -> bool:
        return False

    def scripted_responses_pending(self) -> bool:
        return False

    async def before_send(self, event: dict[str, Any]) -> None:
        """Called before each server event is sent (the test peer delays here)."""

    async def after_send(self, event: dict[str, Any]) -> None:
        """Called after each server event was sent (the test peer injects faults here)."""

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        await self.emit({"type": "session.created", "session": self.session_json()})
        if self.max_seconds is not None:
            self._expiry = asyncio.create_task(self._expire(self.max_seconds))

    async def _expire(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self.emit(
            {
                "type": "error",
                "error": {
                    "type": "invalid_request_error",
                    "code": "session_expired",
                    "message": f"Your session hit the maximum duration of {seconds:g} seconds.",
                    "param": None,
                    "event_id": None,
                },
            }
        )
        await self.close(1001, "session_expired")

    def _mark_closed(self, code: int, reason: str) -> None:
        self.closed = True
        self.close_code = code
        self.close_reason = reason
        self.closed_event.set()
        if self.active is not None:
            self.active.cancel_reason = self.active.cancel_reason or "client_cancelled"
            self.active.cancel.set()
        if self._expiry is not None and self._expiry is not asyncio.current_task():
            self._expiry.cancel()
        if self._idle_task is not None and self._idle_task is not asyncio.current_task():
            self._idle_task.cancel()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.closed:
            return
        self._mark_closed(code, reason)
        await self.transport.close(code, reason)

    def disconnected(self, code: int = 1000) -> None:
        """The client went away."""
        if not self.closed:
            self._mark_closed(code, "client disconnected")

    async def shutdown(self) -> None:
        """Wait for a running response task to finish after close (it stops at once), and for
        transcriptions in flight (their work is already running in a worker)."""
        pending = [t for t in (*self._transcribing.values(), self._speculation) if t is not None and not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=5.0)
        active = self.active
        if active is not None and active.task is not None and active.task is not asyncio.current_task():
            try:
                await asyncio.wait_for(asyncio.shield(active.task), 2.0)
            except (TimeoutError, asyncio.CancelledError):
                active.task.cancel()

    # ------------------------------------------------------------------ output
    def session_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(self.config))

    async def emit(self, event: dict[str, Any]) -> None:
        if self.closed:
            return
        event = {"type": event["type"], "event_id": new_id("event"), **{k: v for k, v in event.items() if k != "type"}}
        await self.before_send(event)
        async with self._send_lock:
            if self.closed:
                return
            if self.deps.validate_outgoing:
                try:
                    check_server_event(event)
                except ServerEventInvalid as exc:
                    self.deps.validation_failures.append(str(exc))
                    del self.deps.validation_failures[:-100]
                    log.error("invalid server event: %s", exc)
            if self.debug:
                self.server_events.append(event)
                self.event_times.append(time.perf_counter())
            await self.transport.send_text(json.dumps(event))
            if event["type"] == "response.output_audio.delta":
                if self._stopped_at is not None:
                    self.voice_to_voice_ms.append((time.perf_counter() - self._stopped_at) * 1000)
                    del self.voice_to_voice_ms[:-MAX_LATENCY_SAMPLES]
                    self._stopped_at = None
            elif event["type"] == "input_audio_buffer.speech_stopped":
                self._stopped_at = time.perf_counter()
            await self.after_send(event)

    async def error(self, code: str, message: str, param: str | None = None, event_id: str | None = None) -> None:
        err = {"type": "invalid_request_error", "code": code, "message": message, "param": param, "event_id": event_id}
        if self.debug:
            self.errors.append(err)
        await self.emit({"type": "error", "error": err})

    # ------------------------------------------------------------------ input
    async def handle_raw(self, raw: str | bytes) -> None:
        try:
            data, _parsed = validate_client_event(raw)
        except ClientEventError as exc:
            if self.debug:
                self.client_events.append({"invalid": raw if isinstance(raw, str) else raw.decode("utf-8", "replace")})
            await self.error(exc.code, exc.message, exc.param, exc.event_id)
            return
        if self.debug:
            self.client_events.append(data)
        handler = getattr(self, "_on_" + data["type"].replace(".", "_"))
        try:
            await handler(data, data.get("event_id"))
        except ClientEventError as exc:
            await self.error(exc.code, exc.message, exc.param, exc.event_id or data.get("event_id"))
        except Exception:  # a bug must not kill the session: report it like the API would
            log.exception("handling %s", data["type"])
            await self.emit(
                {"type": "error", "error": {"type": "server_error", "code": "server_error", "message": "The server had an error.", "param": None, "event_id": data.get("event_id")}}
            )

    async def _on_session_update(self, data: dict[str, Any], event_id: str | None) -> None:
        upd = data["session"]
        out = (upd.get("audio") or {}).get("output") or {}
        if "voice" in out and out["voice"] != self.config["audio"]["output"]["voice"] and self.audio_produced:
            raise ClientEventError(
                "cannot_update_voice",
                "Cannot update a conversation's voice if assistant audio is present.",
                "session.audio.output.voice",
                event_id,
            )
        if "model" in upd and upd["model"] != self.config["model"]:
            # As the API: session.update may change anything but the voice (once audio was sent) and
            # the model, which the connection chose. The whole update is refused, so say how to fix it.
            log.warning("session %s: session.update asked for model %r on a %r session", self.id, upd["model"], self.config["model"])
            raise ClientEventError(
                "invalid_value",
                f"The session model cannot be changed: this session runs '{self.config['model']}', chosen when it "
                f"connected (the URL's ?model=, or the default when the URL has none), and this session.update "
                f"asks for '{upd['model']}'. Nothing in this update was applied. Connect with "
                f"/v1/realtime?model={upd['model']} (with the OpenAI Agents SDK: put ?model= in the url of its "
                "model_config), or leave 'model' out of session.update.",
                "session.model",
                event_id,
            )
        before = json.dumps(self.config["audio"]["input"]["turn_detection"], sort_keys=True)
        merge_session(self.config, upd)
        if json.dumps(self.config["audio"]["input"]["turn_detection"], sort_keys=True) != before:
            self.vad.reset()
            self.speech_item_id = None
            self.speech_start_ms = None
            self.in_speech = False
            self._speculation = None
        self._watch_idle()
        await self.emit({"type": "session.updated", "session": self.session_json()})

    def _insert(self, item: Item, previous_item_id: str | None, *, explicit: bool = False) -> str | None:
        """Insert after ``previous_item_id`` ("root" = first); returns the actual previous id."""
        if not explicit or previous_item_id is None:
            prev = self.items[-1].id if self.items else None
            self.items.append(item)
            return prev
        if previous_item_id == "root":
            self.items.insert(0, item)
            return None
        for index, existing in enumerate(self.items):
            if existing.id == previous_item_id:
                self.items.insert(index + 1, item)
                return previous_item_id
        raise ClientEventError(
            "invalid_value", f"Previous item with id '{previous_item_id}' does not exist.", "previous_item_id"
        )

    async def _on_conversation_item_create(self, data: dict[str, Any], event_id: str | None) -> None:
        raw = json.loads(json.dumps(data["item"]))
        item_id = raw.get("id") or new_id("item")
        if self.item(item_id) is not None:
            raise ClientEventError("invalid_value", f"Item with id '{item_id}' already exists.", "item.id", event_id)
        raw["id"] = item_id
        raw["object"] = "realtime.item"
        raw["status"] = "completed"
        item = Item(raw, audio_format=audio.format_type(self.config["audio"]["input"]["format"]))
        if raw.get("type") == "message":
            for index, part in enumerate(raw.get("content", [])):
                if part.get("type") == "output_audio" or (raw.get("role") == "assistant" and "audio" in part):
                    raise ClientEventError(
                        "invalid_value", "Assistant audio messages cannot be created.", f"item.content[{index}].type", event_id
                    )
                if "audio" in part:
                    try:
                        item.audio[index] = base64.b64decode(part.pop("audio"), validate=True)
                    except (binascii.Error, ValueError) as exc:
                        raise ClientEventError(
                            "invalid_value", "Invalid base64 audio.", f"item.content[{index}].audio", event_id
                        ) from exc
                    part.setdefault("transcript", None)
        elif raw.get("type") == "function_call":
            raw.setdefault("call_id", new_id("call"))
        prev = self._insert(item, data.get("previous_item_id"), explicit="previous_item_id" in data)
        await self.emit({"type": "conversation.item.added", "previous_item_id": prev, "item": item.public()})
        await self.emit({"type": "conversation.item.done", "previous_item_id": prev, "item": item.public()})

    def _existing_item(self, data: dict[str, Any], verb: str, doing: str, event_id: str | None) -> Item:
        """The item ``data["item_id"]`` names, or the API's error for ``verb`` ("delete", ...)."""
        item = self.item(data["item_id"])
        if item is None:
            raise ClientEventError(
                f"item_{verb}_invalid_item_id",
                f"Error {doing} item: the item with id '{data['item_id']}' does not exist.",
                "item_id",
                event_id,
            )
        return item

    async def _on_conversation_item_delete(self, data: dict[str, Any], event_id: str | None) -> None:
        item = self._existing_item(data, "delete", "deleting", event_id)
        self.items.remove(item)
        await self.emit({"type": "conversation.item.deleted", "item_id": item.id})

    async def _on_conversation_item_retrieve(self, data: dict[str, Any], event_id: str | None) -> None:
        item = self._existing_item(data, "retrieve", "retrieving", event_id)
        await self.emit({"type": "conversation.item.retrieved", "item": item.public(with_audio=True)})

    async def _on_conversation_item_truncate(self, data: dict[str, Any], event_id: str | None) -> None:
        item = self.item(data["item_id"])
        index = data["content_index"]
        end_ms = data["audio_end_ms"]
        if item is None or not item.is_assistant_message():
            raise ClientEventError(
                "item_truncate_invalid_item_id", "Only model output audio messages can be truncated", "item_id", event_id
            )
        content = item.data.get("content", [])
        if not 0 <= index < len(content) or content[index].get("type") != "output_audio":
            raise ClientEventError(
                "invalid_value", f"Content index {index} is not an audio content part.", "content_index", event_id
            )
        if end_ms < 0 or end_ms > item.audio_ms(index):
            raise ClientEventError(
                "invalid_value",
                f"Audio content of {item.audio_ms(index)}ms is already shorter than {end_ms}ms",
                "audio_end_ms",
                event_id,
            )
        kept = end_ms * audio.bytes_per_ms(item.audio_format)
        item.audio[index] = item.audio.get(index, b"")[:kept]
        # the API keeps no text the caller has not heard: the transcript is cut at the last word
        # whose audio was played
        content[index]["transcript"] = item.heard_transcript(content[index].get("transcript") or "", kept)
        active = self.active
        if active is not None and item in active.output and item.data.get("status") == "in_progress":
            # still being generated: the response goes on (a response.cancel may follow) but not
            # one more delta of this item is sent
            item.cut = True
        await self.emit(
            {"type": "conversation.item.truncated", "item_id": item.id, "content_index": index, "audio_end_ms": end_ms}
        )

    async def _on_output_audio_buffer_clear(self, data: dict[str, Any], event_id: str | None) -> None:
        raise ClientEventError(
            "invalid_value", "output_audio_buffer.clear is only supported for WebRTC and SIP sessions.", "type", event_id
        )

    # --- audio input
    def _vad_config(self) -> VadConfig | None:
        td = self.config["audio"]["input"]["turn_detection"]
        if td is None:
            return None
        if td["type"] == "semantic_vad":
            silence = {"low": 1000, "high": 300}.get(td.get("eagerness") or "auto", 500)
            return VadConfig(0.5, 300, silence)
        return VadConfig(float(td["threshold"]), int(td["prefix_padding_ms"]), int(td["silence_duration_ms"]))

    async def _on_input_audio_buffer_append(self, data: dict[str, Any], event_id: str | None) -> None:
        try:
            chunk = base64.b64decode(data["audio"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ClientEventError("invalid_value", "Invalid base64 audio.", "audio", event_id) from exc
        fmt = audio.format_type(self.config["audio"]["input"]["format"])
        if fmt != self.input_buffer_format and self.input_buffer:
            self._clear_buffer()
        config = self._vad_config()
        excess = len(self.input_buffer) + len(chunk) - MAX_INPUT_BUFFER_BYTES
        if excess > 0 and config is not None and len(chunk) <= MAX_INPUT_BUFFER_BYTES:
            # with turn detection the oldest audio goes (a long silence, a caller who never stops)
            excess += excess % (2 if self.input_buffer_format == audio.PCM else 1)
            del self.input_buffer[:excess]
            self.buffer_start_ms += excess / audio.bytes_per_ms(self.input_buffer_format)
        elif excess > 0:
            # refused whole, the buffer kept as it was: only turn_detection null lets it grow so far
            raise ClientEventError(
                "input_audio_buffer_full",
                f"The input audio buffer holds at most {MAX_INPUT_BUFFER_BYTES // (1024 * 1024)} MiB of audio "
                f"({len(self.input_buffer)} bytes buffered, {len(chunk)} appended). Send "
                "input_audio_buffer.commit or input_audio_buffer.clear before appending more, "
                "or enable turn_detection.",
                "audio",
                event_id,
            )
        self.input_buffer_format = fmt
        if not self.input_buffer:
            self.buffer_start_ms = self.audio_clock_ms
        self.input_buffer.extend(chunk)
        self._last_append_wall = time.monotonic()
        start_ms = self.audio_clock_ms
        self.audio_clock_ms += len(chunk) / audio.bytes_per_ms(fmt)
        if config is None:
            return
        td = self.config["audio"]["input"]["turn_detection"]
        feed_async = getattr(self.vad, "feed_async", None)
        if feed_async is not None:  # the detector works off the event loop
            events = await feed_async(chunk, fmt, int(start_ms), config)
        else:
            events = self.vad.feed(audio.decode_float(chunk, fmt), audio.sample_rate(fmt), int(start_ms), config)
        for event in events:
            if event.kind == "pause":
                self._speculate(event.ms)
            elif event.kind == "resume":
                self._drop_speculation()
            elif event.kind == "start":
                self.speech_item_id = new_id("item")
                self.speech_start_ms = event.ms
                self.in_speech = True
                self.idle_from_ms = None  # speech resets the idle timeout
                self._speculation = None
                await self.emit(
                    {"type": "input_audio_buffer.speech_started", "audio_start_ms": event.ms, "item_id": self.speech_item_id}
                )
                if td.get("interrupt_response") and self.active is not None and self.active.conversation:
                    self._cancel_active("turn_detected")
            else:
                item_id = self.speech_item_id or new_id("item")
                self.speech_item_id = None
                self.in_speech = False
                self._arm_idle(event.ms, time.monotonic())  # counted again from the end of speech
                await self.emit({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": event.ms, "item_id": item_id})
                await self._commit(item_id, (self.speech_start_ms, event.ms))
                if td.get("create_response") and self.active is None:
                    self._start_response({}, None)
        if self._idle_due():
            await self._idle_timeout()

    async def _on_input_audio_buffer_commit(self, data: dict[str, Any], event_id: str | None) -> None:
        fmt = self.input_buffer_format
        ms = len(self.input_buffer) / audio.bytes_per_ms(fmt)
        if ms < 100:
            raise ClientEventError(
                "input_audio_buffer_commit_empty",
                f"Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, but buffer only has {ms:.2f}ms of audio.",
                None,
                event_id,
            )
        item_id = self.speech_item_id or new_id("item")
        self.speech_item_id = None
        self.in_speech = False
        self.vad.reset()
        self._speculation = None
        await self._commit(item_id)

    async def _on_input_audio_buffer_clear(self, data: dict[str, Any], event_id: str | None) -> None:
        self._clear_buffer()
        self.vad.reset()
        self.speech_item_id = None
        self.in_speech = False
        await self.emit({"type": "input_audio_buffer.cleared"})

    def _clear_buffer(self) -> None:
        self.input_buffer.clear()
        self.buffer_start_ms = self.audio_clock_ms
        self.speech_start_ms = None
        self._speculation = None

    def _buffer_slice(self, from_ms: float | None, to_ms: float | None) -> bytes:
        """The buffered input between two positions of the audio clock (whole samples)."""
        fmt = self.input_buffer_format
        sample = 2 if fmt == audio.PCM else 1
        start = 0 if from_ms is None else max(0, int((from_ms - self.buffer_start_ms) * audio.bytes_per_ms(fmt)))
        end = len(self.input_buffer) if to_ms is None else int((to_ms - self.buffer_start_ms) * audio.bytes_per_ms(fmt))
        start -= start % sample
        end = max(start, min(len(self.input_buffer), end - end % sample))
        return bytes(self.input_buffer[start:end])

    # --- server_vad idle_timeout_ms
    def _idle_timeout_ms(self) -> int | None:
        td = self.config["audio"]["input"]["turn_detection"]
        if not td or td.get("type") != "server_vad" or not td.get("idle_timeout_ms"):
            return None
        return int(td["idle_timeout_ms"])

    def _arm_idle(self, from_ms: float, from_wall: float) -> None:
        """Start counting the caller's silence from ``from_ms`` on the audio clock (``from_wall``
        on the monotonic clock, for the wall-clock fallback)."""
        self.idle_from_ms = from_ms
        self._idle_from_wall = from_wall
        self._watch_idle()

    def _idle_blocked(self) -> bool:
        return self.idle_from_ms is None or self.in_speech or self.active is not None or self.closed

    def _idle_due(self) -> bool:
        """On the audio clock: idle_timeout_ms of caller audio written since the count began."""
        timeout = self._idle_timeout_ms()
        if timeout is None or self._idle_blocked():
            return False
        assert self.idle_from_ms is not None
        return self.audio_clock_ms - self.idle_from_ms >= timeout

    def _watch_idle(self) -> None:
        if self.closed or self.idle_from_ms is None or self._idle_timeout_ms() is None:
            return
        if self._idle_task is None or self._idle_task.done():
            self._idle_task = asyncio.create_task(self._idle_watch())

    async def _idle_watch(self) -> None:
        """The wall-clock fallback: fires when idle_timeout_ms passed since the later of the
        playback end (or speech end) and the last audio appended, i.e. when audio stops coming.
        Ends when the count is suspended (speech, a response); arming again restarts it."""
        while True:
            timeout = self._idle_timeout_ms()
            if timeout is None or self._idle_blocked():
                return
            deadline = max(self._idle_from_wall, self._last_append_wall) + timeout / 1000
            wait = deadline - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            await self._idle_timeout()
            return

    async def _idle_timeout(self) -> None:
        """No speech for idle_timeout_ms: ``input_audio_buffer.timeout_triggered``, the buffer
        committed as a user item (not transcribed: its transcript is empty), then a response
        when ``create_response`` is on. The count starts again after that response."""
        assert self.idle_from_ms is not None
        end = int(self.audio_clock_ms)
        start = min(round(self.idle_from_ms), end)
        self.idle_from_ms = None
        item_id = new_id("item")
        await self.emit({"type": "input_audio_buffer.timeout_triggered", "audio_start_ms": start, "audio_end_ms": end, "item_id": item_id})
        self._speculation = None
        await self._commit(item_id, idle=True)
        td = self.config["audio"]["input"]["turn_detection"] or {}
        if td.get("create_response") and self.active is None and not self.closed:
            self._start_response({}, None)

    def _drop_speculation(self) -> None:
        """Speech resumed: the early transcript is of an unfinished turn (if its work has not
        started in a worker yet, it never will)."""
        if self._speculation is not None and not self._speculation.done():
            self._speculation.cancel()
            self._speculation_urgency.drop()  # work of it already running no longer counts as early
        self._speculation = None

    def _speculate(self, at_ms: int) -> None:
        """The caller paused: transcribe the speech so far now (and let the responder prepare its
        answer), so that if the pause becomes a stop, the answer is nearly ready. Used only when
        the transcriber says it is deterministic and nothing scripted is queued; the result is
        dropped if speech resumes. It is a function of the audio alone, so the same audio gives
        the same transcript whether or not the speculation finishes in time."""
        if not getattr(self.deps.transcriber, "speculative", False) or self.scripted_transcripts_pending():
            return
        data = self._buffer_slice(self.speech_start_ms, at_ms)
        # early work: a pool that schedules by urgency runs it after work a caller waits for, and
        # the commit makes it urgent (`_commit`)
        self._speculation_urgency = Urgency(EARLY)
        self._speculation = asyncio.create_task(self._speculative_turn(data, self.input_buffer_format, self._speculation_urgency))

    async def _speculative_turn(self, data: bytes, fmt: str, urgency: Urgency) -> str | None:
        WORK_URGENCY.set(urgency)
        TRANSCRIPTION_CONTEXT.set(self._context({}, [i.public() for i in self.items]))
        transcript = await self.deps.transcriber.transcribe(data, fmt)
        if self._speculation is not asyncio.current_task():
            return transcript  # already committed (the response is being made now) or dropped
        td = self.config["audio"]["input"]["turn_detection"] or {}
        prefetch = getattr(self.deps.responder, "prefetch", None)
        if (
            transcript is not None
            and prefetch is not None
            and td.get("create_response")
            and not self.scripted_responses_pending()
        ):
            provisional = {
                "id": "item_provisional",
                "type": "message",
                "object": "realtime.item",
                "status": "completed",
                "role": "user",
                "content": [{"type": "input_audio", "transcript": transcript}],
            }
            prefetch(self._context({}, [i.public() for i in self.items] + [provisional]))
        return transcript

    async def _commit(self, item_id: str, speech: tuple[int | None, int] | None = None, *, idle: bool = False) -> None:
        """Commit the buffer as a user item; ``speech`` is (start, stop) of the detected speech on
        the audio clock, the part that is transcribed (the whole buffer otherwise; nothing when
        ``idle``: the idle timeout commits silence, with an empty transcript)."""
        fmt = self.input_buffer_format
        speech_audio = self._buffer_slice(speech[0], speech[1]) if speech is not None else None
        speculation = self._speculation if speech is not None else None
        if speculation is not None:
            self._speculation_urgency.promote()  # the caller now waits for it
        chunk = bytes(self.input_buffer)
        self._speculation = None  # before _clear_buffer: the task is handed to the commit, not dropped
        self._clear_buffer()
        item = Item(
            {
                "id": item_id,
                "type": "message",
                "object": "realtime.item",
                "status": "completed",
                "role": "user",
                "content": [{"type": "input_audio", "transcript": None}],
            },
            {0: chunk},
            fmt,
        )
        prev = self._insert(item, None)
        await self.emit({"type": "input_audio_buffer.committed", "previous_item_id": prev, "item_id": item_id})
        await self.emit({"type": "conversation.item.added", "previous_item_id": prev, "item": item.public()})
        await self.emit({"type": "conversation.item.done", "previous_item_id": prev, "item": item.public()})
        # Transcription runs beside the session (audio keeps flowing to the VAD meanwhile); a
        # response waits for the transcripts of the items it sees (`_await_transcripts`).
        task = asyncio.create_task(self._transcribe(item, speech_audio if speech_audio is not None else chunk, fmt, speculation, idle))
        self._transcribing[item_id] = task
        task.add_done_callback(lambda _t: self._transcribing.pop(item_id, None))

    async def _await_transcripts(self) -> None:
        pending = list(self._transcribing.values())
        if pending:  # not gather: a cancelled response must not cancel the transcriptions
            await asyncio.wait(pending)

    async def _transcribe(
        self, item: Item, data: bytes, fmt: str, speculation: asyncio.Task[str | None] | None, idle: bool = False
    ) -> None:
        item_id = item.id
        transcript: str | None = None
        try:
            if idle:
                transcript = ""
            elif speculation is not None and not self.scripted_transcripts_pending():
                transcript = await speculation
            else:
                TRANSCRIPTION_CONTEXT.set(self._context({}, [i.public() for i in self.items if i.id != item_id]))
                transcript = await self.transcriber.transcribe(data, fmt)
        except Exception:
            log.exception("transcribing %s", item_id)
            transcript = None
        item.data["content"][0]["transcript"] = transcript
        if self.config["audio"]["input"].get("transcription") is not None:
            text = transcript or ""
            if text:
                await self.emit(
                    {"type": "conversation.item.input_audio_transcription.delta", "item_id": item_id, "content_index": 0, "delta": text}
                )
            await self.emit(
                {
                    "type": "conversation.item.input_audio_transcription.completed",
                    "item_id": item_id,
                    "content_index": 0,
                    "transcript": text,
                    "usage": {"type": "duration", "seconds": round(item.audio_ms(0) / 1000, 3)},
                }
            )

    # --- responses
    async def _on_response_create(self, data: dict[str, Any], event_id: str | None) -> None:
        if self.active is not None:
            raise ClientEventError(
                "conversation_already_has_active_response",
                f"Conversation already has an active response in progress: {self.active.id}. Wait until the response is finished before creating a new one.",
                None,
                event_id,
            )
        self._start_response(data.get("response") or {}, event_id)

    async def _on_response_cancel(self, data: dict[str, Any], event_id: str | None) -> None:
        wanted = data.get("response_id")
        if self.active is None or (wanted and wanted != self.active.id):
            raise ClientEventError("response_cancel_not_active", "Cancellation failed: no active response found", None, event_id)
        self._cancel_active("client_cancelled")

    def _cancel_active(self, reason: str) -> None:
        if self.active is not None and not self.active.cancel.is_set():
            self.active.cancel_reason = reason
            self.active.cancel.set()

    def _start_response(self, params: dict[str, Any], event_id: str | None) -> None:
        active = ActiveResponse(new_id("resp"), params.get("conversation", "auto") != "none")
        self.active = active
        active.task = asyncio.create_task(self._run_response(active, params))

    def _response_json(self, active: ActiveResponse, status: str, params: dict[str, Any], usage_obj: Any) -> dict[str, Any]:
        out_cfg = self.config["audio"]["output"]
        p_out = (params.get("audio") or {}).get("output") or {}
        details: dict[str, Any] | None = None
        if status == "cancelled":
            details = {"type": "cancelled", "reason": active.cancel_reason or "client_cancelled"}
        elif status == "completed":
            details = None
        return {
            "object": "realtime.response",
            "id": active.id,
            "status": status,
            "status_details": details,
            "output": [i.public() for i in active.output],
            "conversation_id": self.conversation_id if active.conversation else None,
            "output_modalities": params.get("output_modalities") or self.config["output_modalities"],
            "max_output_tokens": params.get("max_output_tokens", self.config["max_output_tokens"]),
            "audio": {"output": {"format": p_out.get("format", out_cfg["format"]), "voice": out_cfg["voice"]}},
            "usage": usage_obj,
            "metadata": params.get("metadata"),
        }

    async def _pause(self, active: ActiveResponse, delay_ms: float) -> None:
        if delay_ms > 0:
            try:
                await asyncio.wait_for(active.cancel.wait(), delay_ms / 1000)
            except TimeoutError:
                pass
        else:
            await asyncio.sleep(0)

    async def _unless_stopped(self, active: ActiveResponse, awaitable: Any) -> tuple[bool, Any]:
        """Await ``awaitable`` unless the response is cancelled first: (True, result), or
        (False, None) with the awaitable cancelled."""
        task = asyncio.ensure_future(awaitable)
        if not active.cancel.is_set():
            waker = asyncio.ensure_future(active.cancel.wait())
            try:
                await asyncio.wait({task, waker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waker.cancel()
        if task.done():
            return True, task.result()
        task.cancel()
        await asyncio.wait({task}, timeout=0.5)  # let it unwind (a generator it was in is free again)
        return False, None

    async def _run_response(self, active: ActiveResponse, params: dict[str, Any]) -> None:
        try:
            await self._generate(active, params)
        except Exception:
            log.exception("response %s failed", active.id)
        finally:
            if self.active is active:
                self.active = None

    def _context(self, params: dict[str, Any], items: list[dict[str, Any]]) -> ResponseContext:
        """What the model sees for a response with ``params`` over ``items`` (GA item JSON)."""
        return ResponseContext(
            instructions=params.get("instructions", self.config.get("instructions") or ""),
            tools=params.get("tools", self.config.get("tools") or []),
            tool_choice=params.get("tool_choice", self.config.get("tool_choice")),
            items=items,
            output_modalities=list(params.get("output_modalities") or self.config["output_modalities"]),
            session_id=self.id,
            metadata=params.get("metadata"),
        )

    async def _generate(self, active: ActiveResponse, params: dict[str, Any]) -> None:
        await self._await_transcripts()
        instructions = params.get("instructions", self.config.get("instructions") or "")
        tools = params.get("tools", self.config.get("tools") or [])
        modalities = params.get("output_modalities") or self.config["output_modalities"]
        spoken = "audio" in modalities
        if "input" in params:
            items = [Item(json.loads(json.dumps(raw))) for raw in params["input"] if raw.get("type") != "item_reference"]
            refs = [r["id"] for r in params["input"] if r.get("type") == "item_reference"]
            items = [i for i in self.items if i.id in refs] + items
        else:
            items = list(self.items)
        segments = input_segments(instructions, tools, items)
        await self.emit({"type": "response.created", "response": self._response_json(active, "in_progress", params, None)})
        ctx = self._context(params, [i.public() for i in items])
        plan = await self.deps_respond(ctx)
        out_fmt = audio.format_type(((params.get("audio") or {}).get("output") or {}).get("format") or self.config["audio"]["output"]["format"])
        out_text = out_audio = 0
        for output in plan.outputs:
            if active.cancel.is_set() or self.closed:
                break
            index = len(active.output)
            if isinstance(output, TextOutput):
                item = Item(
                    {"id": new_id("item"), "type": "message", "object": "realtime.item", "status": "in_progress", "role": "assistant", "content": []},
                    audio_format=out_fmt,
                )
                active.output.append(item)
                prev = self._insert(item, None) if active.conversation else None
                await self.emit({"type": "response.output_item.added", "response_id": active.id, "output_index": index, "item": item.public()})
                if active.conversation:
                    await self.emit({"type": "conversation.item.added", "previous_item_id": prev, "item": item.public()})
                part: dict[str, Any] = {"type": "output_audio", "transcript": ""} if spoken else {"type": "output_text", "text": ""}
                item.data["content"].append(part)
                ev_part = {"type": "audio", "transcript": ""} if spoken else {"type": "text", "text": ""}
                common = {"response_id": active.id, "item_id": item.id, "output_index": index, "content_index": 0}
                await self.emit({"type": "response.content_part.added", **common, "part": ev_part})
                words = output.text.split(" ")
                stream = getattr(self.deps.synthesizer, "stream", None) if spoken else None
                chunks = self.deps.synthesizer.synthesize(output.text, out_fmt, plan.ms_per_word) if spoken and stream is None else []
                step = max(1, plan.words_per_delta)
                said = ""
                if stream is not None:
                    said = await self._stream_speech(active, item, part, common, stream(output.text, out_fmt), out_fmt)
                    words = []
                for start in range(0, len(words), step):
                    await self._pause(active, plan.delay_ms)
                    if active.cancel.is_set() or self.closed:
                        break
                    if item.cut:
                        continue
                    delta = (" " if start else "") + " ".join(words[start : start + step])
                    said += delta
                    if spoken:
                        sound = b"".join(chunks[start : start + step])
                        item.audio[0] = item.audio.get(0, b"") + sound
                        part["transcript"] = said
                        item.heard.append((len(item.audio[0]), len(said)))
                        self.audio_produced = True
                        await self.emit({"type": "response.output_audio.delta", **common, "delta": base64.b64encode(sound).decode()})
                        await self.emit({"type": "response.output_audio_transcript.delta", **common, "delta": delta})
                    else:
                        part["text"] = said
                        await self.emit({"type": "response.output_text.delta", **common, "delta": delta})
                if item.cut:  # truncated while generated: it ends with what the caller heard
                    said = part["transcript"]
                if spoken:
                    await self.emit({"type": "response.output_audio.done", **common})
                    await self.emit({"type": "response.output_audio_transcript.done", **common, "transcript": said})
                    done_part = {"type": "audio", "transcript": said}
                    out_audio += output_audio_tokens(item.audio_ms(0))
                else:
                    await self.emit({"type": "response.output_text.done", **common, "text": said})
                    done_part = {"type": "text", "text": said}
                out_text += text_tokens(said)
                await self.emit({"type": "response.content_part.done", **common, "part": done_part})
            else:
                assert isinstance(output, FunctionCallOutput)
                call_id = output.call_id or new_id("call")
                item = Item(
                    {"id": new_id("item"), "type": "function_call", "object": "realtime.item", "status": "in_progress", "name": output.name, "call_id": call_id, "arguments": ""}
                )
                active.output.append(item)
                prev = self._insert(item, None) if active.conversation else None
                await self.emit({"type": "response.output_item.added", "response_id": active.id, "output_index": index, "item": item.public()})
                if active.conversation:
                    await self.emit({"type": "conversation.item.added", "previous_item_id": prev, "item": item.public()})
                common = {"response_id": active.id, "item_id": item.id, "output_index": index, "call_id": call_id}
                args = output.arguments
                size = max(1, len(args) // 3 + 1)
                for start in range(0, len(args), size):
                    await self._pause(active, plan.delay_ms)
                    if active.cancel.is_set() or self.closed:
                        break
                    item.data["arguments"] += args[start : start + size]
                    await self.emit({"type": "response.function_call_arguments.delta", **common, "delta": args[start : start + size]})
                if not active.cancel.is_set():
                    await self.emit({"type": "response.function_call_arguments.done", **common, "name": output.name, "arguments": args})
                out_text += text_tokens(output.name) + text_tokens(item.data["arguments"])
            item.data["status"] = "incomplete" if active.cancel.is_set() or item.cut else "completed"
            await self.emit({"type": "response.output_item.done", "response_id": active.id, "output_index": index, "item": item.public()})
            if active.conversation:
                await self.emit({"type": "conversation.item.done", "previous_item_id": self._previous_id(item), "item": item.public()})
        status = "cancelled" if active.cancel.is_set() else "completed"
        usage_obj = usage(segments, self.previous_input if active.conversation else None, out_text, out_audio)
        if active.conversation:
            self.previous_input = segments
        final = self._response_json(active, status, params, usage_obj)
        if self.debug:
            self.responses.append(final)
        # the next response.create is accepted as soon as response.done is on the wire
        if self.active is active:
            self.active = None
        await self.emit({"type": "response.done", "response": final})
        # idle_timeout_ms counts from when the caller has heard this response: response.done plus
        # the playback time of the audio it produced, on the caller's audio clock
        played = sum(i.audio_ms(0) for i in active.output if i.is_assistant_message())
        self._arm_idle(self.audio_clock_ms + played, time.monotonic() + played / 1000)

    async def _stream_speech(
        self,
        active: ActiveResponse,
        item: Item,
        part: dict[str, Any],
        common: dict[str, Any],
        pieces: AsyncIterator[tuple[str, bytes]],
        fmt: str,
        delta_ms: int = 200,
    ) -> str:
        """Send streamed speech: each piece's audio in deltas of about ``delta_ms``, each followed by
        the transcript delta of the words it carries (words spread evenly over the piece's audio).
        Stops at a cancel; returns the transcript sent."""
        said = ""
        step = audio.bytes_per_ms(fmt) * delta_ms
        # The synthesizer runs in a task of its own, feeding a queue: a cancel never waits for the
        # next piece (a sentence still synthesising), and the generator stays in one task.
        ready: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue()

        async def produce() -> None:
            try:
                async for produced in pieces:
                    ready.put_nowait(produced)
            except Exception:
                log.exception("speech synthesis failed")
            finally:
                ready.put_nowait(None)

        producer = asyncio.create_task(produce())
        try:
            while True:
                got, piece = await self._unless_stopped(active, ready.get())
                if not got or piece is None or active.cancel.is_set() or self.closed:
                    break
                if item.cut:
                    continue
                text_piece, sound = piece
                sounds = [sound[i : i + step] for i in range(0, len(sound), step)] or [b""]
                words = text_piece.split(" ")
                if text_piece.startswith(" "):
                    words = words[1:]
                    words[0] = " " + words[0]
                for n, sound_chunk in enumerate(sounds):
                    if active.cancel.is_set() or item.cut or self.closed:
                        break
                    lo, hi = n * len(words) // len(sounds), (n + 1) * len(words) // len(sounds)
                    delta = " ".join(words[lo:hi])
                    if lo and delta:
                        delta = " " + delta
                    if sound_chunk:
                        item.audio[0] = item.audio.get(0, b"") + sound_chunk
                        self.audio_produced = True
                        await self.emit({"type": "response.output_audio.delta", **common, "delta": base64.b64encode(sound_chunk).decode()})
                    if delta:
                        said += delta
                        part["transcript"] = said
                        await self.emit({"type": "response.output_audio_transcript.delta", **common, "delta": delta})
                    item.heard.append((len(item.audio.get(0, b"")), len(said)))
                    await asyncio.sleep(0)
        finally:
            if not producer.done():
                producer.cancel()
                await asyncio.wait({producer}, timeout=0.5)
            aclose = getattr(pieces, "aclose", None)
            if aclose is not None and producer.done():
                with contextlib.suppress(RuntimeError):
                    await aclose()
        return said

    async def deps_respond(self, ctx: ResponseContext) -> Any:
        return await self.responder.respond(ctx)

    def _previous_id(self, item: Item) -> str | None:
        for index, existing in enumerate(self.items):
            if existing is item:
                return self.items[index - 1].id if index else None
        return None
