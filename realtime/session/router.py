"""Typed model events to the session's parts: one small handler per event, most of them one hop
into the part that owns the state (``responses``, ``context``, ``audio_in``, ``turns``, ...)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from realtime import events as ev
from realtime import model_events as me
from realtime import takeover

if TYPE_CHECKING:
    from .core import CallSession


class ModelEventRouter:
    def __init__(self, session: CallSession) -> None:
        self.s = session
        self._handlers: dict[type[Any], Callable[[Any], Awaitable[None]]] = {
            me.ModelError: self._error,
            me.SessionUpdated: self._session_updated,
            me.ItemAdded: self._item_added,
            me.ItemDeleted: self._item_deleted,
            me.InputTranscriptDelta: self._input_delta,
            me.InputTranscriptDone: self._input_done,
            me.InputTranscriptFailed: self._input_failed,
            me.SpeechStarted: self._speech_started,
            me.SpeechStopped: self._speech_stopped,
            me.InputCommitted: self._committed,
            me.InputCleared: self._cleared,
            me.DtmfReceived: self._dtmf,
            me.IdleTimeout: self._idle,
            me.ResponseCreated: self._response_created,
            me.AudioDelta: self._audio,
            me.OutputTextDelta: self._text_delta,
            me.OutputTextDone: self._text_done,
            me.FunctionCallDone: self._function_call,
            me.ResponseDone: self._response_done,
        }

    async def dispatch(self, event: me.ModelEvent) -> None:
        await self._handlers[type(event)](event)

    async def _error(self, e: me.ModelError) -> None:
        s = self.s
        await s._emit(ev.Error(code=e.code, message=e.message, source="server"))
        await s.setup.on_error(e.event_id, f"{e.code}: {e.message}")
        if e.code == "session_expired":
            s.link.expired = True
        else:
            await s.responses.on_error(e.code, e.event_id)
        # Anything else (response_cancel_not_active, a bad truncate...) is reported, not fatal.

    async def _session_updated(self, e: me.SessionUpdated) -> None:
        await self.s.setup.on_updated()

    async def _item_added(self, e: me.ItemAdded) -> None:
        s = self.s
        context = s.context
        if e.item_id not in context.server_items:
            context.server_items.append(e.item_id)
        if e.kind == "function_call":
            s.tool_calls.on_call_item(e.call_id)
        elif e.kind == "message" and e.role in ("user", "assistant") and not (
            context.is_ours(e.item_id) or e.item_id in s.turns.idle_items
        ):
            context.add_transcript(e.item_id, e.role, e.text, done=False)

    async def _item_deleted(self, e: me.ItemDeleted) -> None:
        self.s.context.forget_server_item(e.item_id)

    async def _input_delta(self, e: me.InputTranscriptDelta) -> None:
        s = self.s
        if s.turns.is_idle_silence(e.item_id, e.delta):
            return
        item = s.context.ensure_item(e.item_id, "user")
        item.text += e.delta
        await s._emit(ev.TranscriptDelta(role="user", item_id=item.item_id, text=e.delta, agent=s.current_agent))

    async def _input_done(self, e: me.InputTranscriptDone) -> None:
        s = self.s
        if s.turns.is_idle_silence(e.item_id, e.transcript):
            return  # the idle timeout's silence: not a caller turn
        s.audio_in.on_transcribed(e.item_id)
        item = s.context.ensure_item(e.item_id, "user")
        item.text = e.transcript or item.text
        item.done = True
        await s._emit(ev.TranscriptDone(role="user", item_id=item.item_id, text=item.text, agent=s.current_agent))
        await s.turns.caller_transcribed()
        s.context.count_user_turn()

    async def _input_failed(self, e: me.InputTranscriptFailed) -> None:
        self.s.audio_in.on_transcribed(e.item_id)

    async def _speech_started(self, e: me.SpeechStarted) -> None:
        await self.s.turns.on_speech_started()

    async def _speech_stopped(self, e: me.SpeechStopped) -> None:
        self.s.audio_in.on_speech_stopped(e.audio_end_ms)
        self.s.turns.on_speech_stopped()

    async def _committed(self, e: me.InputCommitted) -> None:
        self.s.audio_in.on_committed(e.item_id)

    async def _cleared(self, e: me.InputCleared) -> None:
        self.s.audio_in.on_cleared()

    async def _dtmf(self, e: me.DtmfReceived) -> None:
        await self.s._emit(ev.DTMF(digit=e.digit))

    async def _idle(self, e: me.IdleTimeout) -> None:
        await self.s.turns.on_idle_timeout(e.item_id, e.audio_start_ms, e.audio_end_ms)

    async def _response_created(self, e: me.ResponseCreated) -> None:
        self.s.responses.on_created(e.response_id)
        await takeover.cancel_if_held(self.s)  # people: a person has the call

    async def _audio(self, e: me.AudioDelta) -> None:
        s = self.s
        s.setup.voice_locked = True
        s.responses.had_audio = True
        s.playback.on_audio_generated(e.item_id, len(e.data), e.content_index)
        await s.turns.first_audio()
        await s._emit(ev.AudioOut(item_id=e.item_id, audio=e.data, agent=s.current_agent, audio_base64=e.base64))

    async def _text_delta(self, e: me.OutputTextDelta) -> None:
        s = self.s
        item = s.context.ensure_item(e.item_id, "assistant")
        item.text += e.delta
        await s.turns.first_transcript()
        await s._emit(ev.TranscriptDelta(role="assistant", item_id=item.item_id, text=e.delta, agent=item.agent))
        s.guardrails.on_text(item, final=False)

    async def _text_done(self, e: me.OutputTextDone) -> None:
        s = self.s
        item = s.context.ensure_item(e.item_id, "assistant")
        if e.text:
            item.text = e.text
        item.done = True
        await s._emit(ev.TranscriptDone(role="assistant", item_id=item.item_id, text=item.text, agent=item.agent,
                                        interrupted=item.interrupted))
        s.guardrails.on_text(item, final=True)

    async def _function_call(self, e: me.FunctionCallDone) -> None:
        self.s.tool_calls.on_function_call(e.name, e.call_id, e.arguments)

    async def _response_done(self, e: me.ResponseDone) -> None:
        s = self.s
        agent_slug = s.responses.agent_of(e.response_id)
        local = s.config.local or s.provider == "offline"
        tokens, cost = s.usage.add(agent_slug, s.model, e.usage, local=local)
        await s._emit(ev.Usage(
            response_id=e.response_id, agent=agent_slug, model=s.model, tokens=tokens, cost_usd=cost,
            totals=dict(s.usage.totals), total_cost_usd=s.usage.cost_usd,
            cost_per_minute_usd=s.usage.cost_per_minute_usd,
            per_agent_cost_usd=dict(s.usage.per_agent_cost_usd), local=local,
        ))
        for item in s.context.items.values():
            if item.role == "assistant" and not item.done and item.item_id in e.output_ids:
                item.done = True
                item.interrupted = item.interrupted or e.status != "completed"
                await s._emit(ev.TranscriptDone(role="assistant", item_id=item.item_id, text=item.text,
                                                agent=item.agent, interrupted=item.interrupted))
        await s.responses.on_done(e, agent_slug)
