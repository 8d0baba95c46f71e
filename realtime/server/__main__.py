"""``python -m realtime.server --host 127.0.0.1 --port 8765`` — see the package docstring."""

from __future__ import annotations

import argparse
import logging
import os
from dataclasses import replace
from typing import Any

from .app import ProtocolServer, is_loopback
from .offline import OfflineEngine, OfflineSettings, offline_server
from .serve import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m realtime.server", description="Local OpenAI Realtime GA protocol server")
    parser.add_argument("--host", default=os.environ.get("REALTIME_SERVER_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("REALTIME_SERVER_PORT", "8765")))
    parser.add_argument(
        "--api-key",
        default=os.environ.get("REALTIME_SERVER_API_KEY") or None,
        help="accepted Bearer key (default: $REALTIME_SERVER_API_KEY; unset = any non-empty key, on loopback only)",
    )
    parser.add_argument("--max-session-seconds", type=float, default=float(os.environ.get("REALTIME_SERVER_MAX_SESSION_SECONDS", "3600")))
    parser.add_argument("--validate", action="store_true", help="validate every server event (logs failures)")
    parser.add_argument("--debug", action="store_true", help="keep each session's event logs in memory (grows with every event)")
    parser.add_argument("--header-timeout", type=float, default=10.0, help="seconds a connection has to send its request head")
    parser.add_argument("--idle-timeout", type=float, default=60.0, help="seconds an idle HTTP connection is kept")
    parser.add_argument(
        "--engine",
        choices=("offline", "scripted"),
        default=os.environ.get("REALTIME_SERVER_ENGINE", "offline"),
        help="offline: local VAD, recognition, dialogue policy and speech (default); scripted: no models, answers 'I heard: ...'",
    )
    parser.add_argument(
        "--test-peer", action="store_true", help="serve the test peer: recordings, scripts and faults (for tests only)"
    )
    parser.add_argument("--fault", action="append", default=[], help="with --test-peer: default faults, e.g. delay_ms:20,drop_after:50")
    offline = OfflineSettings.from_env()
    parser.add_argument("--workers", type=int, default=offline.workers, help="offline synthesis and policy threads ($REALTIME_OFFLINE_WORKERS)")
    parser.add_argument(
        "--stt-workers", type=int, default=offline.stt_workers, help="offline: recognitions at once ($REALTIME_OFFLINE_STT_WORKERS)"
    )
    parser.add_argument(
        "--stt-threads", type=int, choices=(1, 2), default=offline.stt_threads,
        help="offline: CPU threads per recognition ($REALTIME_OFFLINE_STT_THREADS)",
    )
    parser.add_argument(
        "--tts-cache-s", type=float, default=offline.tts_cache_seconds,
        help="offline: seconds of synthesised speech kept for reuse, 0 for none ($REALTIME_OFFLINE_TTS_CACHE_S)",
    )
    parser.add_argument(
        "--max-sessions", type=int, default=offline.max_sessions, help="offline: concurrent sessions before refusing ($REALTIME_OFFLINE_MAX_SESSIONS)"
    )
    parser.add_argument("--stt-model", default=offline.stt_model, help="faster-whisper model name or path ($REALTIME_OFFLINE_STT_MODEL)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    if not args.api_key and not is_loopback(args.host):
        parser.error(
            f"--api-key (or REALTIME_SERVER_API_KEY) is required when binding beyond loopback (--host {args.host}): "
            "without one any key would be accepted"
        )
    if args.fault and not args.test_peer:
        parser.error("--fault needs --test-peer: faults exist only in the test peer")
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logger = logging.getLogger("realtime.server")
    logging.getLogger("daphne").setLevel(max(logging.WARNING, logger.getEffectiveLevel()))

    common: dict[str, Any] = {
        "api_key": args.api_key,
        "max_session_seconds": args.max_session_seconds,
        "validate_outgoing": args.validate,
        "debug": args.debug,
    }
    server_class: Any = ProtocolServer
    if args.test_peer:  # only now is the test peer imported
        from .faults import parse_faults
        from .peer import RealtimeServer

        server_class = RealtimeServer
        common["faults"] = parse_faults(args.fault)
        del common["debug"]
    if args.engine == "offline":
        engine = OfflineEngine(
            replace(
                offline,
                workers=max(1, args.workers),
                stt_workers=max(1, args.stt_workers),
                stt_threads=args.stt_threads,
                tts_cache_seconds=max(0.0, args.tts_cache_s),
                max_sessions=max(1, args.max_sessions),
                stt_model=args.stt_model,
            )
        )
        seconds = engine.load()
        logger.info(
            "offline engine ready in %.1f s (%d synthesis workers, %d recognition workers, at most %d sessions)",
            seconds, engine.settings.workers, engine.settings.stt_workers, engine.settings.max_sessions,
        )
        server = offline_server(engine=engine, server_class=server_class, **common)
    else:
        server = server_class(**common)
    server.host, server.port = args.host, args.port

    def ready(host: str, port: int) -> None:
        server.host, server.port = host, port
        logger.info("serving %s (HTTP %s, %s engine%s)", server.url, server.base_url, args.engine, ", test peer" if args.test_peer else "")

    max_seconds = args.max_session_seconds if args.max_session_seconds > 0 else 86400.0
    serve(
        server,
        args.host,
        args.port,
        header_timeout=args.header_timeout,
        idle_timeout=args.idle_timeout,
        websocket_max_seconds=max_seconds + 60,
        ready=ready,
    )


if __name__ == "__main__":
    main()
