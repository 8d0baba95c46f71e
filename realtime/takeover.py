"""A person takes the call from the agent, and hands it back (the engine's side; Django-free).

While a person (a supervisor or a human agent) has the call:

* the agent is silent: the response in progress is cancelled, the transport told to clear what it
  still plays (Twilio ``clear``), turn detection stops creating responses (``create_response`` and
  ``interrupt_response`` off by ``session.update``), a response asked for by the engine is dropped
  and one the server starts anyway (a race with the update) is cancelled at once;
* the caller's audio still goes to the Realtime session, so the caller's turns are still
  transcribed; the person's lines are reported as ``TranscriptDone(role="human")``;
* the caller's and the person's lines are kept in order here.

Hand back: turn detection is restored and one system item tells the agent what was said meanwhile
(kept with the supervisor's whispers, so a recreated session gets it again); the agent answers the
caller's next turn.

`CallSession` holds a `Takeover` in ``session.human`` (None while the agent has the call); the
hooks are marked ``# people:`` in realtime/session/ (core: `observe`; responses:
`holds_responses`; router: `cancel_if_held` on response.created; session_setup: `reapply` after a
(re)configure; turns: no barge-in cut while a person speaks).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from realtime import events as ev

if TYPE_CHECKING:
    from realtime.session import CallSession

#: At most this many lines of the person's part go back to the agent (the newest).
MAX_NOTE_LINES = 40
MAX_NOTE_CHARS = 6000

HANDBACK_NOTE = (
    "[While you were off the call, {by}, a human colleague, spoke with the caller. The conversation "
    "meanwhile, in order:]\n{lines}\n[You are back on the call as the same agent. Do not greet again and "
    "do not repeat what your colleague said; take the caller's next turn from here.]"
)


@dataclass
class Takeover:
    by: str
    started_at: float = field(default_factory=time.monotonic)
    #: (who, text) in the order they were said: "caller" or "human".
    lines: list[tuple[str, str]] = field(default_factory=list)
    human_turns: int = 0

    def observe(self, event: ev.EngineEvent) -> None:
        """Every engine event while the person has the call: keep the caller's finished turns."""
        if isinstance(event, ev.TranscriptDone) and event.role == "user" and event.text.strip():
            self.lines.append(("caller", event.text.strip()))

    def note(self) -> str:
        lines = [f"{'Caller' if who == 'caller' else 'Colleague'}: {text}" for who, text in self.lines[-MAX_NOTE_LINES:]]
        body = "\n".join(lines) or "(nothing was said)"
        if len(body) > MAX_NOTE_CHARS:
            body = "..." + body[-MAX_NOTE_CHARS:]
        return HANDBACK_NOTE.format(by=self.by or "a colleague", lines=body)


def holds_responses(session: CallSession) -> bool:
    """Hook: no response is asked for while a person has the call."""
    return session.human is not None


async def cancel_if_held(session: CallSession) -> None:
    """Hook (response.created): a response the server started while a person has the call."""
    if session.human is not None:
        await session._send({"type": "response.cancel"})


def _held_turn_detection(session: CallSession) -> dict[str, Any] | None:
    td = session.setup.turn_detection()
    if not td:
        return None
    return {**td, "create_response": False, "interrupt_response": False}


async def reapply(session: CallSession) -> None:
    """Hook after the session was (re)configured: keep turn detection from answering the caller."""
    held = _held_turn_detection(session) if session.human is not None else None
    if held is not None:
        await session._send({"type": "session.update",
                             "session": {"type": "realtime", "audio": {"input": {"turn_detection": held}}}})


async def take_over(session: CallSession, by: str) -> str | None:
    """A person takes the call; returns why not, or None."""
    if session.ended:
        return "the call has ended"
    if session.human is not None:
        return f"{session.human.by} already has the call"
    await session._ready.wait()
    if session.ended:
        return "the call has ended"
    session.human = Takeover(by=by)
    session.responses.pending = None
    await reapply(session)
    item_id = session.playback.current_item_id
    await session.interrupt(reason="takeover")
    if item_id is None or session.playback.current_item_id is not None:
        # interrupt() clears the transport only while it plays the agent: clear anyway (Twilio `clear`).
        await session._emit(ev.ClearPlayback(item_id=item_id or "", audio_end_ms=0, reason="takeover"))
    await session._emit(ev.HumanJoined(by=by, agent=session.current_agent))
    return None


async def human_said(session: CallSession, text: str) -> str | None:
    """A line the person said (their transcribed turn); returns the transcript item id."""
    takeover = session.human
    if takeover is None or session.ended or not text.strip():
        return None
    takeover.lines.append(("human", text.strip()))
    takeover.human_turns += 1
    item_id = f"hum_{uuid.uuid4().hex[:20]}"
    await session._emit(ev.TranscriptDone(role="human", item_id=item_id, text=text.strip(), agent=session.current_agent))
    return item_id


async def hand_back(session: CallSession, by: str = "", reason: str = "") -> str | None:
    """The agent has the call again, knowing what was said meanwhile; returns why not, or None."""
    takeover = session.human
    if takeover is None:
        return "nobody has taken the call over"
    session.human = None
    if session.ended:
        return None
    td = session.setup.turn_detection()
    if td:
        await session._send({"type": "session.update",
                             "session": {"type": "realtime", "audio": {"input": {"turn_detection": td}}}})
    if takeover.lines:
        note = takeover.note()
        session.context.whispers.append(note)  # restored into a recreated session, like a whisper
        await session._send_text_item("hbk", "system", note)
    await session._emit(ev.HumanLeft(by=by or takeover.by, agent=session.current_agent,
                                     turns=takeover.human_turns, reason=reason))
    return None
