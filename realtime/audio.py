"""Audio codecs and conversions for the Realtime audio formats (numpy only, no Django).

Formats are the GA names: ``"audio/pcm"`` (PCM16 little-endian mono, 24 kHz), ``"audio/pcmu"``
(G.711 mu-law, 8 kHz) and ``"audio/pcma"`` (G.711 A-law, 8 kHz). A GA format object
(``{"type": "audio/pcm", "rate": 24000}``) and the beta names (``pcm16``, ``g711_ulaw``,
``g711_alaw``) are accepted too, see :func:`normalize_format`.

G.711: bit-exact with the ITU-T G.711 reference as implemented by Sun's ``g711.c`` (and CPython's
``audioop``): encoding goes through 65536-entry lookup tables built once, so it is a single numpy
gather per chunk.

Resampling (:func:`resample`, :class:`Resampler`): rational polyphase FIR. The ratio is reduced to
L/M; a Kaiser-windowed sinc low-pass (beta 8, about -80 dB stop band) is designed at the upsampled
rate with its cut-off at 0.9 x the lower of the two Nyquist frequencies and split into L phases; each
output sample is one dot product of at least 33 taps with the input. :class:`Resampler` is the
streaming form: fed in chunks of any size it gives exactly the samples the one-shot function gives
for the whole signal (a lookahead of a few input samples is held until more input or ``flush()``).
"""

from __future__ import annotations

import io
import math
import wave
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

Int16Array = npt.NDArray[np.int16]
Float32Array = npt.NDArray[np.float32]

PCM = "audio/pcm"
PCMU = "audio/pcmu"
PCMA = "audio/pcma"
FORMATS = (PCM, PCMU, PCMA)
FORMAT_RATES = {PCM: 24000, PCMU: 8000, PCMA: 8000}
_ALIASES = {
    "pcm16": PCM,
    "pcm": PCM,
    "audio/pcm": PCM,
    "g711_ulaw": PCMU,
    "ulaw": PCMU,
    "pcmu": PCMU,
    "audio/pcmu": PCMU,
    "g711_alaw": PCMA,
    "alaw": PCMA,
    "pcma": PCMA,
    "audio/pcma": PCMA,
}


def normalize_format(fmt: str | dict[str, Any] | None) -> str:
    """The GA format name for a format name, a GA format object, or a beta name (None: audio/pcm)."""
    if fmt is None:
        return PCM
    if isinstance(fmt, dict):
        name = fmt.get("type", PCM)
        rate = fmt.get("rate")
        result = normalize_format(name)
        if result == PCM and rate not in (None, 24000):
            raise ValueError(f"audio/pcm is supported at 24000 Hz only, not {rate}")
        return result
    try:
        return _ALIASES[fmt.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown audio format {fmt!r}; expected one of {FORMATS}") from None


def format_type(fmt: str | dict[str, Any] | None) -> str:
    """Like :func:`normalize_format`, but an unknown or unsupported format reads as audio/pcm (the
    protocol server's session objects are validated elsewhere)."""
    try:
        return normalize_format(fmt)
    except ValueError:
        return PCM


def sample_rate(fmt: str | dict[str, Any] | None) -> int:
    return FORMAT_RATES[normalize_format(fmt)]


def bytes_per_second(fmt: str | dict[str, Any] | None) -> int:
    name = normalize_format(fmt)
    return FORMAT_RATES[name] * (2 if name == PCM else 1)


def duration_ms(nbytes: int, fmt: str | dict[str, Any] | None) -> float:
    """Duration in milliseconds of ``nbytes`` of audio in ``fmt``."""
    return nbytes * 1000.0 / bytes_per_second(fmt)


def bytes_per_ms(fmt: str | dict[str, Any] | None) -> int:
    """Whole bytes per millisecond: 48 for PCM16 at 24 kHz, 8 for G.711."""
    return bytes_per_second(fmt) // 1000


def ms_to_bytes(ms: float, fmt: str | dict[str, Any] | None) -> int:
    """Byte count of ``ms`` milliseconds of ``fmt`` audio, rounded down to whole samples."""
    name = normalize_format(fmt)
    samples = int(ms * FORMAT_RATES[name] / 1000)
    return samples * (2 if name == PCM else 1)


# --- G.711 -----------------------------------------------------------------------------------

_SEG_UEND = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
_SEG_AEND = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)


