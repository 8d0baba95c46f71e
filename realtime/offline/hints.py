"""What the recogniser is told to expect: a prompt built from the question just asked.

Whisper reads its prompt as the text that came before the audio and continues in its style. So
the prompt for a caller's turn is the agent's pending question followed by a sample answer in
the written form the dialogue policy reads best, made from the schema of the parameters the
question asks for:

- a date question: a date written "Month D, YYYY";
- a phone or identifier question: digits, grouped as a phone number, or shaped by the
  parameter's ``pattern`` with its digits written one by one;
- an open question (a greeting, "what would you like to do?"): the words of what the agent can
  do, its tools' names and their options;
- a question with fixed options (an enum): the options, spelled as words;
- a number question: a number in digits.

The sample values are fixed placeholders generated from the schema alone (never anything a
caller or a test said), chosen so they are not plausible answers: "987-654-3210",
"January 2, 2000". With no pending question the default prompt only sets the style for digits.

:func:`answer_check` tells from the same question what an answer looks like (a clear yes or no
to a read-back; a value of each typed detail asked for): when the recogniser's first transcript
is not such an answer, it weighs its other hypotheses (`realtime.offline.stt`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from realtime.offline.policy import DialoguePolicy, _content_text, asked_parameters
from realtime.offline.policy.arguments import (
    MONTHS,
    ORDINALS,
    _enum_phrases,
    _extract_typed,
    _valid,
    match_bool,
    normalize_numbers,
    plausible_phone,
)
from realtime.offline.policy.items import parse_tools
from realtime.offline.policy.vocabulary import _VOCABULARY, phrases_section, tokens

DEFAULT_PROMPT = "The caller said the numbers as digits: 987-654-3210."
"""Style only: spoken digits come back as grouped digits rather than words or thousands."""

SAMPLE_PHONE = "987-654-3210"
SAMPLE_DATE = "January 2, 2000"
SAMPLE_DIGITS = "9876543210"

def pattern_sample(pattern: str) -> str | None:
    """A string of the shape ``pattern`` asks for, for simple patterns (literals, digit and
    letter classes with counts), e.g. ``^ORD-\\d{5}$`` -> "ORD-98765"; None when unsure."""
    body = pattern.removeprefix("^").removesuffix("$")
    out: list[str] = []
    token = re.compile(r"\\d|\[0-9\]|\[A-Z\]|\[a-z\]|\[A-Za-z\]|\\?[A-Za-z0-9 _#-]")
    i = 0
    while i < len(body):
        m = token.match(body, i)
        if m is None:
            return None
        atom = m.group(0)
        i = m.end()
        count = 1
        rep = re.match(r"\{(\d+)(?:,(\d*))?\}|\+|\?|\*", body[i:])
        if rep is not None:
            i += rep.end()
            if rep.group(0) in ("+",):
                count = 1
            elif rep.group(0) in ("?", "*"):
                count = 0
            else:
                count = int(rep.group(1))
        if atom in (r"\d", "[0-9]"):
            out.append(SAMPLE_DIGITS[:count] if count <= 10 else (SAMPLE_DIGITS * 3)[:count])
        elif atom.startswith("["):
            letters = "XYZQWV" * 3
            out.append(letters[:count] if atom != "[a-z]" else letters[:count].lower())
        else:
            out.append(atom.lstrip("\\") * count)
    sample = "".join(out)
    return sample or None


def spaced_digits(sample: str) -> str:
    """Digits of a sample one by one ("ORD-98765" -> "ORD-9 8 7 6 5"): with digits written
    apart in its prompt the recogniser writes a spelled identifier digit by digit too, rather
    than guessing groups ("612 near 0.4" for "six one two zero four")."""
    return re.sub(r"(?<=\d)(?=\d)", " ", sample)


def _sample(kind: str, schema: dict[str, Any]) -> str:
    if kind == "enum":
        values = [str(v).replace("_", " ") for v in schema.get("enum") or []]
        return ", ".join(values[:12])
    if kind == "date":
        return SAMPLE_DATE
    if kind == "phone":
        return SAMPLE_PHONE
    if kind == "pattern":
        return spaced_digits(pattern_sample(str(schema.get("pattern"))) or SAMPLE_DIGITS[:5])
    if kind == "number":
        return "42"
    if kind == "email":
        return "name@example.com"
    if kind == "bool":
        return "Yes."
    return ""


def _last_question(items: list[dict[str, Any]]) -> str:
    """The last thing the agent said before the caller's latest turn (its last sentence or two)."""
    for item in reversed(items):
        if item.get("type") == "message" and item.get("role") == "assistant":
            text = " ".join(_content_text(item.get("content")).split())
            sentences = re.split(r"(?<=[.!?])\s+", text)
            return " ".join(sentences[-2:])
        if item.get("type") in ("function_call", "function_call_output"):
            return ""
    return ""


