"""What the agent says: greetings, questions (parameters worded by their descriptions), questions
asked again in other words, read-backs, and tool outputs as spoken answers."""

from __future__ import annotations

import json
import re
from typing import Any

from realtime.offline.policy.arguments import _param_kind
from realtime.offline.policy.items import _GATE, _Tool, _Turn, parse_tools
from realtime.offline.policy.vocabulary import tokens

ANYTHING_ELSE = "Is there anything else I can help you with?"


GOODBYE = "You're welcome. Thank you for calling, goodbye!"


STILL_THERE = "Are you still there?"


_GREETING_RE = re.compile(
    r"\b(hello|hi|hey|welcome|thank you for calling|thanks for calling|good (morning|afternoon|"
    r"evening))\b",
    re.IGNORECASE,
)


_TO_MODEL = re.compile(
    r"^(tell|say|ask|continue|read|offer|confirm|do not|don't|never|use|call|let)\b|^you are now\b",
    re.IGNORECASE,
)


def still_there(turns: list[_Turn]) -> str:
    """The answer to a silent caller turn (an idle timeout, or nothing understood): ask whether
    they are still there and repeat the last question asked, else say the agent is listening."""
    said = [t.text for t in turns if t.kind == "assistant"]
    if not said:
        return "Hello, are you there? How can I help you today?"
    last = re.split(r"(?<=[.!?])\s+", said[-1].strip())[-1]
    if last.endswith("?"):
        return f"{STILL_THERE} {last}"
    return f"{STILL_THERE} I'm here whenever you're ready."


def _join(*parts: str) -> str:
    return " ".join(p.strip() for p in parts if p and p.strip())


def _and_join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _or_join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


def _ability(tool: _Tool) -> str:
    words = tool.name.replace("_", " ")
    words = re.sub(r"^lookup\b", "look up", words)
    return words


_READBACK_LEAD = "Let me read that back:"


def _readback(tool: _Tool, args: dict[str, Any]) -> str:
    """The read-back before a data-changing call with free text: every value, then the question."""
    parts = [
        f"{_label(n, tool.properties[n])}: {_scalar(v).replace('_', ' ') if tool.properties[n].get('enum') else _scalar(v)}"
        for n, v in args.items() if n in tool.properties
    ]
    words = _ability(tool).split()
    if len(words) >= 2 and words[1] not in _PREPOSITIONS:
        words.insert(1, "the")
    return f"{_READBACK_LEAD} {'; '.join(parts)}. Shall I {' '.join(words)}?"


def _reask(labels: list[str], schemas: list[dict[str, Any]], kinds: list[str], times: int) -> str:
    """A question asked again in other words, with a hint of the form the answer takes."""
    hints = {
        "date": "the month, the day and the year",
        "phone": "one digit at a time",
        "pattern": "one character at a time",
        "number": "just the number",
    }
    hint = next((hints[k] for k in kinds if k in hints), "")
    listing = ""
    if len(schemas) == 1 and isinstance(schemas[0].get("enum"), list) and schemas[0]["enum"]:
        listing = " You can say " + _or_join([str(o).replace("_", " ") for o in schemas[0]["enum"]]) + "."
    what = _and_join(labels)
    if times == 1:
        return f"Sorry, I didn't get that. What is {what}?" + (f" Please say {hint}." if hint else "") + listing
    if times == 2:
        return f"Let's try once more. Please tell me {what}" + (f", {hint}" if hint else "") + "." + listing
    return f"I still didn't catch {what}. Please say only {what}, slowly" + (f", {hint}" if hint else "") + "." + listing


_PREPOSITIONS = frozenset(["to", "for", "from", "in", "on", "at", "with", "by", "up"])


def _confirmation(tool: _Tool, args: dict[str, Any]) -> str:
    """The question asked before a tool whose description says to confirm with the caller first."""
    words = _ability(tool).split()
    if len(words) >= 2 and words[1] not in _PREPOSITIONS:
        words.insert(1, "the")
    idents = [
        str(v) for k, v in args.items()
        if isinstance(tool.properties.get(k, {}).get("pattern"), str) and isinstance(v, str)
    ]
    target = f" for {_and_join(idents)}" if idents else ""
    return f"Shall I {' '.join(words)}{target}?"