def _ulaw_encode_exact(pcm: npt.NDArray[np.int32]) -> npt.NDArray[np.uint8]:
    """The reference mu-law encoder (14-bit magnitude, bias 0x21, clip 8159), vectorised."""
    val = pcm >> 2
    negative = val < 0
    mask = np.where(negative, 0x7F, 0xFF)
    val = np.where(negative, -val, val)
    val = np.minimum(val, 8159) + 0x21
    seg = np.searchsorted(_SEG_UEND, val, side="left")
    code = np.where(
        seg >= 8,
        0x7F,
        (np.minimum(seg, 7) << 4) | ((val >> (np.minimum(seg, 7) + 1)) & 0xF),
    )
    return ((code ^ mask) & 0xFF).astype(np.uint8)


def _alaw_encode_exact(pcm: npt.NDArray[np.int32]) -> npt.NDArray[np.uint8]:
    """The reference A-law encoder (13-bit), vectorised."""
    val = pcm >> 3
    positive = val >= 0
    mask = np.where(positive, 0xD5, 0x55)
    val = np.where(positive, val, -val - 1)
    seg = np.searchsorted(_SEG_AEND, val, side="left")
    segc = np.minimum(seg, 7)
    mant = np.where(segc < 2, (val >> 1) & 0xF, (val >> segc) & 0xF)
    code = np.where(seg >= 8, 0x7F, (segc << 4) | mant)
    return ((code ^ mask) & 0xFF).astype(np.uint8)


def _ulaw_decode_exact(code: npt.NDArray[np.int32]) -> Int16Array:
    u = ~code & 0xFF
    t = ((u & 0x0F) << 3) + 0x84
    t = t << ((u & 0x70) >> 4)
    return np.where(u & 0x80, 0x84 - t, t - 0x84).astype(np.int16)


def _alaw_decode_exact(code: npt.NDArray[np.int32]) -> Int16Array:
    a = code ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    t = np.where(seg == 0, t + 8, t + 0x108)
    t = np.where(seg > 1, t << np.maximum(seg - 1, 0), t)
    return np.where(a & 0x80, t, -t).astype(np.int16)


_ALL_PCM = np.arange(65536, dtype=np.int32).astype(np.uint16).view(np.int16).astype(np.int32)
_ULAW_ENC = _ulaw_encode_exact(_ALL_PCM)  # indexed by the int16 sample viewed as uint16
_ALAW_ENC = _alaw_encode_exact(_ALL_PCM)
_ULAW_DEC = _ulaw_decode_exact(np.arange(256, dtype=np.int32))
_ALAW_DEC = _alaw_decode_exact(np.arange(256, dtype=np.int32))


def _as_int16(pcm: Int16Array | bytes) -> Int16Array:
    if isinstance(pcm, (bytes, bytearray, memoryview)):
        return np.frombuffer(bytes(pcm), dtype="<i2").astype(np.int16, copy=False)
    return np.asarray(pcm, dtype=np.int16)


def ulaw_encode(pcm: Int16Array | bytes) -> bytes:
    """PCM16 samples (array or little-endian bytes) to G.711 mu-law bytes."""
    return bytes(_ULAW_ENC[_as_int16(pcm).view(np.uint16)].tobytes())


def alaw_encode(pcm: Int16Array | bytes) -> bytes:
    """PCM16 samples (array or little-endian bytes) to G.711 A-law bytes."""
    return bytes(_ALAW_ENC[_as_int16(pcm).view(np.uint16)].tobytes())


def ulaw_decode(data: bytes) -> Int16Array:
    """G.711 mu-law bytes to PCM16 samples."""
    return _ULAW_DEC[np.frombuffer(data, dtype=np.uint8)]


def alaw_decode(data: bytes) -> Int16Array:
    """G.711 A-law bytes to PCM16 samples."""
    return _ALAW_DEC[np.frombuffer(data, dtype=np.uint8)]


# --- resampling ------------------------------------------------------------------------------


