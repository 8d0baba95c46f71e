"""Operations endpoints: `GET /healthz` for load balancers, `GET /metrics` for Prometheus.

`/healthz` checks what a call needs, each with a short timeout: the database, Redis, the channel
layer (a message sent to and received from a fresh channel) and the Realtime upstream (a TCP connect
to the configured base URL, and to the offline engine when that is elsewhere). It answers JSON, 200
when every check passed and 503 otherwise, and names no host, key or URL: it is open to anyone.

`/metrics` is the Prometheus text format (contactcenter/metrics.py). It is for staff users, or for a
scraper that sends `Authorization: Bearer <METRICS_TOKEN>` when that setting is set.
"""

from __future__ import annotations

import asyncio
import hmac
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from contactcenter import metrics

CHECK_TIMEOUT_SECONDS = 2.0


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_redis() -> None:
    if not settings.REDIS_URL:
        raise LookupError("no REDIS_URL configured")
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=CHECK_TIMEOUT_SECONDS,
                                  socket_connect_timeout=CHECK_TIMEOUT_SECONDS)
    try:
        if not client.ping():
            raise ConnectionError("no PONG")
    finally:
        client.close()


def check_channel_layer() -> None:
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is None:
        raise LookupError("no channel layer configured")

    async def round_trip() -> None:
        channel = await layer.new_channel("healthz.")
        token = uuid.uuid4().hex
        await layer.send(channel, {"type": "healthz.ping", "token": token})
        message = await asyncio.wait_for(layer.receive(channel), CHECK_TIMEOUT_SECONDS)
        if message.get("token") != token:
            raise ConnectionError("the channel layer answered another message")

    async_to_sync(round_trip)()


def _tcp_check(url: str) -> Callable[[], None]:
    def check() -> None:
        parts = urlsplit(url)
        if not parts.hostname:
            raise ValueError("the URL names no host")
        port = parts.port or (443 if parts.scheme in ("https", "wss") else 80)
        with socket.create_connection((parts.hostname, port), timeout=CHECK_TIMEOUT_SECONDS):
            pass

    return check


def upstream_checks() -> dict[str, Callable[[], None]]:
    upstream = settings.OPENAI_BASE_URL or "https://api.openai.com/v1"
    checks = {"upstream": _tcp_check(upstream)}
    offline = getattr(settings, "OFFLINE_ENGINE_URL", "")
    if offline and urlsplit(offline).netloc != urlsplit(upstream).netloc:
        checks["offline_engine"] = _tcp_check(offline)
    return checks


def run_checks() -> dict[str, dict[str, Any]]:
    checks: dict[str, Callable[[], None]] = {
        "database": check_database, "redis": check_redis, "channel_layer": check_channel_layer,
        **upstream_checks(),
    }
    results: dict[str, dict[str, Any]] = {}
    for name, check in checks.items():
        started = time.perf_counter()
        try:
            check()
        except Exception as error:  # noqa: BLE001 - any failure is the answer
            results[name] = {"ok": False, "error": type(error).__name__,
                             "ms": round((time.perf_counter() - started) * 1000, 1)}
        else:
            results[name] = {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}
    return results


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    results = run_checks()
    healthy = all(result["ok"] for result in results.values())
    return JsonResponse({"status": "ok" if healthy else "unavailable", "worker": metrics.WORKER,
                         "checks": results}, status=200 if healthy else 503)


def may_scrape(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_active and user.is_staff:
        return True
    token = getattr(settings, "METRICS_TOKEN", "")
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header[len("Bearer "):].encode(), token.encode())
    return False


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not may_scrape(request):
        response = HttpResponse("metrics are for staff users or a scraper with the metrics token\n",
                                status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body, content_type = metrics.render()
    return HttpResponse(body, content_type=content_type)
