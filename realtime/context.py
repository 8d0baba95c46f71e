"""The call's transcript and the rolling context of the Realtime conversation.

The transcript (``TranscriptItem`` list) is the whole call, kept here and never shortened. The
Realtime session's conversation is another matter: every N user turns, older items there are
replaced by one summary text item so the input tokens per response stay flat. The summariser
is pluggable (``Summarizer``); the default is extractive and deterministic so it works offline.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

SUMMARY_PREFIX = "Summary of the call so far (older turns were condensed): "


@dataclass
class TranscriptItem:
    item_id: str
    role: str  # user | assistant
    text: str
    agent: str
    done: bool = False
    interrupted: bool = False
    heard_ms: int | None = None

    def as_message(self) -> dict[str, str]:
        return {"role": self.role, "content": self.text}


Summarizer = Callable[[Sequence[TranscriptItem], str], Awaitable[str]]
"""``async (turns to condense, previous summary) -> new summary text``."""

_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_MAX_SUMMARY_CHARS = 600


def speaker(role: str, agent: str = "") -> str:
    """How a summary names who spoke a turn: "Caller", or "Agent (<agent slug>)"."""
    return "Caller" if role == "user" else f"Agent ({agent or 'agent'})"


def transcript_lines(turns: Sequence[tuple[str, str, str]], *, first_sentence: bool = False) -> list[str]:
    """"<speaker>: <text>" for each (role, agent, text) turn with words in it; with
    ``first_sentence``, only each turn's first sentence (the extractive summary's lines)."""
    lines = []
    for role, agent, text in turns:
        text = text.strip()
        if text:
            lines.append(f"{speaker(role, agent)}: {_first_sentence(text) if first_sentence else text}")
    return lines


def _first_sentence(text: str, limit: int = 120) -> str:
    sentence = _SENTENCE.split(text.strip(), maxsplit=1)[0]
    return sentence if len(sentence) <= limit else sentence[: limit - 1] + "…"


async def extractive_summary(turns: Sequence[TranscriptItem], previous: str = "") -> str:
    """Deterministic: the previous summary plus the first sentence of each condensed turn,
    capped in length (oldest lines dropped first) so the summary itself stays bounded."""
    lines = [line for line in previous.splitlines() if line.strip()]
    condensed = transcript_lines([(t.role, t.agent, t.text) for t in turns], first_sentence=True)
    lines.extend(f"- {line}" for line in condensed)
    while lines and sum(len(line) + 1 for line in lines) > _MAX_SUMMARY_CHARS:
        lines.pop(0)
    return "\n".join(lines)


def text_item(item_id: str, role: str, text: str) -> dict[str, object]:
    """A GA conversation item holding ``text`` (user/system: input_text, assistant: output_text)."""
    part_type = "output_text" if role == "assistant" else "input_text"
    return {
        "id": item_id,
        "type": "message",
        "role": role,
        "content": [{"type": part_type, "text": text}],
    }