class _Polyphase:
    """Precomputed polyphase filter bank for one rate pair."""

    def __init__(self, src_rate: int, dst_rate: int) -> None:
        g = math.gcd(src_rate, dst_rate)
        self.up = dst_rate // g
        self.down = src_rate // g
        # taps on each side, counted at the input rate; wider when decimating.
        self.half = math.ceil(16 * max(1.0, self.down / self.up))
        up = self.up
        n_taps = 2 * self.half * up + 1
        cutoff = 0.9 * 0.5 / max(self.up, self.down)  # cycles per upsampled sample
        t = np.arange(n_taps, dtype=np.float64) - self.half * up
        h = 2 * cutoff * np.sinc(2 * cutoff * t) * np.kaiser(n_taps, 8.0)
        h *= up / h.sum()
        per_phase = 2 * self.half + 1
        padded = np.zeros(per_phase * up, dtype=np.float64)
        padded[:n_taps] = h
        # bank[r, k] = h[r + k * up]
        self.bank = padded.reshape(per_phase, up).T.astype(np.float32).copy()
        self.per_phase = per_phase

    def outputs_for(self, n_in: int) -> int:
        """Number of output samples that a signal of n_in input samples gives."""
        return -(-n_in * self.up // self.down)

    def compute(self, x: Float32Array, x_start: int, n0: int, n1: int) -> Float32Array:
        """Outputs n0..n1-1; ``x`` holds input samples from absolute index ``x_start`` and must
        cover every index the outputs need (missing ones at the signal's edges are zeros)."""
        n = np.arange(n0, n1, dtype=np.int64)
        pos = n * self.down
        i0 = pos // self.up
        r = pos % self.up
        k = np.arange(self.per_phase, dtype=np.int64)
        idx = (i0 + self.half - x_start)[:, None] - k[None, :]
        lo = int(min(idx.min(), 0)) if len(idx) else 0
        hi = int(max(idx.max() + 1, len(x))) if len(idx) else len(x)
        if lo < 0 or hi > len(x):  # zeros beyond the known input
            x = np.concatenate(
                [np.zeros(-lo, np.float32), x, np.zeros(hi - len(x), np.float32)]
            )
            idx = idx - lo
        out = np.einsum("ij,ij->i", x[idx], self.bank[r])
        return out.astype(np.float32)


@lru_cache(maxsize=32)
def _bank(src_rate: int, dst_rate: int) -> _Polyphase:
    return _Polyphase(src_rate, dst_rate)


def _to_int16(x: Float32Array) -> Int16Array:
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


class Resampler:
    """Streaming PCM16 resampler; ``process(chunk)`` then ``flush()`` at the end.

    The concatenated outputs equal ``resample(whole_signal, src, dst)`` sample for sample.
    Not thread-safe: one instance per stream.
    """

    def __init__(self, src_rate: int, dst_rate: int) -> None:
        self.src_rate = src_rate
        self.dst_rate = dst_rate
        self._pp = None if src_rate == dst_rate else _bank(src_rate, dst_rate)
        self._buf = np.zeros(0, dtype=np.float32)
        self._buf_start = 0  # absolute input index of _buf[0]
        self._n_in = 0
        self._n_out = 0

    def process(self, pcm: Int16Array | bytes) -> Int16Array:
        samples = _as_int16(pcm)
        if self._pp is None:
            return samples.copy()
        pp = self._pp
        self._buf = np.concatenate([self._buf, samples.astype(np.float32)])
        self._n_in += len(samples)
        # output n needs input up to index (n*down)//up + half
        last_ready = self._n_in - 1 - pp.half
        n1 = 0 if last_ready < 0 else (last_ready * pp.up) // pp.down + 1
        n1 = min(n1, pp.outputs_for(self._n_in))
        return self._emit(n1)

    def flush(self) -> Int16Array:
        """The remaining output (the input is taken to end here, zeros after it)."""
        if self._pp is None:
            return np.zeros(0, dtype=np.int16)
        return self._emit(self._pp.outputs_for(self._n_in))

    def _emit(self, n1: int) -> Int16Array:
        pp = self._pp
        assert pp is not None
        if n1 <= self._n_out:
            return np.zeros(0, dtype=np.int16)
        out = pp.compute(self._buf, self._buf_start, self._n_out, n1)
        self._n_out = n1
        # keep only what the next output can still need
        keep_from = max((self._n_out * pp.down) // pp.up - pp.half - 1, 0)
        drop = keep_from - self._buf_start
        if drop > 0:
            self._buf = self._buf[drop:]
            self._buf_start = keep_from
        return _to_int16(out)


def resample(pcm: Int16Array | bytes, src_rate: int, dst_rate: int) -> Int16Array:
    """Resample a whole PCM16 signal (one-shot form of :class:`Resampler`)."""
    samples = _as_int16(pcm)
    if src_rate == dst_rate:
        return samples.copy()
    pp = _bank(src_rate, dst_rate)
    out = pp.compute(samples.astype(np.float32), 0, 0, pp.outputs_for(len(samples)))
    return _to_int16(out)


# --- format helpers --------------------------------------------------------------------------


def decode_to_pcm16(data: bytes, fmt: str | dict[str, Any] | None) -> tuple[Int16Array, int]:
    """Decode audio bytes in ``fmt`` to PCM16 samples at the format's own rate."""
    name = normalize_format(fmt)
    if name == PCM:
        if len(data) % 2:
            raise ValueError("audio/pcm data must be an even number of bytes")
        return np.frombuffer(data, dtype="<i2").astype(np.int16), 24000
    if name == PCMU:
        return ulaw_decode(data), 8000
    return alaw_decode(data), 8000


def encode_pcm16(pcm: Int16Array, fmt: str | dict[str, Any] | None) -> bytes:
    """Encode PCM16 samples already at the format's rate (24 kHz for pcm, 8 kHz for G.711)."""
    name = normalize_format(fmt)
    if name == PCM:
        return bytes(np.asarray(pcm, dtype="<i2").tobytes())
    if name == PCMU:
        return ulaw_encode(pcm)
    return alaw_encode(pcm)


def encode_from_pcm16_24k(pcm: Int16Array, fmt: str | dict[str, Any] | None) -> bytes:
    """Encode 24 kHz PCM16 in ``fmt`` (resampled to 8 kHz for G.711)."""
    name = normalize_format(fmt)
    if name == PCM:
        return encode_pcm16(pcm, name)
    return encode_pcm16(resample(pcm, 24000, 8000), name)


def pcm16_to_float32(pcm: Int16Array) -> Float32Array:
    return (np.asarray(pcm, dtype=np.float32) / 32768.0).astype(np.float32)


def float32_to_pcm16(audio: Float32Array) -> Int16Array:
    return _to_int16(np.asarray(audio, dtype=np.float32) * 32767.0)


def decode_float(data: bytes, fmt: str | dict[str, Any] | None) -> Float32Array:
    """Bytes in ``fmt`` to float32 samples in [-1, 1] at the format's own rate; a torn final PCM16
    sample is dropped (the API would refuse it; an energy VAD just skips it)."""
    if normalize_format(fmt) == PCM and len(data) % 2:
        data = data[:-1]
    return pcm16_to_float32(decode_to_pcm16(data, fmt)[0])


def encode_float(samples: npt.NDArray[np.floating[Any]], fmt: str | dict[str, Any] | None) -> bytes:
    """Float samples in [-1, 1] at the format's own rate to bytes in ``fmt``."""
    return encode_pcm16(float32_to_pcm16(np.asarray(samples, dtype=np.float32)), fmt)


def tone(ms: int, fmt: str, *, frequency: float = 220.0, amplitude: float = 0.1) -> bytes:
    """A sine tone of ``ms`` milliseconds in ``fmt`` (amplitude 0 gives digital silence): the
    deterministic "speech" of the scripted responder and of tests."""
    rate = sample_rate(fmt)
    t = np.arange(rate * ms // 1000, dtype=np.float32) / rate
    return encode_float(amplitude * np.sin(2 * math.pi * frequency * t), fmt)


def silence(ms: int, fmt: str) -> bytes:
    return tone(ms, fmt, amplitude=0.0)


def rms(samples: npt.NDArray[np.floating[Any]]) -> float:
    if samples.size == 0:
        return 0.0
    return float(np.sqrt(np.mean(np.square(samples.astype(np.float64)))))


def to_float32_16k(data: bytes, fmt: str | dict[str, Any] | None) -> Float32Array:
    """Audio bytes in ``fmt`` to float32 in [-1, 1] at 16 kHz, the rate of VAD and Whisper."""
    pcm, rate = decode_to_pcm16(data, fmt)
    return pcm16_to_float32(resample(pcm, rate, 16000))


def write_wav(target: str | Path | BinaryIO, pcm: Int16Array, rate: int) -> None:
    """Write mono PCM16 samples as a WAV file (path or binary file object)."""
    with wave.open(target if not isinstance(target, Path) else str(target), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(pcm, dtype="<i2").tobytes())


def wav_bytes(pcm: Int16Array, rate: int) -> bytes:
    buf = io.BytesIO()
    write_wav(buf, pcm, rate)
    return buf.getvalue()


def read_wav(source: str | Path | BinaryIO | bytes) -> tuple[Int16Array, int]:
    """Read a PCM16 WAV (path, file object or bytes); multi-channel audio is averaged to mono."""
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(bytes(source))
    with wave.open(source if not isinstance(source, Path) else str(source), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError("only 16-bit PCM WAV files are supported")
        channels = w.getnchannels()
        rate = w.getframerate()
        frames = w.readframes(w.getnframes())
    pcm = np.frombuffer(frames, dtype="<i2").astype(np.int16)
    if channels > 1:
        pcm = _to_int16(pcm.reshape(-1, channels).astype(np.float32).mean(axis=1))
    return pcm, rate
