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
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

import httpx
import jsonschema
from jsonschema.validators import validator_for

from realtime.spec import ToolSpec, WebhookSpec

PythonHandler = Callable[[str, dict[str, Any]], Awaitable[Any]]
"""``async (handler_key, arguments) -> JSON-safe result`` (the platform's handler registry)."""

BuiltinHandler = Callable[[dict[str, Any]], Awaitable[Any]]

MAX_REDIRECTS = 3


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
    """Runs tools. ``python_handler`` and ``secrets`` are injected by the platform."""

    def __init__(
        self,
        python_handler: PythonHandler | None = None,
        secrets: Mapping[str, str] | None = None,
        *,
        max_response_bytes: int = 64 * 1024,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.python_handler = python_handler
        self._secrets: Mapping[str, str] = secrets or {}
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
        headers = {"Accept": "application/json"}
        if hook.secret_name:
            secret = self._secrets.get(hook.secret_name)
            if secret is None:
                raise ToolError("the webhook's secret is not configured")
            headers[hook.secret_header or "Authorization"] = secret
        method = hook.method.upper()
        url = hook.url
        origin = urlsplit(url).netloc.lower()
        async with httpx.AsyncClient(
            follow_redirects=False, timeout=hook.timeout_seconds, transport=self._transport
        ) as client:
            for _ in range(MAX_REDIRECTS + 1):
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
                            if urlsplit(url).netloc.lower() != origin:
                                raise ToolError("the webhook redirected to another host; refused")
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
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_response_bytes:
            raise ToolError(f"the webhook's response is larger than {self.max_response_bytes} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self.max_response_bytes:
                raise ToolError(f"the webhook's response is larger than {self.max_response_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)


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
