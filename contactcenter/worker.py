"""One worker process serving the ASGI application on a listening socket its parent opened.

`python -m contactcenter.worker --fd N`: `runcontactcenter` opens one listening socket and starts
one such worker per core on it (the kernel spreads new connections between them); the Redis
channel layer joins the workers, so a supervisor's action or a dashboard reaches a call on
whichever worker holds it.

The server is uvicorn on uvloop, with httptools for HTTP and the pinned `websockets` (its sans-I/O
protocol) for WebSockets: per audio frame it costs about half of what daphne (Twisted and
autobahn) did (`python -m bench.bridge --server daphne` measures the other one, which stays
available as `--server daphne` / `RUN_SERVER=daphne`). The timeouts are daphne's: keep-alive pings
every 20 s, a socket that does not answer one within 30 s is closed, messages up to 1 MiB, and 10 s
for a consumer to finish once its socket is gone at shutdown.

SIGTERM (or SIGINT) drains the worker: it stops accepting connections and new calls, ends every
live call with the reason `server_shutdown` (records written, sockets closed), and only then lets
the server close what is left (cancelled after 10 s) and exit.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
from typing import Any

logger = logging.getLogger("contactcenter.worker")

PING_INTERVAL_S = 20.0
PING_TIMEOUT_S = 30.0
MAX_MESSAGE_BYTES = 1024 * 1024
CLOSE_TIMEOUT_S = 10.0
KEEP_ALIVE_S = 5


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m contactcenter.worker", description=__doc__.splitlines()[0])
    parser.add_argument("--fd", type=int, help="an inherited listening socket to serve (opened by the parent)")
    parser.add_argument("--host", default="127.0.0.1", help="without --fd: the address to bind")
    parser.add_argument("--port", type=int, default=8000, help="without --fd: the port to bind")
    parser.add_argument("--drain-seconds", type=float, default=float(os.environ.get("RUN_DRAIN_SECONDS", "10")),
                        help="how long SIGTERM waits for live calls to end and write their records")
    parser.add_argument("--server", choices=("uvicorn", "daphne"), default=os.environ.get("RUN_SERVER", "uvicorn"),
                        help="the ASGI server (default: RUN_SERVER, else uvicorn)")
    parser.add_argument("--proxy-headers", action="store_true",
                        help="behind a reverse proxy on this host: the client address from X-Forwarded-For")
    parser.add_argument("--verbosity", type=int, default=1)
    return parser.parse_args(argv)


def warm_up() -> None:
    """Import and build, once at start, what a call would otherwise load at its first use on the
    event loop every call shares (the engine, the Realtime client's modules, the URL conf, the
    cache's Redis client, Celery's task classes): the first calls of a worker must not pay it."""
    import importlib

    from django.urls import get_resolver

    for module in ("realtime.session", "realtime.tools", "calls.bridge", "calls.listen", "calls.tasks",
                   "openai.resources.realtime.realtime", "websockets.asyncio.client", "anyio._backends._asyncio"):
        try:
            importlib.import_module(module)
        except ImportError:  # an optional part: it is loaded (or missed) at its first use as before
            logger.debug("warm-up: no %s", module)
    get_resolver().url_patterns  # noqa: B018 (loads the URL conf)
    from openai import DefaultAsyncHttpxClient

    from realtime.connection import shared_ssl_context

    DefaultAsyncHttpxClient(verify=shared_ssl_context())  # the TLS context, the HTTP transport's modules
    try:
        from django.core.cache import cache

        from contactcenter.celery import app as celery_app

        cache.get("contactcenter:warm-up")
        celery_app.finalize(auto=True)
        celery_app.amqp  # noqa: B018
    except Exception:  # Redis not up yet: the first call connects, as before
        logger.info("warm-up: the cache or the broker is not reachable yet", exc_info=True)


def listening_socket(args: argparse.Namespace) -> socket.socket:
    """The inherited socket (its family read from the descriptor), or one bound here."""
    if args.fd is not None:
        sock = socket.socket(fileno=args.fd)
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((args.host, args.port))
        sock.listen(2048)
    sock.setblocking(False)
    return sock


def serve_uvicorn(args: argparse.Namespace) -> None:
    import uvicorn

    from calls.live import LIVE

    sock = listening_socket(args)  # before the application: a bad --fd fails at once

    from contactcenter.asgi import application

    warm_up()

    class DrainingServer(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            LIVE.draining = True
            for server in self.servers:  # no new connections while the calls end
                server.close()
            ended = await LIVE.drain("server_shutdown", timeout_s=args.drain_seconds)
            logger.info("worker %s: drained, %d live calls ended", os.getpid(), ended)
            await super().shutdown(sockets)
            # A drained worker exits 0 (as daphne's did): uvicorn would raise the signal again
            # once it has shut down, and the process would die of it.
            self._captured_signals.clear()

    level = "info" if args.verbosity >= 2 else "warning"
    config = uvicorn.Config(
        application, loop="uvloop", http="httptools", ws="websockets-sansio", lifespan="off",
        ws_ping_interval=PING_INTERVAL_S, ws_ping_timeout=PING_TIMEOUT_S, ws_max_size=MAX_MESSAGE_BYTES,
        ws_per_message_deflate=False, timeout_keep_alive=KEEP_ALIVE_S, timeout_graceful_shutdown=int(CLOSE_TIMEOUT_S),
        proxy_headers=args.proxy_headers, forwarded_allow_ips="127.0.0.1", server_header=False, headers=[("server", "contactcenter")],
        access_log=args.verbosity >= 2, log_level=level, log_config=None)
    DrainingServer(config).run(sockets=[sock])


def serve_daphne(args: argparse.Namespace) -> None:
    from daphne.server import Server  # installs Twisted's asyncio reactor: before anything else
    from twisted.internet import defer

    from calls.live import LIVE
    from contactcenter.asgi import application

    warm_up()
    try:  # autobahn styles the arguments of its debug lines (two per frame) with click even when
        import autobahn.util  # debug is off; plain text costs nothing and is read only by --verbosity 3

        autobahn.util._HAS_CLICK = False
    except ImportError:
        pass

    endpoint = (f"fd:fileno={args.fd}" if args.fd is not None  # AF_INET, the default of the fd: endpoint
                else f"tcp:port={args.port}:interface={args.host}")
    ports: list[Any] = []

    class DrainingServer(Server):  # type: ignore[misc]
        def listen_success(self, port: Any) -> None:
            ports.append(port)
            super().listen_success(port)

        def kill_all_applications(self) -> Any:
            return defer.Deferred.fromFuture(asyncio.ensure_future(self._drain_then_kill()))

        async def _drain_then_kill(self) -> None:
            LIVE.draining = True
            for port in ports:
                port.stopListening()
            ended = await LIVE.drain("server_shutdown", timeout_s=args.drain_seconds)
            logger.info("worker %s: drained, %d live calls ended", os.getpid(), ended)
            await super().kill_all_applications().asFuture(asyncio.get_running_loop())

    DrainingServer(application, endpoints=[endpoint], signal_handlers=True, verbosity=args.verbosity,
                   proxy_forwarded_address_header="X-Forwarded-For" if args.proxy_headers else None,
                   proxy_forwarded_port_header="X-Forwarded-Port" if args.proxy_headers else None,
                   proxy_forwarded_proto_header="X-Forwarded-Proto" if args.proxy_headers else None,
                   server_name="contactcenter", ping_interval=PING_INTERVAL_S, ping_timeout=PING_TIMEOUT_S,
                   websocket_max_message_size=MAX_MESSAGE_BYTES,
                   application_close_timeout=CLOSE_TIMEOUT_S).run()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contactcenter.settings")
    (serve_daphne if args.server == "daphne" else serve_uvicorn)(args)


if __name__ == "__main__":
    main()
