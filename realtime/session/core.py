"""``CallSession``: the coordinator of one call's parts.

The session holds what the whole call shares (the spec, the configuration, the state, the agent
on the call, playback and usage) and the public API a transport or a supervisor calls. Each
concern is a part with its own state, reached as an attribute:

- ``link``       the connection's lifecycle: open, retry, failover, deadline, recreation;
- ``audio_in``   the caller's audio: buffered while no session is open, carried into a new one;
- ``setup``      the GA ``session`` of an agent, the call's voice, session.update answers;
- ``responses``  response sequencing: one response at a time, the rest queued;
- ``context``    transcript, the server conversation, rolling summaries, restore on recreation;
- ``turns``      caller turns: latency, barge-in, idle timeouts;
- ``tool_calls`` function calls, builtins, the supervisor and approvals;
- ``handoffs``   transfers between agents;
- ``guardrails`` checks of the agent's words while it speaks.

Server events arrive typed (``realtime.model_events``) and ``router`` hands each to its part.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from realtime import events as ev
from realtime import takeover
from realtime.config import DEFAULT_REALTIME_MODEL, EngineConfig
from realtime.connection import ConnectionLost, RealtimeConnection, ServerEvent
from realtime.context import Summarizer, TranscriptItem, extractive_summary, text_item
from realtime.guardrails import ChainClassifier, Classifier, ModerationClassifier, SpecClassifier
from realtime.playback import PlaybackTracker
from realtime.spec import AgentSpec, ScenarioSpec
from realtime.tools import ToolRunner
from realtime.usage import UsageMeter

from .caller_audio import CallerAudio
from .conversation import ConversationContext
from .guardrail_monitor import GuardrailMonitor
from .handoffs import Handoffs
from .lifecycle import ConnectionLifecycle
from .responses import ResponseSequencer
from .router import ModelEventRouter
from .session_setup import SessionSetup
from .tool_calls import ToolDispatch
from .turns import TurnTracker
from .util import new_id

log = logging.getLogger(__name__)

Emit = Callable[[ev.EngineEvent], Awaitable[None]]
State = Literal["idle", "connecting", "active", "recreating", "ended"]

WHISPER_PREFIX = "Instruction from {by}, your supervisor (the caller cannot hear this; do not read it out): "
SAY_INSTRUCTIONS = (
    "Your supervisor is speaking to the caller through you. Say exactly the following words to the "
    "caller, word for word, and nothing else: "
)


class CallSession:
    """One call, from greeting to hang-up, over a Realtime connection.

    States: ``idle`` -> ``connecting`` -> ``active`` <-> ``recreating`` -> ``ended``.

    Sideband mode (``EngineConfig.sideband_call_id``, OpenAI SIP): the session joins a call the
    provider carries. Everything is the same except audio: none is sent, the audio formats stay
    the provider's, barge-in truncation is the provider's, the session is not recreated on a timer
    (the provider owns the call's lifetime) and a clean close of the sideband means the call is over.
    """

    def __init__(
        self,
        spec: ScenarioSpec,
        config: EngineConfig,
        tools: ToolRunner | None = None,
        emit: Emit | None = None,
        summarizer: Summarizer | None = None,
        classifier: Classifier | None = None,
        *,
        call_id: str | None = None,
    ) -> None:
        self.spec = spec
        self.config = config
        self.tools = tools or ToolRunner(max_response_bytes=config.webhook_max_response_bytes)
        self._emit_cb = emit
        self.summarizer: Summarizer = summarizer or extractive_summary
        self.call_id = call_id or new_id("call")
        self.model = config.model or spec.root.model or DEFAULT_REALTIME_MODEL
        self.state: State = "idle"
        self.current_agent: str = spec.root_agent
        self.handoff_depth = 0
        self.playback = PlaybackTracker(config.audio_format)
        self.usage = UsageMeter(config.prices)
        self.provider = "primary"
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ready = asyncio.Event()
        self._closed = asyncio.Event()
        self.link = ConnectionLifecycle(self)
        self.audio_in = CallerAudio(self)
        self.setup = SessionSetup(self)
        self.responses = ResponseSequencer(self)
        self.context = ConversationContext(self)
        self.turns = TurnTracker(self)
        self.tool_calls = ToolDispatch(self)
        self.handoffs = Handoffs(self)
        self.guardrails = GuardrailMonitor(self)
        self.router = ModelEventRouter(self)
        # people: a person who took the call over (realtime.takeover); None while the agent has it.
        self.human: takeover.Takeover | None = None
        if classifier is None:
            spec_classifier = SpecClassifier(spec.guardrails)
            classifier = spec_classifier
            if config.moderation or spec.guardrails.moderation:  # the deployment's or the scenario's choice
                moderation = ModerationClassifier(self.link.http_client, config.moderation_model)
                classifier = ChainClassifier(spec_classifier, moderation)
        self.classifier: Classifier = classifier

    # ---------------------------------------------------------------- what the parts share

    @property
    def agent(self) -> AgentSpec:
        return self.spec.agent(self.current_agent)

    @property
    def ended(self) -> bool:
        return self.state == "ended"

    @property
    def sideband(self) -> bool:
        return bool(self.config.sideband_call_id)

    @property
    def transcript(self) -> list[TranscriptItem]:
        """The whole call, never shortened."""
        return self.context.transcript

    @property
    def summary(self) -> str:
        """The latest rolling summary of the call ("" before the first)."""
        return self.context.summary

    @property
    def idle_timeouts(self) -> int:
        """How many times the caller stayed silent past the agent's idle_timeout_ms."""
        return self.turns.idle_timeouts

    @property
    def _conn(self) -> RealtimeConnection | None:
        return self.link.conn

    @property
    def _pending_updates(self) -> deque[tuple[str, float]]:
        return self.setup.pending_updates

    async def _emit(self, event: ev.EngineEvent) -> None:
        if self.human is not None:  # people: what was said while a person has the call
            self.human.observe(event)
        if self._emit_cb is None:
            return
        try:
            await self._emit_cb(event)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("emit failed for %s", event.type)

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _send(self, event: dict[str, Any]) -> None:
        """One client event to the open session (caller audio is kept when there is none)."""
        conn = self.link.conn
        kind = event.get("type")
        if conn is None or self.ended:
            if kind == "input_audio_buffer.append" and not self.ended:
                self.audio_in.buffer(base64.b64decode(event["audio"]))
            return
        if kind == "session.update":
            self.setup.pending_updates.append((event.setdefault("event_id", new_id("evt")), time.monotonic()))
        if self.config.emit_protocol_events and (
            self.config.protocol_audio_events or kind != "input_audio_buffer.append"
        ):
            await self._emit(ev.ProtocolEvent(direction="client", payload=ev.elide_audio(event)))
        try:
            await conn.send(event)
        except ConnectionLost:
            # The reader notices the close and recreates; audio is kept for the new session.
            if kind == "input_audio_buffer.append":
                self.audio_in.buffer(base64.b64decode(event["audio"]))
            return
        if kind == "input_audio_buffer.append" and conn is self.link.conn:
            self.audio_in.sent(event["audio"])

    async def _send_text_item(self, prefix: str, role: str, text: str, *, internal: bool = True) -> str:
        """A text item into the server conversation; internal ones stay out of the transcript."""
        item_id = new_id(prefix)
        if internal:
            self.context.internal_items.add(item_id)
        await self._send({"type": "conversation.item.create", "item": text_item(item_id, role, text)})
        return item_id

    async def _on_server_event(self, event: ServerEvent) -> None:
        if self.config.emit_protocol_events and (
            self.config.protocol_audio_events or event.type != "response.output_audio.delta"
        ):
            await self._emit(ev.ProtocolEvent(direction="server", payload=ev.elide_audio(event.payload)))
        model_event = event.event
        if model_event is not None:
            await self.router.dispatch(model_event)

    # ---------------------------------------------------------------- public API

    def accept_session(self) -> dict[str, Any]:
        """The root agent's session as a SIP call is accepted with (the model included): the same
        configuration the engine sends on connect, so the call is right before the sideband joins."""
        return {**self.setup.session_for(self.agent, continuing=False), "model": self.model}

    async def start(self) -> None:
        """Connect, configure the root agent and let it greet the caller."""
        if self.state != "idle":
            return
        self.state = "connecting"
        self.usage.started_at = time.monotonic()
        await self._emit(ev.AgentChanged(agent=self.current_agent, previous=None))
        if not await self.link.connect_with_retries():
            if not self.ended:  # a hang-up while connecting ended the call already
                await self.link.give_up("could not connect to the Realtime endpoint")
            return
        if self.ended:
            return
        await self.audio_in.flush_backlog()  # still "connecting": new frames queue behind these
        self.state = "active"
        self._ready.set()
        if self.config.greet_on_start:
            await self.responses.request()

    def _audio_waits(self) -> bool:
        return self.link.recreating or self.link.conn is None or self.state == "connecting"

    async def send_audio(self, frame: bytes) -> None:
        """Caller audio in the call's audio format; buffered while the session is recreated."""
        if self.ended or not frame or self.sideband:
            return
        if self._audio_waits():
            self.audio_in.buffer(frame)
            return
        await self._send({"type": "input_audio_buffer.append", "audio": base64.b64encode(frame).decode("ascii")})

    async def send_audio_base64(self, payload: str) -> None:
        """Caller audio already base64-encoded in the call's format (a Twilio media payload,
        checked by the transport to hold only base64 characters): passed upstream as it is, with
        no decode and re-encode; decoded only when it has to wait in the buffer."""
        if self.ended or not payload or self.sideband:
            return
        conn = self.link.conn
        if conn is None or self._audio_waits() or (self.config.emit_protocol_events and self.config.protocol_audio_events):
            await self.send_audio(base64.b64decode(payload))
            return
        try:
            await conn.send_json('{"type":"input_audio_buffer.append","audio":"' + payload + '"}')
        except ConnectionLost:  # the reader notices the close and recreates; audio is kept for it
            self.audio_in.buffer(base64.b64decode(payload))
            return
        self.audio_in.sent(payload)

    async def _user_text(self, text: str) -> TranscriptItem:
        item_id = new_id("item")
        item = self.context.add_transcript(item_id, "user", text, done=True)
        await self._emit(ev.TranscriptDone(role="user", item_id=item_id, text=item.text, agent=self.current_agent))
        await self._send({"type": "conversation.item.create", "item": text_item(item_id, "user", text)})
        await self.responses.request()
        return item

    async def send_text(self, text: str) -> None:
        """A typed message from the caller (chat channel, tests): a user turn."""
        if self.ended or not text.strip():
            return
        await self._ready.wait()
        await self._user_text(text)
        self.context.count_user_turn()

    async def interrupt(self, reason: str = "caller_interrupted") -> None:
        """The caller cut in without speaking (typed, pressed push-to-talk): stop the agent at
        what was heard, as a spoken barge-in would."""
        if self.ended:
            return
        item_id = self.playback.current_item_id
        if item_id is not None and (self.playback.is_playing(item_id) or self.responses.active):
            await self.turns.cut_assistant_audio(item_id, reason=reason)
        if self.responses.active:
            await self._send({"type": "response.cancel"})

    async def push_to_talk(self, pressed: bool) -> None:
        """Push-to-talk: pressing stops the agent and starts a fresh input buffer; releasing
        commits what was said as the caller's turn and asks for an answer."""
        if self.ended:
            return
        await self._ready.wait()
        if pressed:
            await self.interrupt(reason="push_to_talk")
            await self._send({"type": "input_audio_buffer.clear"})
        else:
            await self._send({"type": "input_audio_buffer.commit"})
            await self.responses.request()

    async def report_playback(self, item_id: str, played_ms: float) -> None:
        """The transport played ``played_ms`` of ``item_id`` to the caller."""
        self.playback.report_played_ms(item_id, played_ms)

    async def resolve_approval(self, call_id: str, approved: bool, by: str = "") -> bool:
        """Approve or deny a waiting tool call; False if nothing waits for ``call_id``."""
        return self.tool_calls.resolve_approval(call_id, approved, by)

    async def whisper(self, text: str, by: str = "") -> str | None:
        """A supervisor's instruction to the agent: a system item the agent sees from its next
        response on and the caller never hears (no response is asked for). Kept across session
        recreation. Returns the item's id, or None when the call has ended."""
        if self.ended or not text.strip():
            return None
        await self._ready.wait()
        if self.ended:  # the call may have ended while the session was opening
            return None
        instruction = WHISPER_PREFIX.format(by=by or "the supervisor") + text
        self.context.whispers.append(instruction)
        return await self._send_text_item("wsp", "system", instruction)

    async def say(self, text: str, by: str = "") -> None:
        """A supervisor barges in: the agent is stopped at what the caller heard and its next
        response is only the supervisor's words, in the agent's voice (a response whose
        instructions ask for exactly that text, with no tools). A real model follows such an
        instruction closely, but the words are voiced by the model, not played back verbatim."""
        if self.ended or not text.strip():
            return
        await self._ready.wait()
        await self.interrupt(reason="supervisor")
        await self.responses.request({"instructions": SAY_INSTRUCTIONS + json.dumps(text, ensure_ascii=False),
                                      "tool_choice": "none"})

    async def send_dtmf(self, digit: str) -> None:
        """A keypad digit from the transport: an event, and a user turn the agent can act on."""
        if self.ended:
            return
        await self._emit(ev.DTMF(digit=digit))
        await self._ready.wait()
        await self._user_text(f"[The caller pressed {digit} on the keypad]")

    async def apply_summary(self, text: str, up_to_item_id: str | None = None) -> int:
        """Replace the Realtime conversation's older items by one summary item.

        Deletes every server item up to ``up_to_item_id`` (default: all but the last
        ``keep_recent_turns`` caller turns), then creates the summary. Returns items removed.
        """
        return await self.context.apply_summary(text, up_to_item_id)

    async def recreate(self, reason: str) -> bool:
        """Open a fresh Realtime session and restore the agent and context. False if given up."""
        return await self.link.recreate(reason)

    async def close(self, reason: str = "hangup") -> None:
        """End the call: stop tools, close the connection, emit CallEnded."""
        if self.ended:
            return
        self.state = "ended"
        self._ready.set()
        self.tool_calls.cancel_approvals()
        current = asyncio.current_task()
        for task in [*self.link.tasks(), *self._tasks]:
            if task is not None and task is not current and not task.done():
                task.cancel()
        await self.link.release()
        await self._emit(ev.CallEnded(reason=reason))
        self._closed.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()
