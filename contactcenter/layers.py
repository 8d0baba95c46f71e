"""The Redis channel layer, kept through a Redis restart.

channels_redis raises out of `receive` when Redis goes away, and a consumer's receive loop is
outside its handlers, so the exception would end every live call of the worker with 1011 even though
no audio crosses Redis. This layer waits and tries again instead, and once Redis answers again it
adds this worker's channels back to their groups (a restarted Redis without persistence has
forgotten them), so supervisors' actions and Celery's messages reach the calls again. What was
published while Redis was away is not replayed here: dashboards resume from the event log. A
channel registered with `want_resumed` (the dashboard sockets) is sent `{"type": "layer.resumed"}`
once its groups are back, and catches up from the log then (without waiting for the next event).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from channels_redis.core import RedisChannelLayer
from redis import exceptions as redis_errors

logger = logging.getLogger(__name__)

RETRY_SECONDS = (0.1, 0.2, 0.5, 1.0)


class ResilientRedisChannelLayer(RedisChannelLayer):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.memberships: dict[str, set[str]] = {}  # channel -> groups this worker added it to
        self._rejoin_lock = asyncio.Lock()
        self._outage = 0  # bumped on each failure; groups are added back once after it
        self.resumed_listeners: set[str] = set()  # channels told "layer.resumed" after an outage

    def want_resumed(self, channel: str) -> None:
        self.resumed_listeners.add(channel)

    def forget_resumed(self, channel: str) -> None:
        self.resumed_listeners.discard(channel)

    async def group_add(self, group: str, channel: str) -> None:
        """channels_redis's add (the channel in the group's sorted set, the set's expiry renewed)
        in one round trip instead of two: every call and dashboard socket joins a group."""
        self.memberships.setdefault(channel, set()).add(group)
        assert self.require_valid_group_name(group), "Group name not valid"
        assert self.require_valid_channel_name(channel), "Channel name not valid"
        key = self._group_key(group)
        pipe = self.connection(self.consistent_hash(group)).pipeline(transaction=False)
        pipe.zadd(key, {channel: time.time()})
        pipe.expire(key, self.group_expiry)
        await pipe.execute()

    async def group_discard(self, group: str, channel: str) -> None:
        groups = self.memberships.get(channel)
        if groups is not None:
            groups.discard(group)
            if not groups:
                del self.memberships[channel]
        await super().group_discard(group, channel)

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        """channels_redis's send, after a look at the group in one round trip: most groups a call
        publishes to (its events, the dashboard) have nobody in them, and channels_redis would
        spend two round trips to find that out."""
        assert self.require_valid_group_name(group), "Group name not valid"
        key = self._group_key(group)
        pipe = self.connection(self.consistent_hash(group)).pipeline(transaction=False)
        pipe.zremrangebyscore(key, min=0, max=int(time.time()) - self.group_expiry)
        pipe.exists(key)
        _, members = await pipe.execute()
        if members:
            await super().group_send(group, message)

    async def receive(self, channel: str) -> Any:
        failures = 0
        while True:
            try:
                if failures:
                    await self._rejoin()
                return await super().receive(channel)
            except (redis_errors.ConnectionError, redis_errors.TimeoutError, ConnectionError, OSError) as error:
                if failures == 0:
                    logger.warning("channel layer: Redis is unreachable (%s); retrying", error)
                self._outage += 1
                await asyncio.sleep(RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)])
                failures += 1

    async def _rejoin(self) -> None:
        """Add every channel of this worker back to its groups, once per outage (idempotent)."""
        async with self._rejoin_lock:
            if not self._outage:
                return
            outage, self._outage = self._outage, 0
            try:
                for channel, groups in list(self.memberships.items()):
                    for group in list(groups):
                        await super().group_add(group, channel)
            except BaseException:
                self._outage = max(self._outage, outage)
                raise
            logger.info("channel layer: Redis answers again; %d channels back in their groups", len(self.memberships))
        for channel in list(self.resumed_listeners):
            try:
                await super().send(channel, {"type": "layer.resumed"})
            except Exception:  # that socket catches up at its next event instead
                logger.warning("channel layer: could not tell %s that Redis is back", channel, exc_info=True)