_PERSON = (
    r"(?:customer|caller|user|member|patient|client|guest|subscriber|cardholder|account ?holder|"
    r"passenger|student|tenant|resident|policy ?holder|employee|driver|owner|buyer|applicant|visitor)"
)


_WH = re.compile(r"^(why|what|how|when|where|which|who|whether)\b", re.IGNORECASE)


_FORMAT_NOTE = re.compile(
    r"\s*\b(?:in |as )?(?:ISO[- ]?8601|YYYY-MM-DD|MM/DD/YYYY|DD/MM/YYYY|E\.164)(?: format)?\b", re.IGNORECASE
)


def _label(name: str, schema: dict[str, Any]) -> str:
    """How a parameter is asked for: its description as a noun phrase addressed to the caller
    ("The customer's date of birth" -> "your date of birth", "Last four digits of the card" ->
    "the last four digits of the card", "Why the caller needs a human" -> "why you need a
    human"); its name only when there is no usable description."""
    desc = str(schema.get("description") or "").strip()
    desc = re.split(r"\s*(?:\(|;|:|,|\be\.g\.|\bsuch as\b|\bfor example\b)", desc, maxsplit=1)[0]
    desc = _FORMAT_NOTE.sub("", desc).strip().rstrip(".")
    if desc and len(desc.split()) <= 12:
        label = desc if re.match(r"^[A-Z]{2,}\b", desc) else desc[0].lower() + desc[1:]
        if _WH.match(label):
            label = re.sub(rf"\b(?:the |a |an )?{_PERSON} (\w+?)s\b", r"you \1", label, flags=re.IGNORECASE)
            label = re.sub(rf"\b(?:the |a |an )?{_PERSON}'s\b", "your", label, flags=re.IGNORECASE)
            label = re.sub(rf"\b(?:the |a |an )?{_PERSON}\b", "you", label, flags=re.IGNORECASE)
            return label
        label = re.sub(rf"\b(?:the )?{_PERSON}'s\b", "your", label, flags=re.IGNORECASE)
        label = re.sub(rf"^(?:the )?{_PERSON} ", "your ", label, flags=re.IGNORECASE)
        # "the store where the caller will collect it" -> "... where you will collect it"
        label = re.sub(
            rf"(?<=\w )(?:the |a |an )?{_PERSON} (will|would|can|could|should|may|must)\b", r"you \1", label, flags=re.IGNORECASE
        )
        if not re.match(r"^(the|a|an|your)\b", label, re.IGNORECASE):
            label = "the " + label
        return _named(label, name)
    words = name.replace("_", " ").lower()
    words = re.sub(r"\bid\b", "ID", words)
    words = re.sub(r"\bdob\b", "date of birth", words)
    words = re.sub(r"\bzip\b", "ZIP", words)
    return f"the {words}" if re.search(r"reason|question|topic|category", words) else f"your {words}"


def _named(label: str, name: str) -> str:
    """A label that lost what the parameter is ("The student's six-digit number" -> "your
    six-digit number") gets the name's words back before its last word: "your six-digit student
    number", so the caller knows which number."""
    parts = [w for w in name.lower().split("_") if w]
    words = label.split()
    if len(parts) < 2 or not words or words[-1].lower() != parts[-1]:
        return label
    missing = [w for w in parts[:-1] if not any(x.lower().startswith(w) for x in words)]
    if not missing or len(missing) != len(parts) - 1:
        return label
    return " ".join([*words[:-1], *missing, words[-1]])


_VERBATIM_RE = re.compile(
    r"\b(?:say|read|repeat|speak)\b[^.:\n]{0,80}?\b(?:exactly|verbatim|word for word)\b[^:\n]{0,120}:\s*"
    r"(?P<quote>[\"“'])(?P<text>.+)[\"”']\s*\.?\s*$",
    re.IGNORECASE | re.DOTALL,
)


def verbatim_request(instructions: str) -> str | None:
    """The words a response's instructions ask to be said exactly ("Say exactly the following
    words ...: "<words>"", the quoted words ending the instructions, as when a response's own
    instructions replace the agent's), or None. A JSON string literal is decoded."""
    match = _VERBATIM_RE.search(instructions or "")
    if match is None:
        return None
    if match.group("quote") == '"':
        try:
            decoded = json.loads('"' + match.group("text") + '"')
        except ValueError:
            decoded = None
        if isinstance(decoded, str) and decoded.strip():
            return decoded.strip()
    text = match.group("text").strip().strip("\"“”'").strip()
    return text or None


