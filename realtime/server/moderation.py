"""``POST /v1/moderations``: OpenAI's moderation endpoint, answered by a deterministic classifier.

The point is protocol faithfulness (the request checks, the error shape, a response that is exactly
`openai.types.ModerationCreateResponse`), not content filtering: each category has a short, mild
lexicon matched as whole words, case-insensitively. Tests decide what is flagged with
``RealtimeServer(moderation_terms={"violence": ["tomato"]})`` or ``server.moderation.flag(...)``.

Request: ``{"input": str | [str, ...] | [{"type": "text", "text": ...}, ...], "model"?: str}``; a
list of strings gets one result per string, multi-modal parts one result for all of them (as the
API does); image parts are refused (this server has no image classifier). Scores: 0.0 for a
category nothing matched, 0.6 for one matching term, +0.1 per further term (at most 0.9); a
category is flagged from 0.5. A flagged sub-category (``violence/graphic``) flags its parent
(``violence``) with the same score unless the parent scored higher itself.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from typing import Any, get_args

from openai.types import ModerationCreateResponse, ModerationModel
from pydantic import ValidationError

from .validation import _adapter, unknown_fields

CATEGORIES: tuple[str, ...] = (
    "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent",
    "self-harm", "self-harm/instructions", "self-harm/intent", "sexual", "sexual/minors", "violence",
    "violence/graphic",
)
MODELS: tuple[str, ...] = get_args(ModerationModel)
DEFAULT_MODEL = "omni-moderation-latest"
FLAG_AT = 0.5

DEFAULT_LEXICON: dict[str, tuple[str, ...]] = {
    "harassment": ("idiot", "moron", "loser"),
    "harassment/threatening": ("watch your back",),
    "hate": ("subhuman",),
    "illicit": ("shoplifting", "counterfeit money", "launder money"),
    "illicit/violent": ("untraceable gun",),
    "self-harm": ("hurt myself",),
    "self-harm/intent": ("i want to die",),
    "sexual": ("sexually explicit",),
    "violence": ("stab", "punch you", "beat you up"),
    "violence/graphic": ("gore", "gory"),
}


class ModerationRefused(Exception):
    """A request body the API would refuse: a 400 with this code, message and param."""

    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.param = code, message, param


def _term_regex(term: str) -> re.Pattern[str]:
    words = [re.escape(w) for w in term.split()]
    return re.compile(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)", re.IGNORECASE)


class Moderator:
    """The lexicon classifier behind the endpoint (``server.moderation``)."""

    def __init__(self, extra: Mapping[str, Iterable[str]] | None = None, *, defaults: bool = True) -> None:
        self._terms: dict[str, list[tuple[str, re.Pattern[str]]]] = {c: [] for c in CATEGORIES}
        if defaults:
            for category, terms in DEFAULT_LEXICON.items():
                self.flag(category, *terms)
        for category, more in (extra or {}).items():
            self.flag(category, *more)

    def flag(self, category: str, *terms: str) -> None:
        """Flag ``terms`` (whole words or phrases, any case) as ``category`` from now on."""
        if category not in self._terms:
            raise ValueError(f"unknown moderation category {category!r}; one of {', '.join(CATEGORIES)}")
        for term in terms:
            if term.strip():
                self._terms[category].append((term, _term_regex(term)))

    def terms(self, category: str) -> list[str]:
        return [term for term, _ in self._terms[category]]

    def scores(self, text: str) -> dict[str, float]:
        scores: dict[str, float] = {}
        for category, rules in self._terms.items():
            hits = sum(1 for _, regex in rules if regex.search(text))
            scores[category] = round(min(0.9, 0.5 + 0.1 * hits), 2) if hits else 0.0
        for category in CATEGORIES:
            parent = category.split("/")[0]
            if parent != category:
                scores[parent] = max(scores[parent], scores[category])
        return scores

    def result(self, text: str) -> dict[str, Any]:
        """One `openai.types.Moderation` object (as JSON) for ``text``."""
        scores = self.scores(text)
        categories = {c: scores[c] >= FLAG_AT for c in CATEGORIES}
        return {
            "flagged": any(categories.values()),
            "categories": categories,
            "category_scores": {c: scores[c] for c in CATEGORIES},
            "category_applied_input_types": {c: ["text"] for c in CATEGORIES},
        }

    def create(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The response body for a request body; raises `ModerationRefused` for a bad one."""
        model, texts = parse_request(payload)
        return {
            "id": "modr-" + secrets.token_hex(12),
            "model": model,
            "results": [self.result(text) for text in texts],
        }


