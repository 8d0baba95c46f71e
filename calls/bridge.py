"""Wires one engine `CallSession` to a transport (browser or phone) and to the call's records.

The engine awaits our `emit` for every event, so nothing slow happens there: audio and clear
go straight to the transport; events that become records go on a queue that one recorder task
per call writes through `calls.actions`, in order. Records and Python tool handlers run on their
own thread pools, not on the one thread that Channels shares between every consumer of the
process for the ORM (it closes old connections there before dispatching each frame): a slow
database, a slow tool or a stalled channel layer therefore delays records, never audio.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any, Protocol

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.conf import settings

from agents import registry
from calls import actions
from calls.models import LOCAL_SUFFIX
from contactcenter import metrics
from realtime import events as ev
from realtime.config import AudioFormat, EngineConfig
from realtime.context import TranscriptItem as EngineTranscriptItem
from realtime.spec import ScenarioSpec

logger = logging.getLogger(__name__)

ESCALATION_SOURCES = {"tool": "model", "model": "model", "guardrail": "guardrail", "caller": "caller",
                      "engine": "failures", "failures": "failures"}


class Transport(Protocol):
    """What a consumer offers the bridge."""

    async def play_audio(self, item_id: str, audio: bytes) -> None: ...

    async def clear_playback(self, item_id: str) -> None: ...

    async def forward_event(self, event: dict[str, Any]) -> None: ...

    async def call_ended(self, reason: str) -> None: ...


def engine_config(audio_format: AudioFormat) -> EngineConfig:
    from calls.upstream import api_key, base_url

    return EngineConfig(
        base_url=base_url(),
        api_key=api_key(),
        model=None,
        supervisor_model=settings.SUPERVISOR_DEFAULT_MODEL,
        audio_format=audio_format,
        tool_timeout_s=settings.TOOL_TIMEOUT_SECONDS,
        approval_timeout_s=settings.TOOL_APPROVAL_TIMEOUT_SECONDS,
        supervisor_timeout_s=settings.SUPERVISOR_TIMEOUT_SECONDS,
        webhook_max_response_bytes=settings.WEBHOOK_MAX_RESPONSE_BYTES,
        prices=settings.REALTIME_PRICES,
        required_tool_turns_limit=settings.REQUIRED_TOOL_TURNS_LIMIT,
        # Used only by scenarios whose failover provider is the offline engine.
        failover_base_url=settings.OFFLINE_ENGINE_URL or None,
        local=not settings.OPENAI_API_KEY,
    )


#: Threads that write call records (each call's recorder awaits one write at a time, so a call's
#: records stay in order) and threads that run Python tool handlers.
RECORDS_EXECUTOR = ThreadPoolExecutor(max_workers=4, thread_name_prefix="call-records")
TOOLS_EXECUTOR = ThreadPoolExecutor(max_workers=4, thread_name_prefix="call-tools")


def off_shared_thread(fn: Callable[..., Any], executor: ThreadPoolExecutor) -> Callable[..., Any]:
    """``fn`` as a coroutine function on ``executor``: ``database_sync_to_async`` (its connection
    hygiene around the call) on a pool of our own instead of the shared thread."""
    return database_sync_to_async(fn, thread_sensitive=False, executor=executor)


def on_records_thread(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` as a coroutine function on the records' threads: a call's own database work (its
    start, heartbeat and end) waits there, never on the one sync thread that every Django view
    and Channels consumer of the process shares (a burst of webhooks would hold every call start)."""
    return off_shared_thread(fn, RECORDS_EXECUTOR)


async def run_python_handler(key: str, arguments: dict[str, Any]) -> Any:
    """The registry's sync handler, on the tools' thread pool (never on the event loop)."""
    handler = registry.HANDLERS.get(key)
    if handler is None:
        raise LookupError(f"no tool handler {key!r}")
    return await off_shared_thread(handler, TOOLS_EXECUTOR)(arguments)


