"""OpenAI SIP calls: the verified `realtime.call.incoming` webhook, accept, and the sideband runner.

OpenAI answers the phone network's INVITE and posts `realtime.call.incoming` (call_id, SIP headers)
to `POST /openai/webhook`. We verify it (Standard Webhooks, through the `openai` package), claim its
webhook-id once, pick the scenario (the trunk's scenario header, else the dialled number in the
`To` header, else the default setting) and compile it, open the Call record, accept the call with
the root agent's session (`POST /v1/realtime/calls/{call_id}/accept`; audio formats left to the provider,
which negotiated the codec with the phone network) and start the engine on the call's sideband
WebSocket (`?call_id=`). Audio flows phone <-> OpenAI and never reaches us; over the sideband the
engine sees every server event and runs handoffs, tools, guardrails and usage as on any call.

Where a SIP call lives: nothing opens a socket to us for it, so its `CallBridge` runs as an asyncio
task in the daphne process that took the webhook, kept in `RUNNING` (this process only) and reachable
like any call through its channel group: the runner has its own channel in `call.<id>`, so hang-ups,
rolling summaries and supervisor actions reach it from any process or Celery. Heartbeats are written
as a consumer writes them. The trade-off: the engine of a SIP call dies with that process (a deploy
or crash); the reaper then ends the record as "lost", while the phone call itself is the provider's
(rejoining it by call_id from another process is possible but not done here). A dedicated runner
service would isolate calls from web traffic at the cost of another process to run and route to.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import functools
import json
import logging
import re
from typing import Any

import httpx
import openai
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from openai.types.realtime.call_accept_params import CallAcceptParams

from calls import actions
from calls.bridge import CallBridge
from calls.models import Call, call_group
from calls.scenarios import Route, UnknownScenario, compile_for_call, resolve_inbound_scenario
from calls.upstream import async_openai_client
from realtime.spec import ScenarioSpec

logger = logging.getLogger(__name__)

# Standard Webhooks: `webhooks.unwrap` refuses timestamps more than 300 s old or ahead (the
# package's tolerance), so a webhook-id claimed for longer can never be replayed past its claim.
WEBHOOK_TOLERANCE_SECONDS = 300
WEBHOOK_CLAIM_SECONDS = 2 * WEBHOOK_TOLERANCE_SECONDS + 60

# SIP final responses we reject with.
SIP_NOT_FOUND = 404
SIP_SERVER_ERROR = 500

# Engine end reasons after which the phone call is already over (nothing to hang up).
CALLER_GONE = {"caller_hung_up"}

RUNNING: dict[int, SipCallRunner] = {}
"""SIP calls whose engine runs in this process, by Call id."""


class WebhookRefused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@functools.cache
def _verification_client() -> openai.OpenAI:
    """Verification is local (nothing is sent): no real key or endpoint. Made once: building a client
    loads the CA bundle, which would hold the event loop (and every call on it) for each webhook."""
    from realtime.connection import shared_ssl_context

    # The process's TLS context (made at start-up, contactcenter/asgi.py): making one here would hold
    # the event loop for the first webhook's 50-300 ms of CA loading, and every call's audio with it.
    return openai.OpenAI(api_key="webhook-verification-only", base_url="http://127.0.0.1:9/v1",
                         http_client=openai.DefaultHttpxClient(verify=shared_ssl_context()))


def warm_up() -> None:
    """Load at start-up what the first SIP webhook would load on the event loop (the verification
    client, the SDK's lazily imported resources, the cache backend that claims webhook ids). Nothing is connected.."""
    from django.core.cache import caches

    from calls.upstream import async_openai_client

    _verification_client().webhooks  # noqa: B018 - the attribute imports its module
    client = async_openai_client()
    client.realtime.calls  # noqa: B018
    caches["default"]  # the backend and its module, made once (no connection is made)


def verify_webhook(body: bytes, headers: dict[str, str]) -> Any:
    """The event of a webhook OpenAI signed with OPENAI_WEBHOOK_SECRET; WebhookRefused otherwise."""
    secret = settings.OPENAI_WEBHOOK_SECRET
    if not secret:
        raise WebhookRefused(503, "OPENAI_WEBHOOK_SECRET is not set")
    try:
        return _verification_client().webhooks.unwrap(body, headers, secret=secret)
    except openai.InvalidWebhookSignatureError as error:  # bad signature, too old, too new
        raise WebhookRefused(401, str(error)) from None
    except ValueError as error:  # a missing header, a body that is not JSON
        raise WebhookRefused(400, str(error)[:200]) from None
    except RecursionError:  # signed, but nested too deeply for the JSON parser
        raise WebhookRefused(400, "the body is nested too deeply") from None


INCOMING_CALL = "realtime.call.incoming"
CALL_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
MAX_SIP_HEADERS = 200
MAX_SIP_HEADER_CHARS = 4096


def incoming_call(body: bytes) -> tuple[str, list[tuple[str, str]]] | None:
    """(call_id, SIP headers) of a verified `realtime.call.incoming` body; None for another event
    type; WebhookRefused(400) when the event is malformed (the signature proves who sent it, not
    that its shape is right)."""
    try:
        event = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookRefused(400, "the body is not JSON") from None
    if not isinstance(event, dict):
        raise WebhookRefused(400, "the event is not a JSON object")
    if event.get("type") != INCOMING_CALL:
        return None
    data = event.get("data")
    if not isinstance(data, dict):
        raise WebhookRefused(400, "the event has no data object")
    call_id = data.get("call_id")
    if not isinstance(call_id, str) or not CALL_ID.fullmatch(call_id):
        raise WebhookRefused(400, "the event's call_id is missing or malformed")
    raw_headers = data.get("sip_headers", [])
    if not isinstance(raw_headers, list) or len(raw_headers) > MAX_SIP_HEADERS:
        raise WebhookRefused(400, f"the event's sip_headers must be a list of at most {MAX_SIP_HEADERS}")
    headers: list[tuple[str, str]] = []
    for header in raw_headers:
        if not (isinstance(header, dict) and isinstance(header.get("name"), str)
                and isinstance(header.get("value"), str)):
            raise WebhookRefused(400, "each SIP header must be an object with a string name and value")
        if len(header["name"]) + len(header["value"]) > MAX_SIP_HEADER_CHARS:
            raise WebhookRefused(400, f"a SIP header is longer than {MAX_SIP_HEADER_CHARS} characters")
        headers.append((header["name"], header["value"]))
    return call_id, headers


async def claim_webhook(webhook_id: str) -> bool:
    """True for the first delivery of a webhook-id (in the cache: Redis, shared by every process,
    when REDIS_URL is set); False for a replay or a retry of one being processed."""
    return bool(await cache.aadd(f"openai:webhook:{webhook_id}", 1, timeout=WEBHOOK_CLAIM_SECONDS))


async def release_webhook(webhook_id: str) -> None:
    """Processing failed: let OpenAI's retry of this delivery in."""
    await cache.adelete(f"openai:webhook:{webhook_id}")


def _header(headers: list[tuple[str, str]], name: str) -> str:
    for key, value in headers:
        if key.lower() == name.lower():
            return value
    return ""


def caller_number(from_header: str) -> str:
    """The user part of a SIP From header (`"Ada" <sip:+4477...@host>;tag=x` -> `+4477...`)."""
    match = re.search(r"<?(?:sips?|tel):([^@;>]+)", from_header)
    if match:
        return match.group(1)
    return from_header.split(";")[0].strip().strip('"<>')[:128]


def scenario_for(headers: list[tuple[str, str]]) -> Route:
    """The scenario a SIP call runs: the SIP_SCENARIO_HEADER header (set by your SIP trunk or PBX,
    which must strip it from what callers send), else the number dialled (the `To` header's user
    part, as E.164) among the scenarios' inbound numbers, else SIP_DEFAULT_SCENARIO (then
    TWILIO_DEFAULT_SCENARIO); see `calls.scenarios.resolve_inbound_scenario`. With
    SIP_SCENARIO_HEADER_ALLOWED set, a header naming any other scenario rejects the call."""
    named = _header(headers, settings.SIP_SCENARIO_HEADER).strip() if settings.SIP_SCENARIO_HEADER else ""
    allowed = [slug for slug in settings.SIP_SCENARIO_HEADER_ALLOWED if slug]
    if named and allowed and named not in allowed:
        return Route("", f"the {settings.SIP_SCENARIO_HEADER} header names {named[:64]!r}, "
                         "which SIP_SCENARIO_HEADER_ALLOWED does not list")
    return resolve_inbound_scenario(
        explicit=named, dialled=_header(headers, "To"),
        default=str(settings.SIP_DEFAULT_SCENARIO or settings.TWILIO_DEFAULT_SCENARIO or ""),
    )


async def handle_incoming_call(call_id: str, sip_headers: list[tuple[str, str]]) -> int | None:
    """Accept (or reject) one incoming SIP call; the Call id when its engine was started.

    Runs in a fresh context: the call's tasks (engine, recorder) outlive the webhook request, whose
    thread-sensitive ORM executor ends with it."""
    task = asyncio.get_running_loop().create_task(
        _handle_incoming_call(call_id, sip_headers), context=contextvars.Context())
    return await task


def accept_params(session: dict[str, Any]) -> dict[str, Any]:
    """The compiled session as `calls.accept` keyword arguments (fields accept does not take are
    dropped with a log line rather than failing the call)."""
    allowed = CallAcceptParams.__required_keys__ | CallAcceptParams.__optional_keys__
    dropped = sorted(set(session) - allowed)
    if dropped:
        logger.info("SIP accept: session fields not accepted by the API dropped: %s", ", ".join(dropped))
    return {key: value for key, value in session.items() if key in allowed}


async def _handle_incoming_call(call_id: str, sip_headers: list[tuple[str, str]]) -> int | None:
    client = async_openai_client(timeout=10.0)
    try:
        route = await database_sync_to_async(scenario_for)(sip_headers)
        try:
            if not route.slug:
                raise UnknownScenario(route.reason)
            scenario, spec = await database_sync_to_async(compile_for_call)(route.slug)
        except UnknownScenario as error:
            logger.warning("SIP call %s rejected: %s", call_id, error)
            await client.realtime.calls.reject(call_id, status_code=SIP_NOT_FOUND)
            return None
        caller = caller_number(_header(sip_headers, "From"))
        call = await database_sync_to_async(actions.do_start_call)(
            channel=Call.Channel.SIP, spec=spec.to_dict(), scenario=scenario, caller_id=caller,
            external_id=call_id, status=Call.Status.RINGING,
        )
        runner = SipCallRunner(call.pk, spec, call_id)
        try:
            await client.realtime.calls.accept(call_id, **accept_params(runner.bridge.session.accept_session()))
        except (openai.OpenAIError, httpx.HTTPError) as error:
            logger.warning("SIP call %s (call %s): accept failed: %s", call_id, call.pk, type(error).__name__)
            await runner.abandon("accept_failed")
            return None
        await database_sync_to_async(actions.do_answer_call)(call.pk, consumer_channel="", external_id=call_id)
        runner.start()
        logger.info("SIP call %s accepted as call %s (scenario %s: %s; caller %s)", call_id, call.pk, spec.slug,
                    route.reason, caller)
        return call.pk
    finally:
        await client.close()


class SipCallRunner:
    """One SIP call's engine in this process: the bridge on the sideband, the call's channel group,
    heartbeats. It is the bridge's transport: there is no audio to play, only the end to act on."""

    def __init__(self, call_id: int, spec: ScenarioSpec, sip_call_id: str) -> None:
        from realtime import CallSession

        def sideband_session(spec: ScenarioSpec, config: Any, **kwargs: Any) -> CallSession:
            return CallSession(spec, dataclasses.replace(config, sideband_call_id=sip_call_id), **kwargs)

        self.call_id = call_id
        self.sip_call_id = sip_call_id
        self.channel_name = ""
        self.end_reason = ""
        self.done = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._main: asyncio.Task[None] | None = None
        # The engine's audio format is irrelevant here: the sideband sends none and sets none.
        self.bridge = CallBridge(call_id, spec, "audio/pcm", self, session_factory=sideband_session)

    # --- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        RUNNING[self.call_id] = self
        self._main = asyncio.get_running_loop().create_task(self._run(), name=f"sip-call-{self.call_id}")

    async def abandon(self, reason: str) -> None:
        """The call never started (accept failed): end the record, stop the recorder."""
        await self.bridge.session.close(reason)
        await self.bridge.flush()

    async def _run(self) -> None:
        layer = get_channel_layer()
        try:
            if layer is not None:
                self.channel_name = await layer.new_channel()
                await layer.group_add(call_group(self.call_id), self.channel_name)
                await database_sync_to_async(actions.do_heartbeat)(self.call_id, consumer_channel=self.channel_name)
                self._spawn(self._listen(layer))
            self._spawn(self._heartbeat())
            await self.bridge.start()
            await self.bridge.session.wait_closed()
            await self.bridge.flush()
            if self.end_reason not in CALLER_GONE:
                await self._hang_up()
        except asyncio.CancelledError:
            await asyncio.shield(self.bridge.close("server_shutdown"))
            raise
        except Exception:
            logger.exception("SIP call %s (call %s) failed", self.sip_call_id, self.call_id)
            await self.bridge.close("engine_error")
        finally:
            for task in list(self._tasks):
                task.cancel()
            if layer is not None and self.channel_name:
                await layer.group_discard(call_group(self.call_id), self.channel_name)
            RUNNING.pop(self.call_id, None)
            self.done.set()

    async def _hang_up(self) -> None:
        """The engine ended the call (end_call, a supervisor, a lost session): end the phone call."""
        client = async_openai_client(timeout=10.0)
        try:
            await client.realtime.calls.hangup(self.sip_call_id)
        except (openai.OpenAIError, httpx.HTTPError) as error:
            logger.warning("SIP call %s: hangup failed: %s", self.sip_call_id, type(error).__name__)
        finally:
            await client.close()

    def _spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _heartbeat(self) -> None:
        from calls.live import keep_heartbeat

        await keep_heartbeat(self.call_id)  # survives a database outage

    async def _listen(self, layer: Any) -> None:
        """Messages to the call's group, handled as the consumers handle them."""
        while True:
            try:
                message = await layer.receive(self.channel_name)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 — a channel-layer hiccup must not end the call
                logger.warning("SIP call %s: channel layer receive failed: %s", self.call_id, error)
                await asyncio.sleep(1.0)
                continue
            kind = message.get("type")
            session = self.bridge.session
            if kind == "call.summary":
                self.bridge.deliver_summary(str(message.get("request_id", "")), str(message.get("text", "")))
            elif kind == "call.hangup":
                self._spawn(session.close(str(message.get("reason") or "ended_by_supervisor")))
            elif kind == "call.recreate":
                # The provider owns a SIP call's session and its length; a sideband is not recreated.
                logger.info("SIP call %s: recreate request ignored (%s)", self.call_id, message.get("reason"))
            elif kind == "call.supervisor" and hasattr(self.bridge, "supervise"):
                self._spawn(self._supervise(layer, message))

    async def _supervise(self, layer: Any, message: dict[str, Any]) -> None:
        problem = await self.bridge.supervise(
            str(message.get("action")), by=str(message.get("by") or ""), text=str(message.get("text") or ""),
            tool_call_id=str(message.get("tool_call_id") or ""))
        if reply_channel := str(message.get("reply_channel") or ""):
            await layer.send(reply_channel, {
                "type": "dashboard.reply", "action_id": message.get("action_id"), "action": message.get("action"),
                "ok": problem is None, "detail": problem or "",
            })

    # --- Transport (called by the bridge) ----------------------------------------------------------

    async def play_audio(self, item_id: str, audio: bytes) -> None:
        return None  # the provider plays the agent to the phone line

    async def clear_playback(self, item_id: str) -> None:
        return None

    async def forward_event(self, event: dict[str, Any]) -> None:
        return None  # records reach supervisors through the call's group

    async def call_ended(self, reason: str) -> None:
        self.end_reason = reason


async def wait_for_calls(timeout: float = 10.0) -> None:
    """Wait until every SIP call of this process has finished (tests, shutdown)."""
    runners = list(RUNNING.values())
    if runners:
        await asyncio.wait_for(asyncio.gather(*(r.done.wait() for r in runners)), timeout)
