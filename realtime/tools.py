"""Running an agent's tools: Python handlers, webhooks and built-ins.

Arguments are validated against the tool's JSON Schema before anything runs. Whatever goes
wrong (invalid arguments, an exception, a timeout, a webhook error) becomes a ``ToolOutcome``
with ``error`` set, whose ``output_text()`` is given back to the model: a tool never raises up
the stack. Refusing foreign tools and waiting for approvals is the session's job (it knows the
current agent and the dashboard); this module only runs a tool it is handed.
"""

from __future__ import annotations

import asyncio
import json
import time
import zlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

import httpx
import jsonschema
from jsonschema.validators import validator_for

from realtime.connection import shared_ssl_context
from realtime.spec import ToolSpec, WebhookSpec

PythonHandler = Callable[[str, dict[str, Any]], Awaitable[Any]]
"""``async (handler_key, arguments) -> JSON-safe result`` (the platform's handler registry)."""

BuiltinHandler = Callable[[dict[str, Any]], Awaitable[Any]]

MAX_REDIRECTS = 3

# Only encodings the cap can follow while decompressing (no brotli/zstd).
ACCEPT_ENCODING = "gzip, deflate"


@dataclass(frozen=True)
class ToolSecret:
    """A webhook secret and the hosts it may be sent to: ``host`` (any port) or ``host:port``.

    A secret is sent only to a URL whose host is listed, so a tool whose URL was changed (or a
    redirect) never receives it. A secret bound to no host is never sent."""

    value: str
    hosts: frozenset[str] = frozenset()

    @classmethod
    def bound(cls, value: str, hosts: Iterable[str]) -> ToolSecret:
        return cls(value, frozenset(h.strip().lower() for h in hosts if h.strip()))

    def allows(self, url: str) -> bool:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if not host:
            return False
        try:
            port = parts.port or {"https": 443, "http": 80}.get(parts.scheme.lower())
        except ValueError:
            return False
        for entry in self.hosts:
            bound = urlsplit("//" + entry)
            try:
                entry_port = bound.port
            except ValueError:
                continue
            if (bound.hostname or "") == host and entry_port in (None, port):
                return True
        return False


ToolStatus = Literal["succeeded", "failed", "denied", "timed_out"]


@dataclass
class ToolOutcome:
    """What a tool call came to. `status` says how it ended: succeeded, failed (an error of the tool
    or its arguments), denied (a person refused the approval) or timed_out (the tool, or the wait
    for an approval, ran past its time); it follows from `error` unless given."""

    result: Any = None
    error: str | None = None
    duration_ms: float = 0.0
    status: ToolStatus | None = None

    def __post_init__(self) -> None:
        if self.status is None:
            self.status = "succeeded" if self.error is None else "failed"

    @property
    def ok(self) -> bool:
        return self.error is None

    def output_text(self) -> str:
        """The function_call_output text the model reads."""
        if self.error is not None:
            return json.dumps({"error": self.error}, ensure_ascii=False)
        if isinstance(self.result, str):
            return self.result
        return json.dumps(self.result, ensure_ascii=False, default=str)


SECRET_PREFIX = "TOOL_SECRET_"
HOSTS_SUFFIX = "_HOSTS"


def secrets_from_environment(environ: Mapping[str, str]) -> dict[str, ToolSecret]:
    """``TOOL_SECRET_<NAME>=value`` with ``TOOL_SECRET_<NAME>_HOSTS=host[:port],...`` as bound
    secrets by name. A secret without its hosts is kept but never sent."""
    secrets: dict[str, ToolSecret] = {}
    for key, value in environ.items():
        if key.startswith(SECRET_PREFIX) and not key.endswith(HOSTS_SUFFIX):
            name = key[len(SECRET_PREFIX):]
            hosts = environ.get(key + HOSTS_SUFFIX, "").split(",")
            secrets[name] = ToolSecret.bound(value, hosts)
    return secrets


class ToolError(Exception):
    """A tool failure whose message is safe to give to the model."""


def parse_arguments(raw: str | Mapping[str, Any] | None) -> tuple[dict[str, Any] | None, str | None]:
    """The model's argument JSON as a dict, or an error text."""
    if raw is None or raw == "":
        return {}, None
    if isinstance(raw, Mapping):
        return dict(raw), None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        return None, f"arguments are not valid JSON: {exc.msg}"
    if not isinstance(value, dict):
        return None, "arguments must be a JSON object"
    return value, None


