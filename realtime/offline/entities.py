"""Deterministic extraction of values from what a caller said: spoken numbers, dates, phone
numbers, identifiers matching a JSON Schema pattern, enum values, yes/no.

Everything here is pure text processing (regular expressions and small word tables), so the same
words always give the same values.
"""

from __future__ import annotations

import re
from typing import Any

UNITS = {
    "zero": 0, "oh": 0, "o": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9,
}  # fmt: skip
TEENS = {
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90,
}  # fmt: skip
SCALES = {"hundred": 100, "thousand": 1000, "million": 1000000, "billion": 1000000000}
ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13,
    "fourteenth": 14, "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18,
    "nineteenth": 19, "twentieth": 20, "thirtieth": 30,
}  # fmt: skip
MONTHS = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4,
    "apr": 4, "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8,
    "september": 9, "sept": 9, "sep": 9, "october": 10, "oct": 10, "november": 11, "nov": 11,
    "december": 12, "dec": 12,
}  # fmt: skip
MULTIPLIERS = {"double": 2, "triple": 3}

_NUM_WORDS = sorted(
    [*UNITS, *TEENS, *TENS, *SCALES, *MULTIPLIERS, "and"], key=len, reverse=True
)
_NUM_WORD_RE = "|".join(w for w in _NUM_WORDS if w not in ("and", "o"))
_RUN_RE = re.compile(
    rf"\b(?:{_NUM_WORD_RE})(?:(?:[\s,-]+|\s+and\s+)(?:{_NUM_WORD_RE}))*\b", re.IGNORECASE
)
_MONTH_RE = "|".join(sorted(MONTHS, key=len, reverse=True))
_ORD_WORDS = "|".join(sorted(ORDINALS, key=len, reverse=True))
_TENS_RE = "|".join(TENS)
_SPOKEN_DAY = rf"(?:(?:{_TENS_RE})[\s-]+(?:{_ORD_WORDS})|{_ORD_WORDS})"


def _ordinal_value(phrase: str) -> int:
    words = re.split(r"[\s-]+", phrase.lower())
    total = 0
    for w in words:
        total += TENS.get(w, 0) + ORDINALS.get(w, 0)
    return total


def _convert_run(words: list[str]) -> str | None:
    """Digits for a run of number words, or None to leave it alone."""
    ws = [w.lower() for w in words]
    if len(ws) == 1 and ws[0] == "oh":
        return None
    if ws[0] in ("million", "billion"):  # "a million thanks"
        return None
    if any(w in SCALES for w in ws):
        total, current = 0, 0
        for w in ws:
            if w == "and":
                continue
            if w in UNITS:
                current += UNITS[w]
            elif w in TEENS:
                current += TEENS[w]
            elif w in TENS:
                current += TENS[w]
            elif w == "hundred":
                current = max(current, 1) * 100
            elif w in SCALES:  # thousand, million, billion
                total += max(current, 1) * SCALES[w]
                current = 0
        return str(total + current)
    ws = [w for w in ws if w != "and"]
    digits_only = all(w in UNITS or w in MULTIPLIERS for w in ws)
    if digits_only:
        out, repeat = "", 1
        for w in ws:
            if w in MULTIPLIERS:
                repeat = MULTIPLIERS[w]
            else:
                out += str(UNITS[w]) * repeat
                repeat = 1
        return out
    groups: list[str] = []
    i = 0
    while i < len(ws):
        w = ws[i]
        if w in TENS:
            if i + 1 < len(ws) and ws[i + 1] in UNITS and ws[i + 1] not in ("oh", "zero"):
                groups.append(str(TENS[w] + UNITS[ws[i + 1]]))
                i += 2
                continue
            groups.append(str(TENS[w]))
        elif w in TEENS:
            groups.append(str(TEENS[w]))
        elif w in ("oh", "zero") and i + 1 < len(ws) and ws[i + 1] in UNITS and groups:
            groups.append("0" + str(UNITS[ws[i + 1]]))  # "nineteen oh five" -> 1905
            i += 2
            continue
        elif w in UNITS:
            groups.append(str(UNITS[w]))
        i += 1
    if not groups:
        return None
    if len(groups) == 1:
        return groups[0]
    return "".join(groups)


