"""Synthesised sentences are kept for reuse (bounded): a line said again costs no synthesis and
sounds the same, a line being made for one call is shared with another, and the cache never
holds more audio than it is allowed."""

from __future__ import annotations

import asyncio

import numpy as np

from realtime import audio
from realtime.server.offline import OfflineEngine, PiperSynthesizer


async def _speak(synth: PiperSynthesizer, text: str, fmt: str = audio.PCMU) -> bytes:
    return b"".join([sound async for _piece, sound in synth.stream(text, fmt)])


async def test_a_line_said_again_comes_from_the_cache_and_sounds_the_same(engine: OfflineEngine) -> None:
    synth = PiperSynthesizer(engine, cache_seconds=60)
    text = "Welcome to the cache test line. How can I help you today?"
    first = await _speak(synth, text)
    made = len(synth.seconds)
    assert made == 2 and synth.hits == 0
    again = await _speak(synth, text)
    assert again == first
    assert len(synth.seconds) == made  # nothing synthesised the second time
    assert synth.hits == 2
    assert 0 < synth.cached_seconds < 60


async def test_a_line_being_made_is_shared_by_two_calls(engine: OfflineEngine) -> None:
    synth = PiperSynthesizer(engine, cache_seconds=60)
    one, two = await asyncio.gather(
        _speak(synth, "Both callers hear this sentence at the same moment."),
        _speak(synth, "Both callers hear this sentence at the same moment."),
    )
    assert one == two and one
    assert len(synth.seconds) == 1 and synth.hits == 1


async def test_the_cache_stays_within_its_bound(engine: OfflineEngine) -> None:
    synth = PiperSynthesizer(engine, cache_seconds=8.0)
    lines = [f"This is line number {n} of a longer list of things to say." for n in ("one", "two", "three", "four")]
    for line in lines:
        await _speak(synth, line)
        assert synth.cached_seconds <= 8.0
    assert len(synth._cache) < len(lines)  # the oldest lines were let go
    await _speak(synth, lines[-1])  # the newest is kept
    assert synth.hits == 1
    off = PiperSynthesizer(engine, cache_seconds=0)
    await _speak(off, lines[0])
    await _speak(off, lines[0])
    assert off.hits == 0 and len(off.seconds) == 2 and off.cached_seconds == 0


async def test_cached_audio_is_the_synthesizer_s_own(engine: OfflineEngine) -> None:
    synth = PiperSynthesizer(engine, cache_seconds=60)
    sentence = "Thank you, goodbye."
    direct = engine.synthesizer.synthesize_sentence(sentence)
    cached = synth.sentence(sentence).result(30)
    again = synth.sentence(sentence).result(30)
    assert again is cached
    assert np.array_equal(cached, direct)
