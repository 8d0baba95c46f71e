"""A person takes a live call over from the agent, and hands it back (the Django side).

Two ends, possibly on different daphne workers:

* The person's socket, `TakeoverConsumer` at `/ws/dashboard/calls/<id>/takeover/` (supervisors and
  members of the "Human agents" group; callers never). It is a listener of the caller's side
  (calls.listen: the caller's audio reaches the person through the same bounded pub/sub fan-out),
  and it sends the person's microphone (pcm16 24 kHz, binary frames) to the call: each frame goes
  as a `call.human_audio` message on the call's group, through a bounded queue that drops the
  oldest frame rather than wait. Opening it records the take-over (`actions.do_take_over`) and
  asks the call (`call.takeover` start); `{"type": "hand_back"}` or closing the socket hands back
  (`actions.do_hand_back`, `call.takeover` stop). While open it renews (`call.takeover` keep).
* The call's worker: `PeopleLine`, made by the call's consumer on the first `call.takeover`. It
  silences the agent (realtime.takeover), plays the person's audio to the caller in the call's
  codec (a bounded queue drained by one task: a slow socket drops the person's frames, never holds
  the call), lets listeners hear the person as the agent's side, and transcribes the person (a
  side session, realtime.sidesession) into transcript lines marked `human`. A person's socket that
  stops renewing (its worker died) hands the call back after TAKEOVER_LOST_SECONDS.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings

from calls import actions
from calls.consumers import CLOSE_BAD_MESSAGE, CLOSE_NOT_FOUND, load_json
from calls.listen import ListenConsumer
from calls.models import call_group
from calls.translation import CallTranslation
from calls.translation import refusal as translation_refusal
from realtime import events as ev
from realtime import takeover
from realtime.audio import encode_from_pcm16_24k
from realtime.sidesession import SideSession, transcription_session

if TYPE_CHECKING:
    from calls.bridge import CallBridge

logger = logging.getLogger(__name__)

CALL_TAKEOVER = "call.takeover"
CALL_HUMAN_AUDIO = "call.human_audio"
HUMAN_AGENTS_GROUP = "Human agents"
#: Frames of the person's voice waiting for the caller's socket, at most (about 2 s of 20 ms).
MAX_PENDING_FRAMES = 100
#: Largest microphone frame the person's page may send (pcm16 24 kHz: 200 ms).
MAX_MIC_FRAME_BYTES = 9600


def is_human_agent(user: Any) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active
                and user.groups.filter(name=HUMAN_AGENTS_GROUP).exists())


def may_take_over(user: Any) -> bool:
    """Supervisors (active staff) and human agents. Callers are neither."""
    from calls.dashboard_views import is_supervisor

    return is_supervisor(user) or is_human_agent(user)


def lost_after_s() -> float:
    return float(getattr(settings, "TAKEOVER_LOST_SECONDS", 0) or 3 * settings.LISTEN_KEEPALIVE_SECONDS)


# --- the call's worker -------------------------------------------------------------------------------


class PeopleLine:
    """One call's person, on the worker that holds the call."""

    def __init__(self, bridge: CallBridge) -> None:
        self.bridge = bridge
        self.action_id: int | None = None
        self.by = ""
        self.item_id = ""
        self.frames: deque[bytes] = deque(maxlen=MAX_PENDING_FRAMES)
        self.dropped = 0
        self.played = 0
        self.last_keep = 0.0
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self.transcriber: SideSession | None = None
        self.translation: CallTranslation | None = None

    @property
    def active(self) -> bool:
        return self.action_id is not None

    async def start(self, by: str, action_id: int) -> str | None:
        if self.active:
            return None if action_id == self.action_id else f"{self.by} already has the call"
        if (refused := translation_refusal(self)) is not None:
            await self.bridge.session._emit(ev.Error(code="translation_unavailable", message=refused, source="engine"))
            return refused
        self.by = by
        language = self.bridge.spec.people.caller_language
        if language:  # the interpreters first: if they cannot open, the agent keeps the call
            interpreters = CallTranslation(self, language)
            try:
                await interpreters.open()
            except Exception as error:  # noqa: BLE001 — reported to the person; the call goes on
                await interpreters.close()
                return f"translation_unavailable: the interpreters could not start ({type(error).__name__})"
            self.translation = interpreters
        problem = await takeover.take_over(self.bridge.session, by)
        if problem is not None:
            await self._close_sides()
            return problem
        self.action_id, self.last_keep = action_id, time.monotonic()
        self.item_id = f"human_{action_id}"
        self._tasks = [asyncio.ensure_future(self._play()), asyncio.ensure_future(self._watch())]
        if self.translation is None:  # with translation, the interpreter transcribes the person
            self._tasks.append(asyncio.ensure_future(self._open_transcriber()))
        return None

    def keep(self, action_id: int) -> None:
        if action_id == self.action_id:
            self.last_keep = time.monotonic()

    def audio(self, action_id: int, pcm24k: bytes) -> None:
        """A frame of the person's voice (pcm16 24 kHz); never waits."""
        if action_id != self.action_id or not pcm24k or len(pcm24k) % 2:
            return
        if self.translation is not None:
            self.translation.person_audio(pcm24k)
            return
        if len(self.frames) == self.frames.maxlen:
            self.dropped += 1
        self.frames.append(pcm24k)
        self._wake.set()
        if self.transcriber is not None:
            self.transcriber.send_audio(pcm24k)

    async def stop(self, action_id: int | None, reason: str) -> None:
        """Hand the call back (`action_id` None: whoever has it)."""
        if not self.active or (action_id is not None and action_id != self.action_id):
            return
        self.action_id = None
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        self.frames.clear()
        await self._close_sides()
        await takeover.hand_back(self.bridge.session, self.by, reason)

    async def _close_sides(self) -> None:
        if self.transcriber is not None:
            transcriber, self.transcriber = self.transcriber, None
            await transcriber.close()
        if self.translation is not None:
            interpreters, self.translation = self.translation, None
            await interpreters.close()

    async def close(self) -> None:
        """The call ended."""
        await self.stop(None, "the call ended")

    # --- tasks -------------------------------------------------------------------------------------

    async def _play(self) -> None:
        """The person's voice to the caller in the call's codec, and to listeners as the agent's side."""
        fmt = self.bridge.session.config.audio_format
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.frames:
                pcm = self.frames.popleft()
                await self.play_to_caller(encode_from_pcm16_24k(np.frombuffer(pcm, dtype="<i2"), fmt))

    async def play_to_caller(self, audio: bytes) -> None:
        """Audio in the call's codec to the caller (the person's voice, or its interpretation)."""
        bridge = self.bridge
        playback = bridge.session.playback
        bridge.listen.agent(audio)
        # Known to the tracker so the page's playback reports for it are accepted; the agent's own
        # item stays the one a barge-in cuts.
        current = playback.current_item_id
        playback.on_audio_generated(self.item_id, len(audio))
        playback.current_item_id = current
        await bridge.transport.play_audio(self.item_id, audio)
        self.played += 1

    async def _watch(self) -> None:
        limit = lost_after_s()
        while self.active:
            await asyncio.sleep(min(1.0, limit / 3))
            if self.active and time.monotonic() - self.last_keep > limit:
                logger.warning("call %s: %s's take-over socket went quiet; handing back", self.bridge.call_id, self.by)
                action_id = self.action_id
                self.bridge._record(actions.do_hand_back, self.bridge.call_id, reason="the person's connection was lost",
                                    take_over_id=action_id)
                await self.stop(action_id, "the person's connection was lost")
                return

    async def _open_transcriber(self) -> None:
        session = self.bridge.session
        side = SideSession(session.link.http_client(), session.model,
                           transcription_session({"type": "audio/pcm", "rate": 24000}),
                           on_input_transcript=self._human_line, connect_timeout_s=5)
        try:
            await side.open()
        except Exception as error:  # noqa: BLE001 — the person is still heard; their lines are not written
            logger.warning("call %s: no transcription of %s's voice: %s", self.bridge.call_id, self.by, error)
            return
        if not self.active:
            await side.close()
            return
        self.transcriber = side

    async def _human_line(self, text: str) -> None:
        if self.active:
            await takeover.human_said(self.bridge.session, text)