def recognition_prompt(instructions: str, tools: list[dict[str, Any]] | None, items: list[dict[str, Any]]) -> str:
    """The recogniser's prompt for the caller's next turn in this conversation."""
    question = _last_question(items)
    if not question:
        return DEFAULT_PROMPT
    last = re.split(r"(?<=[.!?])\s+", question)[-1]
    if _YES_NO.match(last) and last.rstrip().endswith("?") and " or " not in last:
        return f"{question} Yes. No."  # a read-back names details, but only a yes or a no answers it
    asked = asked_parameters(tools, question)
    if not asked:
        # an open question ("How can I help you today?", "What would you like to do?"): the
        # words of what the agent can do, so a request is heard in the scenario's terms
        words = scenario_words(tools)
        # and the digits line still: an opening may hold a phone number or a date
        return f"{question} {words}. {DEFAULT_PROMPT}" if words else f"{question} {DEFAULT_PROMPT}"
    samples = []
    for kind, schema in asked:
        sample = _sample(kind, schema)
        if sample and sample not in samples:
            samples.append(sample)
    if not samples:
        return f"{question} {DEFAULT_PROMPT}"
    return f"{question} {'. '.join(samples)}."


SCENARIO_WORDS = 40
"""At most this many words of tool names and options in an open question's prompt."""


def scenario_words(tools: list[dict[str, Any]] | None) -> str:
    """What the agent can do, as words: its tools' names and their parameters' options
    ("report broken bike, get ride history, brakes, flat tyre"), from the schema alone."""
    phrases: list[str] = []
    for tool in parse_tools(tools):
        if tool.is_transfer or tool.is_escalation:
            continue
        phrases.append(tool.name.replace("_", " ").replace("-", " "))
        for schema in tool.properties.values():
            for value in schema.get("enum") or []:
                if isinstance(value, str):
                    phrases.append(value.replace("_", " ").replace("-", " "))
    out: list[str] = []
    count = 0
    for phrase in dict.fromkeys(p.strip() for p in phrases if p.strip()):
        count += len(phrase.split())
        if count > SCENARIO_WORDS:
            break
        out.append(phrase)
    return ", ".join(out)


def _conversation(context: Any) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
    """A transcription's conversation as the hints read it: instructions, tools, items."""
    return (
        str(getattr(context, "instructions", "") or ""),
        list(getattr(context, "tools", None) or []),
        list(getattr(context, "items", None) or []),
    )


def prompt_for(context: Any) -> str:
    """The prompt for a transcription whose conversation is ``context`` (None: the default)."""
    if context is None:
        return DEFAULT_PROMPT
    try:
        return recognition_prompt(*_conversation(context))
    except (TypeError, ValueError, AttributeError, KeyError, re.error):  # a hint must never cost a transcript
        return DEFAULT_PROMPT


_YES_NO = re.compile(r"^(shall i|should i|is that (right|correct)|do you want me to|can i go ahead|would you like me to)\b", re.IGNORECASE)
"""A question answered with a yes or a no (a read-back, a confirmation)."""
_TYPED = ("enum", "date", "phone", "pattern", "number", "bool")


