"""What the caller actually heard of each assistant audio item.

The model generates audio faster than real time; the transport plays it out. On barge-in the
assistant item must be truncated at what was *heard*, not at what was generated. The transport
feeds this tracker (played bytes or milliseconds per item, or Twilio marks acknowledged); when
it reports nothing, playback is estimated from the wall clock since the item's first audio.

Only items the engine produced are tracked (a report naming any other id is refused), and the
tracker is bounded: the newest MAX_TRACKED_ITEMS items and MAX_TRACKED_MARKS unacknowledged
marks are kept, older ones dropped. `clear()` empties it when the call ends.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from realtime.config import AudioFormat

#: Assistant items kept (barge-in only ever truncates a recent one) and marks awaiting an ack.
MAX_TRACKED_ITEMS = 32
MAX_TRACKED_MARKS = 1024

BYTES_PER_MS: dict[str, int] = {
    "audio/pcm": 48,  # 24 kHz, 16-bit mono
    "audio/pcmu": 8,  # 8 kHz G.711 mu-law
    "audio/pcma": 8,  # 8 kHz G.711 A-law
}


@dataclass
class ItemPlayback:
    item_id: str
    generated_bytes: int = 0
    played_ms: float | None = None  # reported by the transport
    first_audio_at: float | None = None
    content_index: int = 0


@dataclass
class _Mark:
    item_id: str
    end_ms: float


@dataclass
class PlaybackTracker:
    audio_format: AudioFormat = "audio/pcm"
    items: dict[str, ItemPlayback] = field(default_factory=dict)
    current_item_id: str | None = None
    _marks: dict[str, _Mark] = field(default_factory=dict)

    @property
    def bytes_per_ms(self) -> int:
        return BYTES_PER_MS[self.audio_format]

    def on_audio_generated(self, item_id: str, nbytes: int, content_index: int = 0) -> None:
        """The engine got ``nbytes`` of assistant audio for ``item_id`` (sent to the transport)."""
        item = self.items.get(item_id)
        if item is None:
            item = self.items[item_id] = ItemPlayback(item_id, content_index=content_index)
            item.first_audio_at = time.monotonic()
            while len(self.items) > MAX_TRACKED_ITEMS:
                self.forget(next(iter(self.items)))
        item.generated_bytes += nbytes
        self.current_item_id = item_id

    def generated_ms(self, item_id: str) -> int:
        item = self.items.get(item_id)
        return item.generated_bytes // self.bytes_per_ms if item else 0

    def knows(self, item_id: str) -> bool:
        return item_id in self.items

    def report_played_ms(self, item_id: str, played_ms: float) -> bool:
        """Record what the caller heard of ``item_id``; False (nothing kept) for an item the engine
        did not produce or no longer tracks."""
        item = self.items.get(item_id)
        if item is None:
            return False
        item.played_ms = max(item.played_ms or 0.0, float(played_ms))
        return True

    def report_played_bytes(self, item_id: str, played_bytes: int) -> bool:
        return self.report_played_ms(item_id, played_bytes / self.bytes_per_ms)

    def mark_sent(self, name: str, item_id: str | None = None, end_ms: float | None = None) -> None:
        """The transport queued a mark after the audio sent so far (Twilio ``mark`` message)."""
        target = item_id or self.current_item_id
        if target is None:
            return
        self._marks[name] = _Mark(target, self.generated_ms(target) if end_ms is None else end_ms)
        while len(self._marks) > MAX_TRACKED_MARKS:
            del self._marks[next(iter(self._marks))]

    def mark_played(self, name: str) -> None:
        """The transport acknowledged a mark: the audio before it has been heard."""
        mark = self._marks.pop(name, None)
        if mark is not None:
            self.report_played_ms(mark.item_id, mark.end_ms)

    def audio_end_ms(self, item_id: str) -> int:
        """Milliseconds of ``item_id`` the caller heard, never beyond the audio generated."""
        item = self.items.get(item_id)
        if item is None:
            return 0
        generated = item.generated_bytes // self.bytes_per_ms
        if item.played_ms is not None:
            heard = item.played_ms
        elif item.first_audio_at is not None:
            heard = (time.monotonic() - item.first_audio_at) * 1000.0
        else:
            heard = 0.0
        return int(max(0.0, min(heard, float(generated))))

    def is_playing(self, item_id: str | None = None) -> bool:
        """Whether the caller may still be hearing assistant audio of ``item_id`` (or the latest)."""
        target = item_id or self.current_item_id
        if target is None or target not in self.items:
            return False
        return self.audio_end_ms(target) < self.generated_ms(target)

    def forget(self, item_id: str) -> None:
        self.items.pop(item_id, None)
        for name in [n for n, m in self._marks.items() if m.item_id == item_id]:
            del self._marks[name]
        if self.current_item_id == item_id:
            self.current_item_id = None

    def clear(self) -> None:
        """The call ended: drop every item and mark."""
        self.items.clear()
        self._marks.clear()
        self.current_item_id = None
