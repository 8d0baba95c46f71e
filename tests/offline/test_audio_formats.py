"""Format helpers and the polyphase resampler: rates, durations, quality, streaming equality, WAV."""

from __future__ import annotations

import io

import numpy as np
import pytest

from realtime import audio


def tone(freq: float, rate: int, seconds: float = 1.0, amp: float = 10000) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def snr_db(signal: np.ndarray, freq: float, rate: int) -> float:
    t = np.arange(len(signal)) / rate
    ref = 10000 * np.sin(2 * np.pi * freq * t)
    err = signal[200:-200] - ref[200:-200]
    return float(10 * np.log10(np.mean(ref[200:-200] ** 2) / np.mean(err**2)))


def test_format_names_rates_and_durations() -> None:
    assert audio.normalize_format("g711_ulaw") == "audio/pcmu"
    assert audio.normalize_format({"type": "audio/pcm", "rate": 24000}) == "audio/pcm"
    with pytest.raises(ValueError):
        audio.normalize_format({"type": "audio/pcm", "rate": 16000})
    with pytest.raises(ValueError):
        audio.normalize_format("audio/opus")
    assert audio.duration_ms(48000, "audio/pcm") == 1000
    assert audio.duration_ms(8000, "audio/pcmu") == 1000
    assert audio.duration_ms(160, "audio/pcma") == 20
    assert audio.ms_to_bytes(20, "audio/pcm") == 960


@pytest.mark.parametrize(("src", "dst"), [(24000, 8000), (8000, 24000), (24000, 16000), (8000, 16000), (22050, 24000)])
def test_resampling_keeps_a_tone_clean(src: int, dst: int) -> None:
    out = audio.resample(tone(1000, src), src, dst)
    assert len(out) == dst
    assert snr_db(out, 1000, dst) > 60


def test_downsampling_removes_what_the_lower_rate_cannot_carry() -> None:
    out = audio.resample(tone(5000, 24000), 24000, 8000)  # above 4 kHz: would alias to 3 kHz
    assert np.sqrt(np.mean(out[100:-100].astype(np.float64) ** 2)) < 10


@pytest.mark.parametrize(("src", "dst"), [(24000, 16000), (8000, 16000), (22050, 24000), (24000, 8000)])
def test_streaming_resampler_equals_one_shot(src: int, dst: int) -> None:
    rng = np.random.default_rng(7)
    signal = (rng.standard_normal(src) * 3000).astype(np.int16)
    stream = audio.Resampler(src, dst)
    parts, i = [], 0
    while i < len(signal):
        n = int(rng.integers(1, 900))
        parts.append(stream.process(signal[i : i + n]))
        i += n
    parts.append(stream.flush())
    assert np.array_equal(np.concatenate(parts), audio.resample(signal, src, dst))


def test_decode_encode_helpers() -> None:
    pcm24 = tone(440, 24000, 0.5)
    data = audio.encode_from_pcm16_24k(pcm24, "audio/pcmu")
    assert len(data) == 4000  # 0.5 s at 8 kHz, one byte a sample
    pcm8, rate = audio.decode_to_pcm16(data, "audio/pcmu")
    assert rate == 8000 and snr_db(pcm8.astype(np.float64) * 1.0, 440, 8000) > 30
    f16 = audio.to_float32_16k(audio.encode_pcm16(pcm24, "audio/pcm"), "audio/pcm")
    assert f16.dtype == np.float32 and len(f16) == 8000 and np.max(np.abs(f16)) < 0.32


def test_wav_round_trip() -> None:
    pcm = tone(300, 16000, 0.25)
    buf = io.BytesIO()
    audio.write_wav(buf, pcm, 16000)
    back, rate = audio.read_wav(buf.getvalue())
    assert rate == 16000 and np.array_equal(back, pcm)