class CallBridge:
    """One live call: the engine session, its recorder, and the rolling-summary round trip."""

    def __init__(self, call_id: int, spec: ScenarioSpec, audio_format: AudioFormat, transport: Transport,
                 *, session_factory: Callable[..., Any] | None = None) -> None:
        from realtime import CallSession, ToolRunner

        self.call_id = call_id
        self.spec = spec
        self.transport = transport
        self._records: asyncio.Queue[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]] | None] = (
            asyncio.Queue())
        self._held_since: float | None = None  # when records started waiting for the database
        self._recorder = asyncio.ensure_future(self._record_loop())
        self._summaries: dict[str, asyncio.Future[str]] = {}
        # A transport that sends base64 on as is (Twilio) gets the audio without a re-encode.
        self._play_base64: Callable[[str, str, int], Awaitable[None]] | None = getattr(
            transport, "play_audio_base64", None)
        self._ended = asyncio.Event()
        self.end_reason = ""
        from calls.listen import ListenTap

        self.listen = ListenTap(call_id, audio_format)
        #: The person on the call (calls.takeover.PeopleLine), made when one first takes it over.
        self.people: Any = None
        factory = session_factory or CallSession
        config = engine_config(audio_format)
        if not getattr(transport, "wants_protocol_events", True):  # nobody would see them: no work per frame
            config = dataclasses.replace(config, emit_protocol_events=False)
        self.session = factory(
            spec,
            config,
            tools=ToolRunner(run_python_handler, settings.TOOL_SECRETS,
                             max_response_bytes=settings.WEBHOOK_MAX_RESPONSE_BYTES),
            emit=self._on_event,
            summarizer=self._summarize,
            call_id=str(call_id),
        )

    # --- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        self._record(actions.do_open_session, self.call_id, model=self.session.model, agent=self.spec.root_agent,
                     first=True)
        await self.session.start()

    async def close(self, reason: str) -> None:
        """End the call (idempotent) and wait until every record is written."""
        await self.session.close(reason)
        await self.listen.close()
        if self.people is not None:
            await self.people.close()
        await self.flush()

    async def flush(self) -> None:
        """Wait for the recorder to write everything queued so far (and stop it once the call ended)."""
        if self._recorder.done():
            return
        if self._ended.is_set():
            self._records.put_nowait(None)
            await asyncio.shield(self._recorder)
        else:
            await self._records.join()

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    # --- caller input -------------------------------------------------------------------------------

    async def interrupt(self) -> None:
        """The caller typed while the agent spoke: cut the agent off at what was heard."""
        await self.session.interrupt(reason="caller_text")

    async def push_to_talk(self, pressed: bool) -> None:
        """Down: drop what the input buffer holds (and stop the agent). Up: commit it as a turn."""
        await self.session.push_to_talk(pressed)

    # --- channel-layer deliveries -------------------------------------------------------------------

    def deliver_summary(self, request_id: str, text: str) -> None:
        future = self._summaries.get(request_id)
        if future is not None and not future.done():
            future.set_result(text)

    async def supervise(self, action: str, *, by: str, text: str = "", tool_call_id: str = "") -> str | None:
        """A supervisor's action from the dashboard; returns why it could not be applied, or None.

        approve/deny resolve a waiting needs-approval tool call (recorded with `by`); whisper adds
        an instruction the agent sees and the caller does not hear; say cuts the agent off and has
        it speak the supervisor's words; hangup ends the call."""
        session = self.session
        if self.ended or session.ended:
            return "the call has ended"
        if action in ("approve", "deny"):
            if not await session.resolve_approval(tool_call_id, action == "approve", by):
                return "nothing is waiting for approval with that id (answered or timed out)"
        elif action == "whisper":
            await session.whisper(text, by=by)
        elif action == "say":
            await session.say(text, by=by)
        elif action == "hangup":
            await session.close("ended_by_supervisor")
        else:
            return f"unknown action {action!r}"
        return None

    # --- engine -> transport and records ------------------------------------------------------------

    def _record(self, do: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self._records.put_nowait((do, args, kwargs))

    async def _record_loop(self) -> None:
        while True:
            entry = await self._records.get()
            try:
                if entry is None:
                    return
                await self._write(*entry)
            finally:
                self._records.task_done()

    async def _write(self, do: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """One record. While the database is unreachable (restarting, a network cut) the record is
        held and tried again, with the call's later records queued behind it in order, for up to
        CALL_RECORD_HOLD_SECONDS; past that it is dropped and logged (the loss is bounded)."""
        from django.db import InterfaceError, OperationalError

        name = getattr(do, "__name__", str(do))
        delay = 0.2
        while True:
            try:
                await off_shared_thread(do, RECORDS_EXECUTOR)(*args, **kwargs)
            except (OperationalError, InterfaceError) as error:
                now = time.monotonic()
                if self._held_since is None:  # the outage starts (it spans records: one hold for all)
                    self._held_since = now
                    logger.warning("call %s: the database is unreachable (%s); holding the call's records",
                                   self.call_id, type(error).__name__)
                if now - self._held_since >= settings.CALL_RECORD_HOLD_SECONDS:
                    logger.error("call %s: record %s dropped after %.0f s without the database (%s)",
                                 self.call_id, name, now - self._held_since, error)
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            except Exception:  # one bad record must not lose the rest of the call's history
                logger.exception("call %s: could not record %s", self.call_id, name)
                return
            if self._held_since is not None:
                logger.warning("call %s: records written again after %.1f s held (the database is back)",
                               self.call_id, time.monotonic() - self._held_since)
                self._held_since = None
            return

    async def _on_event(self, event: ev.EngineEvent) -> None:
        if isinstance(event, ev.AudioOut):
            if self.session.human is not None:  # a person has the call (a response cancelled late)
                return
            self.listen.agent(event.audio)
            started = time.perf_counter()
            if self._play_base64 is not None and event.audio_base64:
                await self._play_base64(event.item_id, event.audio_base64, len(event.audio))
            else:
                await self.transport.play_audio(event.item_id, event.audio)
            metrics.frame("out", started)
            return
        if isinstance(event, ev.ClearPlayback):
            await self.transport.clear_playback(event.item_id)
        self._record_event(event)
        await self.transport.forward_event(event.to_dict())
        if isinstance(event, ev.CallEnded):
            self.end_reason = event.reason
            self._ended.set()
            await self.listen.close()
            if self.people is not None:
                await self.people.close()
            await self.transport.call_ended(event.reason)

    def _record_event(self, event: ev.EngineEvent) -> None:
        call_id = self.call_id
        if isinstance(event, ev.TranscriptDone):
            if event.text.strip() or event.role == "user":
                self._record(actions.do_record_transcript, call_id, item_id=event.item_id, role=event.role,
                             text=event.text, agent=event.agent, truncated=event.interrupted)
        elif isinstance(event, ev.AgentChanged):
            if event.previous is not None or event.agent != self.spec.root_agent:  # the row starts with the root
                self._record(actions.do_set_current_agent, call_id, event.agent)
        elif isinstance(event, ev.Handoff):
            context: dict[str, Any] = {"summary": event.context}
            if event.fields:
                context["fields"] = event.fields
            if event.requested_agent and event.requested_agent != event.to_agent:
                context["requested_agent"] = event.requested_agent
            if event.voice_kept:
                context["voice"] = event.voice_kept
            self._record(actions.do_record_handoff, call_id, from_agent=event.from_agent, to_agent=event.to_agent,
                         reason=event.reason, context=context, depth=event.depth,
                         duration_ms=round(event.duration_ms), voice_kept=bool(event.voice_kept),
                         fallback=event.fallback)
            if self.spec.people.queue_timeout_s > 0:
                from calls.queue import call_queue

                call_queue(self).on_handoff(event)
        elif isinstance(event, ev.ToolStarted):
            self._record(actions.do_record_tool, call_id, tool_call_id=event.call_id, name=event.name,
                         status="started", agent=event.agent, arguments=_json_arguments(event.arguments))
        elif isinstance(event, ev.ApprovalRequested):
            self._record(actions.do_record_tool, call_id, tool_call_id=event.call_id, name=event.name,
                         status="awaiting_approval", agent=event.agent, arguments=_json_arguments(event.arguments))
        elif isinstance(event, ev.ToolFinished):
            self._record(actions.do_record_tool, call_id, tool_call_id=event.call_id, name=event.name,
                         status=event.status, agent=event.agent, arguments=_json_arguments(event.arguments),
                         result=event.to_dict()["result"], error=event.error or "",
                         duration_ms=round(event.duration_ms), approved_by=event.approved_by or "")
        elif isinstance(event, ev.GuardrailTripped):
            self._record(actions.do_record_guardrail, call_id, category=event.category, text=event.text,
                         action="cancelled_and_corrected", agent=event.agent, item_id=event.item_id)
        elif isinstance(event, ev.Escalation):
            from calls.queue import call_queue

            if call_queue(self).on_escalation(event):  # the scenario's human queue
                return
            self._record(actions.do_escalate, call_id, reason=event.reason,
                         source=ESCALATION_SOURCES.get(event.source, "model"), agent=event.agent)
        elif isinstance(event, ev.Usage):
            # local usage (the offline engine) is kept apart from the priced part of the same agent
            agent = f"{event.agent}{LOCAL_SUFFIX}" if event.local else event.agent
            self._record(actions.do_record_usage, call_id, agent=agent, usage=dict(event.tokens),
                         cost=Decimal(str(event.cost_usd)))
        elif isinstance(event, ev.Latency):
            if event.kind == "voice_to_voice":
                metrics.voice_to_voice(event.ms)
                self._record(actions.do_record_latency, call_id, voice_to_voice_ms=max(0, round(event.ms)))
        elif isinstance(event, ev.SessionRecreated):
            self._record(actions.do_open_session, call_id, model=self.session.model,
                         agent=self.session.current_agent, gap_ms=max(0, round(event.gap_ms)),
                         previous_end_reason=event.reason)
        elif isinstance(event, ev.HandoffApplied):
            if not event.applied:
                logger.warning("call %s: the server refused the handoff to %s: %s", call_id, event.to_agent,
                               event.error[:300])
            self._record(actions.do_mark_handoff_applied, call_id, to_agent=event.to_agent, depth=event.depth,
                         applied=event.applied, applied_ms=max(0, round(event.ms)), error=event.error)
        elif isinstance(event, ev.CallerIdle):
            logger.info("call %s: caller silent for %d ms (agent %s)", call_id, event.ms, event.agent)
            self._record(actions.do_record_caller_idle, call_id, ms=event.ms, agent=event.agent,
                         item_id=event.item_id)
        elif isinstance(event, ev.Error):
            log = logger.error if event.fatal else logger.info
            log("call %s engine error %s: %s", call_id, event.code, event.message[:300])
        elif isinstance(event, ev.CallEnded):
            if (queue := getattr(self, "queue", None)) is not None:  # calls.queue
                queue.close()
            self._record(actions.do_end_call, call_id, event.reason)

    # --- rolling summaries through Celery -----------------------------------------------------------

    async def _summarize(self, turns: Sequence[EngineTranscriptItem], previous: str) -> str:
        """The engine's summariser: a Celery task whose answer comes back through the channel layer."""
        from calls.tasks import summarize_context

        request_id = uuid.uuid4().hex
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._summaries[request_id] = future
        payload = [{"role": t.role, "text": t.text, "agent": t.agent} for t in turns]
        try:
            # A thread: the broker publish (or, without Redis, the eager task itself) may block.
            await sync_to_async(summarize_context.delay, thread_sensitive=False)(
                self.call_id, request_id, payload, previous)
            return await asyncio.wait_for(future, settings.ROLLING_SUMMARY_TIMEOUT_SECONDS)
        finally:
            self._summaries.pop(request_id, None)


def _json_arguments(arguments: dict[str, Any] | str) -> Any:
    return arguments if isinstance(arguments, dict) else {"raw": arguments}
