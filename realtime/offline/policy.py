"""A deterministic dialogue policy: the "model" of the offline engine.

It sees only what the real API sees: the session's ``instructions``, its function ``tools`` (GA
shape: ``{"type": "function", "name", "description", "parameters"}``) and the conversation (GA
conversation items: messages with input_text / input_audio / output_text / output_audio parts,
``function_call`` and ``function_call_output``). It returns the next response: spoken text, a
function call, or both (text said before the call). No randomness, no clocks, no set-order
dependence: the same input gives the same output, every time.

How it decides:

- **Greeting**: with nothing said yet (or only "hello"), it greets as the instructions say: a
  quoted line containing a greeting, else a sentence telling it how to greet, else a short generic
  greeting naming the role found in "You are ...".
- **Silence**: a user turn with nothing in it (the idle timeout's committed silence, or speech
  nobody understood) is answered, whatever the tool choice, without a tool: "Are you still
  there?" and the last question asked again (else "I'm here whenever you're ready.").
- **Tool choice**: the caller's words are matched (stemmed, a few synonyms, idf-weighted) against
  tool names (weight 3), descriptions (1.5) and parameter names/descriptions/enums (0.5). A strong
  match on the latest utterance wins; otherwise the task in progress (the best tool not yet done
  for what the caller said since the last "anything else?") continues. ``transfer_to_*`` tools are
  ordinary tools, so handoffs happen by voice. A verification tool (verify/authenticate) comes
  first when another tool is wanted and nobody has been verified yet; a tool whose output can
  provide a missing argument ("order_id" <- ``lookup_orders``) is called before the tool needing it.
  A tool with a free-text ``question``/``query`` parameter (``ask_supervisor``) takes what nothing
  else matches.
- **Arguments** come from the caller's words guided by the schema (enum synonyms, dates, phone
  numbers incl. spoken digits, patterns such as ``^ORD-\\d{5}$``, numbers, yes/no, free text),
  then from earlier call arguments with the same name, then from tool outputs. Missing required
  ones are asked for using the parameter descriptions; answers are collected across turns.
- **Tool outputs** become a spoken answer (a message/answer field, else a compact readout), and the
  task continues with the next matching tool (verify -> transfer, lookup -> check -> start).
- **Handoffs**: after a ``transfer_to_*`` call and its output the session's instructions and tools
  are the new agent's; it does not greet but acts on the caller's pending request.

:meth:`DialoguePolicy.respond_responses` is the same policy over Responses API input items (text
mode, used by the supervisor and summaries); :meth:`PolicyResponse.responses_output` gives the
Responses ``output`` items.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from realtime.offline import entities as ent

ANYTHING_ELSE = "Is there anything else I can help you with?"
GOODBYE = "You're welcome. Thank you for calling, goodbye!"
STILL_THERE = "Are you still there?"
TRANSFER_PREFIX = "transfer_to_"
STRONG = 2.5
WEAK = 1.0
"""In text mode (a supervisor that is asked because facts are needed) a weaker match will do."""

_VOCABULARY: dict[str, Any] = json.loads((Path(__file__).parent / "vocabulary.json").read_text())
"""The general vocabulary (``vocabulary.json``): stop words, synonyms, concept groups, phrases."""
_STOP = frozenset(_VOCABULARY["stop"])
_SYNONYMS: dict[str, str] = dict(_VOCABULARY["synonyms"])
_GREETING_RE = re.compile(
    r"\b(hello|hi|hey|welcome|thank you for calling|thanks for calling|good (morning|afternoon|"
    r"evening))\b",
    re.IGNORECASE,
)
_CLOSING_RE = re.compile(
    r"^\W*(no|nope|no thanks?|no thank you|that'?s (all|it)|nothing else|bye|goodbye|thanks?|"
    r"thank you|thanks?,? bye|thank you,? (goodbye|bye)|that is all|i'?m good|all good)"
    r"(\W+(that'?s (all|it)|that is all|nothing else|thanks?|thank you|bye|goodbye|i'?m good|all good|"
    r"(have a )?(nice|good|great) (day|one)|cheers))*\W*$",
    re.IGNORECASE,
)
_LONG_TEXT = re.compile(
    r"reason|question|summary|description|details|notes?|message|request|issue|problem|query|"
    r"comment|context|explanation",
    re.IGNORECASE,
)
_SUMMARY = re.compile(r"summary|context|notes", re.IGNORECASE)
_QUESTION_PARAM = re.compile(r"^(question|query|request|message|prompt)$", re.IGNORECASE)
_GATE = re.compile(r"verif|authenticat|identif", re.IGNORECASE)
_ESCALATION = re.compile(r"escalat|human|operator|end_call|hang_up|agent_handoff", re.IGNORECASE)
_CONFIRM = re.compile(r"\bconfirm\b[^.]*\b(caller|customer|user|first)\b", re.IGNORECASE)
_TO_MODEL = re.compile(
    r"^(tell|say|ask|continue|read|offer|confirm|do not|don't|never|use|call|let)\b|^you are now\b",
    re.IGNORECASE,
)
_END_CALL = re.compile(r"^(end_call|hang_up|end_conversation)$", re.IGNORECASE)


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


def _stem(word: str) -> str:
    """The stem a word counts as (suffixes stripped, then synonyms); the same on both sides."""
    w = _strip_suffix(word)
    return _SYNONYMS.get(w, w)


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


def scenario_phrases(instructions: str) -> list[tuple[re.Pattern[str], str]]:
    """Per-scenario vocabulary from the instructions' "Phrases callers use:" section (an agent's
    phrases, compiled in): lines such as ``- "no electricity" means power outage`` or
    ``- no electricity: power outage``. Each phrase counts as the words it means."""
    match = re.search(r"phrases callers use\s*:?\s*\n((?:[ \t]*[-*•][^\n]*\n?)+)", instructions or "", re.IGNORECASE)
    if match is None:
        return []
    out: list[tuple[re.Pattern[str], str]] = []
    for line in match.group(1).splitlines():
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


# --- parsed inputs ------------------------------------------------------------------------------


@dataclass
class _Turn:
    kind: str  # user | assistant | system | call | output
    text: str = ""
    name: str = ""
    args: dict[str, Any] = field(default_factory=dict)
    call_id: str = ""
    output: Any = None
    ok: bool = True


@dataclass
class _Tool:
    name: str
    description: str
    properties: dict[str, dict[str, Any]]
    required: list[str]
    index: int
    name_tokens: frozenset[str]
    desc_tokens: frozenset[str]
    param_tokens: frozenset[str]
    enum_tokens: frozenset[str]

    @property
    def is_transfer(self) -> bool:
        return self.name.startswith(TRANSFER_PREFIX)

    @property
    def is_gate(self) -> bool:
        return bool(_GATE.search(self.name))

    @property
    def is_escalation(self) -> bool:
        return bool(_ESCALATION.search(self.name))

    @property
    def vocabulary(self) -> frozenset[str]:
        return self.name_tokens | self.desc_tokens | self.param_tokens | self.enum_tokens


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for part in content or []:
        if isinstance(part, str):
            parts.append(part)
        elif isinstance(part, dict):
            text = part.get("text")
            if text is None:
                text = part.get("transcript")
            if isinstance(text, str) and text.strip():
                parts.append(text.strip())
    return " ".join(parts)


def _parse_json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _output_ok(output: Any) -> bool:
    if isinstance(output, dict):
        if output.get("error"):
            return False
        for key in ("success", "ok", "verified", "found", "authenticated"):
            if output.get(key) is False:
                return False
        status = output.get("status")
        if isinstance(status, str) and status.lower() in {"error", "failed", "not_found"}:
            return False
    failed_text = isinstance(output, str) and re.match(r"^\s*(error|failed)\b", output, re.IGNORECASE)
    return not failed_text


def parse_items(items: list[dict[str, Any]]) -> list[_Turn]:
    """GA conversation items (or Responses input items) as turns; unknown items are skipped."""
    turns: list[_Turn] = []
    names: dict[str, str] = {}
    for item in items:
        kind = item.get("type") or ("message" if "role" in item else "")
        if kind == "message":
            role = item.get("role", "user")
            role = "system" if role == "developer" else role
            text = " ".join(_content_text(item.get("content")).split())
            if role in ("user", "assistant", "system") and text:
                turns.append(_Turn(kind=role, text=text))
            elif role == "user":  # silence (an idle timeout) or nothing understood
                turns.append(_Turn(kind="silence"))
        elif kind == "function_call":
            args = _parse_json(item.get("arguments") or "{}")
            call_id = str(item.get("call_id") or item.get("id") or "")
            names[call_id] = str(item.get("name", ""))
            turns.append(
                _Turn(
                    kind="call",
                    name=str(item.get("name", "")),
                    args=args if isinstance(args, dict) else {},
                    call_id=call_id,
                )
            )
        elif kind == "function_call_output":
            call_id = str(item.get("call_id", ""))
            output = _parse_json(item.get("output"))
            turns.append(
                _Turn(
                    kind="output",
                    name=names.get(call_id, ""),
                    call_id=call_id,
                    output=output,
                    ok=_output_ok(output),
                )
            )
    return turns


def parse_tools(tools: list[dict[str, Any]] | None) -> list[_Tool]:
    out: list[_Tool] = []
    for raw in tools or []:
        spec = raw.get("function") if isinstance(raw.get("function"), dict) else raw
        assert isinstance(spec, dict)
        if raw.get("type", "function") != "function" or not spec.get("name"):
            continue
        params = spec.get("parameters") or {}
        props = params.get("properties") or {}
        # free-text parameters (reason, conversation_summary, question) say nothing about the tool
        param_text = " ".join(
            f"{name} {schema.get('description', '')}"
            for name, schema in props.items()
            if isinstance(schema, dict) and not (_LONG_TEXT.search(name) and not schema.get("enum"))
        )
        enum_text = " ".join(
            str(v) for schema in props.values() if isinstance(schema, dict) for v in schema.get("enum", []) or []
        )
        name = str(spec["name"])
        out.append(
            _Tool(
                name=name,
                description=str(spec.get("description") or ""),
                properties={k: v for k, v in props.items() if isinstance(v, dict)},
                required=[r for r in params.get("required", []) or [] if r in props],
                index=len(out),
                name_tokens=frozenset(tokens(name.removeprefix(TRANSFER_PREFIX))),
                desc_tokens=frozenset(tokens(str(spec.get("description") or ""))),
                param_tokens=frozenset(tokens(param_text)),
                enum_tokens=frozenset(tokens(enum_text)),
            )
        )
    return out


# --- results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FunctionCall:
    name: str
    arguments: dict[str, Any]
    call_id: str

    @property
    def arguments_json(self) -> str:
        return json.dumps(self.arguments, ensure_ascii=False)


@dataclass(frozen=True)
class PolicyResponse:
    """The next response: ``text`` to say (may be empty) and/or a function call after it."""

    text: str = ""
    function_call: FunctionCall | None = None

    def responses_output(self) -> list[dict[str, Any]]:
        """Responses API ``output`` items: an assistant message and/or a function_call."""
        items: list[dict[str, Any]] = []
        if self.text:
            items.append(
                {
                    "type": "message",
                    "role": "assistant",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": self.text, "annotations": []}],
                }
            )
        if self.function_call is not None:
            fc = self.function_call
            items.append(
                {
                    "type": "function_call",
                    "name": fc.name,
                    "arguments": fc.arguments_json,
                    "call_id": fc.call_id,
                    "status": "completed",
                }
            )
        return items


# --- the policy ---------------------------------------------------------------------------------


@dataclass
class _State:
    instructions: str
    tools: list[_Tool]
    turns: list[_Turn]
    window: list[tuple[int, str]]  # (turn index, normalised user text) of the task in progress
    segment_start: int  # first turn of the current agent (after the last transfer output)
    text_mode: bool
    idf: dict[str, float]
    phrases: list[tuple[re.Pattern[str], str]] = field(default_factory=list)
    """The scenario's own phrases (see :func:`scenario_phrases`)."""

    def done(self) -> set[str]:
        """Tools called with a successful output by the current agent."""
        outputs = {t.call_id: t.ok for t in self.turns[self.segment_start :] if t.kind == "output"}
        return {
            t.name
            for t in self.turns[self.segment_start :]
            if t.kind == "call" and outputs.get(t.call_id)
        }

    def ever_done(self, name: str) -> bool:
        outputs = {t.call_id: t.ok for t in self.turns if t.kind == "output"}
        return any(t.kind == "call" and t.name == name and outputs.get(t.call_id) for t in self.turns)

    def tool(self, name: str) -> _Tool | None:
        return next((t for t in self.tools if t.name == name), None)


