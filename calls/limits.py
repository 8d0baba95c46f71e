"""Limits that keep one caller, one user or one stray socket from taking more than its share.

- `RateLimit`: a token bucket per connection (typed turns, push-to-talk, playback reports, the
  error frames we send back), so a flood is dropped, not queued.
- `SocketSlots`: how many sockets of one kind are open in this server process, per key (a user,
  or the Twilio media sockets that have not yet sent a valid `start`). A slot is taken when a
  socket is accepted and given back when its consumer ends, however it ends (`SlotHolder`).

The counts are per process: with N daphne processes a user may hold N times the cap. The count of
a user's live calls, which every process must agree on, is read from the call records instead
(`live_calls_of`).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer


class RateLimit:
    """At most ``burst`` events at once, refilled at ``per_second``."""

    def __init__(self, per_second: float, burst: float) -> None:
        self.per_second = float(per_second)
        self.burst = float(burst)
        self.tokens = float(burst)
        self.updated = time.monotonic()

    def allow(self, cost: float = 1.0) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.per_second)
        self.updated = now
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False


class SocketSlots:
    """Open sockets per key in this process, each at most ``cap`` (read at take time)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.open: Counter[Any] = Counter()

    def take(self, key: Any, cap: int) -> bool:
        if self.open[key] >= cap:
            return False
        self.open[key] += 1
        return True

    def give_back(self, key: Any) -> None:
        self.open[key] -= 1
        if self.open[key] <= 0:
            del self.open[key]

    def count(self, key: Any) -> int:
        return self.open.get(key, 0)


#: Every browser socket (call page and dashboards) of a logged-in user.
USER_SOCKETS = SocketSlots("user sockets")
#: Twilio media sockets that have not (yet) started a call.
PENDING_TWILIO_STREAMS = SocketSlots("pending twilio streams")


class SlotHolder(AsyncWebsocketConsumer):
    """A consumer that holds slots (`hold`) and gives each back when its ASGI application ends,
    whether it closed cleanly, crashed, or was cancelled by the server."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self._held_slots: list[tuple[SocketSlots, Any]] = []
        try:
            await super().__call__(scope, receive, send)
        finally:
            while self._held_slots:
                slots, key = self._held_slots.pop()
                slots.give_back(key)
            await self.on_application_end()

    def hold(self, slots: SocketSlots, key: Any, cap: int) -> bool:
        if not slots.take(key, cap):
            return False
        self._held_slots.append((slots, key))
        return True

    def release(self, slots: SocketSlots, key: Any) -> None:
        if (slots, key) in self._held_slots:
            self._held_slots.remove((slots, key))
            slots.give_back(key)

    async def on_application_end(self) -> None:
        """Last clean-up, on every exit path (the group memberships of a dashboard socket)."""


def live_calls_of(user_id: int) -> int:
    """The user's calls that have not ended, across every server process."""
    from calls.models import Call

    return Call.objects.filter(user_id=user_id).exclude(status=Call.Status.ENDED).count()
