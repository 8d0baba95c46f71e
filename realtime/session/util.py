"""Small helpers the session's parts share."""

from __future__ import annotations

import time
import uuid


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


def ms_since(since: float) -> float:
    """Milliseconds since the monotonic time ``since``."""
    return round((time.monotonic() - since) * 1000.0, 3)