class DialoguePolicy:
    """Stateless and thread-safe: every decision is computed from the inputs alone.

    ``spoken_digits`` (default on) reads phone numbers and identifiers the way a recogniser
    writes spoken digits ("for 158923047", "4,158,923,047", "double 5"); off, only digits as
    written count (the behaviour before; benchmarks compare the two)."""

    def __init__(self, *, spoken_digits: bool = True) -> None:
        self.spoken_digits = spoken_digits

    def respond(
        self,
        instructions: str,
        tools: list[dict[str, Any]] | None,
        items: list[dict[str, Any]],
        tool_choice: str | dict[str, Any] | None = "auto",
    ) -> PolicyResponse:
        """The next Realtime response for a session's instructions, tools and conversation.
        ``tool_choice`` as in the API: "auto", "none", "required" or a function by name."""
        return self._with_choice(instructions, parse_tools(tools), parse_items(items), False, tool_choice)

    def respond_responses(
        self,
        instructions: str | None,
        tools: list[dict[str, Any]] | None,
        input: str | list[dict[str, Any]],
        tool_choice: str | dict[str, Any] | None = "auto",
    ) -> PolicyResponse:
        """The same policy for a Responses API request (text mode: no greeting, no "anything
        else?"); ``input`` is a string or a list of input items."""
        if isinstance(input, str):
            items: list[dict[str, Any]] = [{"type": "message", "role": "user", "content": input}]
        else:
            items = list(input)
        turns = [t for t in parse_items(items) if t.kind != "silence"]
        return self._with_choice(instructions, parse_tools(tools), turns, True, tool_choice)

    def _with_choice(
        self,
        instructions: str | None,
        tools: list[_Tool],
        turns: list[_Turn],
        text_mode: bool,
        tool_choice: str | dict[str, Any] | None,
    ) -> PolicyResponse:
        if turns and turns[-1].kind == "silence" and not text_mode:
            return PolicyResponse(text=still_there(turns))  # whatever tool_choice says: no tools
        choice = tool_choice.get("name") if isinstance(tool_choice, dict) else tool_choice
        choice = choice or "auto"
        if choice == "none":
            tools = []
        elif choice not in ("auto", "required"):
            tools = [t for t in tools if t.name == choice]
        result = self._decide(instructions or "", tools, turns, text_mode)
        if choice == "auto" or choice == "none" or result.function_call is not None or not tools:
            return result
        # a call is required: the best match for what the caller said, else the first tool
        st = self._state(instructions or "", tools, turns, text_mode)
        said = " ".join(t for _, t in st.window)
        tool = max(tools, key=lambda t: (self._score(st, t, said), -t.index))
        args, _missing = self._fill(st, tool)
        call = FunctionCall(tool.name, args, self._call_id(st, tool.name, args))
        return PolicyResponse(text="", function_call=call)

    # -- top level

    def _decide(
        self, instructions: str, tools: list[_Tool], turns: list[_Turn], text_mode: bool
    ) -> PolicyResponse:
        verbatim = verbatim_request(instructions)
        if verbatim is not None:  # "say exactly the following words": a model follows that literally
            return PolicyResponse(text=verbatim)
        st = self._state(instructions, tools, turns, text_mode)
        spoken = [t for t in turns if t.kind in ("assistant", "call")]
        last = turns[-1] if turns else None
        user_texts = [t.text for t in turns if t.kind == "user"]
        if last is not None and last.kind == "system" and text_mode and user_texts:
            return self._act(st, mode="user")
        if last is None or last.kind == "system":
            return PolicyResponse(text=self._opening(st, user_texts))
        if not spoken and last.kind == "user" and all(_is_small_talk(u) for u in user_texts):
            return PolicyResponse(text=self._opening(st, user_texts))
        if last.kind == "output":
            if last.name.startswith(TRANSFER_PREFIX) and last.ok:
                return self._act(st, mode="handoff")
            return self._after_output(st, last)
        if last.kind == "user":
            small_talk = _is_small_talk(last.text) and ent.match_bool(last.text) is None
            if small_talk and not _CLOSING_RE.match(last.text) and not st.text_mode:
                return PolicyResponse(text="Hello! How can I help you today?")
            return self._act(st, mode="user")
        if last.kind == "call":
            return PolicyResponse(text="One moment, please.")
        return PolicyResponse(text="" if text_mode else ANYTHING_ELSE)

    def _state(
        self, instructions: str, tools: list[_Tool], turns: list[_Turn], text_mode: bool
    ) -> _State:
        window: list[tuple[int, str]] = []
        segment_start = 0
        for i, t in enumerate(turns):
            if t.kind == "user":
                window.append((i, ent.normalize_numbers(t.text)))
            elif t.kind == "assistant" and (
                t.text.endswith(ANYTHING_ELSE) or t.text.endswith(GOODBYE)
            ):
                window = []
            elif t.kind == "output" and t.name.startswith(TRANSFER_PREFIX):
                segment_start = i + 1
        last_user = max((i for i, t in enumerate(turns) if t.kind == "user"), default=-1)
        if text_mode and last_user >= 0:
            # a developer prompt after the caller's words ("... context and the caller's last
            # message: <context>"): what follows its last colon counts as said
            for i, t in enumerate(turns[last_user + 1 :], start=last_user + 1):
                if t.kind == "system":
                    said = t.text.rsplit(": ", 1)[-1] if ": " in t.text else t.text
                    window.append((i, ent.normalize_numbers(said)))
        n = max(len(tools), 2)  # one tool: its words are as telling as with two
        df: dict[str, int] = {}
        for tool in tools:
            for tok in tool.vocabulary:
                df[tok] = df.get(tok, 0) + 1
        idf = {tok: math.log(1 + n / count) for tok, count in df.items()}
        return _State(instructions, tools, turns, window, segment_start, text_mode, idf, scenario_phrases(instructions))

    # -- choosing a tool

    def _score(self, st: _State, tool: _Tool, text: str, *, name_only: bool = False) -> float:
        total = 0.0
        for tok in sorted(set(tokens(expand(text, st.phrases)))):
            w = st.idf.get(tok, 0.0)
            if tok in tool.name_tokens:
                total += 3 * w
            elif name_only:
                continue
            elif tok in tool.enum_tokens:  # a value the tool takes: as telling as its name
                total += 2.5 * w
            elif tok in tool.desc_tokens:
                total += 1.5 * w
            elif tok in tool.param_tokens:
                total += 0.5 * w
        return total

    def _best(
        self, st: _State, texts: list[str], exclude: set[str], *, name_only: bool = False
    ) -> _Tool | None:
        best: tuple[float, int] | None = None
        chosen = None
        joined = " ".join(texts)
        # words said before the last handoff brought the caller here: they don't transfer again
        before = {t for i, t in st.window if i < st.segment_start}
        recent = " ".join(t for t in texts if t not in before)
        threshold = WEAK if st.text_mode else STRONG
        for tool in st.tools:
            if tool.name in exclude:
                continue
            score = self._score(st, tool, recent if tool.is_transfer else joined, name_only=name_only)
            if score >= threshold and (best is None or (score, -tool.index) > best):
                best, chosen = (score, -tool.index), tool
        return chosen

    def _act(self, st: _State, mode: str) -> PolicyResponse:
        """Choose what to do about the task in the window (mode: user | chain | handoff)."""
        texts = [t for _, t in st.window]
        done = st.done()
        tool: _Tool | None = None
        if mode == "user":
            latest = texts[-1] if texts else ""
            tool = self._best(st, [latest], set())
            ongoing = self._best(st, texts[:-1], done) if len(texts) > 1 else None
            if ongoing is not None and tool is not ongoing:
                # an answer to the question in progress beats words that happen to match
                # another tool ("the wrong item in my order" while a return reason is asked)
                resolved = self._gated(st, ongoing) or ongoing
                if self._supplies(st, resolved, latest):
                    tool = ongoing
            if tool is None and _CLOSING_RE.match(latest):
                return self._closing(st)
            if tool is None:
                tool = self._best(st, texts, done)
            if tool is None and latest:
                tool = self._catch_all(st, latest, done=set())
        elif mode == "chain":
            before = {p.name for d in done if (t := st.tool(d)) is not None for p in self._prerequisites(st, t)}
            tool = self._best(st, texts, done | before, name_only=True)
        else:  # handoff: the new agent acts on the request itself (no transfer straight on)
            tool = self._best(st, texts, done | {t.name for t in st.tools if t.is_transfer})
            if tool is None and texts:
                tool = self._catch_all(st, texts[-1], done)
        if tool is None:
            if mode == "chain":
                return PolicyResponse()
            return PolicyResponse(text=self._fallback(st, mode))
        preface = ""
        gate = self._gated(st, tool)
        if gate is not None:
            if not any(t.kind == "call" and t.name == gate.name for t in st.turns):
                asked_before = any(
                    t.kind == "assistant" and "verify your identity" in t.text for t in st.turns
                )
                if not asked_before:
                    preface = "I can help with that. First, I need to verify your identity."
            tool = gate
        else:
            tool = next((p for p in self._prerequisites(st, tool) if p.name not in done), tool)
        args, missing = self._fill(st, tool)
        if missing and not tool.is_transfer:
            provider = self._provider(st, tool, missing, done)
            if provider is not None:
                tool = provider
                args, missing = self._fill(st, tool)
        if missing:
            # typed details can be asked together; free text one at a time (so the answer is its value)
            typed = [m for m in missing if _param_kind(m, tool.properties[m]) not in _FREE_TEXT]
            last_user = max((i for i, t in enumerate(st.turns) if t.kind == "user"), default=-1)
            if changes_data(tool) and last_user >= 0 and self._declined_at(st, tool) == last_user:
                return PolicyResponse(text=_join("I'm sorry about that.", self._ask(st, tool, typed or missing[:1], again=True)))
            return PolicyResponse(text=_join(preface, self._ask(st, tool, typed or missing[:1])))
        readback = not st.text_mode and self._needs_readback(tool, args)
        if (_CONFIRM.search(tool.description) or readback) and not st.text_mode:
            question = _readback(tool, args) if readback else _confirmation(tool, args)
            answer = self._confirmed(st, question)
            if answer is None:
                return PolicyResponse(text=_join(preface, question))
            if answer is False and readback:
                loose = [n for n in args if _param_kind(n, tool.properties[n]) == "short"]
                labels = _and_join([_label(n, tool.properties[n]) for n in loose])
                return PolicyResponse(text=f"I'm sorry about that. Could you please tell me {labels} again?")
            if answer is False:
                return PolicyResponse(text=_join("All right, I won't do that.", ANYTHING_ELSE))
        return PolicyResponse(
            text=_join(preface, self._call_preface(tool)),
            function_call=FunctionCall(tool.name, args, self._call_id(st, tool.name, args)),
        )

    def _prerequisites(self, st: _State, tool: _Tool) -> list[_Tool]:
        """Tools that ``tool``'s description names ("... an order that check_return_policy said is
        eligible"): they come first."""
        return [
            other for other in st.tools
            if other is not tool and not other.is_transfer
            and re.search(rf"\b{re.escape(other.name)}\b", tool.description)
        ]

    def _confirmed(self, st: _State, question: str) -> bool | None:
        """The caller's answer to ``question`` if it was the last thing asked, else None."""
        last_user = max((i for i, t in enumerate(st.turns) if t.kind == "user"), default=-1)
        asked = next(
            (t for t in reversed(st.turns[:max(last_user, 0)]) if t.kind in ("assistant", "call", "output")),
            None,
        )
        if last_user < 0 or asked is None or asked.kind != "assistant" or not asked.text.endswith(question):
            return None
        return ent.match_bool(st.turns[last_user].text)

    def _gated(self, st: _State, tool: _Tool) -> _Tool | None:
        """The verification tool to call before ``tool``, if there is one and it isn't done."""
        if tool.is_gate or tool.is_escalation:
            return None
        gate = next((g for g in st.tools if g.is_gate), None)
        if gate is None or st.ever_done(gate.name):
            return None
        return gate

    def _supplies(self, st: _State, tool: _Tool, text: str) -> bool:
        """Whether ``text`` gives a typed value (enum, date, phone, pattern, number) for one of
        the tool's arguments."""
        for name, schema in tool.properties.items():
            kind = _param_kind(name, schema)
            if kind in ("long", "short", "summary", "bool"):
                continue
            if _extract_typed(kind, name, schema, text, digits=self.spoken_digits) is not None:
                return True
        return False

    def _catch_all(self, st: _State, text: str, done: set[str]) -> _Tool | None:
        if not tokens(text):
            return None
        for tool in st.tools:
            if tool.name in done or tool.is_transfer:
                continue
            if any(_QUESTION_PARAM.match(p) for p in tool.required or tool.properties):
                return tool
        return None

    def _provider(
        self, st: _State, tool: _Tool, missing: list[str], done: set[str]
    ) -> _Tool | None:
        wanted = set()
        for param in missing:
            wanted |= set(tokens(param)) - {"number", "code", "name"}
        for other in st.tools:
            if other is tool or other.name in done or other.is_transfer or other.is_escalation:
                continue
            if not (wanted & (other.name_tokens | other.desc_tokens)):
                continue
            _args, other_missing = self._fill(st, other)
            if not other_missing:
                return other
        return None

    # -- arguments

    def _fill(self, st: _State, tool: _Tool) -> tuple[dict[str, Any], list[str]]:
        args: dict[str, Any] = {}
        missing: list[str] = []
        texts: set[str] = set()
        for name, schema in tool.properties.items():
            value = self._extract(st, tool, name, schema, name in tool.required)
            if isinstance(value, str) and _param_kind(name, schema) in _FREE_TEXT:
                if value.lower() in texts:  # one phrase of the request can't be two details
                    value = None
                else:
                    texts.add(value.lower())
            if value is not None:
                args[name] = value
            elif name in tool.required:
                missing.append(name)
        return args, missing

    def _fresh_after(self, st: _State, tool: _Tool) -> int:
        """Turn index after which the caller's words count for ``tool`` (after its last failure)."""
        failed = {t.call_id for t in st.turns if t.kind == "output" and not t.ok}
        last = -1
        for i, t in enumerate(st.turns):
            if t.kind == "call" and t.name == tool.name and t.call_id in failed:
                last = i
        return last

    def _extract(
        self, st: _State, tool: _Tool, name: str, schema: dict[str, Any], required: bool
    ) -> Any:
        fresh = self._fresh_after(st, tool)
        window = [text for i, text in reversed(st.window) if i > fresh]
        everything = [
            ent.normalize_numbers(t.text)
            for i, t in reversed(list(enumerate(st.turns)))
            if t.kind == "user" and i > fresh
        ]
        kind = _param_kind(name, schema)
        if kind in ("long", "short", "summary"):
            return _fit_length(self._extract_text(st, tool, name, schema, required, kind, window), schema)
        return self._extract_value(st, tool, name, schema, required, kind, window, everything)

    def _extract_text(
        self, st: _State, tool: _Tool, name: str, schema: dict[str, Any], required: bool, kind: str,
        window: list[str],
    ) -> str | None:
        answers = self._answers(st, tool)
        declined = self._declined_at(st, tool) if changes_data(tool) else -1
        if name in answers and answers[name][0] > declined:
            return answers[name][1]
        if declined >= 0:
            return None  # after a "no" to the read-back only a fresh answer counts
        if not window:
            return None
        intent = self._intent_text(st, tool, window)
        if not required and kind == "short":
            phrase = _residual_phrase(intent, tool, schema)
            proper = phrase and all(w[:1].isupper() for w in phrase.split()) and not intent.startswith(phrase)
            return phrase if proper else None
        if not required and kind != "summary":
            return None
        if kind == "summary":
            return self._summary(st, intent)
        if kind == "long":
            return self._explanation(st, tool, name, schema, window) or intent
        return _residual_phrase(intent, tool, schema) or None

    def _extract_value(
        self, st: _State, tool: _Tool, name: str, schema: dict[str, Any], required: bool, kind: str,
        window: list[str], everything: list[str],
    ) -> Any:
        quantity = kind == "number" and bool(_QUANTITY.search(f"{name} {schema.get('description', '')}"))
        sources = window if kind in ("enum", "bool") or quantity else window + everything
        for text in sources if kind != "bool" else window[:1]:
            read = expand(text, st.phrases) if kind == "enum" else text
            value = _extract_typed(kind, name, schema, read, digits=self.spoken_digits)
            if value is not None and kind == "pattern" and text not in window:
                # from an older request only what was said as such ("SKU-1001"), not digits
                # of a phone number read into the pattern
                value = value if str(value).lower() in text.lower() else None
            if value is not None:
                return value
        if quantity and required and window:
            # "add the headphones": one of them (or the least the schema allows)
            least = schema.get("minimum")
            return max(1, int(least)) if isinstance(least, (int, float)) else 1
        failed = {t.call_id for t in st.turns if t.kind == "output" and not t.ok}
        for t in reversed(st.turns):
            if t.kind == "call" and t.call_id not in failed and name in t.args:
                value = t.args[name]
                if _valid(schema, value):
                    return value
        return self._from_outputs(st, name, schema, window)

    def _from_outputs(
        self, st: _State, name: str, schema: dict[str, Any], window: list[str]
    ) -> Any:
        pattern = schema.get("pattern")
        found: list[tuple[Any, str]] = []
        for t in reversed(st.turns):
            if t.kind != "output" or not t.ok:
                continue
            for key, value, context in _walk(t.output):
                match = key == name or (
                    isinstance(pattern, str)
                    and isinstance(value, str)
                    and _safe_search(pattern, value)
                )
                if match and _valid(schema, value) and value not in [v for v, _ in found]:
                    found.append((value, context))
            if found:
                break
        if len(found) == 1:
            return found[0][0]
        if not found:
            return None
        words = set(tokens(" ".join(window)))
        scored = sorted(
            ((len(words & set(tokens(ctx))), -i, v) for i, (v, ctx) in enumerate(found)),
            reverse=True,
        )
        if scored[0][0] > 0 and scored[0][0] > scored[1][0]:
            return scored[0][2]
        return None

    def _intent_text(self, st: _State, tool: _Tool, window_latest_first: list[str]) -> str:
        said = [t for t in window_latest_first if not _is_small_talk(t)] or window_latest_first
        best, chosen = -1.0, said[-1]
        for text in reversed(said):  # oldest first: the request, not the details
            score = self._score(st, tool, text)
            if score > best:
                best, chosen = score, text
        return chosen

    def _explanation(
        self, st: _State, tool: _Tool, name: str, schema: dict[str, Any], window_latest_first: list[str]
    ) -> str | None:
        """For a free-text parameter that explains something (a reason, a problem, details; not a
        question, which is the request itself): the caller's most recent statement that gives an
        explanation, i.e. says why (a cause, a fault: "it arrived damaged") or uses the words of
        the parameter's description that the tool itself doesn't. Statements that only restate
        the request (nothing beyond the tool's own words) or only answer yes/no don't count.
        None when nothing later says more than the request."""
        if _QUESTION_PARAM.match(name):
            return None
        described = set(tokens(str(schema.get("description") or ""))) - tool.vocabulary - _GENERIC_DESCRIPTION
        for text in window_latest_first:
            if _is_small_talk(text) or _CLOSING_RE.match(text):
                continue
            said = set(tokens(text))
            if not said - tool.vocabulary:
                continue  # the request again, or an identifier
            if _EXPLAINS.search(text) or said & described:
                return _explanation_words(text)
        return None

    def _summary(self, st: _State, intent: str) -> str:
        done = [t.name for t in st.turns if t.kind == "call" and st.ever_done(t.name)]
        parts = [f"Caller request: {intent.rstrip('.!? ')}"]
        if done:
            parts.append("Completed: " + ", ".join(dict.fromkeys(done)))
        return ". ".join(parts) + "."

    # -- what to say

    def _opening(self, st: _State, user_texts: list[str]) -> str:
        if st.text_mode:
            return "How can I help you today?"
        return greeting(st.instructions)

    def _ask(self, st: _State, tool: _Tool, missing: list[str], again: bool = False) -> str:
        labels = [_label(name, tool.properties[name]) for name in missing]
        suffix = " again" if again else ""
        asked = self._times_asked(st, labels)
        if asked and not again:
            return _reask(labels, [tool.properties[n] for n in missing], [_param_kind(n, tool.properties[n]) for n in missing], asked)
        if len(missing) == 1:
            schema = tool.properties[missing[0]]
            options = schema.get("enum")
            if isinstance(options, list) and options:
                spoken = [str(o).replace("_", " ") for o in options]
                listing = ", ".join(spoken[:-1]) + (", or " if len(spoken) > 2 else " or ")
                listing = listing + spoken[-1] if len(spoken) > 1 else spoken[0]
                return f"Could you tell me {labels[0]}{suffix}? The options are {listing}."
        return f"Could you please tell me {_and_join(labels)}{suffix}?"

    def _times_asked(self, st: _State, labels: list[str]) -> int:
        """How often the agent asked for exactly these details in a row, up to now (a question
        answered with something else counts; a question about something else ends the run)."""
        count = 0
        wanted = _and_join(labels).lower()
        for t in reversed(st.turns[st.segment_start :]):
            if t.kind in ("call", "output"):
                break
            if t.kind != "assistant" or t.text.startswith(_READBACK_LEAD):
                continue
            if wanted in t.text.lower() and ("?" in t.text or "please tell me" in t.text.lower() or "say only" in t.text.lower()):
                count += 1
            else:
                break
        return count

    def _needs_readback(self, tool: _Tool, args: dict[str, Any]) -> bool:
        """A tool that changes something runs only on values that are typed (enum, pattern, date,
        number...) or that the caller confirmed: free text is read back first."""
        if not changes_data(tool):
            return False
        # a short value picked out of a sentence may be the wrong words ("address: large
        # pepperoni"); a long one (a reason, a description, a summary) is the caller's own
        # statement, kept whole, and is not read back
        return any(_param_kind(n, tool.properties[n]) == "short" for n in args if n in tool.properties)

    def _answers(self, st: _State, tool: _Tool) -> dict[str, tuple[int, str]]:
        """What the caller said in answer to a question about one of ``tool``'s parameters alone:
        parameter -> (turn index, the answer's words), the latest answer for each."""
        out: dict[str, tuple[int, str]] = {}
        question = ""
        for i, t in enumerate(st.turns):
            if t.kind == "assistant":
                question = t.text.lower()
            elif t.kind in ("call", "output"):
                question = ""
            elif t.kind == "user" and question:
                asked = [n for n, schema in tool.properties.items() if _label(n, schema).lower() in question]
                if len(asked) == 1 and not _CLOSING_RE.match(t.text) and ent.match_bool(t.text) is None:
                    words = _answer_words(ent.normalize_numbers(t.text), _label(asked[0], tool.properties[asked[0]]))
                    if words:
                        out[asked[0]] = (i, words)
                question = ""
        return out

    def _declined_at(self, st: _State, tool: _Tool) -> int:
        """The turn where the caller last said no to a read-back of ``tool`` (-1: never)."""
        ability = _ability(tool).split()[0].lower()
        last = -1
        for i, t in enumerate(st.turns):
            if t.kind != "user" or ent.match_bool(t.text) is not False:
                continue
            before = next((p for p in reversed(st.turns[:i]) if p.kind != "user"), None)
            if before is not None and before.kind == "assistant" and before.text.startswith(_READBACK_LEAD) and f"shall i {ability}" in before.text.lower():
                last = i
        return last

    def _call_preface(self, tool: _Tool) -> str:
        if tool.is_transfer:
            target = tool.name.removeprefix(TRANSFER_PREFIX).replace("_", " ")
            return f"Let me transfer you to {target}."
        if any(_QUESTION_PARAM.match(p) for p in tool.properties):
            return "Let me check on that for you."
        return ""

    def _after_output(self, st: _State, last: _Turn) -> PolicyResponse:
        tool = st.tool(last.name)
        answer = describe_output(last.name, last.output, last.ok, " ".join(t for _, t in st.window))
        if not last.ok:
            if tool is not None and tool.required and not st.text_mode:
                return PolicyResponse(
                    text=_join(answer, self._ask(st, tool, list(tool.required), again=True))
                )
            return PolicyResponse(text=_join(answer, "" if st.text_mode else ANYTHING_ELSE))
        if tool is not None and tool.is_escalation:
            return PolicyResponse(text=answer)
        if isinstance(last.output, dict) and any(v is False for v in last.output.values()):
            return PolicyResponse(text=_join(answer, "" if st.text_mode else ANYTHING_ELSE))
        nxt = self._act(st, mode="chain")
        if nxt.function_call is not None or nxt.text:
            return PolicyResponse(text=_join(answer, nxt.text), function_call=nxt.function_call)
        return PolicyResponse(text=_join(answer, "" if st.text_mode else ANYTHING_ELSE))

    def _closing(self, st: _State) -> PolicyResponse:
        end = next((t for t in st.tools if _END_CALL.match(t.name)), None)
        if end is not None:
            args, missing = self._fill(st, end)
            if not missing:
                return PolicyResponse(
                    text=GOODBYE,
                    function_call=FunctionCall(end.name, args, self._call_id(st, end.name, args)),
                )
        return PolicyResponse(text=GOODBYE)

    def _fallback(self, st: _State, mode: str) -> str:
        texts = [t for _, t in st.window]
        if st.text_mode:
            joined = st.instructions + " " + " ".join(texts)
            if re.search(r"summar", joined, re.IGNORECASE):
                return summarize([t.text for t in st.turns if t.kind in ("user", "assistant")])
            return "I'm sorry, I don't have that information."
        if mode == "handoff":
            return "I can help you with that. Could you tell me a bit more about what you need?"
        abilities = [
            _ability(t) for t in st.tools if not t.is_transfer and not _END_CALL.match(t.name)
        ]
        if abilities:
            return f"I'm sorry, I didn't catch that. I can {_or_join(abilities)}. What would you like to do?"
        return "I'm sorry, I didn't catch that. Could you say that again?"

    def _call_id(self, st: _State, name: str, args: dict[str, Any]) -> str:
        seed = json.dumps(
            [name, args, len(st.turns), [t.text for t in st.turns if t.kind == "user"][-1:]],
            sort_keys=True,
            ensure_ascii=False,
        )
        return "call_" + hashlib.sha256(seed.encode()).hexdigest()[:20]


