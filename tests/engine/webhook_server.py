"""A local HTTP endpoint for webhook-tool tests: real sockets, one answer function per test file.

The server reads each request whole (head and body, so closing never resets the connection),
records it, and writes the answer with ``Connection: close``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def key(self) -> str:
        """The secret header a webhook tool sends ('' when none was sent)."""
        return self.headers.get("x-api-key", "")


@dataclass
class Reply:
    status: str = "200 OK"
    body: bytes = b'{"ok": true}'
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class WebhookServer:
    port: int = 0
    requests: list[Request] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


Answer = Callable[[Request, WebhookServer], Awaitable[Reply]]


@asynccontextmanager
async def webhook_server(answer: Answer) -> AsyncIterator[WebhookServer]:
    state = WebhookServer()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        lines = head.split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
        request = Request(lines[0].split(" ")[1], headers, body)
        state.requests.append(request)
        reply = await answer(request, state)
        extra = "".join(f"{name}: {value}\r\n" for name, value in reply.headers.items())
        writer.write(f"HTTP/1.1 {reply.status}\r\nContent-Type: application/json\r\n{extra}"
                     f"Content-Length: {len(reply.body)}\r\nConnection: close\r\n\r\n".encode() + reply.body)
        await writer.drain()
        writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    state.port = srv.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        srv.close()
        await srv.wait_closed()