def normalize_numbers(text: str) -> str:
    """Replace spoken numbers with digits: "five five five one two" -> "55512",
    "nineteen eighty five" -> "1985", "March third" -> "March 3", "the third of March" ->
    "3 March", "two thousand and five" -> "2005"."""
    text = re.sub(
        rf"\b({_MONTH_RE})\s+(?:the\s+)?({_SPOKEN_DAY})\b",
        lambda m: f"{m.group(1)} {_ordinal_value(m.group(2))}",
        text,
        flags=re.IGNORECASE,
    )
    text = re.sub(
        rf"\b(?:the\s+)?({_SPOKEN_DAY})\s+(?:of\s+)?({_MONTH_RE})\b",
        lambda m: f"{_ordinal_value(m.group(1))} {m.group(2)}",
        text,
        flags=re.IGNORECASE,
    )

    def repl(m: re.Match[str]) -> str:
        words = re.findall(r"[A-Za-z]+", m.group(0))
        tail = 0  # a "double" at the end repeats what follows, not a number word
        while tail < len(words) and words[len(words) - 1 - tail].lower() in MULTIPLIERS:
            tail += 1
        converted = _convert_run(words[: len(words) - tail]) if tail < len(words) else None
        if converted is None:
            return m.group(0)
        return converted + "".join(" " + w for w in words[len(words) - tail :])

    return _RUN_RE.sub(repl, text)


# --- dates -------------------------------------------------------------------------------------

_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(\d{4}|\d{2})"
_DATE_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b"), "ymd"),
    (re.compile(rf"\b({_MONTH_RE})\.?\s+{_DAY},?\s+(?:of\s+)?{_YEAR}\b", re.IGNORECASE), "mdy_name"),
    (re.compile(rf"\b{_DAY}\s+(?:of\s+)?({_MONTH_RE})\.?,?\s+{_YEAR}\b", re.IGNORECASE), "dmy_name"),
    (re.compile(r"\b(\d{1,2})[/.](\d{1,2})[/.](\d{4}|\d{2})\b"), "mdy_num"),
    (re.compile(r"(?<![\d-])(\d{1,2})-(\d{1,2})-(\d{4})\b(?!-\d)"), "mdy_num"),  # "12-25-1979" as heard
]


def _full_year(y: str) -> int:
    value = int(y)
    if len(y) == 2:
        value += 1900 if value > 30 else 2000
    return value


def find_dates(text: str) -> list[tuple[str, tuple[int, int]]]:
    """ISO dates (YYYY-MM-DD) in the text with their spans, in order of appearance."""
    found: list[tuple[str, tuple[int, int]]] = []
    taken: list[tuple[int, int]] = []
    for pattern, kind in _DATE_PATTERNS:
        for m in pattern.finditer(text):
            if any(m.start() < e and s < m.end() for s, e in taken):
                continue
            g = m.groups()
            if kind == "ymd":
                y, mo, d = int(g[0]), int(g[1]), int(g[2])
            elif kind == "mdy_name":
                mo, d, y = MONTHS[g[0].lower()], int(g[1]), _full_year(g[2])
            elif kind == "dmy_name":
                d, mo, y = int(g[0]), MONTHS[g[1].lower()], _full_year(g[2])
            else:
                a, b, y = int(g[0]), int(g[1]), _full_year(g[2])
                mo, d = (a, b) if a <= 12 else (b, a)
            if 1 <= mo <= 12 and 1 <= d <= 31 and 1900 <= y <= 2100:
                found.append((f"{y:04d}-{mo:02d}-{d:02d}", m.span()))
                taken.append(m.span())
    found.sort(key=lambda item: item[1][0])
    return found


def _blank(text: str, spans: list[tuple[int, int]]) -> str:
    for s, e in spans:
        text = text[:s] + " " * (e - s) + text[e:]
    return text


# --- phone numbers, digits, identifiers --------------------------------------------------------

_PHONE_RUN = re.compile(r"\+?\(?\d[\d\s\-.()]*\d")


