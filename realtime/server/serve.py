"""Serve a `ProtocolServer` (an ASGI app) under daphne, the ASGI server the platform itself runs on.

Timeouts a long-running service needs:

- ``header_timeout``: a connection must have sent its request line and headers (a WebSocket
  upgrade included) this many seconds after it opened, or it is dropped; a client that sends
  half a request and waits holds nothing for long.
- ``idle_timeout``: an HTTP connection with no traffic for this long is closed (Twisted's idle
  timeout, reset by every read).
- WebSockets: daphne pings every ``ping_interval`` seconds and drops a peer that has not answered
  within ``ping_timeout``; the application has ``connect_timeout`` seconds to accept a socket.
- ``http_timeout``: an HTTP request whose answer takes longer gets 503.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .asgi import MAX_MESSAGE

log = logging.getLogger(__name__)


def _endpoint(host: str, port: int) -> str:
    interface = host.strip("[]").replace(":", r"\:")
    return f"tcp:port={port}:interface={interface}"


def serve(
    app: Any,
    host: str,
    port: int,
    *,
    header_timeout: float = 10.0,
    idle_timeout: float = 60.0,
    http_timeout: float = 120.0,
    websocket_max_seconds: float = 86400.0,
    ping_interval: float = 20.0,
    ping_timeout: float = 30.0,
    connect_timeout: float = 10.0,
    ready: Callable[[str, int], None] | None = None,
) -> None:
    """Run ``app`` on ``host:port`` until stopped (SIGINT/SIGTERM). Blocks: it runs the reactor.
    ``ready(host, port)`` is called once it listens (the port chosen when ``port`` is 0)."""
    from daphne.server import Server  # type: ignore[import-untyped]
    from twisted.internet import reactor as _reactor

    clock: Any = _reactor

    server: Any = None

    def install() -> None:
        factory = server.http_factory
        factory.timeOut = idle_timeout
        build = factory.buildProtocol

        def build_with_deadline(addr: Any) -> Any:
            protocol = build(addr)
            channel = getattr(protocol, "_channel", protocol)
            headers_done = channel.allHeadersReceived

            def all_headers_received() -> None:
                channel.request_complete = True
                headers_done()

            channel.allHeadersReceived = all_headers_received
            clock.callLater(header_timeout, _deadline, channel)
            return protocol

        factory.buildProtocol = build_with_deadline
        if ready is not None:
            ready(*(server.listening_addresses[0] if server.listening_addresses else (host, port)))

    server = Server(
        app,
        endpoints=[_endpoint(host, port)],
        signal_handlers=True,
        http_timeout=http_timeout,
        websocket_timeout=websocket_max_seconds,
        websocket_connect_timeout=connect_timeout,
        websocket_handshake_timeout=header_timeout,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        websocket_max_message_size=MAX_MESSAGE,
        websocket_max_frame_size=MAX_MESSAGE,
        application_close_timeout=5,
        ready_callable=install,
        server_name="realtime-server",
        verbosity=0,
    )
    server.run()


def _deadline(channel: Any) -> None:
    """The request was not complete in time: drop the connection (no answer is owed)."""
    transport = getattr(channel, "transport", None)
    if getattr(channel, "request_complete", False) or transport is None or getattr(transport, "disconnected", False):
        return
    log.info("dropped a connection that sent no whole request in time")
    transport.abortConnection()
