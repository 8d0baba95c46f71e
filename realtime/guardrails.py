"""Output guardrails: the assistant's transcript is checked while it streams.

A classifier is any object with ``async classify(text) -> Verdict | None``. The default,
``SpecClassifier``, is deterministic and built from the scenario's guardrails (blocked phrases,
off-brand terms, regex patterns). ``ModerationClassifier`` asks OpenAI moderation (optional).
``StreamingCheck`` decides *when* to classify: about every N characters and at the end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from realtime.spec import Guardrails


@dataclass(frozen=True)
class Verdict:
    category: str  # blocked_phrase | off_brand | pattern | moderation:<category>
    matched: str
    classifier: str = ""  # the classifier that gave it, when a chain of several decided


class Classifier(Protocol):
    name: str

    async def classify(self, text: str) -> Verdict | None: ...


def _phrase_regex(phrase: str) -> re.Pattern[str]:
    words = [re.escape(w) for w in phrase.split()]
    return re.compile(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)", re.IGNORECASE)


class SpecClassifier:
    """Deterministic: blocked phrases and off-brand terms (case-insensitive, whole words), patterns."""

    name = "spec"

    def __init__(self, guardrails: Guardrails) -> None:
        self._rules: list[tuple[str, re.Pattern[str]]] = []
        for phrase in guardrails.blocked_phrases:
            if phrase.strip():
                self._rules.append(("blocked_phrase", _phrase_regex(phrase)))
        for term in guardrails.off_brand_terms:
            if term.strip():
                self._rules.append(("off_brand", _phrase_regex(term)))
        for pattern in guardrails.patterns:
            try:
                self._rules.append(("pattern", re.compile(pattern, re.IGNORECASE)))
            except re.error:
                continue  # the admin validates patterns; a bad one must not break a call

    @property
    def empty(self) -> bool:
        return not self._rules

    async def classify(self, text: str) -> Verdict | None:
        for category, regex in self._rules:
            match = regex.search(text)
            if match:
                return Verdict(category, match.group(0))
        return None


class ModerationClassifier:
    """OpenAI moderation (``client.moderations.create``); a flagged answer becomes
    ``moderation:<category>`` with the API's category name (``violence``, ``self-harm/intent``, ...),
    the flagged category with the highest score."""

    name = "moderation"

    def __init__(self, client: Any, model: str = "omni-moderation-latest") -> None:
        """``client``: an ``AsyncOpenAI`` client, or a callable returning the one to use now (so a
        call that failed over to another provider asks that provider)."""
        self._client = client
        self._model = model

    async def classify(self, text: str) -> Verdict | None:
        client = self._client() if callable(self._client) else self._client
        result = await client.moderations.create(model=self._model, input=text)
        for item in result.results:
            if item.flagged:
                flags: dict[str, Any] = item.categories.model_dump(by_alias=True)
                scores: dict[str, Any] = item.category_scores.model_dump(by_alias=True)
                flagged = sorted((k for k, v in flags.items() if v), key=lambda k: -float(scores.get(k) or 0.0))
                return Verdict("moderation:" + (flagged[0] if flagged else "flagged"), text[-200:])
        return None


class ChainClassifier:
    """The first verdict of several classifiers, in order, naming the classifier that gave it."""

    name = "chain"

    def __init__(self, *classifiers: Classifier) -> None:
        self.classifiers = classifiers

    async def classify(self, text: str) -> Verdict | None:
        for classifier in self.classifiers:
            verdict = await classifier.classify(text)
            if verdict is not None:
                return replace(verdict, classifier=verdict.classifier or getattr(classifier, "name", ""))
        return None


@dataclass
class StreamingCheck:
    """Per assistant item: when the transcript has grown by ``every`` characters, check it."""

    every: int = 100
    _checked_at: dict[str, int] = field(default_factory=dict)
    tripped: set[str] = field(default_factory=set)

    def due(self, item_id: str, text: str) -> bool:
        if item_id in self.tripped:
            return False
        last = self._checked_at.get(item_id, 0)
        if len(text) - last >= self.every:
            self._checked_at[item_id] = len(text)
            return True
        return False

    def final(self, item_id: str, text: str) -> bool:
        """Check at the end unless the item already tripped or was checked at this length."""
        if item_id in self.tripped:
            return False
        if self._checked_at.get(item_id) == len(text):
            return False
        self._checked_at[item_id] = len(text)
        return True
