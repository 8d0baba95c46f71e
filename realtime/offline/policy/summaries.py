"""Summaries of a conversation in text mode (the supervisor's and post-call summaries offline)."""

from __future__ import annotations

import re


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


_ROLE_LINE = re.compile(r"\b(user|caller|customer|assistant|agent)\s*:\s*", re.IGNORECASE)


def summarize(lines: list[str]) -> str:
    """A short extractive summary of a conversation (text mode): what the caller asked and the
    agent's last answer. Transcript lines like "user: ..." / "assistant: ..." are understood."""
    caller: list[str] = []
    agent: list[str] = []
    for line in lines:
        parts = _ROLE_LINE.split(line)
        if len(parts) == 1:
            text = re.sub(r"^.*?summari[sz]e[^:]*:\s*", "", line, flags=re.IGNORECASE).strip()
            if text and not re.fullmatch(r".*summari[sz]e.*", text, re.IGNORECASE):
                caller.append(text)
            continue
        for role, text in zip(parts[1::2], parts[2::2], strict=False):
            text = text.strip()
            if text:
                (caller if role.lower() in ("user", "caller", "customer") else agent).append(text)
    if not caller and not agent:
        return "No conversation to summarize."
    out = []
    if caller:
        out.append(_sentence("The caller said: " + " ".join(caller[:3])))
    if agent:
        out.append(_sentence("The agent's last reply: " + agent[-1]))
    return " ".join(out)[:600]
