"""Arguments: values taken from what a caller said, guided by the JSON Schema of a parameter.

Spoken numbers, dates, phone numbers, identifiers matching a pattern, enum values (literally or
through the vocabulary), yes/no, free text; the kind of each parameter, validation against its
schema, and which tools change data. Pure text processing: the same words give the same values."""

from __future__ import annotations

import datetime as _dt
import difflib
import json
import re
from typing import Any

from realtime.offline.policy.items import _END_CALL, _LONG_TEXT, _Tool
from realtime.offline.policy.vocabulary import _STOP, _stem, tokens

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
        rf"\b(?:the\s+)?({_SPOKEN_DAY})\s+(?:(?:of|on|off|a)\s+)?({_MONTH_RE})\b",  # "of" as heard: "on", "off", "a"
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
_YEAR = (
    r"((?:19|20)(?:00|,000),?\s+(?:and\s+)?[1-9]\d(?:st|nd|rd|th)?(?![\d:])"
    r"|\d{3}0,?\s+[1-9](?![\d:]|\s*(?:st|nd|rd|th|am|pm|a\.m|p\.m)\b)|(?:19|20)\s+\d{2}(?!\d)|\d{4}|\d{2})"
)
"""A year, also as a recogniser splits a spoken one: "2020, 7" or "20 27" for "twenty twenty-seven",
"2000 and 26" or "2,000, 26" for "twenty twenty-six"."""
_DATE_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b"), "ymd"),
    (re.compile(rf"\b({_MONTH_RE})\.?\s+{_DAY},?\s+(?:of\s+)?{_YEAR}\b", re.IGNORECASE), "mdy_name"),
    (re.compile(rf"\b{_DAY}\s+(?:(?:of|on|off)\s+)?({_MONTH_RE})\.?,?\s+{_YEAR}\b", re.IGNORECASE), "dmy_name"),
    (re.compile(r"\b(\d{1,2})[/.](\d{1,2})[/.](\d{4}|\d{2})\b"), "mdy_num"),
    (re.compile(r"(?<![\d-])(\d{1,2})-(\d{1,2})-(\d{4})\b(?!-\d)"), "mdy_num"),  # "12-25-1979" as heard
]


def _full_year(y: str) -> int:
    y = re.sub(r"(?:st|nd|rd|th)$", "", y.replace(",000", "000"))
    parts = re.findall(r"\d+", y)
    if len(parts) == 2 and len(parts[0]) == 4 and parts[0].endswith("00") and len(parts[1]) == 2:
        return int(parts[0][:2] + parts[1])  # "2000 and 26": twenty twenty-six
    if len(parts) == 2:  # "2020, 7" -> 2027; "20 27" -> 2027
        y = parts[0][:3] + parts[1] if len(parts[0]) == 4 else parts[0] + parts[1]
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


_COMING = re.compile(
    r"\b(book|schedul|reserv|appointment|visit|pick ?up|collect|deliver|lesson|class|course|service|"
    r"session|event|concert|show|ticket|flight|travel|trip|journey|depart|arriv|check ?in|stay|"
    r"start|begin|renew|move|install|inspection|test|exam|meeting|consultation|table)",
    re.IGNORECASE,
)
"""Words of something that will happen: a booking, a visit, a trip, a start."""
_GONE = re.compile(
    r"\b(birth|born|dob|incident|happen|occur|accident|purchas|bought|ordered|lost|stolen|since|"
    r"last|previous|issued|joined|died|damage|loss|when did|was)",
    re.IGNORECASE,
)
"""Words of something that has happened: a birth, an incident, a purchase."""


def is_coming_day(tool: _Tool, name: str, schema: dict[str, Any]) -> bool:
    """Whether a date parameter is the day of something that is still to happen (a tool that
    books, schedules or starts something, and a parameter that is not a birth or an incident)."""
    label = f"{name.replace('_', ' ')} {schema.get('description', '')}"
    if _GONE.search(label):
        return False
    context = f"{tool.name.replace('_', ' ')} {tool.description} {label}"
    return changes_data(tool) and _COMING.search(context) is not None


