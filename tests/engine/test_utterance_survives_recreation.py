"""The caller's utterance in progress survives a session recreation: the audio the old session held
uncommitted is carried into the new one, so the words are transcribed whole, once.

The protocol server's transcriber here describes what it was given (each tone's pitch and length),
so the test sees exactly which caller audio the model heard, and in how many items."""

from __future__ import annotations

import asyncio

import numpy as np

from realtime import audio as fmt
from realtime import events as ev
from realtime.server import response
from realtime.server.testing import running_server
from realtime.session import CallSession

from .factories import SERVER_VAD, make_session, retail_spec

FRAME_MS = 20
LOW, HIGH = 300.0, 1200.0


class ToneDescriber:
    """'low 8 high 4': the tones in a committed buffer, by pitch, with their length in tenths of a
    second (zero crossings per 20 ms window; silent windows are skipped). ``slow_first``: the first
    transcription takes that long (seconds)."""

    def __init__(self, slow_first: float = 0.0) -> None:
        self.slow_first = slow_first

    async def transcribe(self, data: bytes, audio_format: str) -> str | None:
        if self.slow_first:
            delay, self.slow_first = self.slow_first, 0.0
            await asyncio.sleep(delay)
        samples = fmt.decode_float(data, audio_format)
        window = fmt.sample_rate(audio_format) * FRAME_MS // 1000
        runs: list[list[object]] = []
        for start in range(0, len(samples) - window + 1, window):
            chunk = samples[start:start + window]
            if fmt.rms(chunk) < 0.05:
                continue
            crossings = int(np.count_nonzero(np.diff(np.signbit(chunk))))
            name = "high" if crossings * 1000 / FRAME_MS / 2 > (LOW + HIGH) / 2 else "low"
            if runs and runs[-1][0] == name:
                runs[-1][1] = int(runs[-1][1]) + FRAME_MS  # type: ignore[call-overload]
            else:
                runs.append([name, FRAME_MS])
        return " ".join(f"{name} {round(int(ms) / 100)}" for name, ms in runs) or None  # type: ignore[call-overload]


def frames(data: bytes, audio_format: str = fmt.PCM) -> list[bytes]:
    size = fmt.sample_rate(audio_format) * FRAME_MS // 1000 * (2 if audio_format == fmt.PCM else 1)
    return [data[i:i + size] for i in range(0, len(data), size)]


async def speak(session: CallSession, data: bytes, *, realtime: bool = True) -> None:
    for frame in frames(data):
        await session.send_audio(frame)
        await asyncio.sleep(FRAME_MS / 1000 if realtime else 0)


def user_texts(session: CallSession) -> list[str]:
    return [item.text for item in session.transcript if item.role == "user" and item.text]


async def test_an_utterance_cut_by_a_recreation_is_heard_whole_in_the_new_session() -> None:
    async with running_server(transcriber=ToneDescriber(), validate_outgoing=True) as server:
        server.script(response("Hello."), response("Thank you, noted."))
        session, rec = make_session(server, retail_spec(turn_detection=SERVER_VAD))
        await session.start()
        await rec.wait_type(ev.TranscriptDone, role="assistant")
        # The caller starts their phone number; the session is replaced in the middle of it.
        await speak(session, fmt.silence(200, fmt.PCM) + fmt.tone(600, fmt.PCM, frequency=LOW, amplitude=0.3))
        recreated = asyncio.ensure_future(session.recreate("max_session_length"))
        await speak(session, fmt.tone(400, fmt.PCM, frequency=HIGH, amplitude=0.3) + fmt.silence(500, fmt.PCM))
        assert await recreated
        done = await rec.wait_for(lambda e: isinstance(e, ev.TranscriptDone) and e.role == "user" and e.text, timeout=5)
        event = rec.of(ev.SessionRecreated)[0]
        await session.close()
    assert done.text == "low 6 high 4", done.text
    assert user_texts(session) == ["low 6 high 4"]  # once, whole
    assert event.carried_audio_bytes >= 600 * 48  # the 600 ms of 24 kHz PCM16 said before the switch
    # The old session never committed it; the new one did, and answered it.
    assert not [e for e in server.sessions[0].server_events if e["type"] == "input_audio_buffer.committed"]
    assert [i.text for i in session.transcript if i.role == "assistant"][-1] == "Thank you, noted."


