"""The caller's audio on its way upstream: kept whenever no session can take it.

Frames that arrive while no session is open (the first connect, a recreation) wait in a bounded
backlog, sent oldest first once one is. Frames the open session took but has not committed yet,
and committed audio whose transcript has not come, are kept too (bounded): when the session goes
away they are carried into the next one, so an utterance cut by an expiry or a drop reaches the
new session whole instead of being lost.
"""

from __future__ import annotations

import base64
import collections
from typing import TYPE_CHECKING

from realtime.audio import bytes_per_second

if TYPE_CHECKING:
    from .core import CallSession


class CallerAudio:
    def __init__(self, session: CallSession) -> None:
        self.s = session
        self.limit = session.config.max_buffered_audio_bytes
        self.backlog: list[bytes] = []
        self.backlog_bytes = 0
        # Caller audio the open session holds but has not committed yet: (end ms in that session's
        # input stream, bytes, the frame as sent).
        self.uncommitted: collections.deque[tuple[float, int, bytes | str]] = collections.deque()
        self.uncommitted_bytes = 0
        self.sent_ms = 0.0
        self.speech_end_ms: float | None = None
        # Committed caller audio whose transcript has not come yet, by item.
        self.untranscribed: dict[str, list[bytes | str]] = {}
        self._bytes_per_ms = bytes_per_second(session.config.audio_format) / 1000.0

    def buffer(self, frame: bytes) -> None:
        """A frame no session can take now: into the backlog (oldest dropped past the bound)."""
        self.backlog.append(frame)
        self.backlog_bytes += len(frame)
        self._bound_backlog()

    def _bound_backlog(self) -> None:
        while self.backlog_bytes > self.limit and self.backlog:
            self.backlog_bytes -= len(self.backlog.pop(0))

    async def flush_backlog(self) -> int:
        """Send the caller audio buffered while no session was open, oldest first, once; returns
        how many bytes that was."""
        s = self.s
        buffered = 0
        # Frames may arrive while these are sent; a connection lost meanwhile keeps them buffered
        # (and ends this loop: a failed send puts its frame back, the next session takes them).
        while self.backlog and not s.ended and s.link.conn is not None and not s.link.conn.closed:
            backlog, self.backlog = self.backlog, []
            buffered, self.backlog_bytes = buffered + self.backlog_bytes, 0
            for frame in backlog:
                await s._send({"type": "input_audio_buffer.append", "audio": base64.b64encode(frame).decode("ascii")})
        return buffered

    def sent(self, audio: str) -> None:
        """A base64 frame the open session took: kept until the session commits it (bounded)."""
        self.keep_uncommitted(audio, len(audio) // 4 * 3 - audio.count("=", -2))

    def keep_uncommitted(self, frame: bytes | str, nbytes: int) -> None:
        self.sent_ms += nbytes / self._bytes_per_ms
        self.uncommitted.append((self.sent_ms, nbytes, frame))
        self.uncommitted_bytes += nbytes
        while self.uncommitted_bytes > self.limit and self.uncommitted:
            self.uncommitted_bytes -= self.uncommitted.popleft()[1]

    def drop_committed(self, up_to_ms: float) -> list[bytes | str]:
        taken: list[bytes | str] = []
        while self.uncommitted and self.uncommitted[0][0] <= up_to_ms + 0.5:
            _, nbytes, frame = self.uncommitted.popleft()
            self.uncommitted_bytes -= nbytes
            taken.append(frame)
        return taken

    def carry_uncommitted(self) -> int:
        """The session is going away: what it held uncommitted goes first into the backlog that
        the next session receives (the caller's utterance in progress); returns its bytes."""
        frames = [frame for pending in self.untranscribed.values() for frame in pending]
        frames += [frame for _, _, frame in self.uncommitted]
        carried = [base64.b64decode(frame) if isinstance(frame, str) else frame for frame in frames]
        self.uncommitted.clear()
        self.untranscribed.clear()
        self.uncommitted_bytes = 0
        self.sent_ms = 0.0
        self.speech_end_ms = None
        if carried:
            self.backlog[:0] = carried
            self.backlog_bytes += sum(len(frame) for frame in carried)
            self._bound_backlog()
        return sum(len(frame) for frame in carried)

    def transcribing(self) -> bool:
        audio_input = (self.s.setup.session.get("audio") or {}).get("input") or {}
        return bool(audio_input.get("transcription"))

    # ------------------------------------------------------------ server events

    def on_speech_stopped(self, audio_end_ms: float | None) -> None:
        if audio_end_ms is not None:
            self.speech_end_ms = audio_end_ms

    def on_committed(self, item_id: str) -> None:
        """The session made an item of its input: that audio no longer needs carrying (up to the
        end of the speech the VAD heard, else all sent so far; a silent tail may stay)."""
        taken = self.drop_committed(self.speech_end_ms if self.speech_end_ms is not None else self.sent_ms)
        self.speech_end_ms = None
        if item_id and taken and self.transcribing():
            self.untranscribed[item_id] = taken

    def on_transcribed(self, item_id: str) -> None:
        """The item's words came (or never will): its audio no longer needs carrying."""
        self.untranscribed.pop(item_id, None)

    def on_cleared(self) -> None:
        self.drop_committed(self.sent_ms)
        self.speech_end_ms = None
