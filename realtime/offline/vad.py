"""Streaming voice activity detection: Silero VAD (the ONNX model faster-whisper ships) with the
Realtime API's ``server_vad`` semantics.

The model scores 32 ms frames (512 samples at 16 kHz). Speech starts at the first frame whose
probability reaches ``threshold``; it stops once the probability has stayed under
``threshold - 0.15`` (Silero's usual hysteresis) for ``silence_duration_ms``. As in the real API:

- ``SpeechStarted.audio_start_ms`` is the start of the audio handed to the model, so it includes
  ``prefix_padding_ms`` (speech onset minus the padding, never below the stream start);
- ``SpeechStopped.audio_end_ms`` is the end of that audio: the end of the last speech frame plus
  ``silence_duration_ms`` (which is also where in the stream the event is raised).

Times count from the first sample fed (or ``stream_offset_ms``), so the server can use them as
positions in the session's input audio. ``semantic_vad`` is mapped to silence durations by its
eagerness (see :data:`EAGERNESS_SILENCE_MS`).

The ONNX session is loaded once and shared (onnxruntime runs calls concurrently); each
:class:`VoiceActivityDetector` holds its own recurrent state and is for one stream (not thread-safe).
Feeding the same audio in any chunking gives the same events.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from realtime.audio import PCM, Float32Array, Int16Array, Resampler, decode_to_pcm16, normalize_format
from realtime.vad import VadConfig

SAMPLE_RATE = 16000
FRAME_SAMPLES = 512
FRAME_MS = FRAME_SAMPLES * 1000 // SAMPLE_RATE  # 32
_CONTEXT = 64

@dataclass(frozen=True)
class SpeechStarted:
    audio_start_ms: int


@dataclass(frozen=True)
class SpeechStopped:
    audio_end_ms: int


VadEvent = SpeechStarted | SpeechStopped


def default_model_path() -> Path:
    """The Silero VAD ONNX file inside the installed faster-whisper package."""
    import faster_whisper  # type: ignore[import-untyped]

    assets = Path(faster_whisper.__file__).parent / "assets"
    candidates = sorted(assets.glob("silero*.onnx"))
    if not candidates:
        raise FileNotFoundError(f"no silero*.onnx in {assets}")
    return candidates[-1]


_SESSIONS: dict[str, Any] = {}
_SESSIONS_LOCK = threading.Lock()


def load_session(path: str | Path | None = None) -> Any:
    """The shared onnxruntime session for the Silero model (one thread per call)."""
    import onnxruntime  # type: ignore[import-untyped]

    key = str(path or default_model_path())
    with _SESSIONS_LOCK:
        if key not in _SESSIONS:
            opts = onnxruntime.SessionOptions()
            opts.intra_op_num_threads = 1
            opts.inter_op_num_threads = 1
            opts.log_severity_level = 3
            _SESSIONS[key] = onnxruntime.InferenceSession(
                key, sess_options=opts, providers=["CPUExecutionProvider"]
            )
        return _SESSIONS[key]


class VoiceActivityDetector:
    """Feed audio of any size; get :class:`SpeechStarted` / :class:`SpeechStopped` events."""

    def __init__(
        self,
        config: VadConfig | None = None,
        *,
        model_path: str | Path | None = None,
        stream_offset_ms: int = 0,
    ) -> None:
        self.config = config or VadConfig()
        self._session = load_session(model_path)
        self._offset_ms = stream_offset_ms
        self._resamplers: dict[int, Resampler] = {}
        self.reset()

    def reset(self, stream_offset_ms: int | None = None) -> None:
        """Forget all state (model state, position, speech flag)."""
        if stream_offset_ms is not None:
            self._offset_ms = stream_offset_ms
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(_CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self._frames = 0
        self.in_speech = False
        self._candidate_start: int | None = None  # frame index of an unconfirmed onset
        self._speech_frames = 0
        self._silence_start: int | None = None  # frame index where the current silence began
        self.last_probability = 0.0
        self._resamplers = {}
        self._odd_byte = b""

    @property
    def position_ms(self) -> int:
        """Stream position (ms) of the audio scored so far."""
        return self._offset_ms + self._frames * FRAME_MS

    def feed(self, samples: Float32Array | Int16Array) -> list[VadEvent]:
        """Feed 16 kHz mono samples (float32 in [-1, 1] or int16)."""
        raw = np.asarray(samples)
        x: Float32Array = (
            (raw.astype(np.float32) / 32768.0).astype(np.float32)
            if raw.dtype == np.int16
            else raw.astype(np.float32, copy=False)
        )
        buf: Float32Array = np.concatenate([self._pending, x]) if len(self._pending) else x
        n = len(buf) // FRAME_SAMPLES
        events: list[VadEvent] = []
        for i in range(n):
            frame = buf[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]
            events.extend(self._step(frame))
        self._pending = buf[n * FRAME_SAMPLES :].copy()
        return events

    def feed_audio(self, data: bytes, fmt: str | dict[str, Any] | None) -> list[VadEvent]:
        """Feed audio bytes in a Realtime format (audio/pcm, audio/pcmu, audio/pcma); a PCM16
        sample split across two calls is put back together."""
        data = self._odd_byte + data
        self._odd_byte = b""
        if normalize_format(fmt) == PCM and len(data) % 2:
            data, self._odd_byte = data[:-1], data[-1:]
        pcm, rate = decode_to_pcm16(data, fmt)
        if rate != SAMPLE_RATE:
            rs = self._resamplers.get(rate)
            if rs is None:
                rs = self._resamplers[rate] = Resampler(rate, SAMPLE_RATE)
            pcm = rs.process(pcm)
        return self.feed(pcm)

    def probability(self, frame: Float32Array) -> float:
        """Score one 512-sample frame, advancing the model state."""
        inp = np.concatenate([self._context, frame])[None, :]
        out, self._h, self._c = self._session.run(
            None, {"input": inp, "h": self._h, "c": self._c}
        )
        self._context = frame[-_CONTEXT:].copy()
        return float(np.asarray(out).reshape(-1)[0])

    def _ms(self, frame_index: int) -> int:
        return self._offset_ms + frame_index * FRAME_MS

    def _step(self, frame: Float32Array) -> list[VadEvent]:
        cfg = self.config
        p = self.probability(frame)
        self.last_probability = p
        idx = self._frames
        self._frames += 1
        events: list[VadEvent] = []
        low = max(cfg.threshold - 0.15, 0.01)
        if not self.in_speech:
            if p >= cfg.threshold:
                if self._candidate_start is None:
                    self._candidate_start = idx
                    self._speech_frames = 0
                self._speech_frames += 1
                if self._speech_frames * FRAME_MS >= max(cfg.min_speech_ms, FRAME_MS):
                    self.in_speech = True
                    self._silence_start = None
                    start = max(self._ms(self._candidate_start) - cfg.prefix_padding_ms, 0)
                    start = max(start, self._offset_ms)
                    events.append(SpeechStarted(audio_start_ms=start))
                    self._candidate_start = None
            elif p < low:
                self._candidate_start = None
            return events
        if p >= low:
            self._silence_start = None
            return events
        if self._silence_start is None:
            self._silence_start = idx
        if (self._frames - self._silence_start) * FRAME_MS >= cfg.silence_duration_ms:
            end = self._ms(self._silence_start) + cfg.silence_duration_ms
            events.append(SpeechStopped(audio_end_ms=end))
            self.in_speech = False
            self._silence_start = None
        return events