class ToolRunner:
    """Runs tools. ``python_handler`` and ``secrets`` (by name, each bound to its hosts) are
    injected by the platform."""

    def __init__(
        self,
        python_handler: PythonHandler | None = None,
        secrets: Mapping[str, ToolSecret] | None = None,
        *,
        max_response_bytes: int = 64 * 1024,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.python_handler = python_handler
        self._secrets: Mapping[str, ToolSecret] = secrets or {}
        self.max_response_bytes = max_response_bytes
        self._transport = transport
        self._validators: dict[str, Any] = {}

    def validation_error(self, tool: ToolSpec, arguments: dict[str, Any]) -> str | None:
        """A readable message if ``arguments`` do not satisfy the tool's JSON Schema."""
        key = json.dumps(tool.parameters, sort_keys=True)
        validator = self._validators.get(key)
        if validator is None:
            try:
                cls = validator_for(tool.parameters)
                cls.check_schema(tool.parameters)
            except jsonschema.SchemaError as exc:
                return f"the tool's schema is invalid: {exc.message}"
            validator = self._validators[key] = cls(tool.parameters)
        errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.path))
        if not errors:
            return None
        messages = []
        for err in errors[:3]:
            where = "/".join(str(p) for p in err.path)
            messages.append(f"{where}: {err.message}" if where else err.message)
        return "invalid arguments: " + "; ".join(messages)

    async def run(
        self,
        tool: ToolSpec,
        arguments: dict[str, Any],
        *,
        timeout_s: float,
        builtins: Mapping[str, BuiltinHandler] | None = None,
    ) -> ToolOutcome:
        """Validate then run ``tool``; never raises (except cancellation)."""
        started = time.perf_counter()
        error = self.validation_error(tool, arguments)
        if error is not None:
            return ToolOutcome(error=error, duration_ms=_ms_since(started))
        try:
            result = await asyncio.wait_for(self._dispatch(tool, arguments, builtins or {}), timeout_s)
            json.dumps(result, default=str)
            return ToolOutcome(result=result, duration_ms=_ms_since(started))
        except TimeoutError:
            return ToolOutcome(error=f"the tool {tool.name} timed out after {timeout_s:g} s",
                               duration_ms=_ms_since(started), status="timed_out")
        except ToolError as exc:
            error = str(exc)
        except Exception as exc:  # noqa: BLE001 — a handler's bug must not end the call
            error = f"the tool {tool.name} failed: {type(exc).__name__}: {exc}"
        return ToolOutcome(error=error, duration_ms=_ms_since(started))

    async def _dispatch(
        self, tool: ToolSpec, arguments: dict[str, Any], builtins: Mapping[str, BuiltinHandler]
    ) -> Any:
        if tool.kind == "python":
            if self.python_handler is None:
                raise ToolError(f"no Python handler is configured for {tool.name}")
            return await self.python_handler(tool.handler, arguments)
        if tool.kind == "webhook":
            if tool.webhook is None:
                raise ToolError(f"the webhook tool {tool.name} has no URL")
            return await self._call_webhook(tool.webhook, arguments)
        if tool.kind == "builtin":
            handler = builtins.get(tool.builtin)
            if handler is None:
                raise ToolError(f"the built-in {tool.builtin!r} is not available here")
            return await handler(arguments)
        raise ToolError(f"the tool {tool.name} cannot be run directly")

    async def _call_webhook(self, hook: WebhookSpec, arguments: dict[str, Any]) -> Any:
        headers = {"Accept": "application/json", "Accept-Encoding": ACCEPT_ENCODING}
        secret: ToolSecret | None = None
        if hook.secret_name:
            secret = self._secrets.get(hook.secret_name)
            if secret is None:
                raise ToolError("the webhook's secret is not configured")
            if not isinstance(secret, ToolSecret) or not secret.hosts:
                raise ToolError("the webhook's secret is bound to no host; it is not sent")
            headers[hook.secret_header or "Authorization"] = secret.value
        method = hook.method.upper()
        url = hook.url
        first = urlsplit(url)
        origin, scheme = first.netloc.lower(), first.scheme.lower()
        # The process's TLS context: a fresh one per request would load the CA store on the event
        # loop, stalling every call's audio for 50-300 ms.
        async with httpx.AsyncClient(
            follow_redirects=False, timeout=hook.timeout_seconds, transport=self._transport,
            verify=shared_ssl_context(),
        ) as client:
            for _ in range(MAX_REDIRECTS + 1):
                if secret is not None and not secret.allows(url):
                    raise ToolError(f"the webhook's secret may not be sent to {urlsplit(url).hostname}; refused")
                kwargs: dict[str, Any] = {"headers": headers}
                if method in ("GET", "DELETE"):
                    kwargs["params"] = {k: _query_value(v) for k, v in arguments.items()}
                else:
                    kwargs["json"] = arguments
                try:
                    async with client.stream(method, url, **kwargs) as response:
                        if response.is_redirect:
                            location = response.headers.get("location", "")
                            url = urljoin(url, location)
                            target = urlsplit(url)
                            if target.netloc.lower() != origin:
                                raise ToolError("the webhook redirected to another host; refused")
                            if scheme == "https" and target.scheme.lower() != "https":
                                raise ToolError("the webhook redirected from https to http; refused")
                            continue
                        body = await self._read_capped(response)
                        if response.status_code >= 400:
                            raise ToolError(f"the webhook answered HTTP {response.status_code}")
                        return _decode_body(body, response.headers.get("content-type", ""))
                except httpx.TimeoutException as exc:
                    raise ToolError(f"the webhook timed out after {hook.timeout_seconds:g} s") from exc
                except httpx.HTTPError as exc:
                    raise ToolError(f"the webhook could not be reached: {type(exc).__name__}") from exc
        raise ToolError("the webhook redirected too many times")

    async def _read_capped(self, response: httpx.Response) -> bytes:
        """The body, decompressed as it streams in: decompression stops at the cap, so a small
        compressed body can never expand in memory past ``max_response_bytes``."""
        limit = self.max_response_bytes
        too_large = f"the webhook's response is larger than {limit} bytes"
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise ToolError(too_large)
        decoder = _CappedDecoder(response.headers.get("content-encoding", ""))
        body = bytearray()
        async for raw in response.aiter_raw():
            body += decoder.feed(raw, limit - len(body) + 1)
            if len(body) > limit:
                raise ToolError(too_large)
        body += decoder.flush()
        if len(body) > limit:
            raise ToolError(too_large)
        return bytes(body)


