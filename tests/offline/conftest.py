"""Offline speech components: models are loaded once per test session (they take ~0.5 s each)."""

from __future__ import annotations

import pytest

from realtime.offline.stt import Recognizer
from realtime.offline.tts import Synthesizer


@pytest.fixture(scope="session")
def synthesizer() -> Synthesizer:
    return Synthesizer(threads=1)


@pytest.fixture(scope="session")
def recognizer() -> Recognizer:
    return Recognizer(cpu_threads=2)
