"""Guardrails on the agent's words while it speaks.

The assistant's transcript is checked as it grows (every ``guardrail_check_chars``) and when it
is done. A tripped check stops the response, cuts or deletes what was said, and asks the agent
for a correction in its place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from realtime import events as ev
from realtime.context import TranscriptItem
from realtime.guardrails import StreamingCheck, Verdict

if TYPE_CHECKING:
    from .core import CallSession


class GuardrailMonitor:
    def __init__(self, session: CallSession) -> None:
        self.s = session
        self._check = StreamingCheck(every=session.config.guardrail_check_chars)

    def on_text(self, item: TranscriptItem, *, final: bool) -> None:
        """The assistant's words so far (``final``: all of them): checked when one is due."""
        due = self._check.final(item.item_id, item.text) if final else self._check.due(item.item_id, item.text)
        if due:
            self.s._spawn(self._run(item.item_id, item.text))

    async def _run(self, item_id: str, text: str) -> None:
        s = self.s
        try:
            verdict = await s.classifier.classify(text)
        except Exception as exc:  # noqa: BLE001 — best effort, reported
            await s._emit(ev.Error(code="guardrail_failed", message=f"{type(exc).__name__}: {exc}", source="engine"))
            return
        if verdict is None or item_id in self._check.tripped or s.ended:
            return
        self._check.tripped.add(item_id)
        await self._trip(item_id, text, verdict)

    async def _trip(self, item_id: str, text: str, verdict: Verdict) -> None:
        s = self.s
        item = s.context.items.get(item_id)
        agent = item.agent if item else s.current_agent
        await s._emit(ev.GuardrailTripped(
            category=verdict.category, text=text, item_id=item_id, agent=agent,
            matched=verdict.matched,
            classifier=verdict.classifier or getattr(s.classifier, "name", ""),
        ))
        if s.responses.active:
            await s._send({"type": "response.cancel"})
        if s.playback.generated_ms(item_id) > 0:
            await s.turns.cut_assistant_audio(item_id, reason="guardrail")
        elif item_id in s.context.server_items:
            await s._send({"type": "conversation.item.delete", "item_id": item_id})
        if item is not None:
            item.interrupted = True
        await s._send_text_item("fix", "system", s.config.guardrail_correction)
        await s.responses.request()
