"""`/healthz` checks the real components and answers 200 or 503; `/metrics` is Prometheus text for
staff or a scraper holding the metrics token; log lines carry the call id."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from contactcenter import logs, metrics

ROOT = Path(__file__).resolve().parents[2]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def listening_upstream() -> Any:
    """A TCP listener standing in for the upstream's address (reachability is a TCP connect)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/v1"
    server.close()


needs_redis = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis (REDIS_URL)")


@needs_redis
@pytest.mark.django_db
def test_healthz_ok_when_every_component_answers(client: Any, listening_upstream: str) -> None:
    with override_settings(OPENAI_BASE_URL=listening_upstream, OFFLINE_ENGINE_URL=listening_upstream):
        response = client.get("/healthz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "redis", "channel_layer", "upstream"}
    assert all(check["ok"] for check in body["checks"].values())


@needs_redis
@pytest.mark.django_db
def test_healthz_503_names_the_failed_part_but_no_address(client: Any, listening_upstream: str) -> None:
    dead = f"http://127.0.0.1:{closed_port()}/v1"
    with override_settings(OPENAI_BASE_URL=listening_upstream, OFFLINE_ENGINE_URL=dead):
        response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["upstream"]["ok"] is True
    assert body["checks"]["offline_engine"]["ok"] is False
    assert "127.0.0.1" not in response.content.decode()


@pytest.mark.django_db
def test_healthz_503_when_redis_is_down(client: Any, listening_upstream: str) -> None:
    with override_settings(OPENAI_BASE_URL=listening_upstream, OFFLINE_ENGINE_URL=listening_upstream,
                           REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0"):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"] == {**response.json()["checks"]["redis"], "ok": False}
    assert response.json()["checks"]["database"]["ok"] is True


@pytest.mark.django_db
def test_metrics_are_for_staff_or_the_token(client: Any, django_user_model: Any) -> None:
    assert client.get("/metrics").status_code == 401
    django_user_model.objects.create_user("caller", password="pw-caller-123")
    client.login(username="caller", password="pw-caller-123")
    assert client.get("/metrics").status_code == 401
    client.logout()
    with override_settings(METRICS_TOKEN="scrape-token-0123456789"):
        assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
        response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-0123456789")
        assert response.status_code == 200
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-0123456789").status_code == 401
    django_user_model.objects.create_user("super", password="pw-super-123", is_staff=True)
    client.login(username="super", password="pw-super-123")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    for name in ("contactcenter_live_calls", "contactcenter_audio_frames_total", "contactcenter_frame_seconds",
                 "contactcenter_voice_to_voice_seconds", "contactcenter_calls_refused_total",
                 "contactcenter_celery_queue_depth"):
        assert name in text, name


def sample(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name + "{"):
            continue
        found = dict(part.split("=", 1) for part in line[len(name) + 1:line.index("}")].split(","))
        if all(found.get(key) == f'"{value}"' for key, value in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_counts_add_up_in_one_worker() -> None:
    before, _ = metrics.render()
    start = sample(before.decode(), "contactcenter_calls_refused_total", transport="twilio", reason="capacity") or 0
    metrics.call_refused("twilio", "capacity")
    metrics.call_started("browser")
    live = sample(metrics.render()[0].decode(), "contactcenter_live_calls", worker=metrics.WORKER,
                  transport="browser")
    metrics.call_finished("browser")
    after = metrics.render()[0].decode()
    assert sample(after, "contactcenter_calls_refused_total", transport="twilio", reason="capacity") == start + 1
    assert live is not None
    assert sample(after, "contactcenter_live_calls", worker=metrics.WORKER, transport="browser") == live - 1
    frames_before = sample(after, "contactcenter_audio_frames_total", direction="in") or 0
    for _ in range(7):
        metrics.frame("in")
    assert sample(metrics.render()[0].decode(), "contactcenter_audio_frames_total", direction="in") == frames_before + 7


WORKER_SCRIPT = """
import sys
from contactcenter import metrics
for _ in range(int(sys.argv[1])):
    metrics.call_started("twilio")
metrics.frame("in"); metrics.flush_frames()
print(metrics.WORKER)
"""

SCRAPE_SCRIPT = """
import os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contactcenter.settings")
import django; django.setup()
from contactcenter import metrics
import sys
for pid in sys.argv[1:]:
    metrics.worker_exited(int(pid))
print(metrics.render()[0].decode())
"""


def test_any_worker_answers_for_all_workers(tmp_path: Path) -> None:
    """Workers sharing a socket: each writes its figures, any one renders them all; a dead worker's
    live calls stop counting."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "REDIS_URL": ""}

    def run(script: str, *args: str) -> str:
        return subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, check=True, timeout=60).stdout

    first = run(WORKER_SCRIPT, "2").strip()
    second = run(WORKER_SCRIPT, "3").strip()
    text = run(SCRAPE_SCRIPT)
    # The workers have exited but were not marked dead yet: both are still counted.
    assert sample(text, "contactcenter_live_calls", worker=first, transport="twilio") == 2
    assert sample(text, "contactcenter_live_calls", worker=second, transport="twilio") == 3
    assert sample(text, "contactcenter_audio_frames_total", direction="in") == 2
    text = run(SCRAPE_SCRIPT, first)
    assert sample(text, "contactcenter_live_calls", worker=first, transport="twilio") is None
    assert sample(text, "contactcenter_live_calls", worker=second, transport="twilio") == 3


def test_log_lines_carry_the_call_id() -> None:
    record = logging.LogRecord("calls.consumers", logging.WARNING, __file__, 1, "ignored a frame: %s", ("x",), None)
    logs.bind_call(4242)
    try:
        assert logs.CallContext().filter(record)
    finally:
        logs.bind_call(None)
    entry = json.loads(logs.JsonFormatter().format(record))
    assert entry["call_id"] == 4242
    assert entry["message"] == "ignored a frame: x"
    assert entry["level"] == "WARNING"
    other = logging.LogRecord("x", logging.INFO, __file__, 1, "no call", (), None)
    logs.CallContext().filter(other)
    assert json.loads(logs.JsonFormatter().format(other))["call_id"] is None
