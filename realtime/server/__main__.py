"""``python -m realtime.server --host 127.0.0.1 --port 8765`` — see the package docstring."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from dataclasses import replace
from typing import Any

from .app import RealtimeServer
from .faults import parse_faults
from .offline import OfflineEngine, OfflineSettings, offline_server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m realtime.server", description="Local OpenAI Realtime GA protocol server")
    parser.add_argument("--host", default=os.environ.get("REALTIME_SERVER_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("REALTIME_SERVER_PORT", "8765")))
    parser.add_argument(
        "--api-key",
        default=os.environ.get("REALTIME_SERVER_API_KEY") or None,
        help="accepted Bearer key (default: $REALTIME_SERVER_API_KEY; unset = any non-empty key)",
    )
    parser.add_argument("--max-session-seconds", type=float, default=float(os.environ.get("REALTIME_SERVER_MAX_SESSION_SECONDS", "3600")))
    parser.add_argument("--fault", action="append", default=[], help="default faults, e.g. delay_ms:20,drop_after:50")
    parser.add_argument("--validate", action="store_true", help="validate every server event (logs failures)")
    parser.add_argument(
        "--engine",
        choices=("offline", "scripted"),
        default=os.environ.get("REALTIME_SERVER_ENGINE", "offline"),
        help="offline: local VAD, recognition, dialogue policy and speech (default); scripted: the test peer",
    )
    offline = OfflineSettings.from_env()
    parser.add_argument("--workers", type=int, default=offline.workers, help="offline CPU worker threads ($REALTIME_OFFLINE_WORKERS)")
    parser.add_argument(
        "--max-sessions", type=int, default=offline.max_sessions, help="offline: concurrent sessions before refusing ($REALTIME_OFFLINE_MAX_SESSIONS)"
    )
    parser.add_argument("--stt-model", default=offline.stt_model, help="faster-whisper model name or path ($REALTIME_OFFLINE_STT_MODEL)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def run() -> None:
        common: dict[str, Any] = {
            "api_key": args.api_key,
            "max_session_seconds": args.max_session_seconds,
            "faults": parse_faults(args.fault),
            "validate_outgoing": args.validate,
        }
        logger = logging.getLogger("realtime.server")
        if args.engine == "offline":
            engine = OfflineEngine(
                replace(offline, workers=max(1, args.workers), max_sessions=max(1, args.max_sessions), stt_model=args.stt_model)
            )
            seconds = await asyncio.get_running_loop().run_in_executor(None, engine.load)
            logger.info("offline engine ready in %.1f s (%d workers, at most %d sessions)", seconds, engine.settings.workers, engine.settings.max_sessions)
            server = offline_server(engine=engine, **common)
        else:
            server = RealtimeServer(**common)
        await server.start(args.host, args.port)
        logger.info("serving %s (HTTP %s, %s engine)", server.url, server.base_url, args.engine)
        try:
            await server.serve_forever()
        finally:
            await server.stop()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
