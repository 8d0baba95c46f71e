"""One daphne worker serving the ASGI application on a listening socket its parent opened.

`python -m contactcenter.worker --fd N`: `runcontactcenter` opens one listening socket and starts
one such worker per core on it (the kernel spreads new connections between them); the Redis
channel layer joins the workers, so a supervisor's action or a dashboard reaches a call on
whichever worker holds it.

SIGTERM (or SIGINT) drains the worker: it stops accepting connections and new calls, ends every
live call with the reason `server_shutdown` (records written, sockets closed), and only then lets
daphne cancel what is left and exit.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from typing import Any

logger = logging.getLogger("contactcenter.worker")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m contactcenter.worker", description=__doc__.splitlines()[0])
    parser.add_argument("--fd", type=int, help="an inherited listening socket to serve (opened by the parent)")
    parser.add_argument("--host", default="127.0.0.1", help="without --fd: the address to bind")
    parser.add_argument("--port", type=int, default=8000, help="without --fd: the port to bind")
    parser.add_argument("--drain-seconds", type=float, default=float(os.environ.get("RUN_DRAIN_SECONDS", "10")),
                        help="how long SIGTERM waits for live calls to end and write their records")
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
    try:  # autobahn styles the arguments of its debug lines (two per frame) with click even when
        import autobahn.util  # debug is off; plain text costs nothing and is read only by --verbosity 3

        autobahn.util._HAS_CLICK = False
    except ImportError:
        pass
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


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contactcenter.settings")
    from daphne.server import Server  # installs Twisted's asyncio reactor: before anything else
    from twisted.internet import defer

    from calls.live import LIVE
    from contactcenter.asgi import application

    warm_up()

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
                   server_name="contactcenter").run()


if __name__ == "__main__":
    main()