# --- helpers ------------------------------------------------------------------------------------


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


def _is_small_talk(text: str) -> bool:
    return not tokens(text) or bool(
        re.fullmatch(r"\W*(hi|hello|hey|good (morning|afternoon|evening))( there)?\W*", text, re.IGNORECASE)
    )


def _ability(tool: _Tool) -> str:
    words = tool.name.replace("_", " ")
    words = re.sub(r"^lookup\b", "look up", words)
    return words


_FREE_TEXT = frozenset(["short", "long", "summary"])
_CHANGES = re.compile(
    r"^(create|place|book|cancel|block|start|update|delete|submit|schedule|reset|reserve|remove|modify|"
    r"change|add|open|file|report|order|pay|refund|freeze|pause|close|enable|disable|activate|deactivate|"
    r"set|send|register|renew|redirect|transfer|request|issue|unlock|lock|suspend|stop|apply|make|edit)",
    re.IGNORECASE,
)
_READBACK_LEAD = "Let me read that back:"


def changes_data(tool: _Tool) -> bool:
    """Whether a tool changes something: its name or its description starts with such a verb
    (create, place, book, cancel, block, start, update, delete...). Handoffs and escalations are
    not counted: they move the call, not the caller's data."""
    if tool.is_transfer or tool.is_escalation or _END_CALL.match(tool.name):
        return False
    first = tool.name.replace("-", "_").split("_")[0]
    return bool(_CHANGES.match(first + " ")) or bool(_CHANGES.match(tool.description.strip() + " "))


