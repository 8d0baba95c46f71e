"""`make run`: start everything a local contact center needs, print where it is, stop it all on Ctrl-C.

- Redis: REDIS_URL if set; otherwise a private `redis-server` (no persistence) when the machine has
  one; otherwise the in-memory channel layer with Celery tasks run in-process (said in one line).
- Upstream: OpenAI when OPENAI_API_KEY is set; otherwise the local Realtime-protocol server
  (`python -m realtime.server`), which answers calls with no key.
- Workers (HTTP + WebSockets, uvicorn; `RUN_SERVER=daphne` for daphne): one per core (`RUN_WORKERS` to
  choose), all serving one listening socket this command opens (`contactcenter.worker --fd`); a
  Celery worker and beat.
- Metrics: the workers share a fresh `PROMETHEUS_MULTIPROC_DIR` (or the one set in the
  environment, emptied first), so any worker's `/metrics` answers for all of them.

A worker, the Celery worker or beat that dies is started again (its calls are lost; the
reaper ends them); a worker that dies more than `RESTART_LIMIT` times in a minute stops everything.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    """The one listening socket every worker serves (each adopts it with --fd)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def wait_for_http(host: str, port: int, timeout: float = 30.0, alive: Any = None) -> bool:
    """A worker answers HTTP (the socket accepts connections as soon as it listens); False at the
    timeout or as soon as ``alive()`` says a worker died."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (alive is None or alive()):
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


#: Children started again when they die (the others stop everything).
RESTARTED = ("worker-", "celery-")
RESTART_LIMIT = 5


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    pass_fds: tuple[int, ...] = ()
    proc: subprocess.Popen[bytes] | None = None
    restarts: list[float] = field(default_factory=list)


def metrics_dir() -> tuple[str, bool]:
    """The directory the workers share for their metrics, emptied; whether it is ours."""
    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if not configured:
        return tempfile.mkdtemp(prefix="contactcenter-metrics-"), True
    Path(configured).mkdir(parents=True, exist_ok=True)
    for stale in Path(configured).glob("*.db"):
        stale.unlink()
    return configured, False


class Command(BaseCommand):
    help = "Run the contact center locally: the ASGI workers, Celery worker and beat, Redis and the local Realtime server as needed."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--host", default=os.environ.get("RUN_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("RUN_PORT", "8000")))
        parser.add_argument("--no-admin", action="store_true", help="do not create the local admin account")
        parser.add_argument("--workers", type=int, default=int(os.environ.get("RUN_WORKERS") or 0),
                            help="ASGI workers (default: RUN_WORKERS, else one per core)")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        self.children: list[Child] = []
        self.listener: socket.socket | None = None
        self.metrics_dir, self.own_metrics_dir = metrics_dir()
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

        # The local engine: the upstream without a key, and the failover provider with one
        # (unless OFFLINE_ENGINE_URL names one running as its own service).
        if os.environ.get("OPENAI_API_KEY") and os.environ.get("OFFLINE_ENGINE_URL"):
            self.stdout.write(f"upstream: {os.environ.get('OPENAI_BASE_URL') or 'OpenAI'} (key from the environment); "
                              f"offline failover engine at {os.environ['OFFLINE_ENGINE_URL']}")
            local_url = ""
        else:
            port = free_port(8765)
            self.spawn("realtime-server", [python, "-m", "realtime.server", "--host", "127.0.0.1", "--port", str(port)],
                       child_env)
            if not wait_for_port(port, timeout=60):
                self.stop_all()
                raise SystemExit("the local Realtime server did not start")
            local_url = f"http://127.0.0.1:{port}/v1"
            child_env["OFFLINE_ENGINE_URL"] = local_url
        if local_url and not os.environ.get("OPENAI_API_KEY"):
            child_env["OPENAI_BASE_URL"] = local_url
            self.stdout.write(f"upstream: local Realtime server at ws://127.0.0.1:{port}/v1/realtime (no API key set)")
        elif local_url:
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
        worker_env = {**child_env, "PROMETHEUS_MULTIPROC_DIR": self.metrics_dir}
        for number in range(1, workers + 1):
            self.spawn(f"worker-{number}", [python, "-m", "contactcenter.worker", "--fd", str(fd)], worker_env,
                       pass_fds=(fd,))
        servers = [child for child in self.children if child.name.startswith("worker-")]
        if not wait_for_http(host, port, timeout=float(os.environ.get("RUN_START_SECONDS", "180")),
                             alive=lambda: all(c.proc is not None and c.proc.poll() is None for c in servers)):
            self.stop_all()
            raise SystemExit(f"the workers did not start on port {port}")
        self.stdout.write(f"{os.environ.get('RUN_SERVER') or 'uvicorn'}: {workers} worker{'s' if workers != 1 else ''} on {host}:{port} "
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
                for child in self.children:
                    if child.proc is not None and child.proc.poll() is not None:
                        self.child_exited(child)
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop_all()

    def spawn(self, name: str, argv: list[str], env: dict[str, str], pass_fds: tuple[int, ...] = ()) -> None:
        child = Child(name, argv, env, pass_fds)
        self.start(child)
        self.children.append(child)

    def start(self, child: Child) -> None:
        child.proc = subprocess.Popen(child.argv, env=child.env, cwd=settings.BASE_DIR, pass_fds=child.pass_fds,
                                      preexec_fn=_die_with_parent)  # noqa: PLW1509 (no threads here)

    def child_exited(self, child: Child) -> None:
        """A worker's live gauges stop counting; workers are started again, within limits."""
        assert child.proc is not None
        pid, status = child.proc.pid, child.proc.returncode
        from contactcenter import metrics

        metrics.worker_exited(pid, self.metrics_dir)
        now = time.monotonic()
        child.restarts = [t for t in child.restarts if now - t < 60] + [now]
        if not child.name.startswith(RESTARTED) or len(child.restarts) > RESTART_LIMIT:
            self.stderr.write(f"{child.name} (pid {pid}) exited with status {status}; stopping")
            raise KeyboardInterrupt
        self.stderr.write(f"{child.name} (pid {pid}) exited with status {status}; starting it again")
        self.start(child)

    def stop_all(self) -> None:
        """SIGTERM to every child; the workers drain (their live calls end with a reason)."""
        if self.listener is not None:  # no new connections while the workers drain
            self.listener.close()
            self.listener = None
        procs = [child.proc for child in reversed(self.children) if child.proc is not None]
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if self.own_metrics_dir:
            shutil.rmtree(self.metrics_dir, ignore_errors=True)
