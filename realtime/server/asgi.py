"""A tiny HTTP/1.1 + WebSocket server for ASGI apps, on asyncio streams: how tests and benchmarks
run the server in-process (``server.start()``); ``python -m realtime.server`` runs it under daphne.

Only what the protocol server needs: Content-Length request bodies, one request per connection,
WebSocket upgrades (framing by the `websockets` library's sans-I/O `ServerProtocol`), the
``websocket.http.response`` extension (to refuse an upgrade with e.g. 401) and a private
``realtime.abort`` message that drops the TCP connection without a close frame (fault injection).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from websockets.datastructures import Headers
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Message = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]

MAX_HEAD = 64 * 1024
MAX_BODY = 32 * 1024 * 1024
MAX_MESSAGE = 32 * 1024 * 1024
HEADER_TIMEOUT = 10.0
"""Seconds a connection has to send its request head (and then its body): a client that sends
half a request and waits is dropped."""


class ASGIServer:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.host = ""
        self.port = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        self._server = await asyncio.start_server(self._client, host, port, limit=MAX_HEAD)
        sock = self._server.sockets[0].getsockname()
        self.host, self.port = sock[0], sock[1]
        return self.host, self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    async def serve_forever(self) -> None:
        assert self._server is not None
        await self._server.serve_forever()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._handle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("connection handler failed")
        finally:
            self._tasks.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEADER_TIMEOUT)
        except TimeoutError:
            return
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, _version = lines[0].split(" ", 2)
        except ValueError:
            await _write_http(writer, 400, [], b"bad request line")
            return
        headers: list[tuple[bytes, bytes]] = []
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            headers.append((name.strip().lower().encode("latin-1"), value.strip().encode("latin-1")))
        hmap = {k: v for k, v in headers}
        path, _, query = target.partition("?")
        peer = writer.get_extra_info("peername")
        sock = writer.get_extra_info("sockname")
        base: Scope = {
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "scheme": "http",
            "path": unquote(path),
            "raw_path": path.encode("latin-1"),
            "query_string": query.encode("latin-1"),
            "root_path": "",
            "headers": headers,
            "client": (peer[0], peer[1]) if peer else None,
            "server": (sock[0], sock[1]) if sock else None,
        }
        if method == "GET" and hmap.get(b"upgrade", b"").lower() == b"websocket":
            await _WebSocket(self.app, base, head, reader, writer).run()
            return
        length = int(hmap.get(b"content-length", b"0") or 0)
        if b"chunked" in hmap.get(b"transfer-encoding", b"").lower():
            await _write_http(writer, 411, [], b"length required")
            return
        if length > MAX_BODY:
            await _write_http(writer, 413, [], b"request body too large")
            return
        try:
            body = await asyncio.wait_for(reader.readexactly(length), HEADER_TIMEOUT) if length else b""
        except TimeoutError:
            return
        await _run_http(self.app, {**base, "type": "http", "method": method}, body, writer)


async def _write_http(writer: asyncio.StreamWriter, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    out = [f"HTTP/1.1 {status} {reason}".encode()]
    names = {k.lower() for k, _ in headers}
    for k, v in headers:
        if k.lower() not in (b"content-length", b"connection"):
            out.append(k + b": " + v)
    if b"content-type" not in names:
        out.append(b"content-type: text/plain; charset=utf-8")
    out.append(b"content-length: " + str(len(body)).encode())
    out.append(b"connection: close")
    writer.write(b"\r\n".join(out) + b"\r\n\r\n" + body)
    await writer.drain()


async def _run_http(app: ASGIApp, scope: Scope, body: bytes, writer: asyncio.StreamWriter) -> None:
    sent_request = False
    status = 500
    resp_headers: list[tuple[bytes, bytes]] = []
    chunks: list[bytes] = []
    done = asyncio.Event()

    async def receive() -> Message:
        nonlocal sent_request
        if not sent_request:
            sent_request = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status, resp_headers
        if message["type"] == "http.response.start":
            status = int(message["status"])
            resp_headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", [])]
        elif message["type"] == "http.response.body":
            chunks.append(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                done.set()

    try:
        await app(scope, receive, send)
    except Exception:
        log.exception("ASGI app failed")
        if not done.is_set():
            await _write_http(writer, 500, [], b"internal server error")
            return
    await _write_http(writer, status, resp_headers, b"".join(chunks))


class _WebSocket:
    def __init__(self, app: ASGIApp, base: Scope, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.app = app
        self.reader = reader
        self.writer = writer
        self.protocol = ServerProtocol(max_size=MAX_MESSAGE)
        self.protocol.receive_data(head)
        events = self.protocol.events_received()
        self.request = events[0] if events and isinstance(events[0], Request) else None
        subprotocols: list[str] = []
        for k, v in base["headers"]:
            if k == b"sec-websocket-protocol":
                subprotocols.extend(p.strip() for p in v.decode("latin-1").split(",") if p.strip())
        self.scope: Scope = {
            **base,
            "type": "websocket",
            "scheme": "ws",
            "subprotocols": subprotocols,
            "extensions": {"websocket.http.response": {}, "realtime.abort": {}},
        }
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.accepted = False
        self.closed = False
        self.peer_closed = asyncio.Event()
        self._http_status = 0
        self._http_headers: list[tuple[bytes, bytes]] = []
        self._http_body: list[bytes] = []
        self.reader_task: asyncio.Task[None] | None = None

    def _flush(self) -> None:
        data = self.protocol.data_to_send()
        for chunk in data:
            if chunk:
                self.writer.write(chunk)
            else:  # an empty chunk means: close the TCP connection after the close handshake
                self.writer.close()

    async def run(self) -> None:
        if self.request is None:
            await _write_http(self.writer, 400, [], b"bad websocket request")
            return
        await self.inbox.put({"type": "websocket.connect"})
        try:
            await self.app(self.scope, self.inbox.get, self._send)
        except Exception:
            log.exception("websocket app failed")
            if self.accepted and not self.closed:
                await self._send({"type": "websocket.close", "code": 1011, "reason": "internal error"})
        finally:
            if self.accepted and not self.closed:
                await self._send({"type": "websocket.close", "code": 1000, "reason": ""})
            if self.accepted and not self.peer_closed.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.peer_closed.wait(), 1.0)
            if self.reader_task is not None:
                self.reader_task.cancel()
                with contextlib.suppress(BaseException):
                    await self.reader_task
            if not self.accepted and not self.closed:
                await _write_http(self.writer, 403, [], b"forbidden")

    async def _read(self) -> None:
        fragments: list[bytes] = []
        opcode: Opcode | None = None
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    self.protocol.receive_eof()
                else:
                    self.protocol.receive_data(data)
                for frame in self.protocol.events_received():
                    if not isinstance(frame, Frame):
                        continue
                    if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
                        opcode = frame.opcode
                        fragments = [bytes(frame.data)]
                    elif frame.opcode == Opcode.CONT:
                        fragments.append(bytes(frame.data))
                    else:
                        continue
                    if frame.fin and opcode is not None:
                        payload = b"".join(fragments)
                        if opcode == Opcode.TEXT:
                            await self.inbox.put({"type": "websocket.receive", "text": payload.decode("utf-8", "replace")})
                        else:
                            await self.inbox.put({"type": "websocket.receive", "bytes": payload})
                        fragments = []
                        opcode = None
                self._flush()
                await self.writer.drain()
                if not data or self.protocol.close_expected() or self.protocol.state.name == "CLOSED":
                    break
        except (ConnectionError, OSError):
            pass
        finally:
            code = self.protocol.close_rcvd.code if self.protocol.close_rcvd else 1006
            self.peer_closed.set()
            await self.inbox.put({"type": "websocket.disconnect", "code": code})

    async def _send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "websocket.accept":
            assert self.request is not None
            response = self.protocol.accept(self.request)
            if message.get("subprotocol") and response.status_code == 101:
                response.headers["Sec-WebSocket-Protocol"] = message["subprotocol"]
            for k, v in message.get("headers", []):
                response.headers[bytes(k).decode("latin-1")] = bytes(v).decode("latin-1")
            self.protocol.send_response(response)
            self._flush()
            await self.writer.drain()
            if response.status_code != 101:
                self.closed = True
                return
            self.accepted = True
            self.reader_task = asyncio.ensure_future(self._read())
        elif kind == "websocket.send":
            if self.closed or self.protocol.state is not State.OPEN:
                return
            if message.get("text") is not None:
                self.protocol.send_text(message["text"].encode())
            else:
                self.protocol.send_binary(bytes(message.get("bytes") or b""))
            self._flush()
            await self.writer.drain()
        elif kind == "websocket.close":
            if self.closed:
                return
            self.closed = True
            if self.accepted and self.protocol.state is not State.OPEN:
                return
            if not self.accepted:
                await _write_http(self.writer, 403, [], b"forbidden")
                return
            self.protocol.send_close(int(message.get("code", 1000)), str(message.get("reason") or ""))
            self._flush()
            with contextlib.suppress(ConnectionError):
                await self.writer.drain()
        elif kind == "websocket.http.response.start":
            self._http_status = int(message["status"])
            self._http_headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", [])]
        elif kind == "websocket.http.response.body":
            self._http_body.append(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                self.closed = True
                headers = Headers()
                for k, v in self._http_headers:
                    headers[k.decode("latin-1")] = v.decode("latin-1")
                body = b"".join(self._http_body)
                headers["Content-Length"] = str(len(body))
                headers["Connection"] = "close"
                status = HTTPStatus(self._http_status)
                self.protocol.send_response(Response(status.value, status.phrase, headers, body))
                self._flush()
                await self.writer.drain()
        elif kind == "realtime.abort":
            self.closed = True
            transport = self.writer.transport
            transport.abort()
            self.peer_closed.set()
