"""Browser test fixtures: Debian's Chromium through Playwright (never `playwright install`), a daphne
server in a subprocess on an ephemeral port (pytest-django's live_server speaks no WebSocket), a
fake-microphone WAV, and a logged-in page.

The daphne subprocess uses the test database (committed data: the tests use ``transactional_db``)
and the same Redis, so it sees the users and scenarios the test creates.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import os
import signal
import socket
import subprocess
import sys
import time
import wave
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest

from bench.stack import with_raised_rate_limits

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
PASSWORD = "browser-test-pass-1"


def chromium_missing_reason() -> str | None:
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -r requirements-dev.txt)"
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"no Chromium at {CHROMIUM} (scripts/ensure-chromium.sh installs Debian's chromium as root)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = chromium_missing_reason()
    for item in items:
        if "browser" in item.keywords and reason:
            item.add_marker(pytest.mark.skip(reason=reason))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def database_url(settings_dict: dict) -> str:
    engine = settings_dict["ENGINE"]
    name = settings_dict["NAME"]
    if "sqlite" in engine:
        return f"sqlite:///{Path(name).resolve()}"
    user = quote(settings_dict.get("USER") or "", safe="")
    password = quote(settings_dict.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{name}"


async def wait_until(predicate: Callable[[], Any], timeout: float, what: str, server: DaphneServer,
                     every: float = 0.05) -> Any:
    """Poll ``predicate`` (plain or async) until it is truthy (its value is returned); fail with the
    server's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(every)
    raise AssertionError(f"timed out waiting for {what}\n--- daphne ---\n{server.output()}")


class DaphneServer:
    """daphne serving ``app`` on 127.0.0.1:<ephemeral port>, stopped (process group) on close.
    ``worker=True``: the production worker instead (`contactcenter.worker`, uvicorn, serving
    `contactcenter.asgi:application`), as `make run` starts it."""

    def __init__(self, app: str, env: dict[str, str], log_path: Path, *, worker: bool = False) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in close()
        if worker:
            assert app == "contactcenter.asgi:application", "the worker serves the platform's application only"
        command = (["-m", "contactcenter.worker", "--host", "127.0.0.1", "--port", str(self.port)] if worker
                   else ["-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), app])
        self.proc = subprocess.Popen(
            [sys.executable, *command],
            cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daphne exited with {self.proc.returncode}:\n{self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.1)
        self.close()
        raise RuntimeError(f"daphne did not listen on {self.port} within 30 s:\n{self.output()}")

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")[-6000:]

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self._log.close()


def server_env(**extra: str) -> dict[str, str]:
    """The daphne subprocess's environment: this test run's database and Redis. Skips the test when
    the test database is an in-memory SQLite one, which another process cannot open."""
    from django.db import connection

    name = str(connection.settings_dict["NAME"])
    if "sqlite" in connection.settings_dict["ENGINE"] and ("memory" in name or not name):
        pytest.skip("daphne needs a database it can share: PostgreSQL (DATABASE_URL) or a SQLite file "
                    "(TEST_DATABASE_NAME=/path/test.sqlite3)")
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "contactcenter.settings"
    env["DATABASE_URL"] = database_url(connection.settings_dict)
    env.pop("TEST_DATABASE_NAME", None)
    env["PYTHONUNBUFFERED"] = "1"
    env = with_raised_rate_limits(env)
    env.update(extra)
    return env


def speech_like_wav(path: Path, rate: int = 48000, seconds: float = 3.0,
                    talk: tuple[float, float] | None = None) -> Path:
    """A voiced, syllable-like test signal (harmonics of a gliding 140-220 Hz pitch, 4 Hz bursts):
    loud enough to pass the browser's noise suppression, which eats steady tones. With ``talk``
    (start, end) in seconds, the voice is there only then and the rest is silence."""
    t = np.arange(int(rate * seconds)) / rate
    pitch = 180 + 40 * np.sin(2 * math.pi * 0.7 * t)
    phase = 2 * math.pi * np.cumsum(pitch) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = np.clip(np.sin(2 * math.pi * 4 * t), 0, None) ** 0.5
    signal_ = 0.5 * voiced / np.max(np.abs(voiced)) * envelope
    if talk is not None:
        signal_ = np.where((t >= talk[0]) & (t < talk[1]), signal_, 0.0)
    pcm = (signal_ * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


@pytest.fixture(scope="session")
def fake_mic_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return speech_like_wav(tmp_path_factory.mktemp("mic") / "caller.wav")


CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]


@asynccontextmanager
async def chromium(mic_wav: Path) -> AsyncIterator[Any]:
    """Headless Debian Chromium whose fake microphone plays ``mic_wav`` (in a loop).

    The async Playwright API: the sync one keeps an event loop running in the test thread, which
    Django's ORM (the database fixtures' flush) refuses to run under."""
    reason = chromium_missing_reason()
    if reason:
        pytest.skip(reason)
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        instance = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=[*CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={mic_wav}"],
        )
        try:
            yield instance
        finally:
            await instance.close()


@pytest.fixture
async def browser(fake_mic_wav: Path) -> AsyncIterator[Any]:
    async with chromium(fake_mic_wav) as instance:
        yield instance


@pytest.fixture
def staff_user(transactional_db: None) -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user("operator", password=PASSWORD, is_staff=True)


async def open_logged_in_page(browser: Any, base_url: str, path: str = "/calls/") -> Any:
    """A new browser context with microphone and clipboard permission, logged in through the
    admin login form the page redirects to."""
    context = await browser.new_context(
        base_url=base_url, permissions=["microphone", "clipboard-read", "clipboard-write"], accept_downloads=True,
    )
    page = await context.new_page()
    await page.goto(path)
    assert "/admin/login/" in page.url, page.url
    await page.fill("#id_username", "operator")
    await page.fill("#id_password", PASSWORD)
    await page.click("input[type=submit]")
    await page.wait_for_url(f"**{path}")
    await page.wait_for_selector("#call-app[data-ready=true]")
    return page


async def staff_page(browser: Any, base_url: str, path: str, username: str = "sam") -> Any:
    """A page of its own (another person at another desk), logged in as ``username`` at ``path``."""
    context = await browser.new_context(base_url=base_url)
    page = await context.new_page()
    await page.goto(path)
    await page.fill("#id_username", username)
    await page.fill("#id_password", PASSWORD)
    await page.click("input[type=submit]")
    await page.wait_for_url(f"**{path}")
    return page


async def supervisor_page(browser: Any, base_url: str, call_id: int) -> Any:
    """A supervisor's page of a live call (logged in as "sam")."""
    page = await staff_page(browser, base_url, f"/dashboard/calls/{call_id}/")
    await page.wait_for_selector("#live-state[data-state=live]")
    return page