def forward_date(iso: str, today: _dt.date | None = None) -> str:
    """A date heard with a year already over, for a day that is still to come: the next such
    month and day. A recogniser often hears "twenty twenty-seven" as "2020" ("2000 and 20"), and
    nobody books the ninth of June 2020 in 2026; what is read back is the coming ninth of June
    (the caller can still say no). A date this year or later, and a value that is not a date,
    stay as they are."""
    today = today or _dt.date.today()
    try:
        day = _dt.date.fromisoformat(iso[:10])
    except ValueError:
        return iso
    if day.year >= today.year:
        return iso
    for year in range(today.year, today.year + 9):
        try:
            coming = day.replace(year=year)
        except ValueError:  # the 29th of February
            continue
        if coming >= today:
            return coming.isoformat() + iso[10:]
    return iso


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
    said = re.findall(r"[A-Za-z0-9+#][A-Za-z0-9_\-+#./]*[A-Za-z0-9]|[A-Za-z0-9]", clean)
    tried.extend(said)
    tried.extend(spelled_codes(clean))  # before whole words upper-cased ("tango 7 echo" is no "TANGO")
    tried.extend(token.upper() for token in said)
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


_NATO = {
    w: w[0].upper()
    for w in ["alpha", "alfa", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "juliett", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango", "uniform", "victor", "whiskey", "whisky", "xray", "yankee", "zulu"]
}
_CODE_PART = re.compile(r"[A-Za-z]+|\d+")


def spelled_codes(text: str) -> list[str]:
    """Identifiers spelled out a character (or a digit group) at a time, as a recogniser writes
    them ("N W 1 2 3 4 5 6" -> "NW123456", "K 7 Q 2 X 9", "bravo 4 4 0 2"): every run of single
    letters, NATO words and digit groups holding a letter, joined and upper-cased, the whole run
    first."""
    runs: list[list[str]] = [[]]
    for m in re.finditer(r"[A-Za-z]+|\d+|[^A-Za-z\d]+", text):
        part = m.group(0)
        if m.start() > 0 and text[m.start() - 1] in "'’" or part in ("a", "I"):
            runs.append([])  # "it's", "don't"; the article "a" and the pronoun "I"
            continue
        if _CODE_PART.fullmatch(part):
            low = part.lower()
            if part.isdigit():
                runs[-1].append(part)
                continue
            if len(part) == 1:
                runs[-1].append(part.upper())
                continue
            if low in _NATO:
                runs[-1].append(_NATO[low])
                continue
            runs.append([])
        elif re.fullmatch(r"[\s,.\-]+", part) is None:
            runs.append([])
    out: list[str] = []
    for run in runs:
        # the whole run, then without its first characters (a stray word before the code); a
        # run of digits alone is read as digits elsewhere, and no digits are cut from its end
        for i in range(len(run) - 1):
            code = "".join(run[i:])
            if re.search(r"[A-Z]", code) and code not in out:
                out.append(code)
    return out


# --- digits as a recogniser writes them -------------------------------------------------------

_DIGITISH_TOKEN = re.compile(r"\b(?=[0-9Oo]*\d)(?=[0-9]*[Oo])[0-9Oo]+\b")
_THOUSANDS = re.compile(r"(?<![\d,.])\d{1,3}(?:,\d{3})+(?![\d,]|\.\d)")
_MULTIPLIED_DIGIT = re.compile(r"\b(double|triple)[\s-]+(\d)", re.IGNORECASE)
_GROUP_COMMA = re.compile(r"(?<=\d),\s*(?=\d)")
DIGIT_HOMOPHONES = {
    "oh": "0", "o": "0", "to": "2", "too": "2", "for": "4", "fore": "4", "won": "1", "ate": "8",
    "free": "3", "tree": "3",
}
_LABEL_NUMBER = re.compile(
    r"\b(?:(?:the\s+)?(?:last|first|final)\s+(?:4|four|3|three|5|five|6|six|2|two)(?:\s+digits?)?(?:\s+(?:are|is))?"
    r"|\d+-digits?|(?:four|five|six|seven|eight|nine|ten)-digits?)\b[,:]?",
    re.IGNORECASE,
)
"""A number that is part of a detail's name ("the last four are ...", "my five-digit number"),
not of its value: said back by a caller before the digits."""
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

    text = _LABEL_NUMBER.sub(" ", text)
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
        second = first
        for _ in range(3):  # "free free 8 1": each homophone next to a digit, right to left
            second = _HOMOPHONE_BEFORE.sub(lambda m: DIGIT_HOMOPHONES[m.group(1).lower()] + " ", second)
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
_NO = re.compile(
    r"\b(no|nope|don't|do not|not really|never mind|cancel|"
    r"(?:is|isn'?t|'s|was|that'?s)?\s*not (?:right|correct|it|what i said|quite))\b"
)
"""A no, also without the word "no" ("that's not right": a recogniser may hear the "No," as "So,")."""


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


_SUMMARY = re.compile(r"summary|context|notes", re.IGNORECASE)


_FREE_TEXT = frozenset(["short", "long", "summary"])


_CHANGES = re.compile(
    r"^(create|place|book|cancel|block|start|update|delete|submit|schedule|reset|reserve|remove|modify|"
    r"change|add|open|file|report|order|pay|refund|freeze|pause|close|enable|disable|activate|deactivate|"
    r"set|send|register|renew|redirect|transfer|request|issue|unlock|lock|suspend|stop|apply|make|edit)",
    re.IGNORECASE,
)


_READS = re.compile(
    r"^(get|check|list|track|look|lookup|find|search|show|describe|verify|authenticate|identify|"
    r"tell|give|read|fetch|query|see|view|confirm_identity|explain|answer|compare|estimate|quote|ask|consult|"
    r"inquire|enquire|recommend|suggest|summari[sz]e|translate|"
    r"calculate|count|is|are|has|have|does|do|can|when|where|what|which|who|how)\b",
    re.IGNORECASE,
)
"""A tool whose name or description starts with one of these only reads or tells."""


def changes_data(tool: _Tool) -> bool:
    """Whether a tool changes something: its name or its description starts with such a verb
    (create, place, book, cancel, block, start, update, delete...). A tool that neither says it
    changes something nor that it only reads (get, check, list, find, verify, tell...) is taken
    to change something ("extend_permit", "top_up_card"): when unsure, a value is read back
    rather than acted on. Handoffs and escalations are not counted: they move the call, not the
    caller's data."""
    if tool.is_transfer or tool.is_escalation or _END_CALL.match(tool.name):
        return False
    first = tool.name.replace("-", "_").split("_")[0]
    description = tool.description.strip()
    if _CHANGES.match(first + " ") or _CHANGES.match(description + " "):
        return True
    return not (_READS.match(first + " ") or _READS.match(description + " "))


_LEAD_IN = re.compile(
    r"^\W*(?:(?:yes|yeah|sure|ok|okay|well|so|um|uh|oh|right)\W+)*"
    r"(?:(?:it'?s|it is|that'?s|that is|this is|i'?m at|i live at|i am at|send it to|deliver(?: it)? to|"
    r"(?:my|the|our) [a-z ]{1,30}? (?:is|are))\s+)?",
    re.IGNORECASE,
)


def _answer_words(text: str, label: str) -> str:
    """An answer without its lead-in ("Sure, it's jdoe." -> "jdoe")."""
    words = _LEAD_IN.sub("", text.strip(), count=1).strip().rstrip(".!?").strip()
    return words


_QUANTITY = re.compile(r"quantit|qty|count|how many|number of", re.IGNORECASE)


_FAULT_WORDS = sorted(
    {p for key, phrases in ENUM_SYNONYMS.items() if key != "other" for p in phrases}, key=len, reverse=True
)


_EXPLAINS = re.compile(
    r"\b(because|since|cause|due to|as it|as they|so that|arrived|came|broke|stopped|fell|"
    r"leak\w*|missing|too (big|small|large|tight|loose|short|long)|(doesn'?t|does not|didn'?t|did not|won'?t|"
    r"can'?t|cannot) (fit|work|turn|charge|close|open|match)\w*|"
    + "|".join(re.escape(p) for p in _FAULT_WORDS)
    + r")\b",
    re.IGNORECASE,
)


"""Words that explain why: a cause, or a fault (the return-reason synonyms of ``entities``)."""


_GENERIC_DESCRIPTION = frozenset(tokens("why reason words own explain explanation short sentence briefly describe"))


_LEADING_ANSWER = re.compile(r"^\W*(yes|yeah|yep|sure|ok|okay|right|correct|please|well|so|um|uh|oh)\b[\s,.!]*", re.IGNORECASE)


def _fit_length(value: str | None, schema: dict[str, Any]) -> str | None:
    """Free text cut to the schema's ``maxLength`` at a word boundary (a model keeps to it too)."""
    longest = schema.get("maxLength")
    if value is None or not isinstance(longest, int) or longest <= 0 or len(value) <= longest:
        return value
    cut = value[:longest]
    if value[longest:longest + 1].isalnum() and " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:-") or value[:longest]