class _CappedDecoder:
    """Content-Encoding identity, gzip or deflate, giving at most ``room`` bytes per step."""

    def __init__(self, content_encoding: str) -> None:
        encoding = content_encoding.strip().lower()
        if encoding in ("", "identity"):
            self._inflate: Any = None
        elif encoding in ("gzip", "x-gzip"):
            self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._inflate = zlib.decompressobj()
        else:
            raise ToolError(f"the webhook's response uses an unsupported content-encoding ({encoding[:40]})")
        self._encoding = encoding
        self._started = False

    def feed(self, data: bytes, room: int) -> bytes:
        if self._inflate is None:
            return data
        try:
            out = self._inflate.decompress(data, room)
        except zlib.error:
            if self._encoding == "deflate" and not self._started:
                # Some servers send raw deflate (no zlib header).
                self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)
                self._started = True
                return self.feed(data, room)
            raise ToolError("the webhook's compressed response is corrupt") from None
        self._started = True
        return bytes(out)  # `room` bytes (input left in unconsumed_tail) means past the cap

    def flush(self) -> bytes:
        """What the decompressor still holds once the input ended (bounded by its window)."""
        if self._inflate is None:
            return b""
        try:
            return bytes(self._inflate.flush())
        except zlib.error:
            raise ToolError("the webhook's compressed response is corrupt") from None


def _query_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _decode_body(body: bytes, content_type: str) -> Any:
    text = body.decode("utf-8", errors="replace")
    if not text.strip():
        return {"status": "ok"}
    try:
        return json.loads(text)
    except ValueError:
        if "json" in content_type:
            raise ToolError("the webhook returned invalid JSON") from None
        return {"text": text}


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 3)