def parse_request(payload: dict[str, Any]) -> tuple[str, list[str]]:
    """The model and the texts (one per result) of a moderation request body."""
    for key in payload:
        if key not in ("input", "model"):
            raise ModerationRefused("unknown_parameter", f"Unknown parameter: '{key}'.", key)
    model = payload.get("model", DEFAULT_MODEL)
    if not isinstance(model, str):
        raise ModerationRefused("invalid_type", "Invalid type for 'model': expected a string.", "model")
    if model not in MODELS:
        raise ModerationRefused(
            "invalid_value", f"Invalid value: '{model}'. Supported values are: {', '.join(MODELS)}.", "model"
        )
    if "input" not in payload:
        raise ModerationRefused("missing_required_parameter", "Missing required parameter: 'input'.", "input")
    value = payload["input"]
    if isinstance(value, str):
        return model, [value]
    if not isinstance(value, list):
        raise ModerationRefused(
            "invalid_type", "Invalid type for 'input': expected a string or an array of strings.", "input"
        )
    if not value:
        raise ModerationRefused("invalid_value", "Invalid value for 'input': the array must not be empty.", "input")
    if isinstance(value[0], str):  # an array of strings: one result each
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise ModerationRefused(
                    "invalid_type", f"Invalid type for 'input[{index}]': expected a string.", f"input[{index}]"
                )
        return model, list(value)
    parts: list[str] = []  # multi-modal parts: one result for all of them
    for index, part in enumerate(value):
        param = f"input[{index}]"
        if not isinstance(part, dict):
            raise ModerationRefused("invalid_type", f"Invalid type for '{param}': expected an object.", param)
        kind = part.get("type")
        if kind == "image_url":
            raise ModerationRefused("invalid_value", "Image inputs are not supported by this server.", f"{param}.type")
        if kind != "text":
            raise ModerationRefused("invalid_value", f"Invalid value for '{param}.type': expected 'text'.", f"{param}.type")
        if not isinstance(part.get("text"), str):
            raise ModerationRefused("invalid_type", f"Invalid type for '{param}.text': expected a string.", f"{param}.text")
        extra = sorted(set(part) - {"type", "text"})
        if extra:
            raise ModerationRefused("unknown_parameter", f"Unknown parameter: '{param}.{extra[0]}'.", f"{param}.{extra[0]}")
        parts.append(part["text"])
    return model, ["\n".join(parts)]


def check_response(body: dict[str, Any]) -> list[str]:
    """Problems of a response body against `ModerationCreateResponse`: a strict validation, no
    unknown keys, and every category present in each of the three category maps."""
    try:
        parsed = _adapter(ModerationCreateResponse).validate_python(body, strict=True)
    except ValidationError as exc:
        return [f"moderation response: {exc}"]
    problems = [f"moderation response: unknown field {path}" for path in unknown_fields(parsed)]
    for index, result in enumerate(body.get("results", [])):
        for key in ("categories", "category_scores", "category_applied_input_types"):
            missing = [c for c in CATEGORIES if c not in result.get(key, {})]
            if missing:
                problems.append(f"moderation response: results[{index}].{key} lacks {missing}")
    return problems


__all__ = [
    "CATEGORIES", "DEFAULT_LEXICON", "DEFAULT_MODEL", "MODELS", "ModerationRefused", "Moderator",
    "check_response", "parse_request",
]
