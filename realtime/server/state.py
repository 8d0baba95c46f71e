"""Session configuration, conversation items and token accounting (no I/O here)."""

from __future__ import annotations

import copy
import json
import math
import secrets
from dataclasses import dataclass, field
from typing import Any

from realtime import audio as audio_fmt

DEFAULT_MODEL = "gpt-realtime-2"
DEFAULT_INSTRUCTIONS = "You are a helpful, concise voice assistant."
DEFAULT_VOICE = "alloy"


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


def text_tokens(text: str | None) -> int:
    """OpenAI-ish estimate: one token per four characters."""
    return math.ceil(len(text) / 4) if text else 0


def input_audio_tokens(ms: float) -> int:
    """1 token per 100 ms of audio fed to the model."""
    return math.ceil(ms / 100) if ms > 0 else 0


def output_audio_tokens(ms: float) -> int:
    """1 token per 50 ms of audio the model produces."""
    return math.ceil(ms / 50) if ms > 0 else 0


def fill_format(fmt: dict[str, Any] | None) -> dict[str, Any]:
    kind = audio_fmt.format_type(fmt)
    return {"type": kind, "rate": 24000} if kind == audio_fmt.PCM else {"type": kind}


def fill_turn_detection(td: dict[str, Any] | None) -> dict[str, Any] | None:
    if td is None:
        return None
    if td.get("type") == "semantic_vad":
        base: dict[str, Any] = {"type": "semantic_vad", "eagerness": "auto", "create_response": True, "interrupt_response": True}
    else:
        base = {
            "type": "server_vad",
            "threshold": 0.5,
            "prefix_padding_ms": 300,
            "silence_duration_ms": 500,
            "idle_timeout_ms": None,
            "create_response": True,
            "interrupt_response": True,
        }
    base.update({k: v for k, v in td.items() if v is not None or k == "idle_timeout_ms"})
    return base


def default_session(session_id: str, model: str, expires_at: int) -> dict[str, Any]:
    """The GA session object as session.created reports it."""
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": session_id,
        "model": model,
        "output_modalities": ["audio"],
        "instructions": DEFAULT_INSTRUCTIONS,
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "expires_at": expires_at,
        "include": None,
        "audio": {
            "input": {
                "format": {"type": audio_fmt.PCM, "rate": 24000},
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": fill_turn_detection({"type": "server_vad"}),
            },
            "output": {"format": {"type": audio_fmt.PCM, "rate": 24000}, "voice": DEFAULT_VOICE, "speed": 1.0},
        },
    }


def merge_session(config: dict[str, Any], update: dict[str, Any]) -> None:
    """Apply a (validated) session.update payload: present fields replace, nested audio merges."""
    for key, value in update.items():
        if key == "audio" and isinstance(value, dict):
            for side in ("input", "output"):
                side_update = value.get(side)
                if not isinstance(side_update, dict):
                    continue
                target = config["audio"][side]
                for k, v in side_update.items():
                    if k == "format":
                        target[k] = fill_format(v)
                    elif k == "turn_detection":
                        target[k] = fill_turn_detection(v)
                    else:
                        target[k] = copy.deepcopy(v)
        elif key not in ("type",):
            config[key] = copy.deepcopy(value)


@dataclass
class Item:
    """A conversation item: its GA JSON (without audio bytes) plus the audio of each content part."""

    data: dict[str, Any]
    audio: dict[int, bytes] = field(default_factory=dict)
    audio_format: str = audio_fmt.PCM
    heard: list[tuple[int, int]] = field(default_factory=list)
    """Assistant audio: (bytes of audio, characters of transcript) after each audio delta, so a
    truncate keeps the words whose audio the caller has heard."""
    cut: bool = False
    """Truncated while still being generated: no further audio or transcript for it."""

    def heard_transcript(self, transcript: str, audio_bytes: int) -> str:
        """The part of ``transcript`` sent with the first ``audio_bytes`` of audio."""
        chars = 0
        for sent_bytes, sent_chars in self.heard:
            if sent_bytes > audio_bytes:
                break
            chars = sent_chars
        return transcript[:chars].rstrip()

    @property
    def id(self) -> str:
        return str(self.data["id"])

    def audio_ms(self, index: int = 0) -> int:
        return len(self.audio.get(index, b"")) // audio_fmt.bytes_per_ms(self.audio_format)

    def public(self, *, with_audio: bool = False) -> dict[str, Any]:
        """The item as events carry it (a deep copy); audio base64 only on request (retrieve)."""
        data = copy.deepcopy(self.data)
        if with_audio:
            import base64

            for index, chunk in self.audio.items():
                data["content"][index]["audio"] = base64.b64encode(chunk).decode()
        return data

    def is_assistant_message(self) -> bool:
        return self.data.get("type") == "message" and self.data.get("role") == "assistant"


@dataclass(frozen=True)
class Segment:
    """One piece of a response's input, for token and cache accounting."""

    key: str
    text_tokens: int
    audio_tokens: int


def item_segment(item: Item) -> Segment:
    data = item.data
    txt = 0
    aud = 0
    if data.get("type") == "message":
        for index, part in enumerate(data.get("content", [])):
            kind = part.get("type")
            if kind in ("input_audio", "output_audio"):
                aud += input_audio_tokens(item.audio_ms(index))
                if kind == "input_audio" and index not in item.audio:
                    txt += text_tokens(part.get("transcript"))
            else:
                txt += text_tokens(part.get("text"))
    elif data.get("type") == "function_call":
        txt += text_tokens(str(data.get("name", ""))) + text_tokens(str(data.get("arguments", "")))
    elif data.get("type") == "function_call_output":
        txt += text_tokens(str(data.get("output", "")))
    key = json.dumps([data, {i: len(a) for i, a in item.audio.items()}], sort_keys=True)
    return Segment(key, txt, aud)


def input_segments(instructions: str, tools: list[dict[str, Any]], items: list[Item]) -> list[Segment]:
    segments = [Segment("instructions:" + instructions, text_tokens(instructions), 0)]
    if tools:
        tools_json = json.dumps(tools, sort_keys=True)
        segments.append(Segment("tools:" + tools_json, text_tokens(tools_json), 0))
    segments.extend(item_segment(item) for item in items)
    return segments


def usage(
    segments: list[Segment], previous: list[Segment] | None, out_text: int, out_audio: int
) -> dict[str, Any]:
    """The GA `response.done` usage object; cached = the common prefix with the previous input."""
    in_text = sum(s.text_tokens for s in segments)
    in_audio = sum(s.audio_tokens for s in segments)
    cached_text = cached_audio = 0
    if previous:
        for a, b in zip(segments, previous, strict=False):
            if a.key != b.key:
                break
            cached_text += a.text_tokens
            cached_audio += a.audio_tokens
    total_in = in_text + in_audio
    return {
        "total_tokens": total_in + out_text + out_audio,
        "input_tokens": total_in,
        "output_tokens": out_text + out_audio,
        "input_token_details": {
            "text_tokens": in_text,
            "audio_tokens": in_audio,
            "image_tokens": 0,
            "cached_tokens": cached_text + cached_audio,
            "cached_tokens_details": {"text_tokens": cached_text, "audio_tokens": cached_audio, "image_tokens": 0},
        },
        "output_token_details": {"text_tokens": out_text, "audio_tokens": out_audio},
    }
