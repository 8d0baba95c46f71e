"""`make run`: start everything a local contact center needs, print where it is, stop it all on Ctrl-C.

- Redis: REDIS_URL if set; otherwise a private `redis-server` (no persistence) when the machine has
  one; otherwise the in-memory channel layer with Celery tasks run in-process (said in one line).
- Upstream: OpenAI when OPENAI_API_KEY is set; otherwise the local Realtime-protocol server
  (`python -m realtime.server`), which answers calls with no key.
- daphne (HTTP + WebSockets): one worker per core (`RUN_WORKERS` to choose), all serving one
  listening socket this command opens (`contactcenter.worker --fd`); a Celery worker and beat.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


def free_port(preferred: int) -> int:
    """The preferred port when it is free on 127.0.0.1, else one the kernel picks."""
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise RuntimeError("no free port")


def wait_for_port(port: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.2)
    return False


def listening_socket(host: str, port: int) -> socket.socket:
    """The one listening socket every daphne worker serves (each adopts it with --fd)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def wait_for_http(host: str, port: int, timeout: float = 30.0) -> bool:
    """A worker answers HTTP (the socket accepts connections as soon as it listens)."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/admin/login/", timeout=2):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            time.sleep(0.2)
    return False


def _die_with_parent() -> None:
    """Children get SIGTERM when this process dies, even if it is killed outright (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Run the contact center locally: daphne, Celery worker and beat, Redis and the local Realtime server as needed."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--host", default=os.environ.get("RUN_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("RUN_PORT", "8000")))
        parser.add_argument("--no-admin", action="store_true", help="do not create the local admin account")
        parser.add_argument("--workers", type=int, default=int(os.environ.get("RUN_WORKERS") or 0),
                            help="daphne workers (default: RUN_WORKERS, else one per core)")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.listener: socket.socket | None = None
        run_dir = Path(settings.BASE_DIR) / "var"
        run_dir.mkdir(exist_ok=True)
        child_env = dict(os.environ)
        python = sys.executable

        if not options["no_admin"]:
            call_command("ensureadmin")

        redis_url = os.environ.get("REDIS_URL", "")
        if not redis_url:
            redis_server = shutil.which("redis-server")
            if redis_server:
                port = free_port(6390)
                self.spawn(
                    "redis",
                    [redis_server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
                     "--dir", str(run_dir), "--logfile", str(run_dir / "redis.log")],
                    child_env,
                )
                if not wait_for_port(port):
                    self.stop_all()
                    raise SystemExit("the private redis-server did not start; see var/redis.log")
                redis_url = f"redis://127.0.0.1:{port}/0"
                child_env["REDIS_URL"] = redis_url
                self.stdout.write(f"redis: private redis-server on 127.0.0.1:{port} (no persistence)")
            else:
                self.stdout.write(
                    "redis: none on this machine; using the in-memory channel layer and running Celery tasks in-process"
                )
        else:
            self.stdout.write("redis: REDIS_URL from the environment")

        # The local engine: the upstream without a key, and the failover provider with one.
        port = free_port(8765)
        self.spawn("realtime-server", [python, "-m", "realtime.server", "--host", "127.0.0.1", "--port", str(port)],
                   child_env)
        if not wait_for_port(port, timeout=60):
            self.stop_all()
            raise SystemExit("the local Realtime server did not start")
        local_url = f"http://127.0.0.1:{port}/v1"
        child_env["OFFLINE_ENGINE_URL"] = local_url
        if not os.environ.get("OPENAI_API_KEY"):
            child_env["OPENAI_BASE_URL"] = local_url
            self.stdout.write(f"upstream: local Realtime server at ws://127.0.0.1:{port}/v1/realtime (no API key set)")
        else:
            self.stdout.write(f"upstream: {child_env.get('OPENAI_BASE_URL') or 'OpenAI'} (key from the environment); "
                              f"offline failover engine at {local_url}")

        if redis_url:
            self.spawn("celery-worker", [python, "-m", "celery", "-A", "contactcenter", "worker", "--loglevel", "INFO",
                                         "--concurrency", "2", "-Q", ",".join(settings.TASK_QUEUES_CONSUMED)],
                       child_env)
            self.spawn("celery-beat", [python, "-m", "celery", "-A", "contactcenter", "beat", "--loglevel", "INFO",
                                       "--schedule", str(run_dir / "celerybeat-schedule")], child_env)

        host, port = options["host"], options["port"]
        workers = options["workers"] or os.cpu_count() or 1
        try:
            self.listener = listening_socket(host, port)
        except OSError as error:
            self.stop_all()
            raise SystemExit(f"cannot listen on {host}:{port}: {error}") from error
        fd = self.listener.fileno()
        for number in range(1, workers + 1):
            self.spawn(f"daphne-{number}", [python, "-m", "contactcenter.worker", "--fd", str(fd)], child_env,
                       pass_fds=(fd,))
        if not wait_for_http(host, port, timeout=30):
            self.stop_all()
            raise SystemExit(f"daphne did not start on port {port}")
        self.stdout.write(f"daphne: {workers} worker{'s' if workers != 1 else ''} on {host}:{port} "
                          f"(RUN_WORKERS to choose; CALL_CAPACITY_PER_WORKER={settings.CALL_CAPACITY_PER_WORKER})")
        base = f"http://{host}:{port}"
        self.stdout.write(self.style.SUCCESS("The contact center is running:"))
        self.stdout.write(f"  admin (agents, scenarios, calls): {base}/admin/")
        self.stdout.write(f"  place a call from the browser:    {base}/calls/")
        self.stdout.write(f"  supervisor dashboard:             {base}/dashboard/")
        self.stdout.write(f"  Twilio voice webhook:             {base}/twilio/voice")
        self.stdout.write("Press Ctrl-C to stop.")

        signal.signal(signal.SIGTERM, _interrupt)
        try:
            while True:
                for name, proc in self.children:
                    if proc.poll() is not None:
                        self.stderr.write(f"{name} exited with status {proc.returncode}; stopping")
                        raise KeyboardInterrupt
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop_all()

    def spawn(self, name: str, argv: list[str], env: dict[str, str], pass_fds: tuple[int, ...] = ()) -> None:
        proc = subprocess.Popen(argv, env=env, cwd=settings.BASE_DIR, preexec_fn=_die_with_parent,  # noqa: PLW1509 (no threads here)
                                pass_fds=pass_fds)
        self.children.append((name, proc))

    def stop_all(self) -> None:
        """SIGTERM to every child; the daphne workers drain (their live calls end with a reason)."""
        if self.listener is not None:  # no new connections while the workers drain
            self.listener.close()
            self.listener = None
        for _, proc in reversed(self.children):
            if proc.poll() is None:
                proc.terminate()
        for _, proc in reversed(self.children):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
