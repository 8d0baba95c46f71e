"""What the server says: pluggable responders, transcribers and synthesizers, and scripted ones.

A `Responder` gets a `ResponseContext` (what the real model sees: instructions, tools, tool choice
and the conversation) and returns a `ScriptedResponse`: a list of outputs — `TextOutput` (spoken as
audio plus transcript when the response's modality is audio) and `FunctionCallOutput` — with
streaming options. Build them with `text(...)`, `function_call(...)` and `response(...)`.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import AsyncIterator, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

from realtime import audio


@dataclass(frozen=True)
class TextOutput:
    text: str


@dataclass(frozen=True)
class FunctionCallOutput:
    name: str
    arguments: str
    call_id: str | None = None


Output = TextOutput | FunctionCallOutput


@dataclass(frozen=True)
class ScriptedResponse:
    """One response. ``delay_ms`` sleeps before every delta (so a test can barge in mid-response);
    ``words_per_delta`` groups words per transcript/audio delta; ``ms_per_word`` sizes the tone."""

    outputs: tuple[Output, ...]
    delay_ms: float = 0.0
    words_per_delta: int = 1
    ms_per_word: int = 200


def text(value: str) -> TextOutput:
    return TextOutput(value)


def function_call(name: str, arguments: dict[str, Any] | str | None = None, *, call_id: str | None = None) -> FunctionCallOutput:
    args = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
    return FunctionCallOutput(name, args, call_id)


def response(
    *outputs: Output | str, delay_ms: float = 0.0, words_per_delta: int = 1, ms_per_word: int = 200
) -> ScriptedResponse:
    """``response("Hello", function_call("lookup", {"id": 1}), delay_ms=20)``; plain strings are text."""
    outs = tuple(TextOutput(o) if isinstance(o, str) else o for o in outputs)
    return ScriptedResponse(outs, delay_ms=delay_ms, words_per_delta=words_per_delta, ms_per_word=ms_per_word)


def as_response(value: ScriptedResponse | Output | str) -> ScriptedResponse:
    return value if isinstance(value, ScriptedResponse) else response(value)


@dataclass
class ResponseContext:
    """What the model sees for one response (Realtime or /v1/responses)."""

    instructions: str
    tools: list[dict[str, Any]]
    tool_choice: Any
    items: list[dict[str, Any]]
    """Conversation items in order, GA item JSON; user audio carries its transcript if known."""
    output_modalities: list[str] = field(default_factory=lambda: ["audio"])
    session_id: str = ""
    metadata: dict[str, Any] | None = None

    def last_user_text(self) -> str:
        for item in reversed(self.items):
            if item.get("type") == "message" and item.get("role") == "user":
                parts = [str(c.get("text") or c.get("transcript") or "") for c in item.get("content", [])]
                return " ".join(p for p in parts if p)
        return ""

    def last_item(self) -> dict[str, Any] | None:
        return self.items[-1] if self.items else None


class Responder(Protocol):
    async def respond(self, ctx: ResponseContext) -> ScriptedResponse: ...


TRANSCRIPTION_CONTEXT: ContextVar[ResponseContext | None] = ContextVar("transcription_context", default=None)
"""The conversation a transcription belongs to (what the model would see if it answered now), set
by the session in the task that transcribes, so a transcriber may bias recognition towards the
question just asked. Transcribers that don't need it ignore it."""


class Transcriber(Protocol):
    async def transcribe(self, data: bytes, fmt: str) -> str | None:
        """The transcript of committed user audio in ``fmt``, or None if nothing was recognised."""
        ...


class Synthesizer(Protocol):
    def synthesize(self, text: str, fmt: str, ms_per_word: int) -> list[bytes]:
        """Audio for ``text`` in ``fmt``: one chunk per word (the server groups them into deltas)."""
        ...


class StreamingSynthesizer(Synthesizer, Protocol):
    """A synthesizer that streams: the session prefers ``stream`` when a synthesizer has it."""

    def stream(self, text: str, fmt: str) -> AsyncIterator[tuple[str, bytes]]:
        """Yield ``(transcript piece, audio in fmt)`` as each piece (a sentence) is ready; the
        pieces joined are the transcript."""
        ...


class DefaultResponder:
    """Used when no script is queued: echoes what it heard, acknowledges tool outputs."""

    async def respond(self, ctx: ResponseContext) -> ScriptedResponse:
        last = ctx.last_item()
        if last is not None and last.get("type") == "function_call_output":
            return response(f"The tool returned: {last.get('output', '')}")
        heard = ctx.last_user_text()
        return response(f"I heard: {heard}" if heard else "Hello, how can I help you?")


class ScriptQueue:
    """A FIFO of scripted responses; `pop` returns None when empty."""

    def __init__(self) -> None:
        self._items: deque[ScriptedResponse] = deque()

    def extend(self, values: Iterable[ScriptedResponse | Output | str]) -> None:
        self._items.extend(as_response(v) for v in values)

    def pop(self) -> ScriptedResponse | None:
        return self._items.popleft() if self._items else None

    def __len__(self) -> int:
        return len(self._items)


class ScriptedResponder:
    """Pops from the first non-empty queue given (per-session, then global), else the fallback."""

    def __init__(self, *queues: ScriptQueue, fallback: Responder | None = None) -> None:
        self.queues = queues
        self.fallback: Responder = fallback or DefaultResponder()

    async def respond(self, ctx: ResponseContext) -> ScriptedResponse:
        for queue in self.queues:
            scripted = queue.pop()
            if scripted is not None:
                return scripted
        return await self.fallback.respond(ctx)


class ScriptedTranscriber:
    """Transcripts from a queue (one per committed buffer); None when the queue is empty."""

    def __init__(self) -> None:
        self.queue: deque[str] = deque()

    def extend(self, values: Iterable[str]) -> None:
        self.queue.extend(values)

    async def transcribe(self, data: bytes, fmt: str) -> str | None:
        return self.queue.popleft() if self.queue else None


class ChainTranscriber:
    """First non-None transcript of several transcribers (per-session queue, then global)."""

    def __init__(self, *transcribers: Transcriber) -> None:
        self.transcribers = transcribers

    async def transcribe(self, data: bytes, fmt: str) -> str | None:
        for t in self.transcribers:
            result = await t.transcribe(data, fmt)
            if result is not None:
                return result
        return None


class ToneSynthesizer:
    """Deterministic "speech": a quiet tone of ``ms_per_word`` per word, pitch varying by word."""

    def __init__(self, amplitude: float = 0.05) -> None:
        self.amplitude = amplitude

    def synthesize(self, text: str, fmt: str, ms_per_word: int) -> list[bytes]:
        words = text.split() or [""]
        return [
            audio.tone(ms_per_word, fmt, frequency=180.0 + 20.0 * (len(w) % 8), amplitude=self.amplitude)
            for w in words
        ]
