"""Typed model events: what the Realtime connection reports, with the wire format left behind.

``RealtimeConnection`` receives GA server events as JSON; ``parse`` turns the ones a call session
acts on into the small dataclasses below, one per meaning: the transcript and text forms of an
assistant delta are one ``OutputTextDelta``, a function call finished through either of its two
events is one ``FunctionCallDone``. Events a session ignores parse to ``None``; the raw payload
stays available on ``ServerEvent`` for the protocol log. The events are read-only by convention
(not frozen: that costs time on every audio delta).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class ModelError:
    code: str
    message: str
    event_id: str | None = None


@dataclass(slots=True)
class SessionUpdated:
    pass


@dataclass(slots=True)
class ItemAdded:
    """An item entered the server's conversation (created by us, by the VAD or by a response)."""

    item_id: str
    kind: str
    role: str = ""
    text: str = ""
    call_id: str = ""


@dataclass(slots=True)
class ItemDeleted:
    item_id: str


@dataclass(slots=True)
class InputTranscriptDelta:
    item_id: str
    delta: str


@dataclass(slots=True)
class InputTranscriptDone:
    item_id: str
    transcript: str


@dataclass(slots=True)
class InputTranscriptFailed:
    item_id: str


@dataclass(slots=True)
class SpeechStarted:
    pass


@dataclass(slots=True)
class SpeechStopped:
    audio_end_ms: float | None


@dataclass(slots=True)
class InputCommitted:
    item_id: str


@dataclass(slots=True)
class InputCleared:
    pass


@dataclass(slots=True)
class DtmfReceived:
    digit: str


@dataclass(slots=True)
class IdleTimeout:
    item_id: str
    audio_start_ms: int
    audio_end_ms: int


@dataclass(slots=True)
class ResponseCreated:
    response_id: str


@dataclass(slots=True)
class AudioDelta:
    item_id: str
    content_index: int
    data: bytes
    base64: str


@dataclass(slots=True)
class OutputTextDelta:
    """A piece of the assistant's words (its audio transcript, or text in a text session)."""

    item_id: str
    delta: str


@dataclass(slots=True)
class OutputTextDone:
    item_id: str
    text: str | None


@dataclass(slots=True)
class FunctionCallDone:
    call_id: str
    name: str
    arguments: str


@dataclass(slots=True)
class ResponseDone:
    response_id: str
    status: str | None
    usage: dict[str, Any] | None
    output_ids: frozenset[str]
    called_tool: bool


ModelEvent = (
    ModelError | SessionUpdated | ItemAdded | ItemDeleted | InputTranscriptDelta | InputTranscriptDone
    | InputTranscriptFailed | SpeechStarted | SpeechStopped | InputCommitted | InputCleared | DtmfReceived
    | IdleTimeout | ResponseCreated | AudioDelta | OutputTextDelta | OutputTextDone | FunctionCallDone
    | ResponseDone
)


def _str(p: Mapping[str, Any], key: str) -> str:
    return str(p.get(key) or "")


def item_text(item: Mapping[str, Any]) -> str:
    parts = item.get("content") or []
    return "".join(str(p.get("text") or p.get("transcript") or "") for p in parts if isinstance(p, dict))


def _error(p: Mapping[str, Any]) -> ModelError:
    err = p.get("error") or {}
    return ModelError(code=str(err.get("code") or err.get("type") or "error"), message=str(err.get("message") or ""),
                      event_id=err.get("event_id"))


def _item_added(p: Mapping[str, Any]) -> ItemAdded | None:
    item = p.get("item") or {}
    item_id = item.get("id")
    if not item_id:
        return None
    return ItemAdded(item_id=str(item_id), kind=str(item.get("type") or ""), role=str(item.get("role") or ""),
                     text=item_text(item) if item.get("type") == "message" else "",
                     call_id=str(item.get("call_id") or ""))