def greeting(instructions: str) -> str:
    """The opening line the instructions ask for (see the module docstring)."""
    quoted = re.findall(r"[\"“]([^\"”]{3,300})[\"”]", instructions)
    quoted += re.findall(r"(?:^|[\s:(])'([^'\n]{3,300}?)'(?=[\s.,;:)!?]|$)", instructions)
    for line in quoted:
        if _GREETING_RE.search(line):
            return line.strip()
    for sentence in re.split(r"(?<=[.!?])\s+|\n+", instructions):
        m = re.search(r"\b(?:greet|open|start|begin)\w*\b.*?\b(?:with|by saying|saying)\b:?\s*(.+)", sentence, re.IGNORECASE)
        if m and len(m.group(1).split()) >= 2:
            line = m.group(1).strip().strip("\"'“”")
            return line[0].upper() + line[1:]
    org = re.search(
        r"\b(?:answer(?:s|ing)?\s+(?:the\s+)?(?:calls|phones?)\s+for|calls\s+to|on behalf of)\s+"
        r"((?:[A-Z][\w&'-]*)(?:\s+[A-Z][\w&'-]*)*)",
        instructions,
    )
    if org:
        return f"Hello, thank you for calling {org.group(1)}. How can I help you today?"
    role = re.search(r"\byou are\s+(?:an?\s+|the\s+)?([^.,;:\n!?]{3,80})", instructions, re.IGNORECASE)
    if role:
        name = role.group(1).strip()
        return f"Hello, you've reached the {name}. How can I help you today?"
    return "Hello! How can I help you today?"


def describe_output(name: str, output: Any, ok: bool, focus: str = "") -> str:
    """A short spoken answer for a tool's output; ``focus`` (what the caller asked) picks the
    fields of a long record to read."""
    if isinstance(output, str):
        text = " ".join(output.split())
        return text[:400] if ok else f"I'm sorry, that didn't work: {text[:200]}"
    if isinstance(output, dict):
        for key in ("message", "answer", "response", "next_response", "summary", "text", "reply", "result"):
            value = output.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
        if not ok and _GATE.search(name):
            return "I'm sorry, I couldn't verify your identity with those details."
        reason = output.get("error") or output.get("reason") or output.get("detail")
        if not ok:
            detail = f": {reason}" if isinstance(reason, str) else ""
            return f"I'm sorry, I couldn't complete that{detail}."
        if any(v is False for v in output.values()) and isinstance(reason, str):
            return f"I'm sorry, {reason[0].lower() + reason[1:]}" if reason else "I'm sorry."
        if _GATE.search(name):
            return "Thank you, your identity is verified."
        notes = [v for v in output.values() if isinstance(v, str) and len(v) > 40 and not _is_url(v)]
        said = [_spoken_note(v) for v in notes]
        said = [v for v in said if v]
        rest = {k: v for k, v in output.items() if v not in notes}
        if len(notes) == 1:  # the note says it; only references go with it
            rest = {k: v for k, v in rest.items() if _ID_KEY.search(k) and isinstance(v, str)}
        phrases = _phrases("", rest)
        if len(notes) == 1 and not phrases:
            return said[0] if said else "Done."
        if len(phrases) > 5 and focus:
            wanted = set(tokens(focus))
            chosen = [p for p in phrases if wanted & set(tokens(p.split(":")[0]))]
            phrases = chosen or phrases
        text = "; ".join(phrases[:8])
        if text:
            text = "Here's what I found: " + text + "."
        return _join(text, *said) or "Done."
    if not ok:
        return "I'm sorry, I couldn't complete that."
    phrases = _phrases("", output)
    if not phrases:
        return "Done."
    return "Here's what I found: " + "; ".join(phrases[:8]) + "."


def _is_url(value: Any) -> bool:
    return isinstance(value, str) and bool(re.match(r"^[a-z][a-z0-9+.-]*://\S+$", value.strip()))


def _spoken_note(text: str) -> str:
    """A tool's note without the sentences addressed to the model ("Tell the caller.")."""
    sentences = re.split(r"(?<=[.!?;])\s+", " ".join(text.split()))
    kept = [s for s in sentences if not _TO_MODEL.match(s)]
    return " ".join(kept).rstrip(";").strip()