def _fits(kind: str, schema: dict[str, Any], text: str) -> bool:
    """Whether ``text`` holds a value of this parameter, as the dialogue policy reads it."""
    value = _extract_typed(kind, "", schema, normalize_numbers(text))  # as the policy reads a turn
    if value is None or not _valid(schema, value):
        return False
    return plausible_phone(value) if kind == "phone" else True


@dataclass(frozen=True)
class Vocabulary:
    """The words an answer of the expected form is made of, for a recogniser that can keep its
    transcript to them (`realtime.offline.stt`): ``words`` (the question's own words, a general
    list of fillers, and what the form needs: an option's words, month names, yes and no), digits
    when ``digits``, single capital letters when ``letters``. Punctuation is always allowed."""

    words: frozenset[str]
    digits: bool = False
    letters: bool = False


class Expectation:
    """What an answer to the pending question looks like: called with a transcript, whether it is
    one; ``vocabulary`` (or None): what such an answer is made of."""

    def __init__(self, test: Callable[[str], bool], vocabulary: Vocabulary | None = None) -> None:
        self.test = test
        self.vocabulary = vocabulary

    def __call__(self, text: str) -> bool:
        return bool(self.test(text))


FILLERS = frozenset(["a", "an", "the", "it", "it's", "its", "is", "are", "was", "were", "i", "i'm", "i've", "my", "me", "mine", "we", "we're", "our", "um", "uh", "er", "erm", "oh", "ah", "so", "well", "yes", "no", "and", "or", "of", "on", "in", "at", "to", "for", "by", "from", "with", "that", "that's", "this", "these", "those", "there", "here", "just", "only", "sure", "ok", "okay", "please", "thanks", "thank", "you", "right", "now"])
"""General English words that come around an answer ("it's", "my ... is", "on the ..."): never
anything a scenario or a caller says in particular."""

YES_NO_WORDS = frozenset(["yes", "yeah", "yep", "yup", "sure", "correct", "right", "ok", "okay", "absolutely", "please", "do", "go", "ahead", "that's", "fine", "perfect", "great", "no", "nope", "not", "don't", "isn't", "wrong", "never", "mind", "cancel", "stop", "wait", "actually", "really", "quite", "what", "i", "said"])
"""The words of a yes or a no, as :func:`match_bool` reads them."""