def _audio_delta(p: Mapping[str, Any]) -> AudioDelta:
    delta = p.get("delta") or ""
    return AudioDelta(item_id=_str(p, "item_id"), content_index=int(p.get("content_index") or 0),
                      data=base64.b64decode(delta), base64=delta if isinstance(delta, str) else "")


def _output_done(p: Mapping[str, Any]) -> OutputTextDone:
    final = p.get("transcript") if "transcript" in p else p.get("text")
    return OutputTextDone(item_id=_str(p, "item_id"), text=final if isinstance(final, str) else None)


def _function_call(p: Mapping[str, Any]) -> FunctionCallDone:
    return FunctionCallDone(call_id=_str(p, "call_id"), name=_str(p, "name"), arguments=_str(p, "arguments"))


def _output_item_done(p: Mapping[str, Any]) -> FunctionCallDone | None:
    item = p.get("item") or {}
    return _function_call(item) if item.get("type") == "function_call" else None


def _response_done(p: Mapping[str, Any]) -> ResponseDone:
    response = p.get("response") or {}
    outputs = [o for o in response.get("output") or [] if isinstance(o, dict)]
    return ResponseDone(
        response_id=str(response.get("id") or ""), status=response.get("status"), usage=response.get("usage"),
        output_ids=frozenset(str(o.get("id") or "") for o in outputs),
        called_tool=any(o.get("type") == "function_call" for o in outputs),
    )


def _speech_stopped(p: Mapping[str, Any]) -> SpeechStopped:
    end = p.get("audio_end_ms")
    return SpeechStopped(audio_end_ms=float(end) if isinstance(end, (int, float)) else None)


_PARSERS: dict[str, Callable[[Mapping[str, Any]], ModelEvent | None]] = {
    "error": _error,
    "session.updated": lambda p: SessionUpdated(),
    "conversation.item.added": _item_added,
    "conversation.item.created": _item_added,
    "response.output_item.added": _item_added,
    "conversation.item.deleted": lambda p: ItemDeleted(_str(p, "item_id")),
    "conversation.item.input_audio_transcription.delta":
        lambda p: InputTranscriptDelta(_str(p, "item_id"), str(p.get("delta") or "")),
    "conversation.item.input_audio_transcription.completed":
        lambda p: InputTranscriptDone(_str(p, "item_id"), str(p.get("transcript") or "")),
    "conversation.item.input_audio_transcription.failed": lambda p: InputTranscriptFailed(_str(p, "item_id")),
    "input_audio_buffer.speech_started": lambda p: SpeechStarted(),
    "input_audio_buffer.speech_stopped": _speech_stopped,
    "input_audio_buffer.committed": lambda p: InputCommitted(_str(p, "item_id")),
    "input_audio_buffer.cleared": lambda p: InputCleared(),
    "input_audio_buffer.dtmf_event_received": lambda p: DtmfReceived(str(p.get("event", ""))),
    "input_audio_buffer.timeout_triggered": lambda p: IdleTimeout(
        _str(p, "item_id"), int(p.get("audio_start_ms") or 0), int(p.get("audio_end_ms") or 0)),
    "response.created": lambda p: ResponseCreated(str((p.get("response") or {}).get("id", ""))),
    "response.output_audio.delta": _audio_delta,
    "response.output_audio_transcript.delta": lambda p: OutputTextDelta(_str(p, "item_id"), str(p.get("delta") or "")),
    "response.output_text.delta": lambda p: OutputTextDelta(_str(p, "item_id"), str(p.get("delta") or "")),
    "response.output_audio_transcript.done": _output_done,
    "response.output_text.done": _output_done,
    "response.function_call_arguments.done": _function_call,
    "response.output_item.done": _output_item_done,
    "response.done": _response_done,
}


def parse(payload: Mapping[str, Any]) -> ModelEvent | None:
    """The typed event for a GA server event, or None for one no session acts on."""
    parser = _PARSERS.get(str(payload.get("type", "")))
    return parser(payload) if parser is not None else None
