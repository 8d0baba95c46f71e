"""G.711 mu-law / A-law: bit-exact with the ITU-T reference values and the audioop reference."""

from __future__ import annotations

import warnings

import numpy as np

from realtime import audio

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # the C reference shipped with Python 3.11 (removed in 3.13)


ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int16)


def test_known_mulaw_values() -> None:
    # silence is 0xFF, full scale positive 0x80, full scale negative 0x00 (G.711 Table 2a)
    assert audio.ulaw_encode(np.array([0, 32767, -32768], dtype=np.int16)) == b"\xff\x80\x00"
    assert list(audio.ulaw_decode(b"\xff\x7f\x80\x00")) == [0, 0, 32124, -32124]


def test_known_alaw_values() -> None:
    # A-law inverts even bits: the smallest positive code is 0xD5, the smallest negative 0x55
    assert audio.alaw_encode(np.array([0, -1, 32767, -32768], dtype=np.int16)) == b"\xd5\x55\xaa\x2a"
    assert list(audio.alaw_decode(b"\xd5\x55\xaa\x2a")) == [8, -8, 32256, -32256]


def test_encoders_match_reference_on_every_sample() -> None:
    raw = ALL_SAMPLES.tobytes()
    assert audio.ulaw_encode(ALL_SAMPLES) == audioop.lin2ulaw(raw, 2)
    assert audio.alaw_encode(ALL_SAMPLES) == audioop.lin2alaw(raw, 2)
    assert audio.ulaw_encode(raw) == audioop.lin2ulaw(raw, 2)  # bytes input too


def test_decoders_match_reference_on_every_code() -> None:
    codes = bytes(range(256))
    assert audio.ulaw_decode(codes).tobytes() == audioop.ulaw2lin(codes, 2)
    assert audio.alaw_decode(codes).tobytes() == audioop.alaw2lin(codes, 2)


def test_round_trip_is_stable_and_close() -> None:
    for encode, decode in ((audio.ulaw_encode, audio.ulaw_decode), (audio.alaw_encode, audio.alaw_decode)):
        codes = bytes(range(256))
        # decode -> encode gives every code back (except the two zero codes, which share 0)
        again = encode(decode(codes))
        assert sum(a != b for a, b in zip(codes, again, strict=True)) <= 1
        # encode -> decode keeps the relative error of loud samples under 7 %
        loud = ALL_SAMPLES[np.abs(ALL_SAMPLES.astype(np.int32)) > 1000]
        back = decode(encode(loud)).astype(np.float64)
        assert np.max(np.abs(back - loud) / np.abs(loud.astype(np.float64))) < 0.07
