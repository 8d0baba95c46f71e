"""The policy's vocabulary: stop words, synonyms and concept groups from ``vocabulary.json`` (data),
plus a scenario's own phrases (the "Phrases callers use:" section of its instructions).
:func:`tokens` gives the content-word stems both a caller's words and a tool's schema are read as."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

_VOCABULARY: dict[str, Any] = json.loads((Path(__file__).parent / "vocabulary.json").read_text())


"""The general vocabulary (``vocabulary.json``): stop words, synonyms, concept groups, phrases."""


_STOP = frozenset(_VOCABULARY["stop"])


_SYNONYMS: dict[str, str] = dict(_VOCABULARY["synonyms"])


def _strip_suffix(word: str) -> str:
    """A tiny suffix stripper: plurals, -ed, -ing."""
    w = word.lower()
    if len(w) > 4 and w.endswith("ies"):
        w = w[:-3] + "y"
    elif len(w) > 4 and w.endswith("es") and (w[-3] in "sxz" or w[-4:-2] in ("ch", "sh")):
        w = w[:-2]
    elif len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    elif len(w) > 5 and w.endswith("ing"):
        w = w[:-3]
    elif len(w) > 4 and w.endswith("ed"):
        w = w[:-2]
    return w


_DOUBLE = re.compile(r"([bcdfgklmnprstvz])\1$")


def _root(stem: str) -> str:
    """The last normalisation of a stem, so the forms of one word meet: a final "e" dropped
    ("move"/"moved" -> "mov"), a doubled last consonant made single ("cancell" -> "cancel"),
    "-ation"/"-ate"/"-at" endings of long words dropped ("vaccination"/"vaccinated" -> "vaccin")."""
    w = stem
    if len(w) > 7 and w.endswith("ation"):
        w = w[:-5]
    elif len(w) > 6 and w.endswith(("ate", "ion")):
        w = w[:-3]
    elif len(w) > 6 and w.endswith("at"):
        w = w[:-2]
    if len(w) > 3 and w.endswith("e") and not w.endswith(("ee", "ie", "oe", "ue")):
        w = w[:-1]
    if len(w) > 3 and _DOUBLE.search(w):
        w = w[:-1]
    return w


def _stem(word: str) -> str:
    """The stem a word counts as (suffixes stripped, then synonyms, then :func:`_root`); the same
    on both sides."""
    w = _strip_suffix(word)
    if w in _SYNONYMS:
        return _root(_SYNONYMS[w])
    return _root(_ROOT_SYNONYMS.get(_root(w), w))


def _phrase_pattern(phrase: str) -> re.Pattern[str]:
    words = [re.escape(w) for w in phrase.lower().split()]
    return re.compile(r"\b" + r"\s+".join(words) + r"\b", re.IGNORECASE)


_PHRASES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(pattern, re.IGNORECASE), replacement) for pattern, replacement in _VOCABULARY["phrases"]
]


for _concept, _members in _VOCABULARY["groups"].items():
    for _member in _members:
        if " " in _member.strip() or "'" in _member:
            _PHRASES.append((_phrase_pattern(_member), _concept))
        else:
            _SYNONYMS.setdefault(_strip_suffix(_member), _strip_suffix(_concept))


_PHRASES.sort(key=lambda pr: -len(pr[0].pattern))  # the longest phrase first


_ROOT_SYNONYMS: dict[str, str] = {}
"""The synonyms by root too, so other forms of a listed word count ("moved" as "move")."""
for _word, _meaning in _SYNONYMS.items():
    _ROOT_SYNONYMS.setdefault(_root(_word), _meaning)


def phrases_section(instructions: str) -> str:
    """The lines of the instructions' "Phrases callers use:" section ("" when there is none)."""
    match = re.search(r"phrases callers use\s*:?\s*\n((?:[ \t]*[-*•][^\n]*\n?)+)", instructions or "", re.IGNORECASE)
    return match.group(1) if match else ""


def scenario_phrases(instructions: str) -> list[tuple[re.Pattern[str], str]]:
    """Per-scenario vocabulary from the instructions' "Phrases callers use:" section (an agent's
    phrases, compiled in): lines such as ``- "no electricity" means power outage`` or
    ``- no electricity: power outage``. Each phrase counts as the words it means."""
    section = phrases_section(instructions)
    if not section:
        return []
    out: list[tuple[re.Pattern[str], str]] = []
    for line in section.splitlines():
        line = line.strip().lstrip("-*• ").strip()
        m = re.match(r"^[\"“']?(.+?)[\"”']?\s*(?:means|=|->|:)\s*(.+)$", line, re.IGNORECASE)
        if m and m.group(1).strip() and m.group(2).strip():
            out.append((_phrase_pattern(m.group(1).strip()), m.group(2).strip().rstrip(".")))
    return out


def expand(text: str, phrases: list[tuple[re.Pattern[str], str]]) -> str:
    """``text`` with each scenario phrase it holds followed by what it means."""
    for pattern, meaning in phrases:
        if pattern.search(text):
            text = f"{text} {meaning}"
    return text


def tokens(text: str) -> list[str]:
    """Content-word stems of a text, in order, without stop words or numbers."""
    for pattern, replacement in _PHRASES:
        text = pattern.sub(replacement, text)
    out = []
    for word in re.findall(r"[A-Za-z]+", text.replace("_", " ")):
        low = word.lower()
        if low in _STOP or len(low) < 2:
            continue
        stem = _stem(low)
        if stem not in _STOP:
            out.append(stem)
    return out
