"""The Realtime/Responses upstream as configured: OpenAI, or the local protocol server."""

from __future__ import annotations

from django.conf import settings
from openai import AsyncOpenAI, OpenAI

# The local protocol server needs no key, but the openai client refuses to start without one.
LOCAL_PLACEHOLDER_KEY = "local-no-key"


def api_key() -> str:
    return settings.OPENAI_API_KEY or LOCAL_PLACEHOLDER_KEY


def base_url() -> str:
    return settings.OPENAI_BASE_URL or settings.LOCAL_REALTIME_URL


def openai_client(timeout: float = 30.0) -> OpenAI:
    return OpenAI(api_key=api_key(), base_url=base_url(), timeout=timeout, max_retries=0)


def async_openai_client(timeout: float = 30.0) -> AsyncOpenAI:
    """Made on the server's event loop (SIP calls): it reuses the process's TLS context, since
    building one (loading the CA store) holds the loop, and every call's audio, for 50-300 ms."""
    from realtime.connection import async_client

    return async_client(base_url(), api_key(), timeout=timeout, max_retries=0)