def _explanation_words(text: str) -> str:
    """A statement as an explanation: without a leading "yes," / "well," and with a capital."""
    words = text
    while True:
        stripped = _LEADING_ANSWER.sub("", words, count=1)
        if stripped == words or not stripped:
            break
        words = stripped
    words = words.strip()
    return words[:1].upper() + words[1:] if words else text


def _param_kind(name: str, schema: dict[str, Any]) -> str:
    label = f"{name} {schema.get('description', '')}".lower()
    typ = schema.get("type")
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return "enum"
    if typ == "boolean":
        return "bool"
    if schema.get("format") in ("date", "date-time") or re.search(r"date|dob|birth", name, re.IGNORECASE):
        return "date"
    if re.search(r"phone|mobile|telephone", label):
        return "phone"
    if re.search(r"e-?mail", label) or schema.get("format") == "email":
        return "email"
    if isinstance(schema.get("pattern"), str):
        return "pattern"
    if typ in ("integer", "number"):
        return "number"
    if _SUMMARY.search(name):
        return "summary"
    if _LONG_TEXT.search(name):
        return "long"
    return "short"


def _safe_search(pattern: str, value: str) -> bool:
    try:
        return re.search(pattern, value) is not None
    except re.error:
        return False


def _valid(schema: dict[str, Any], value: Any) -> bool:
    enum = schema.get("enum")
    if isinstance(enum, list) and enum and value not in enum:
        return False
    pattern = schema.get("pattern")
    if isinstance(pattern, str) and not (isinstance(value, str) and _safe_search(pattern, value)):
        return False
    typ = schema.get("type")
    if typ == "string" and not isinstance(value, str):
        return False
    not_number = isinstance(value, bool) or not isinstance(value, (int, float))
    if typ in ("integer", "number") and not_number:
        return False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        low, high = schema.get("minimum"), schema.get("maximum")
        if isinstance(low, (int, float)) and value < low:
            return False
        if isinstance(high, (int, float)) and value > high:
            return False
    if isinstance(value, str):
        shortest, longest = schema.get("minLength"), schema.get("maxLength")
        if isinstance(shortest, int) and len(value) < shortest:
            return False
        if isinstance(longest, int) and len(value) > longest:
            return False
    return True