def _human(key: str) -> str:
    words = key.replace("_", " ").strip()
    return re.sub(r"\b(id|url|gb|sku)\b", lambda m: m.group(1).upper(), words)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip().rstrip(".")


_FLAG_KEY = re.compile(r"^(found|ok|success|ready|added|started|verified|authenticated|transferred)$", re.IGNORECASE)


_NAME_KEY = re.compile(r"^(name|title|product|item|label|description)$|_name$", re.IGNORECASE)


_ID_KEY = re.compile(r"(^|_)(id|sku|number|code|reference|ref)$", re.IGNORECASE)


_PRICE_KEY = re.compile(r"price|cost|total|amount|fee", re.IGNORECASE)


_SALE_KEY = re.compile(r"sale|discount(ed)?_price|now|final", re.IGNORECASE)


_SKIP_KEY = re.compile(r"percent|category|_on$|date|quantity|unit", re.IGNORECASE)


ITEMS_SPOKEN = 3


def _item_phrase(item: dict[str, Any]) -> str:
    """One record of a list, as said: its name (or its parts' names), identifier, price, status."""
    head = next((_scalar(v) for k, v in item.items() if _NAME_KEY.search(k) and not isinstance(v, (dict, list))), "")
    if not head:
        names = [
            _scalar(x) for v in item.values() if isinstance(v, list) for d in v if isinstance(d, dict)
            for k, x in d.items() if _NAME_KEY.search(k) and not isinstance(x, (dict, list))
        ]
        head = _and_join(names[:3])
    ident = next((_scalar(v) for k, v in item.items() if _ID_KEY.search(k) and isinstance(v, (str, int))), "")
    prices = [(k, v) for k, v in item.items() if _PRICE_KEY.search(k) and not isinstance(v, (dict, list, bool))]
    sale = [(k, v) for k, v in prices if _SALE_KEY.search(k)]
    price = (sale or prices)[:1]
    parts = [f"{head} ({ident})" if head and ident else head or ident]
    for k, v in item.items():
        if isinstance(v, (dict, list)) or v is None or isinstance(v, bool) or v == "":
            continue
        if _NAME_KEY.search(k) or _ID_KEY.search(k) or _PRICE_KEY.search(k) or _SKIP_KEY.search(k):
            continue
        if len(parts) < 4:
            parts.append(_scalar(v))
    parts += [f"{_human(k)} {_scalar(v)}" for k, v in price]
    return ", ".join(p for p in parts if p)


def _phrases(key: str, value: Any) -> list[str]:
    if isinstance(value, dict):
        out: list[str] = []
        for k, v in value.items():
            if (v is True and _FLAG_KEY.match(str(k))) or _is_url(v):
                continue  # "found: yes" says nothing; a link is texted, not read out
            out.extend(_phrases(str(k), v))
        return out
    if isinstance(value, list):
        if not value:
            return [f"no {_human(key)}" if key else "nothing found"]
        if all(isinstance(v, dict) for v in value):
            count = len(value)
            noun = _human(key) or "results"
            if count == 1 and noun.endswith("s"):
                noun = noun[:-1]
            items = [_item_phrase(v) for v in value[:ITEMS_SPOKEN]]
            more = f"; and {count - ITEMS_SPOKEN} more" if count > ITEMS_SPOKEN else ""
            return [f"{count} {noun}: " + "; ".join(items) + more]
        listing = ", ".join(_scalar(v) for v in value[:8])
        return [f"{_human(key)}: {listing}" if key else listing]
    if value is None:
        return []
    return [f"{_human(key)}: {_scalar(value)}" if key else _scalar(value)]


def asked_parameters(tools: list[dict[str, Any]] | None, question: str) -> list[tuple[str, dict[str, Any]]]:
    """(kind, schema) of the tool parameters ``question`` asks for: those whose spoken label (the
    words the policy asks with) it contains. Kinds as :func:`_param_kind` gives them."""
    low = question.lower()
    out: list[tuple[str, dict[str, Any]]] = []
    for tool in parse_tools(tools):
        for name, schema in tool.properties.items():
            if _label(name, schema).lower() in low:
                entry = (_param_kind(name, schema), schema)
                if entry not in out:
                    out.append(entry)
    return out