def find_phone_numbers(text: str) -> list[str]:
    """Phone numbers (digits, a leading + kept) of 7 to 15 digits, dates excluded."""
    clean = _blank(text, [span for _, span in find_dates(text)])
    clean = re.sub(r"\bplus\s+(?=\(?\d)", "+", clean, flags=re.IGNORECASE)  # "plus 44..." as said
    out = []
    for m in _PHONE_RUN.finditer(clean):
        digits = re.sub(r"\D", "", m.group(0))
        if 7 <= len(digits) <= 15:
            out.append(("+" if m.group(0).startswith("+") else "") + digits)
    return out


def find_numbers(text: str) -> list[str]:
    """Numbers (as written, with decimals) outside dates."""
    clean = _blank(text, [span for _, span in find_dates(text)])
    return re.findall(r"(?<![\w.])-?\d+(?:[.,]\d+)?(?![\w])", clean.replace("$", " "))


def pattern_candidates(pattern: str, text: str) -> list[str]:
    """Values in the text that fully match a JSON Schema ``pattern``, trying: the words as said
    (upper-cased too), digit runs, and digit runs behind the pattern's literal prefix
    ("order 12345" with ``^ORD-\\d{5}$`` -> "ORD-12345")."""
    try:
        rx = re.compile(pattern)
    except re.error:
        return []
    clean = _blank(text, [span for _, span in find_dates(text)])
    tried: list[str] = []
    for token in re.findall(r"[A-Za-z0-9+#][A-Za-z0-9_\-+#./]*[A-Za-z0-9]|[A-Za-z0-9]", clean):
        tried.extend([token, token.upper()])
    runs = [re.sub(r"\D", "", m.group(0)) for m in re.finditer(r"\d[\d\s\-]*\d|\d", clean)]
    runs += re.findall(r"\d+", clean)
    prefix_match = re.match(r"\^?((?:[A-Za-z_#]|\\-|-)+)", pattern)
    prefix = prefix_match.group(1).replace("\\-", "-") if prefix_match else ""
    for run in runs:
        tried.append(run)
        if prefix:
            tried.append(prefix + run)
        if run.startswith("1") and len(run) == 11:
            tried.append(run[1:])
    out: list[str] = []
    for value in tried:
        value = value.strip(".,")
        if rx.search(value) and value not in out:
            out.append(value)
    return out


# --- digits as a recogniser writes them -------------------------------------------------------

_DIGITISH_TOKEN = re.compile(r"\b(?=[0-9Oo]*\d)(?=[0-9]*[Oo])[0-9Oo]+\b")
_THOUSANDS = re.compile(r"(?<![\d,.])\d{1,3}(?:,\d{3})+(?![\d,]|\.\d)")
_MULTIPLIED_DIGIT = re.compile(r"\b(double|triple)[\s-]+(\d)", re.IGNORECASE)
_GROUP_COMMA = re.compile(r"(?<=\d),\s*(?=\d)")
DIGIT_HOMOPHONES = {"oh": "0", "o": "0", "to": "2", "too": "2", "for": "4", "fore": "4", "won": "1", "ate": "8"}
_HOMOPHONE_BEFORE = re.compile(
    rf"\b({'|'.join(DIGIT_HOMOPHONES)})[\s-]+(?=\d)", re.IGNORECASE
)
_HOMOPHONE_AFTER = re.compile(
    rf"(?<=\d)([\s-]+)({'|'.join(DIGIT_HOMOPHONES)})\b(?![\s-]+[A-Za-z])", re.IGNORECASE
)


def spoken_digits(text: str, *, expand: bool = True) -> str:
    """A transcript read for digits (phone numbers, identifiers): spoken numbers as digits, the
    letter O inside digits ("8OO" -> "800"), thousands separators dropped ("4,158,923,047" ->
    "4158923047"), "double 5" / "triple-9" repeated, and digit groups joined across commas
    ("5 5, 1 2 3" -> "5 5 1 2 3"). ``expand=False`` drops "double" instead, for a recogniser that
    wrote the repeated digits already ("double 555" for "double five five"). Words that only
    sound like digits are left alone (see :func:`digit_readings`)."""

    def multiplied(m: re.Match[str]) -> str:
        return m.group(2) * (MULTIPLIERS[m.group(1).lower()] if expand else 1)

    text = _MULTIPLIED_DIGIT.sub(multiplied, text)
    text = normalize_numbers(text)
    text = _DIGITISH_TOKEN.sub(lambda m: m.group(0).replace("O", "0").replace("o", "0"), text)
    text = _THOUSANDS.sub(lambda m: m.group(0).replace(",", ""), text)
    text = _MULTIPLIED_DIGIT.sub(multiplied, text)
    return _GROUP_COMMA.sub(" ", text)


