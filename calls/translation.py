"""Live translation while a person has the call (calls.takeover, realtime.translation).

When the scenario sets the caller's language (`ScenarioSpec.people.caller_language`) and a person
takes the call over, two interpreters open beside the call: the person's microphone goes to the
English → caller's-language interpreter, whose voice is played to the caller in the call's codec;
the caller's frames (through `ListenTap.also_caller`, never waiting) go to the caller's-language →
English interpreter, whose voice reaches the person as the listen channel's side ``t``. The
person's English lines are their transcript lines (role human); each interpretation is kept as a
system line; the caller's own words stay transcribed by the call's session. On the local offline
engine the take-over is refused with `translation_unavailable`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from calls import actions
from realtime import events as ev
from realtime import takeover, translation

if TYPE_CHECKING:
    from calls.takeover import PeopleLine

logger = logging.getLogger(__name__)

PCM24K = {"type": "audio/pcm", "rate": 24000}


def call_format(audio_format: str) -> dict[str, Any]:
    return PCM24K if audio_format == "audio/pcm" else {"type": audio_format}


def refusal(line: PeopleLine) -> str | None:
    """Why this call's take-over cannot have the translation its scenario asks for, or None."""
    session = line.bridge.session
    language = line.bridge.spec.people.caller_language
    if not language:
        return None
    why = translation.unavailable_reason(local_engine=session.config.local or session.provider == "offline",
                                         language=language)
    return f"{translation.UNAVAILABLE}: {why}" if why else None


class CallTranslation:
    def __init__(self, line: PeopleLine, language: str) -> None:
        self.line = line
        self.language = language
        session = line.bridge.session
        client, model, fmt = session.link.http_client(), session.model, call_format(session.config.audio_format)
        self.to_caller = translation.interpreter(
            client, model, "en", language, input_format=PCM24K, output_format=fmt,
            on_audio=self._to_caller_audio, on_heard=self._person_said, on_said=self._said_to_caller,
            on_error=self._error)
        self.to_person = translation.interpreter(
            client, model, language, "en", input_format=fmt, output_format=PCM24K,
            on_audio=self._to_person_audio, on_heard=self._ignore, on_said=self._said_to_person,
            on_error=self._error)

    async def open(self) -> None:
        await self.to_caller.session.open()
        await self.to_person.session.open()
        self.line.bridge.listen.also_caller = self.to_person.session.send_audio

    def person_audio(self, pcm24k: bytes) -> None:
        self.to_caller.session.send_audio(pcm24k)

    async def close(self) -> None:
        self.line.bridge.listen.also_caller = None
        await self.to_caller.session.close()
        await self.to_person.session.close()

    # --- what the interpreters report -----------------------------------------------------------------

    async def _to_caller_audio(self, audio: bytes) -> None:
        if self.line.active:
            await self.line.play_to_caller(audio)

    async def _to_person_audio(self, audio: bytes) -> None:
        if self.line.active:
            self.line.bridge.listen.translated(audio)

    async def _person_said(self, text: str) -> None:
        if self.line.active:
            await takeover.human_said(self.line.bridge.session, text)

    async def _said_to_caller(self, text: str) -> None:
        self._record(f"Interpreted for the caller ({self.language}): {text}")

    async def _said_to_person(self, text: str) -> None:
        self._record(f"Interpreted for {self.line.by} (en): {text}")

    async def _ignore(self, text: str) -> None:
        return None

    async def _error(self, message: str) -> None:
        await self.line.bridge.session._emit(ev.Error(code="translation_error", message=message, source="engine"))

    def _record(self, text: str) -> None:
        bridge = self.line.bridge
        import uuid

        bridge._record(actions.do_record_transcript, bridge.call_id, item_id=f"trn_{uuid.uuid4().hex[:20]}",
                       role="system", text=text, agent=bridge.session.current_agent)
