"""Cost of the offline speech components on this machine.

    python -m bench.offline_components

STT real-time factor on a ~7 s utterance (tiny.en, int8, 2 threads), TTS real-time factor (piper,
1 thread), Silero VAD cost per 32 ms frame, and the codec/resampler cost per second of audio.
Medians of several runs after a warm-up. The last line is machine-readable:
``RESULT stt_rtf=... tts_rtf=... vad_frame_us_p50=...``.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from realtime import audio
from realtime.offline.stt import Recognizer
from realtime.offline.tts import Synthesizer
from realtime.offline.vad import FRAME_SAMPLES, VoiceActivityDetector

UTTERANCE = (
    "I would like to return the running shoes that arrived damaged. "
    "My number is five five five, one two three, four five six seven."
)
REPLY = (
    "Thank you, your identity is verified. I found one order with running shoes. "
    "It is eligible for a return, and I have started it for you."
)


def _median_seconds(fn: object, runs: int) -> float:
    assert callable(fn)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    t0 = time.perf_counter()
    tts = Synthesizer(threads=1)
    stt = Recognizer(cpu_threads=2)
    print(f"models loaded in {time.perf_counter() - t0:.2f} s")

    speech = tts.synthesize_all(UTTERANCE)
    speech_s = len(speech) / 24000
    f16 = audio.to_float32_16k(audio.encode_pcm16(speech, "audio/pcm"), "audio/pcm")
    stt.transcribe(f16)  # warm-up
    stt_s = _median_seconds(lambda: stt.transcribe(f16), 3)
    print(f"STT: {speech_s:.2f} s utterance in {stt_s:.3f} s -> RTF {stt_s / speech_s:.3f}")
    print(f"     transcript: {stt.transcribe(f16).text!r}")

    reply_s = len(tts.synthesize_all(REPLY)) / 24000
    tts_s = _median_seconds(lambda: tts.synthesize_all(REPLY), 3)
    first = time.perf_counter()
    next(iter(tts.synthesize(REPLY)))
    first_chunk_s = time.perf_counter() - first
    print(f"TTS: {reply_s:.2f} s of speech in {tts_s:.3f} s -> RTF {tts_s / reply_s:.3f}; "
          f"first sentence after {first_chunk_s * 1000:.0f} ms")

    vad = VoiceActivityDetector()
    frames = f16[: len(f16) // FRAME_SAMPLES * FRAME_SAMPLES].reshape(-1, FRAME_SAMPLES)
    per_frame = []
    for _ in range(3):
        vad.reset()
        for frame in frames:
            t = time.perf_counter()
            vad.feed(frame)
            per_frame.append((time.perf_counter() - t) * 1e6)
    vad_p50 = float(np.percentile(per_frame, 50))
    vad_p95 = float(np.percentile(per_frame, 95))
    print(f"VAD: {len(per_frame)} frames of 32 ms, p50 {vad_p50:.0f} us, p95 {vad_p95:.0f} us "
          f"({vad_p50 / 32000 * 100:.2f} % of one core in real time)")

    one_second = speech[:24000]
    ulaw = audio.encode_from_pcm16_24k(one_second, "audio/pcmu")
    enc_s = _median_seconds(lambda: audio.encode_from_pcm16_24k(one_second, "audio/pcmu"), 20)
    dec_s = _median_seconds(lambda: audio.to_float32_16k(ulaw, "audio/pcmu"), 20)
    pcm_in_s = _median_seconds(lambda: audio.to_float32_16k(one_second.tobytes(), "audio/pcm"), 20)
    print(f"codecs per second of audio: 24k->pcmu {enc_s * 1000:.2f} ms, pcmu->16k float "
          f"{dec_s * 1000:.2f} ms, pcm 24k->16k float {pcm_in_s * 1000:.2f} ms")

    print(f"RESULT stt_rtf={stt_s / speech_s:.3f} tts_rtf={tts_s / reply_s:.3f} "
          f"vad_frame_us_p50={vad_p50:.0f}")


if __name__ == "__main__":
    main()