async def test_an_utterance_cut_by_the_servers_expiry_is_heard_whole() -> None:
    """The provider ends the session at its limit (1001) while the caller speaks."""
    async with running_server(transcriber=ToneDescriber(), validate_outgoing=True, max_session_seconds=1.2) as server:
        session, rec = make_session(server, retail_spec(turn_detection=SERVER_VAD), greet_on_start=False)
        await session.start()
        # 0.4 s in, the caller speaks for 1.6 s: the session expires at 1.2 s, in the middle.
        await speak(session, fmt.silence(400, fmt.PCM) + fmt.tone(1000, fmt.PCM, frequency=LOW, amplitude=0.3)
                    + fmt.tone(600, fmt.PCM, frequency=HIGH, amplitude=0.3) + fmt.silence(500, fmt.PCM))
        done = await rec.wait_for(lambda e: isinstance(e, ev.TranscriptDone) and e.role == "user" and e.text, timeout=5)
        recreations = rec.of(ev.SessionRecreated)
        await session.close()
    assert recreations and recreations[0].reason == "session_expired"
    assert server.sessions[0].close_code == 1001
    assert done.text == "low 10 high 6", done.text
    assert user_texts(session) == ["low 10 high 6"]


async def test_committed_words_are_not_carried_twice() -> None:
    """What the old session committed stays there: only the words after it are carried."""
    async with running_server(transcriber=ToneDescriber(), validate_outgoing=True) as server:
        session, rec = make_session(server, retail_spec(turn_detection=SERVER_VAD), greet_on_start=False)
        await session.start()
        await speak(session, fmt.tone(500, fmt.PCM, frequency=LOW, amplitude=0.3) + fmt.silence(500, fmt.PCM))
        await rec.wait_for(lambda e: isinstance(e, ev.TranscriptDone) and e.role == "user" and e.text, timeout=5)
        await speak(session, fmt.tone(300, fmt.PCM, frequency=HIGH, amplitude=0.3))
        recreated = asyncio.ensure_future(session.recreate("connection_lost"))
        await speak(session, fmt.tone(300, fmt.PCM, frequency=HIGH, amplitude=0.3) + fmt.silence(500, fmt.PCM))
        assert await recreated
        await rec.wait_for(lambda e: isinstance(e, ev.TranscriptDone) and e.role == "user" and e.text.startswith("high"),
                           timeout=5)
        await session.close()
    assert user_texts(session) == ["low 5", "high 6"]


async def test_words_committed_but_not_yet_transcribed_when_the_session_goes_are_carried() -> None:
    """The session committed the caller's turn, then went away before its transcript came: the
    words are said again in the new session, and the call's transcript has them once, not empty."""
    async with running_server(transcriber=ToneDescriber(slow_first=1.5), validate_outgoing=True) as server:
        session, rec = make_session(server, retail_spec(turn_detection=SERVER_VAD), greet_on_start=False)
        await session.start()
        await speak(session, fmt.tone(700, fmt.PCM, frequency=HIGH, amplitude=0.3) + fmt.silence(400, fmt.PCM),
                    realtime=False)
        old = server.sessions[0]
        for _ in range(100):
            if any(e["type"] == "input_audio_buffer.committed" for e in old.server_events):
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.05)
        assert not any(e["type"].endswith("transcription.completed") for e in old.server_events)
        await old.drop()
        await rec.wait_type(ev.SessionRecreated, timeout=5)
        await speak(session, fmt.silence(300, fmt.PCM))
        done = await rec.wait_for(lambda e: isinstance(e, ev.TranscriptDone) and e.role == "user", timeout=5)
        await asyncio.sleep(0.3)
        await session.close()
    assert done.text == "high 7", done.text
    assert [e.text for e in rec.of(ev.TranscriptDone) if e.role == "user"] == ["high 7"]
    assert user_texts(session) == ["high 7"]


async def test_a_recreation_connects_through_the_calls_client() -> None:
    """A new session of the same call reuses the OpenAI client (making one costs a TLS context,
    hundreds of ms on a busy host, all of it silence for the caller). The client is the event
    loop's, shared by its calls: a call that ends leaves it open for the next one."""
    async with running_server(validate_outgoing=True) as server:
        session, _ = make_session(server, retail_spec(), greet_on_start=False)
        await session.start()
        first = session._conn.client  # type: ignore[union-attr]
        assert await session.recreate("max_session_length")
        assert session._conn is not None and session._conn.client is first
        await session.close()
        assert not first.is_closed()
        other, _ = make_session(server, retail_spec(), greet_on_start=False)
        await other.start()
        assert other._conn is not None and other._conn.client is first
        await other.close()
