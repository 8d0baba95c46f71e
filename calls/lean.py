"""The lean route of a call socket's messages inside Channels.

Channels' consumer loop (`channels.utils.await_many_dispatch`) makes a new task for the next
message of each source and an `asyncio.wait` over both for every message it delivers; for a
phone call that is fifty times a second, and it costs more than the frame itself. `LeanLoop` runs
the same consumer with one loop that awaits the socket directly and one task that awaits the
channel layer, each handing its messages to the consumer's `dispatch` one at a time (a lock
keeps Channels' guarantee that handlers never run concurrently). Everything else (handlers,
groups, `StopConsumer`, the close on the way out) is Channels' own.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from typing import Any

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer


class LeanLoop(AsyncWebsocketConsumer):
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.base_send = send
        lock = asyncio.Lock()
        layer_task: asyncio.Task[None] | None = None
        if self.channel_layer is not None:
            self.channel_name = await self.channel_layer.new_channel()
            self.channel_receive = functools.partial(self.channel_layer.receive, self.channel_name)
            main = asyncio.current_task()

            async def from_layer() -> None:
                while True:
                    message = await self.channel_receive()
                    async with lock:
                        await self.dispatch(message)

            layer_task = asyncio.ensure_future(from_layer())
            # A handler of a layer message that stops the consumer (or fails) ends the socket's
            # loop too, as it would end Channels' loop.
            layer_task.add_done_callback(lambda task: main.cancel() if not task.cancelled() and main else None)
        try:
            while True:
                message = await receive()
                async with lock:
                    await self.dispatch(message)
        except StopConsumer:
            pass
        except asyncio.CancelledError:
            if layer_task is None or not layer_task.done() or layer_task.cancelled():
                raise  # the server cancelled the consumer
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            error = layer_task.exception()
            if error is not None and not isinstance(error, StopConsumer):
                raise error from None
        finally:
            if layer_task is not None and not layer_task.done():
                layer_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await layer_task