def people_line(bridge: CallBridge) -> PeopleLine:
    if bridge.people is None:
        bridge.people = PeopleLine(bridge)
    line: PeopleLine = bridge.people
    return line


async def on_call_takeover(consumer: Any, message: dict[str, Any]) -> None:
    """`call.takeover` on the call's consumer: start, keep or stop; a start is answered."""
    bridge = consumer.bridge
    if bridge is None or bridge.ended:
        problem: str | None = "the call has ended"
    else:
        line = people_line(bridge)
        op, action_id = message.get("op"), message.get("action_id")
        action_id = action_id if isinstance(action_id, int) else None
        problem = None
        if op == "start" and action_id is not None:
            problem = await line.start(str(message.get("by") or ""), action_id)
            if problem is None:
                # The person subscribed to the call's audio before asking: they hear the caller from
                # the moment the call answers, not from the listeners' next keepalive round, which
                # waits on the records thread and can come after the caller's first words.
                bridge.listen.activate()
        elif op == "keep" and action_id is not None:
            line.keep(action_id)
        elif op == "stop":
            await line.stop(action_id, str(message.get("reason") or "handed back"))
        else:
            problem = f"unknown take-over message {str(op)[:20]!r}"
    reply = str(message.get("reply_channel") or "")
    if reply and message.get("op") == "start":
        held = bridge.people if bridge is not None else None
        language = held.translation.language if held is not None and held.translation is not None else ""
        await consumer.channel_layer.send(reply, {"type": "takeover.reply", "ok": problem is None,
                                                  "detail": problem or "", "translation": language})


