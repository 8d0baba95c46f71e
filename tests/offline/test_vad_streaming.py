"""Silero VAD on synthesised speech padded with silence: events at the right stream positions."""

from __future__ import annotations

import numpy as np
import pytest

from realtime import audio
from realtime.offline.tts import Synthesizer
from realtime.offline.vad import (
    SpeechStarted,
    SpeechStopped,
    VoiceActivityDetector,
)
from realtime.vad import EAGERNESS_SILENCE_MS, VadConfig

LEAD_MS = 1000
TAIL_MS = 1500


@pytest.fixture(scope="module")
def padded_speech(synthesizer: Synthesizer) -> tuple[np.ndarray, float, float]:
    """24 kHz PCM: 1 s silence, a sentence, 1.5 s silence; and where the voice really starts/ends."""
    speech = synthesizer.synthesize_all("I would like to return the shoes I bought last week.")
    loud = np.nonzero(np.abs(speech.astype(np.int32)) > 800)[0]
    onset_ms = LEAD_MS + loud[0] / 24
    offset_ms = LEAD_MS + loud[-1] / 24
    pcm = np.concatenate([np.zeros(24 * LEAD_MS, np.int16), speech, np.zeros(24 * TAIL_MS, np.int16)])
    return pcm, onset_ms, offset_ms


def run(detector: VoiceActivityDetector, data: bytes, fmt: str, chunk: int) -> list:
    events = []
    for i in range(0, len(data), chunk):
        events.extend(detector.feed_audio(data[i : i + chunk], fmt))
    return events


def test_started_and_stopped_at_plausible_positions(padded_speech: tuple[np.ndarray, float, float]) -> None:
    pcm, onset, offset = padded_speech
    cfg = VadConfig(threshold=0.5, prefix_padding_ms=300, silence_duration_ms=500)
    events = run(VoiceActivityDetector(cfg), audio.encode_pcm16(pcm, "audio/pcm"), "audio/pcm", 4800)
    assert [type(e) for e in events] == [SpeechStarted, SpeechStopped]
    start, stop = events[0].audio_start_ms, events[1].audio_end_ms
    # audio_start_ms includes the prefix padding; audio_end_ms includes the silence duration
    assert onset - 300 - 100 <= start <= onset - 300 + 150
    assert offset + 500 - 100 <= stop <= offset + 500 + 300


def test_silence_duration_and_padding_are_honoured(padded_speech: tuple[np.ndarray, float, float]) -> None:
    pcm, _, _ = padded_speech
    data = audio.encode_pcm16(pcm, "audio/pcm")
    short = run(VoiceActivityDetector(VadConfig(prefix_padding_ms=0, silence_duration_ms=200)), data, "audio/pcm", 9600)
    long = run(VoiceActivityDetector(VadConfig(prefix_padding_ms=500, silence_duration_ms=800)), data, "audio/pcm", 9600)
    assert long[0].audio_start_ms == max(short[0].audio_start_ms - 500, 0)
    # a longer silence requirement ends later (or not at all inside one pause between words)
    assert long[-1].audio_end_ms >= short[-1].audio_end_ms + 500


def test_same_events_whatever_the_chunking_and_format(padded_speech: tuple[np.ndarray, float, float]) -> None:
    pcm, _, _ = padded_speech
    data = audio.encode_pcm16(pcm, "audio/pcm")
    a = run(VoiceActivityDetector(), data, "audio/pcm", 4800)
    b = run(VoiceActivityDetector(), data, "audio/pcm", 1233)  # odd: samples split across chunks
    assert a == b
    ulaw = audio.encode_from_pcm16_24k(pcm, "audio/pcmu")
    c = run(VoiceActivityDetector(), ulaw, "audio/pcmu", 160)  # 20 ms Twilio frames
    assert [type(e) for e in c] == [SpeechStarted, SpeechStopped]
    assert abs(c[0].audio_start_ms - a[0].audio_start_ms) <= 64
    assert abs(c[1].audio_end_ms - a[1].audio_end_ms) <= 96


def test_silence_only_gives_no_events() -> None:
    detector = VoiceActivityDetector()
    noise = (np.random.default_rng(3).standard_normal(16000 * 3) * 30).astype(np.int16)
    assert detector.feed(noise) == []
    assert detector.position_ms == 2976  # 93 whole frames of 32 ms


def test_turn_detection_mapping() -> None:
    cfg = VadConfig.from_turn_detection(
        {"type": "server_vad", "threshold": 0.7, "prefix_padding_ms": 200, "silence_duration_ms": 350}
    )
    assert cfg is not None and (cfg.threshold, cfg.prefix_padding_ms, cfg.silence_duration_ms) == (0.7, 200, 350)
    eager = [VadConfig.from_turn_detection({"type": "semantic_vad", "eagerness": e}) for e in ("high", "medium", "low")]
    silences = [c.silence_duration_ms for c in eager if c is not None]
    assert silences == sorted(silences) and silences[0] == EAGERNESS_SILENCE_MS["high"]
    auto = VadConfig.from_turn_detection({"type": "semantic_vad", "create_response": False})
    assert auto is not None and auto.eagerness == "auto" and auto.create_response is False
    assert VadConfig.from_turn_detection(None) is None
    with pytest.raises(ValueError):
        VadConfig.from_turn_detection({"type": "semantic_vad", "eagerness": "eager"})
