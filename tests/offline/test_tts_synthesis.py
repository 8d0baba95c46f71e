"""Piper synthesis: per-sentence chunks at 24 kHz, plausible length, deterministic."""

from __future__ import annotations

import numpy as np

from realtime.offline.tts import OUTPUT_RATE, Synthesizer, split_sentences

TEXT = "Thanks for calling Acme Retail. Your return has been started. Is there anything else?"


def test_sentence_splitting() -> None:
    assert split_sentences(TEXT) == [
        "Thanks for calling Acme Retail.",
        "Your return has been started.",
        "Is there anything else?",
    ]
    assert split_sentences("Hi Mr. Smith. It costs 3.50 dollars!") == ["Hi Mr. Smith.", "It costs 3.50 dollars!"]
    assert split_sentences("   ") == []


def test_one_chunk_per_sentence_with_transcript_in_step(synthesizer: Synthesizer) -> None:
    chunks = list(synthesizer.synthesize(TEXT))
    assert [c.text.strip() for c in chunks] == split_sentences(TEXT)
    assert "".join(c.text for c in chunks) == TEXT  # the deltas joined are the transcript
    for chunk in chunks:
        assert chunk.sample_rate == OUTPUT_RATE and chunk.pcm.dtype == np.int16
        # roughly 2.5 to 4.5 words a second of speech (plus piper's short lead-in and the pause)
        words = len(chunk.text.split())
        assert words / 4.5 < chunk.duration_ms / 1000 < words / 2.0 + 0.8
        assert np.sqrt(np.mean(chunk.pcm.astype(np.float64) ** 2)) > 500  # not silence


def test_same_text_same_samples(synthesizer: Synthesizer) -> None:
    first = synthesizer.synthesize_all("My order number is one two three four five.")
    second = synthesizer.synthesize_all("My order number is one two three four five.")
    assert np.array_equal(first, second)


def test_shared_between_threads(synthesizer: Synthesizer) -> None:
    from concurrent.futures import ThreadPoolExecutor

    texts = ["Your order has shipped.", "The store opens at nine.", "Thanks for calling, goodbye."]
    serial = [synthesizer.synthesize_all(t) for t in texts]
    with ThreadPoolExecutor(max_workers=3) as pool:
        parallel = list(pool.map(synthesizer.synthesize_all, texts))
    assert all(np.array_equal(a, b) for a, b in zip(serial, parallel, strict=True))