def _phone_option(phone: str, pattern: str | None) -> str | None:
    """``phone`` as the schema's pattern wants it (with or without a leading 1 or +)."""
    options = [phone]
    digits = phone.lstrip("+")
    if len(digits) == 11 and digits.startswith("1"):
        options.append(digits[1:])
    options.append("+" + digits)
    return next((o for o in options if pattern is None or _safe_search(pattern, o)), None)


def _extract_typed(kind: str, name: str, schema: dict[str, Any], text: str, *, digits: bool = True) -> Any:
    """The value of a typed parameter in ``text``; ``digits`` reads the text for digits the way
    a recogniser writes spoken ones (see :func:`entities.digit_readings`)."""
    pattern = schema.get("pattern") if isinstance(schema.get("pattern"), str) else None
    if kind == "enum":
        values = list(schema["enum"])
        if any(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            labelled = _labelled_number(name, schema, text)
            if labelled in values:
                return labelled
            text = _DIGIT_BY_DIGIT.sub(" ", text)  # digits said one by one belong to an identifier
        return match_enum(values, text) or _enum_by_meaning(values, text) or enum_by_sound(values, text)
    if kind == "bool":
        return match_bool(text)
    if kind == "date":
        dates = find_dates(text)
        if dates:
            iso = dates[0][0]
            return iso + "T00:00:00Z" if schema.get("format") == "date-time" else iso
        return None
    # phone numbers and identifiers: the transcript read for digits (homophones only as a second
    # reading), a whole phone number preferred over a part of one
    readings = digit_readings(text) if digits and kind in ("phone", "pattern") else [text]
    if kind == "phone":
        partial: str | None = None
        for reading in readings:
            for phone in find_phone_numbers(reading):
                option = _phone_option(phone, pattern)
                if option is not None and (not digits or plausible_phone(phone)):
                    return option
                partial = partial if partial is not None else option
        return partial
    if kind == "email":
        emails = find_emails(text)
        return emails[0] if emails else None
    if kind == "pattern":
        assert pattern is not None
        for reading in readings:
            values = pattern_candidates(pattern, reading)
            if values:
                return values[0]
        return None
    if kind == "number":
        labelled = _labelled_number(name, schema, text)
        if labelled is not None and _valid({k: schema[k] for k in ("minimum", "maximum") if k in schema}, labelled):
            return labelled
        # digits said one by one ("7 2 0 1 8") are an identifier, not a count
        for written in find_numbers(_DIGIT_BY_DIGIT.sub(" ", text)):
            value = float(written.replace(",", ""))
            number: int | float = int(value) if value.is_integer() else value
            if schema.get("type") == "integer" and not isinstance(number, int):
                continue
            if _valid({k: schema[k] for k in ("minimum", "maximum") if k in schema}, number):
                return number
    return None


def _labelled_number(name: str, schema: dict[str, Any], text: str) -> int | float | None:
    """A number said with the unit its parameter counts ("6 months" for "how many months to
    add", "2 boxes"): that one, whatever other digits the answer holds."""
    label = set(tokens(f"{name.replace('_', ' ')} {schema.get('description', '')}"))
    for m in re.finditer(r"(?<![\w.])(\d+(?:\.\d+)?)\s+([A-Za-z]+)", text):
        if set(tokens(m.group(2))) & label:
            value = float(m.group(1))
            if schema.get("type") == "integer" and not value.is_integer():
                continue
            return int(value) if value.is_integer() else value
    return None


_DIGIT_BY_DIGIT = re.compile(r"(?<![\d.,])\d(?:[\s\-.]+\d(?![\d.,]\d)){2,}\b")


def enum_by_sound(values: list[Any], text: str) -> Any | None:
    """The enum value a misheard word stands for ("river tag" -> "riverside", "premiums" ->
    "premium"): a word of five letters or more that begins a value's word (or the other way
    round), or spells it nearly alike (difflib ratio 0.8); only when exactly one value fits."""
    heard = {w for w in re.findall(r"[a-z]+", text.lower()) if len(w) >= 5}
    fits = []
    for value in values:
        if not isinstance(value, str):
            continue
        words = [w for w in re.split(r"[^a-z]+", value.lower()) if len(w) >= 5]
        if any(
            v.startswith(h) or h.startswith(v) or difflib.SequenceMatcher(None, h, v).ratio() >= 0.8
            for h in heard for v in words
        ):
            fits.append(value)
    return fits[0] if len(fits) == 1 else None


def _enum_by_meaning(values: list[Any], text: str) -> Any | None:
    """The enum value whose words the text shares through the vocabulary ("no electricity" ->
    "power", "really slow" -> "slow_speed"): the one value sharing the most, if only one does."""
    said = set(tokens(text))
    scored = sorted(
        ((len(said & set(tokens(str(v)))), -i, v) for i, v in enumerate(values) if isinstance(v, str)), reverse=True
    )
    if scored and scored[0][0] > 0 and (len(scored) == 1 or scored[1][0] < scored[0][0]):
        return scored[0][2]
    return None


def _residual_phrase(text: str, tool: _Tool, schema: dict[str, Any]) -> str:
    """What the caller said for a short free-text parameter: a word the schema gives as an
    example ("a topic such as roaming, billing"), else the longest run of content words the
    tool's own vocabulary doesn't explain ("any deals on running shoes?" -> "running shoes")."""
    described = f"{tool.description} {schema.get('description', '')}"
    example_part = re.search(r"(?:such as|e\.g\.|for example|like|including)\s+(.*)", described, re.IGNORECASE)
    examples = set(tokens(example_part.group(1))) if example_part else set()
    plain = described[: example_part.start()] if example_part else described
    vocabulary = tool.name_tokens | set(tokens(plain)) | set(tokens(" ".join(tool.properties)))
    runs: list[list[str]] = [[]]
    for word in re.findall(r"[A-Za-z][A-Za-z'-]*", text):
        low = word.lower()
        stem = _stem(low)
        if stem in examples:
            return word
        if low in _STOP or stem in _STOP or stem in vocabulary or low.split("'")[0] in _STOP:  # "I'd", "we're"
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append(word)
    best = max(runs, key=lambda r: (len(" ".join(r)), -runs.index(r)))
    return " ".join(best)


def _walk(value: Any, key: str = "", context: str = "") -> list[tuple[str, Any, str]]:
    """(key, scalar value, JSON of the enclosing object) for every scalar in a tool output."""
    out: list[tuple[str, Any, str]] = []
    if isinstance(value, dict):
        ctx = json.dumps(value, sort_keys=True, ensure_ascii=False)
        for k, v in value.items():
            if isinstance(v, (dict, list)):
                out.extend(_walk(v, str(k), ctx))
            else:
                out.append((str(k), v, ctx))
    elif isinstance(value, list):
        for v in value:
            out.extend(_walk(v, key, context))
    else:
        out.append((key, value, context))
    return out