def digit_readings(text: str) -> list[str]:
    """Readings of a transcript for digits, the most literal first: :func:`spoken_digits`, then
    the same with words that sound like a digit read as one where they touch a run of digits
    ("it's for 158923047" -> "it's 4 158923047"; "to", "too", "oh", "won", "ate" likewise), then
    both again with "double"/"triple" dropped rather than expanded. Distinct readings only. A
    caller takes a later reading only when an earlier one gives nothing that fits (a phone
    number's length, an identifier's pattern)."""
    out: list[str] = []
    for expand in (True, False):
        first = spoken_digits(text, expand=expand)
        second = _HOMOPHONE_BEFORE.sub(lambda m: DIGIT_HOMOPHONES[m.group(1).lower()] + " ", first)
        second = _HOMOPHONE_AFTER.sub(lambda m: m.group(1) + DIGIT_HOMOPHONES[m.group(2).lower()], second)
        out.extend(r for r in (first, second) if r not in out)
    # digits a recogniser wrote one by one with dots or dashes between them ("4. 4. 7. 1.")
    joined = [_SPELLED_DIGITS.sub(lambda m: re.sub(r"\D", "", m.group(0)), r) for r in out]
    out.extend(r for r in joined if r not in out)
    return out


_SPELLED_DIGITS = re.compile(r"\b\d(?:\s*[.\-]\s*\d\b){2,}")


def plausible_phone(number: str) -> bool:
    """Whether a number found by :func:`find_phone_numbers` has the length of a whole phone
    number: 10 digits (North American), 11 starting with 1, or an international "+..." one."""
    digits = number.lstrip("+")
    return number.startswith("+") or len(digits) == 10 or (len(digits) == 11 and digits.startswith("1"))


# --- enums and yes/no ---------------------------------------------------------------------------

ENUM_SYNONYMS: dict[str, tuple[str, ...]] = {
    "damaged": ("damaged", "damage", "broken", "broke", "cracked", "defective", "faulty", "torn",
                "ripped", "scratched", "smashed", "doesn't work", "does not work", "not working"),
    "wrong_item": ("wrong item", "wrong", "incorrect", "not what i ordered", "different item",
                   "wrong size", "wrong colour", "wrong color", "mix up", "mixup"),
    "no_longer_needed": ("no longer need", "don't need", "do not need", "no longer needed",
                         "changed my mind", "don't want", "do not want", "not needed",
                         "no longer want", "not need"),
    "other": ("other", "something else", "another reason"),
}  # fmt: skip


def _enum_phrases(value: str) -> list[str]:
    base = value.lower()
    phrases = [base, base.replace("_", " ").replace("-", " ")]
    phrases.extend(ENUM_SYNONYMS.get(base, ()))
    return phrases


def match_enum(values: list[Any], text: str) -> Any | None:
    """The enum value the text names (longest phrase wins; the earliest value on ties)."""
    low = " " + re.sub(r"[^a-z0-9' ]+", " ", text.lower()) + " "
    best: tuple[int, int] | None = None
    chosen: Any = None
    for index, value in enumerate(values):
        if not isinstance(value, str):
            if re.search(rf"\b{re.escape(str(value))}\b", low):
                return value
            continue
        for phrase in _enum_phrases(value):
            if f" {phrase} " in low:
                key = (len(phrase), -index)
                if best is None or key > best:
                    best, chosen = key, value
    return chosen


_YES = re.compile(r"\b(yes|yeah|yep|sure|correct|right|ok|okay|please do|go ahead|absolutely)\b")
_NO = re.compile(r"\b(no|nope|don't|do not|not really|never mind|cancel)\b")


def match_bool(text: str) -> bool | None:
    low = text.lower()
    if _NO.search(low):
        return False
    if _YES.search(low):
        return True
    return None


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def find_emails(text: str) -> list[str]:
    spoken = re.sub(r"\s+at\s+", "@", text.lower())
    spoken = re.sub(r"\s+dot\s+", ".", spoken)
    return _EMAIL.findall(text) or _EMAIL.findall(spoken)