DATE_WORDS = frozenset([*MONTHS, *ORDINALS, *["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "today", "tomorrow", "next", "this", "coming", "st", "nd", "rd", "th"]])
"""The words of a date as the dialogue policy reads one: months, ordinals, weekdays."""


def _pattern_letters(pattern: str) -> bool:
    """Whether a pattern's values hold letters (a letter class, ``\\w``, or literal letters)."""
    return "\\w" in pattern or re.search(r"[A-Za-z]", re.sub(r"\\[A-Za-z]", "", pattern)) is not None


def _vocabulary(question: str, asked: list[tuple[str, dict[str, Any]]], *, yes_no: bool = False) -> Vocabulary | None:
    """What an answer to ``question`` (asking for ``asked``) is made of; None when any words may
    answer it (free text, an e-mail address)."""
    words = set(FILLERS) | set(re.findall(r"[a-z']+", question.lower()))
    digits = letters = False
    if yes_no:
        words |= YES_NO_WORDS
    for kind, schema in asked:
        if kind == "enum":
            for value in schema.get("enum") or []:
                for phrase in _enum_phrases(str(value)):
                    words |= set(re.findall(r"[a-z0-9']+", phrase.lower()))
        elif kind == "date":
            words |= DATE_WORDS
            digits = True
        elif kind in ("phone", "number"):
            digits = True
        elif kind == "pattern":
            digits = True
            letters = letters or _pattern_letters(str(schema.get("pattern")))
        elif kind == "bool":
            words |= YES_NO_WORDS
        else:
            return None
    return Vocabulary(frozenset(w for w in words if w), digits=digits, letters=letters)


REQUEST_WORDS = frozenset(["want", "need", "like", "would", "could", "can", "will", "i'd", "i'll", "i'm", "help", "get", "have", "has", "had", "do", "does", "did", "don't", "can't", "won't", "isn't", "it's", "is", "are", "be", "been", "my", "me", "some", "another", "more", "new", "to", "about", "for", "with", "not", "any", "also", "again", "still", "yet", "how", "what", "when", "where", "which", "why", "who"])
"""General words of a request ("I'd like to ...", "can you help me with ..."), around a task's words."""


def _open_vocabulary(instructions: str, question: str, tools: list[dict[str, Any]] | None) -> Vocabulary | None:
    """What a request to this agent is made of: general fillers and request words, the question's
    words, the words of what the agent can do (tool names, descriptions, parameter descriptions,
    options, the agent's phrases callers use), and every word of the general vocabulary that
    counts as one of those. Digits too (an opening may hold a number)."""
    parsed = [t for t in parse_tools(tools) if not t.is_transfer and not t.is_escalation]
    if not parsed:
        return None
    texts = [phrases_section(instructions)]
    for tool in parsed:
        texts += [tool.name.replace("_", " "), tool.description]
        for name, schema in tool.properties.items():
            texts += [name.replace("_", " "), str(schema.get("description", ""))]
            texts += [str(v).replace("_", " ") for v in schema.get("enum") or []]
    text = " ".join(texts).lower()
    words = set(FILLERS) | REQUEST_WORDS | set(re.findall(r"[a-z']+", question.lower()))
    words |= set(re.findall(r"[a-z']+", text))
    stems = set(tokens(text))
    for phrase in _general_phrases():
        if stems & set(tokens(phrase)):
            words |= set(re.findall(r"[a-z']+", phrase))
    # and their plain inflections ("contacts", "booked", "running")
    words |= {w + ending for w in words - FILLERS - REQUEST_WORDS if len(w) > 2 and w.isalpha() for ending in ("s", "ed", "ing")}
    return Vocabulary(frozenset(w for w in words if w), digits=True)


@functools.cache
def _general_phrases() -> tuple[str, ...]:
    """Every word and phrase of the general vocabulary (its groups, synonyms and concepts)."""
    found: list[str] = []
    for concept, members in _VOCABULARY.get("groups", {}).items():
        found += [concept, *members]
    for word, meaning in _VOCABULARY.get("synonyms", {}).items():
        found += [word, meaning]
    return tuple(dict.fromkeys(str(p).lower() for p in found))


def answer_check(instructions: str, tools: list[dict[str, Any]] | None, items: list[dict[str, Any]]) -> Callable[[str], bool] | None:
    """What an answer to the pending question looks like, as a test of a transcript, or None
    when any words may answer it: a yes/no question wants a clear yes or no; a question for
    typed details (dates, digits of a pattern, phone numbers, options, numbers) wants a value
    of each; an open question ("How can I help you?") words the dialogue policy understands
    (it would not answer "I didn't catch that"). Built from the question, the tools' schemas and
    the policy alone."""
    question = _last_question(items)
    if not question:
        return None
    last = re.split(r"(?<=[.!?])\s+", question)[-1]
    if _YES_NO.match(last) and last.rstrip().endswith("?") and " or " not in last:
        return Expectation(lambda text: match_bool(text) is not None, _vocabulary(question, [], yes_no=True))
    every = asked_parameters(tools, question)
    if not every and tools:
        # an open question: words the agent understands (what it can do), not "didn't catch that"
        policy = DialoguePolicy()
        return Expectation(lambda text: policy.understands(instructions, tools, items, text),
                           _open_vocabulary(instructions, question, tools))
    asked = [(kind, schema) for kind, schema in every if kind in _TYPED]
    if not asked:
        return None
    # the answer's words only when every detail asked for is typed (a free-text one takes any words)
    vocabulary = _vocabulary(question, every) if len(asked) == len(every) else None
    return Expectation(lambda text: all(_fits(kind, schema, text) for kind, schema in asked), vocabulary)


def check_for(context: Any) -> Callable[[str], bool] | None:
    """:func:`answer_check` for a transcription whose conversation is ``context`` (None: none)."""
    if context is None:
        return None
    try:
        return answer_check(*_conversation(context))
    except (TypeError, ValueError, AttributeError, KeyError, re.error):  # a hint must never cost a transcript
        return None
