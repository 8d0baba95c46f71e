"""The queue of human agents, on the call's worker.

When the scenario has a human queue (`ScenarioSpec.people.queue_timeout_s` > 0), an escalation by
the agent (the `escalate` builtin, or a transfer that lands on the fallback agent) does not post the
escalation webhook at once: the escalation is recorded with its webhook deferred and the call waits
in the queue (`actions.do_escalate_to_queue`). The agent is told to keep the caller company (a
whisper: it tells the caller they are waiting for a colleague and still answers simple questions).
Human agents who marked themselves available see the queue on the dashboard with wait times; the
first to accept (`actions.do_accept_queue_entry`) is sent to the call's page and takes it over
(calls.takeover). If nobody accepts within the timeout, the entry times out once
(`actions.do_queue_timeout_call`) and the call takes the scenario's fallback: "webhook" (the
deferred escalation webhook is posted) or "callback" (the entry stands as a callback request to the
caller's number); the agent tells the caller which. The same on the offline engine: nothing here
depends on the model.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from calls import actions
from realtime import events as ev

if TYPE_CHECKING:
    from calls.bridge import CallBridge

logger = logging.getLogger(__name__)

HOLD_LINE = (
    "The caller is now waiting for a human colleague, who has been asked to join. Until one does, keep "
    "the caller company: tell them briefly that they are in the queue for a colleague, answer simple "
    "questions if they ask, do not end the call and do not transfer it. Keep each turn short."
)
TIMEOUT_LINES = {
    "webhook": "I'm sorry, none of my colleagues is free right now. I've passed your request on, and the team "
               "will follow up with you.",
    "callback": "I'm sorry, none of my colleagues is free right now. I've asked for a callback: a colleague will "
                "call you back on this number as soon as they can.",
    "voicemail": "I'm sorry, none of my colleagues is free right now. Please leave a message after this, and a "
                 "colleague will get back to you.",
}
#: A voicemail: at most this long, and at most this many bytes of the call's audio kept meanwhile.
VOICEMAIL_SECONDS = 30.0
#: Escalations that do not queue: the engine's own (the call is ending on its fallback path).
NOT_QUEUED_SOURCES = ("engine", "failures")


class CallQueue:
    def __init__(self, bridge: CallBridge) -> None:
        self.bridge = bridge
        self.timer: asyncio.Task[None] | None = None

    def on_escalation(self, event: ev.Escalation) -> bool:
        """Queue the escalated call; False when this call does not queue (record it as before)."""
        people = self.bridge.spec.people
        if people.queue_timeout_s <= 0 or event.source in NOT_QUEUED_SOURCES or self.bridge.ended:
            return False
        from calls.bridge import ESCALATION_SOURCES

        if self.timer is not None and not self.timer.done():  # already waiting: recorded, its webhook deferred too
            self.bridge._record(actions.do_escalate, self.bridge.call_id, reason=event.reason,
                                source=ESCALATION_SOURCES.get(event.source, "model"), agent=event.agent,
                                defer_webhook=True)
            return True

        self.bridge._record(actions.do_escalate_to_queue, self.bridge.call_id, reason=event.reason,
                            source=ESCALATION_SOURCES.get(event.source, "model"), agent=event.agent,
                            timeout_s=people.queue_timeout_s, fallback=people.queue_fallback)
        self.timer = asyncio.ensure_future(self._wait(float(people.queue_timeout_s), people.queue_fallback))
        return True

    def on_handoff(self, event: ev.Handoff) -> None:
        """A transfer to the scenario's fallback agent is an escalation too."""
        if event.to_agent and event.to_agent == self.bridge.spec.fallback_agent:
            self.on_escalation(ev.Escalation(reason=event.reason or f"transferred to {event.to_agent}",
                                             source="model", agent=event.from_agent))

    async def _wait(self, timeout_s: float, fallback: str) -> None:
        session = self.bridge.session
        await session.whisper(HOLD_LINE, by="the contact center")
        await asyncio.sleep(timeout_s)
        await self.bridge.flush()  # the entry is written
        from calls.bridge import RECORDS_EXECUTOR, off_shared_thread

        entry = await off_shared_thread(actions.do_queue_timeout_call, RECORDS_EXECUTOR)(self.bridge.call_id)
        if entry is None or self.bridge.ended:  # accepted, or the call ended
            return
        await session.say(TIMEOUT_LINES.get(fallback, TIMEOUT_LINES["webhook"]), by="the contact center")
        if fallback == "voicemail":
            await self._voicemail()

    async def _voicemail(self) -> None:
        """After the agent's line, the agent is silenced and the caller's audio kept (bounded) for
        VOICEMAIL_SECONDS; then the message is saved as WAV and the call ends."""
        from django.conf import settings

        from calls.bridge import RECORDS_EXECUTOR, off_shared_thread
        from realtime import takeover
        from realtime.audio import decode_to_pcm16, wav_bytes

        bridge, session = self.bridge, self.bridge.session
        for _ in range(300):  # the agent says its line first (30 s at most)
            await asyncio.sleep(0.1)
            if bridge.ended or not (session.responses.active or session.responses.pending
                                    or session.playback.is_playing()):
                break
        if bridge.ended or await takeover.take_over(session, "voicemail") is not None:
            return
        seconds = float(getattr(settings, "VOICEMAIL_SECONDS", VOICEMAIL_SECONDS))
        fmt = session.config.audio_format
        limit = int(seconds * (48000 if fmt == "audio/pcm" else 8000))
        frames: list[bytes] = []
        kept = 0

        def keep(frame: bytes) -> None:
            nonlocal kept
            if kept < limit:
                frames.append(frame[: limit - kept])
                kept += len(frames[-1])

        bridge.listen.also_caller = keep
        try:
            for _ in range(int(seconds * 10)):
                if bridge.ended:
                    break
                await asyncio.sleep(0.1)
        finally:
            bridge.listen.also_caller = None
        pcm, rate = decode_to_pcm16(b"".join(frames), fmt)
        if pcm.size:
            await off_shared_thread(actions.do_save_voicemail, RECORDS_EXECUTOR)(
                bridge.call_id, wav=wav_bytes(pcm, rate), duration_ms=round(pcm.size * 1000 / rate))
        if not bridge.ended:
            await session.close("voicemail_recorded")

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.bridge.spec.people.queue_timeout_s > 0:
            self.bridge._record(actions.do_leave_queue, self.bridge.call_id)


def call_queue(bridge: Any) -> CallQueue:
    queue = getattr(bridge, "queue", None)
    if queue is None:
        queue = bridge.queue = CallQueue(bridge)
    return queue