def on_human_audio(consumer: Any, message: dict[str, Any]) -> None:
    bridge = consumer.bridge
    line = bridge.people if bridge is not None else None
    audio, action_id = message.get("audio"), message.get("action_id")
    if line is not None and isinstance(audio, bytes) and isinstance(action_id, int):
        line.audio(action_id, audio)


# --- the person's socket -------------------------------------------------------------------------------


class TakeoverConsumer(ListenConsumer):
    """`/ws/dashboard/calls/<id>/takeover/`: a person has the call; they hear the caller and speak."""

    what = "take over"

    def query_mode(self) -> str | None:
        return "caller"

    def may_connect(self, user: Any) -> bool:
        return may_take_over(user)

    def open_action(self, call_id: int, user: Any, mode: str) -> Any:
        return actions.do_take_over(call_id, user=user)

    def close_action(self, action_id: int, reason: str) -> None:
        assert self.call_id is not None
        actions.do_hand_back(self.call_id, reason=reason, take_over_id=action_id)

    async def connected(self) -> None:
        self.outgoing: deque[bytes] = deque(maxlen=MAX_PENDING_FRAMES)
        self.mic_dropped = 0
        self._mic_wake = asyncio.Event()
        self._replied = asyncio.Event()
        self._tasks.append(asyncio.ensure_future(self._forward_mic()))
        self._tasks.append(asyncio.ensure_future(self._await_reply()))
        await self._to_call("start")

    async def keep(self) -> None:
        await self._to_call("keep")

    async def _to_call(self, op: str, **extra: Any) -> None:
        assert self.call_id is not None
        user = self.scope["user"]
        await self.channel_layer.group_send(call_group(self.call_id), {
            "type": CALL_TAKEOVER, "op": op, "action_id": self.action_id, "by": user.get_username(),
            "reply_channel": self.channel_name, **extra})

    async def _await_reply(self) -> None:
        try:
            await asyncio.wait_for(self._replied.wait(), 10)
        except TimeoutError:
            await self.stop(CLOSE_NOT_FOUND, "the call did not answer (is it still live?)")

    translated = False

    def wants(self, side: bytes) -> bool:
        """The caller's voice, or with live translation its interpretation only."""
        return side == (b"t" if self.translated else b"c")

    async def takeover_reply(self, message: dict[str, Any]) -> None:
        self._replied.set()
        if message.get("ok"):
            self.translated = bool(message.get("translation"))
            await self.send_json({"type": "taken_over", "call_id": self.call_id,
                                  "translation": str(message.get("translation") or "")})
        else:
            await self.stop(CLOSE_NOT_FOUND, f"could not take the call over: {message.get('detail')}")

    async def _forward_mic(self) -> None:
        assert self.call_id is not None
        group = call_group(self.call_id)
        while True:
            await self._mic_wake.wait()
            self._mic_wake.clear()
            while self.outgoing:
                frame = self.outgoing.popleft()
                await self.channel_layer.group_send(group, {"type": CALL_HUMAN_AUDIO, "action_id": self.action_id,
                                                            "audio": frame})

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self._closing:
            return
        if bytes_data is not None:
            if not bytes_data or len(bytes_data) % 2 or len(bytes_data) > MAX_MIC_FRAME_BYTES:
                await self.stop(CLOSE_BAD_MESSAGE, f"microphone frames are pcm16 24 kHz, an even number of bytes, "
                                                   f"at most {MAX_MIC_FRAME_BYTES}")
                return
            if len(self.outgoing) == self.outgoing.maxlen:
                self.mic_dropped += 1
            self.outgoing.append(bytes_data)
            self._mic_wake.set()
            return
        message = None
        if len(text_data or "") <= 1024:
            try:
                message = load_json(text_data or "")
            except ValueError:
                message = None
        if isinstance(message, dict) and message.get("type") in ("hand_back", "stop"):
            await self.stop(1000, "handed back to the agent")
        else:
            await self.stop(CLOSE_BAD_MESSAGE, "messages are binary microphone frames or {type: hand_back}")

    async def _wind_down(self, reason: str) -> None:
        action_id = self.action_id
        if action_id is not None and self.call_id is not None:  # the call first: the agent resumes at once
            try:
                await self.channel_layer.group_send(call_group(self.call_id), {
                    "type": CALL_TAKEOVER, "op": "stop", "action_id": action_id, "reason": reason})
            except Exception:  # the call's watchdog hands back when the renewals stop
                logger.warning("call %s: could not tell the call to hand back", self.call_id, exc_info=True)
        await super()._wind_down(reason)
        current = asyncio.current_task()
        pending = [t for t in getattr(self, "_tasks", []) if t is not current and not t.done()]
        if pending:  # cancelled above: let them finish unwinding
            await asyncio.wait(pending, timeout=2)