def _readback(tool: _Tool, args: dict[str, Any]) -> str:
    """The read-back before a data-changing call with free text: every value, then the question."""
    parts = [f"{_label(n, tool.properties[n])}: {_scalar(v)}" for n, v in args.items() if n in tool.properties]
    words = _ability(tool).split()
    if len(words) >= 2 and words[1] not in _PREPOSITIONS:
        words.insert(1, "the")
    return f"{_READBACK_LEAD} {'; '.join(parts)}. Shall I {' '.join(words)}?"


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


_QUANTITY = re.compile(r"quantit|qty|count|how many|number of", re.IGNORECASE)
_FAULT_WORDS = sorted(
    {p for key, phrases in ent.ENUM_SYNONYMS.items() if key != "other" for p in phrases}, key=len, reverse=True
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
        return ent.match_enum(list(schema["enum"]), text) or _enum_by_meaning(list(schema["enum"]), text)
    if kind == "bool":
        return ent.match_bool(text)
    if kind == "date":
        dates = ent.find_dates(text)
        if dates:
            iso = dates[0][0]
            return iso + "T00:00:00Z" if schema.get("format") == "date-time" else iso
        return None
    # phone numbers and identifiers: the transcript read for digits (homophones only as a second
    # reading), a whole phone number preferred over a part of one
    readings = ent.digit_readings(text) if digits and kind in ("phone", "pattern") else [text]
    if kind == "phone":
        partial: str | None = None
        for reading in readings:
            for phone in ent.find_phone_numbers(reading):
                option = _phone_option(phone, pattern)
                if option is not None and (not digits or ent.plausible_phone(phone)):
                    return option
                partial = partial if partial is not None else option
        return partial
    if kind == "email":
        emails = ent.find_emails(text)
        return emails[0] if emails else None
    if kind == "pattern":
        assert pattern is not None
        for reading in readings:
            values = ent.pattern_candidates(pattern, reading)
            if values:
                return values[0]
        return None
    if kind == "number":
        for written in ent.find_numbers(text):
            value = float(written.replace(",", ""))
            number: int | float = int(value) if value.is_integer() else value
            if schema.get("type") == "integer" and not isinstance(number, int):
                continue
            if _valid({k: schema[k] for k in ("minimum", "maximum") if k in schema}, number):
                return number
    return None


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
        if low in _STOP or stem in _STOP or stem in vocabulary:
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
        if not re.match(r"^(the|a|an|your)\b", label, re.IGNORECASE):
            label = "the " + label
        return label
    words = name.replace("_", " ").lower()
    words = re.sub(r"\bid\b", "ID", words)
    words = re.sub(r"\bdob\b", "date of birth", words)
    words = re.sub(r"\bzip\b", "ZIP", words)
    return f"the {words}" if re.search(r"reason|question|topic|category", words) else f"your {words}"


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


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


_ROLE_LINE = re.compile(r"\b(user|caller|customer|assistant|agent)\s*:\s*", re.IGNORECASE)


def summarize(lines: list[str]) -> str:
    """A short extractive summary of a conversation (text mode): what the caller asked and the
    agent's last answer. Transcript lines like "user: ..." / "assistant: ..." are understood."""
    caller: list[str] = []
    agent: list[str] = []
    for line in lines:
        parts = _ROLE_LINE.split(line)
        if len(parts) == 1:
            text = re.sub(r"^.*?summari[sz]e[^:]*:\s*", "", line, flags=re.IGNORECASE).strip()
            if text and not re.fullmatch(r".*summari[sz]e.*", text, re.IGNORECASE):
                caller.append(text)
            continue
        for role, text in zip(parts[1::2], parts[2::2], strict=False):
            text = text.strip()
            if text:
                (caller if role.lower() in ("user", "caller", "customer") else agent).append(text)
    if not caller and not agent:
        return "No conversation to summarize."
    out = []
    if caller:
        out.append(_sentence("The caller said: " + " ".join(caller[:3])))
    if agent:
        out.append(_sentence("The agent's last reply: " + agent[-1]))
    return " ".join(out)[:600]


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
