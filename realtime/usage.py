"""Tokens and cost: every ``response.done`` usage summed per call and per agent, priced per model.

Usage answered by the local offline engine (``local=True``: a call with no key, or after failover
to the offline provider) is counted but priced at 0.

Prices are per million tokens, keyed by price class, the shape of Django's
``settings.REALTIME_PRICES``. A model name maps to its class by prefix: ``gpt-realtime-mini*`` ->
``gpt-realtime-mini``, any other ``gpt-realtime*`` -> ``gpt-realtime`` (longest matching class
wins, so dated snapshots and newer versions are priced like their family).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from realtime.config import Prices

TOKEN_KEYS = (
    "audio_in", "audio_in_cached", "audio_out", "text_in", "text_in_cached", "text_out",
)


def price_class(model: str, prices: Prices) -> str | None:
    """The key of ``prices`` that prices ``model`` (the longest prefix), or None."""
    best: str | None = None
    for name in prices:
        if model.startswith(name) and (best is None or len(name) > len(best)):
            best = name
    return best


def tokens_from_usage(usage: dict[str, Any] | None) -> dict[str, int]:
    """Split a Realtime ``response.usage`` into uncached/cached audio and text in, audio/text out."""
    usage = usage or {}
    inp = usage.get("input_token_details") or {}
    out = usage.get("output_token_details") or {}
    cached = inp.get("cached_tokens_details") or {}
    audio_in = int(inp.get("audio_tokens") or 0)
    text_in = int(inp.get("text_tokens") or 0)
    cached_audio = int(cached.get("audio_tokens") or 0)
    cached_text = int(cached.get("text_tokens") or 0)
    if not cached and inp.get("cached_tokens"):
        # No split given: attribute cached tokens to text first (instructions and tools).
        total_cached = int(inp.get("cached_tokens") or 0)
        cached_text = min(total_cached, text_in)
        cached_audio = min(total_cached - cached_text, audio_in)
    if not inp and usage.get("input_tokens"):
        text_in = int(usage.get("input_tokens") or 0)
    audio_out = int(out.get("audio_tokens") or 0)
    text_out = int(out.get("text_tokens") or 0)
    if not out and usage.get("output_tokens"):
        text_out = int(usage.get("output_tokens") or 0)
    return {
        "audio_in": max(0, audio_in - cached_audio),
        "audio_in_cached": cached_audio,
        "audio_out": audio_out,
        "text_in": max(0, text_in - cached_text),
        "text_in_cached": cached_text,
        "text_out": text_out,
        "input_tokens": int(usage.get("input_tokens") or (audio_in + text_in)),
        "output_tokens": int(usage.get("output_tokens") or (audio_out + text_out)),
    }


def cost_of(tokens: dict[str, int], model: str, prices: Prices) -> float:
    klass = price_class(model, prices)
    if klass is None:
        return 0.0
    table = prices[klass]
    return sum(tokens.get(k, 0) * float(table.get(k, 0.0)) for k in TOKEN_KEYS) / 1_000_000


@dataclass
class UsageMeter:
    prices: Prices
    started_at: float = field(default_factory=time.monotonic)
    totals: dict[str, int] = field(default_factory=dict)
    per_agent: dict[str, dict[str, int]] = field(default_factory=dict)
    cost_usd: float = 0.0
    per_agent_cost_usd: dict[str, float] = field(default_factory=dict)
    responses: int = 0

    def add(self, agent: str, model: str, usage: dict[str, Any] | None, *, local: bool = False) -> tuple[dict[str, int], float]:
        """Add one response's usage; returns its tokens and cost. ``local``: answered by the local
        offline engine, whose (estimated) tokens cost nothing."""
        tokens = tokens_from_usage(usage)
        cost = 0.0 if local else cost_of(tokens, model, self.prices)
        bucket = self.per_agent.setdefault(agent, {})
        for key, value in tokens.items():
            self.totals[key] = self.totals.get(key, 0) + value
            bucket[key] = bucket.get(key, 0) + value
        self.cost_usd += cost
        self.per_agent_cost_usd[agent] = self.per_agent_cost_usd.get(agent, 0.0) + cost
        self.responses += 1
        return tokens, cost

    @property
    def minutes(self) -> float:
        return max((time.monotonic() - self.started_at) / 60.0, 1.0 / 60.0)  # at least one second

    @property
    def cost_per_minute_usd(self) -> float:
        return self.cost_usd / self.minutes
