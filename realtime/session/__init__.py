"""One call over a Realtime connection: ``CallSession`` and the parts it coordinates (see core)."""

from .core import SAY_INSTRUCTIONS, WHISPER_PREFIX, CallSession, Emit, State
from .session_setup import HANDOFF_NOTE

__all__ = ["HANDOFF_NOTE", "SAY_INSTRUCTIONS", "WHISPER_PREFIX", "CallSession", "Emit", "State"]
