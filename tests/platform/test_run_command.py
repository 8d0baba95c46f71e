"""`make run`'s last step: the run command brings up daphne, Celery, Redis and the local Realtime
server, serves the admin, and stops every child when it is stopped."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
def test_run_command_serves_and_stops_cleanly(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL"}}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'run.sqlite3'}"
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=120)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "runcontactcenter", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 90
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Press Ctrl-C to stop." in line:
                break
        output = "".join(lines)
        assert "The contact center is running" in output, output
        assert "password '" in output  # the generated admin password, printed once
        assert "redis:" in output and "upstream: local Realtime server" in output
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/", timeout=10) as response:
            assert response.status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    # Every child went with it: daphne no longer answers.
    deadline = time.monotonic() + 15
    while port_open(port) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not port_open(port)
