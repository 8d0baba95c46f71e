"""The call's context: its transcript, the server's conversation, rolling summaries.

The transcript is the whole call and is never shortened. The Realtime conversation is kept short:
every N caller turns the older items there are replaced by one summary item. Each summary records
the transcript items it covers (by id), so a recreated session's restore knows exactly which
older turns the summary already holds and condenses only the rest.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from realtime import events as ev
from realtime.context import SUMMARY_PREFIX, TranscriptItem, extractive_summary, text_item

from .util import new_id

if TYPE_CHECKING:
    from .core import CallSession


class ConversationContext:
    def __init__(self, session: CallSession) -> None:
        self.s = session
        self.transcript: list[TranscriptItem] = []
        self.items: dict[str, TranscriptItem] = {}
        self.server_items: list[str] = []
        """The server conversation's item ids, in order."""
        self.internal_items: set[str] = set()
        """Items the engine made (summaries, whispers, restored copies, results): not transcript."""
        self.whispers: list[str] = []  # supervisor instructions, restored into a recreated session
        self.summary = ""
        self.summarized: set[str] = set()
        """The transcript items the summary covers."""
        self._summary_item_id: str | None = None
        self._summarizing = False
        self.user_turns = 0
        self.restored_count = 0

    def add_transcript(self, item_id: str, role: str, text: str, *, done: bool) -> TranscriptItem:
        item = TranscriptItem(item_id=item_id, role=role, text=text, agent=self.s.current_agent, done=done)
        self.transcript.append(item)
        self.items[item_id] = item
        return item

    def ensure_item(self, item_id: str, role: str) -> TranscriptItem:
        item = self.items.get(item_id)
        if item is None:
            item = self.add_transcript(item_id, role, "", done=False)
        return item

    def forget_server_item(self, item_id: str) -> None:
        if item_id in self.server_items:
            self.server_items.remove(item_id)

    def is_ours(self, item_id: str) -> bool:
        """An item the engine made or already holds (not a new caller or agent message)."""
        return item_id in self.internal_items or item_id in self.items

    def count_user_turn(self) -> None:
        self.user_turns += 1
        every = self.s.spec.limits.summarize_every_turns
        if every > 0 and self.user_turns % every == 0 and not self._summarizing:
            self.s._spawn(self._summarize())

    def _summary_cut(self) -> int:
        """Index in the server conversation before which items are condensed."""
        keep = max(1, self.s.config.keep_recent_turns)
        user_positions = [
            i for i, item_id in enumerate(self.server_items)
            if (item := self.items.get(item_id)) is not None and item.role == "user"
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
            ids = self.server_items[:cut]
            turns = [self.items[i] for i in ids if i in self.items]
            if not turns:
                return
            try:
                text = await self.s.summarizer(turns, self.summary)
            except Exception as exc:  # noqa: BLE001 — best effort, reported
                await self.s._emit(ev.Error(code="summarizer_failed", message=f"{type(exc).__name__}: {exc}", source="engine"))
                return
            await self.apply_summary(text, up_to_item_id=ids[-1])
        finally:
            self._summarizing = False

    async def apply_summary(self, text: str, up_to_item_id: str | None = None) -> int:
        """Replace the server conversation's items up to ``up_to_item_id`` (default: all but the
        last ``keep_recent_turns`` caller turns) by one summary item; returns items removed."""
        s = self.s
        if s.ended or s.link.conn is None or s.link.recreating:
            return 0
        if up_to_item_id is not None and up_to_item_id in self.server_items:
            cut = self.server_items.index(up_to_item_id) + 1
        else:
            cut = self._summary_cut()
        old = list(self.server_items[:cut])
        if self._summary_item_id and self._summary_item_id not in old and self._summary_item_id in self.server_items:
            old.append(self._summary_item_id)
        for item_id in old:
            await s._send({"type": "conversation.item.delete", "item_id": item_id})
            self.forget_server_item(item_id)
        self.summary = text
        self.summarized.update(item_id for item_id in old if item_id in self.items)
        summary_id = new_id("sum")
        self.internal_items.add(summary_id)
        self._summary_item_id = summary_id
        await s._send({
            "type": "conversation.item.create",
            "previous_item_id": "root",
            "item": text_item(summary_id, "system", SUMMARY_PREFIX + text),
        })
        await s._emit(ev.ContextSummarized(summary=text, removed_items=len(old), turn=self.user_turns))
        return len(old)

    async def session_going(self, untranscribed: Collection[str]) -> None:
        """The session is going away. A caller item still waiting for its transcript is said again
        in the new session (its audio is carried): it leaves the transcript instead of ending
        empty. What was being said stays in the transcript, marked done (an agent's: cut off)."""
        if untranscribed:
            waiting = set(untranscribed)
            self.transcript[:] = [i for i in self.transcript if i.item_id not in waiting or i.done]
            for item_id in waiting:
                if item_id in self.items and not self.items[item_id].done:
                    del self.items[item_id]
        for item in self.transcript:
            if not item.done:
                item.done = True
                item.interrupted = item.role == "assistant"
                await self.s._emit(ev.TranscriptDone(role=item.role, item_id=item.item_id, text=item.text,  # type: ignore[arg-type]
                                                     agent=item.agent, interrupted=item.interrupted))

    def session_gone(self) -> None:
        """The server conversation went with its session (the transcript stays)."""
        self.server_items.clear()
        self._summary_item_id = None

    async def restore(self) -> None:
        """Summary, whispers and recent turns, as text items, into a fresh session."""
        s = self.s
        items = [i for i in self.transcript if i.text.strip()]
        keep = s.config.restore_recent_items
        recent = items[-keep:] if keep > 0 else []
        older = items[: len(items) - len(recent)]
        summary = self.summary
        uncovered = [i for i in older if i.item_id not in self.summarized]
        if uncovered:
            summary = await extractive_summary(uncovered, self.summary)
            self.summarized.update(i.item_id for i in uncovered)
        restored = 0
        if summary:
            self.summary = summary
            self._summary_item_id = await s._send_text_item("sum", "system", SUMMARY_PREFIX + summary)
            restored += 1
        for instruction in self.whispers:
            await s._send_text_item("wsp", "system", instruction)
            restored += 1
        for item in recent:
            text = item.text + (" [cut off]" if item.interrupted and item.role == "assistant" else "")
            await s._send_text_item("rst", item.role, text)
            restored += 1
        self.restored_count = restored
