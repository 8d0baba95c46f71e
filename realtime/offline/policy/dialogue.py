"""The dialogue policy: what to do next, from the instructions, tools and conversation alone."""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

from realtime.offline.policy.arguments import (
    _EXPLAINS,
    _FREE_TEXT,
    _GENERIC_DESCRIPTION,
    _QUANTITY,
    _answer_words,
    _explanation_words,
    _extract_typed,
    _fit_length,
    _param_kind,
    _residual_phrase,
    _safe_search,
    _valid,
    _walk,
    changes_data,
    forward_date,
    is_coming_day,
    match_bool,
    normalize_numbers,
)
from realtime.offline.policy.intent import (
    _CLOSING_RE,
    _QUESTION_PARAM,
    INFO_QUESTION,
    _is_small_talk,
    _State,
    asks_for_information,
    best_tool,
    catch_all_tool,
    only_lookup,
    tool_score,
)
from realtime.offline.policy.items import (
    _END_CALL,
    TRANSFER_PREFIX,
    FunctionCall,
    PolicyResponse,
    _Tool,
    _Turn,
    parse_items,
    parse_tools,
)
from realtime.offline.policy.summaries import summarize
from realtime.offline.policy.vocabulary import expand, scenario_phrases, tokens
from realtime.offline.policy.wording import (
    _READBACK_LEAD,
    ANYTHING_ELSE,
    GOODBYE,
    _ability,
    _and_join,
    _confirmation,
    _join,
    _label,
    _or_join,
    _readback,
    _reask,
    describe_output,
    greeting,
    still_there,
    verbatim_request,
)

_GREETING_WORDS = re.compile(r"^\W*(hi|hello|hey|good (morning|afternoon|evening))\b", re.IGNORECASE)
_ASKS_BACK = re.compile(
    r"^(\W*(i told you|like i said),?\s*)?(has|have|is|are|was|were|do|does|did|can|could|will|would|where|what|when|why|how|which|who)\b.*\?\W*$",
    re.IGNORECASE | re.DOTALL,
)
_ONE_THING = re.compile(r"\b(a|an|one|the|this|that)\s+(?!(few|couple|lot|bunch|number|pair)\b)[a-z][a-z-]+", re.IGNORECASE)
_SOME = re.compile(r"\b(more|some|several|few|couple|supply|supplies|lots?|bunch|plenty|boxes|packs|cases|stock|running (out|low)|almost out)\b", re.IGNORECASE)
_CLEAR_YES = re.compile(
    r"^\W*(?:(?:oh|um|uh|well|ah)\W+)?(yes|yeah|yep|yup|sure|correct|right|ok|okay|please do|go ahead|absolutely|"
    r"that'?s (right|correct)|that is (right|correct)|do it|please)\b",
    re.IGNORECASE,
)
"""A yes that starts the answer: only such a yes confirms a read-back."""
_READ_BACK = ("short", "date")
"""Kinds of value read back before a data-changing call: short free text, and dates."""
_SAID_AGAIN = ("date", "pattern", "phone", "number", "enum", "email")
"""Kinds of value asked again after a "no" to the read-back that held them."""
_FALLBACK_LEADS = ("I'm sorry, I didn't catch that.", "Sorry, I'm not sure which", "Let's try it another way.", "Sorry, I still didn't follow.")
_CONFIRM = re.compile(r"\bconfirm\b[^.]*\b(caller|customer|user|first)\b", re.IGNORECASE)


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

    def understands(self, instructions: str, tools: list[dict[str, Any]] | None, items: list[dict[str, Any]], text: str) -> bool:
        """Whether the caller's next words ``text`` would be understood: the next response to them
        is no "I didn't catch that" (for a recogniser weighing what it may have heard)."""
        said = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
        response = self.respond(instructions, tools, [*items, said])
        return response.function_call is not None or not response.text.startswith(_FALLBACK_LEADS)

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
        tool = max(tools, key=lambda t: (tool_score(st, t, said), -t.index))
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
            small_talk = _is_small_talk(last.text) and match_bool(last.text) is None
            # an answer without words to a pending question ("It's 4821-6.") is an answer, not a hello
            # (a re-ask such as "Please tell me the order number." asks too, without a "?")
            answering = (
                bool(spoken) and spoken[-1].kind == "assistant" and not _GREETING_WORDS.match(last.text)
                and ("?" in spoken[-1].text or bool(re.search(r"\b(please (tell|say)|say only)\b", spoken[-1].text, re.IGNORECASE)))
            )
            if small_talk and not answering and not _CLOSING_RE.match(last.text) and not st.text_mode:
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
                window.append((i, normalize_numbers(t.text)))
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
                    window.append((i, normalize_numbers(said)))
        n = max(len(tools), 2)  # one tool: its words are as telling as with two
        df: dict[str, int] = {}
        for tool in tools:
            for tok in tool.vocabulary:
                df[tok] = df.get(tok, 0) + 1
        idf = {tok: math.log(1 + n / count) for tok, count in df.items()}
        return _State(instructions, tools, turns, window, segment_start, text_mode, idf, scenario_phrases(instructions))

    # -- choosing a tool

    def _act(self, st: _State, mode: str) -> PolicyResponse:
        """Choose what to do about the task in the window (mode: user | chain | handoff)."""
        texts = [t for _, t in st.window]
        done = st.done()
        tool: _Tool | None = None
        if mode == "user":
            latest = texts[-1] if texts else ""
            tool = best_tool(st, [latest], set())
            ongoing = best_tool(st, texts[:-1], done) if len(texts) > 1 else None
            if ongoing is not None and tool is not ongoing:
                # an answer to the question in progress beats words that happen to match
                # another tool ("the wrong item in my order" while a return reason is asked)
                resolved = self._gated(st, ongoing) or ongoing
                if self._supplies(st, resolved, latest):
                    tool = ongoing
            if tool is None and _CLOSING_RE.match(latest):
                return self._closing(st)
            if tool is None:
                tool = best_tool(st, texts, done)
            if tool is None and latest:
                tool = catch_all_tool(st, latest, done=set())
            if tool is None and asks_for_information(latest):
                tool = only_lookup(st)
        elif mode == "chain":
            before = {p.name for d in done if (t := st.tool(d)) is not None for p in self._prerequisites(st, t)}
            tool = best_tool(st, texts, done | before, name_only=True)
        else:  # handoff: the new agent acts on the request itself (no transfer straight on)
            tool = best_tool(st, texts, done | {t.name for t in st.tools if t.is_transfer})
            if tool is None and texts:
                tool = catch_all_tool(st, texts[-1], done)
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
        declined = self._declined_at(st, tool) if changes_data(tool) else -1
        last_call = max((i for i, t in enumerate(st.turns) if t.kind == "call"), default=-1)
        if missing and not tool.is_transfer and declined <= last_call:
            # (right after a "no" to its read-back, the values are asked again: another tool that
            # takes the rejected value would only hand it back)
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
        readback = not st.text_mode and self._needs_readback(st, tool, args)
        if (_CONFIRM.search(tool.description) or readback) and not st.text_mode:
            question = _readback(tool, args) if readback else _confirmation(tool, args)
            answer = self._confirmed(st, question)
            if answer is None:
                return PolicyResponse(text=_join(preface, question))
            if answer is False and readback:
                loose = [n for n in args if _param_kind(n, tool.properties[n]) in _READ_BACK]
                loose = loose or [n for n in args if _param_kind(n, tool.properties[n]) in _SAID_AGAIN]
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
        answer = match_bool(st.turns[last_user].text)
        if answer is True and not _CLEAR_YES.match(st.turns[last_user].text):
            return None  # "So, left out right.": no clear yes, so the question is asked again
        return answer

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

    def _provider(
        self, st: _State, tool: _Tool, missing: list[str], done: set[str]
    ) -> _Tool | None:
        wanted = set()
        for param in missing:
            wanted |= set(tokens(param)) - set(tokens("number code name"))
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
        # a number read for one detail is not also another's (a customer number is no quantity)
        taken = {re.sub(r"\D", "", v) for v in args.values() if isinstance(v, str)} - {""}
        for name in [n for n, v in args.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]:
            if re.sub(r"\D", "", str(args[name])) in taken:
                del args[name]
                if name in tool.required:
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
        kind = _param_kind(name, schema)
        if kind in _SAID_AGAIN and changes_data(tool):
            fresh = max(fresh, self._declined_at(st, tool))  # after a "no" to its read-back, a fresh value
        others = self._answered_others(st, tool, name) if kind == "number" else set()
        window = [text for i, text in reversed(st.window) if i > fresh and i not in others]
        everything = [
            normalize_numbers(t.text)
            for i, t in reversed(list(enumerate(st.turns)))
            if t.kind == "user" and i > fresh and i not in others
        ]
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
        if changes_data(tool) and any(INFO_QUESTION.match(t) for t in window):
            return None  # words of a question ("has it been sent out yet?") are no value to change data with
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
            if isinstance(value, str) and kind == "date" and is_coming_day(tool, name, schema):
                value = forward_date(value)
            if value is not None and kind == "pattern" and text not in window:
                # from an older request only what was said as such ("SKU-1001"), not digits
                # of a phone number read into the pattern
                value = value if str(value).lower() in text.lower() else None
            if value is not None:
                return value
        if quantity and required and window and any(_ONE_THING.search(t) for t in window) and not any(_SOME.search(t) for t in window):
            # "add the headphones": one of them (or the least the schema allows); "more lenses",
            # "another supply" say no count: it is asked
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
            score = tool_score(st, tool, text)
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

    def _needs_readback(self, st: _State, tool: _Tool, args: dict[str, Any]) -> bool:
        """A tool that changes something runs only on values that are typed (enum, pattern, date,
        number...) or that the caller confirmed: free text is read back first."""
        if not changes_data(tool):
            return False
        # a short value picked out of a sentence may be the wrong words ("address: large
        # pepperoni"); a long one (a reason, a description, a summary) is the caller's own
        # statement, kept whole, and is not read back. A date is typed but easily misheard (a
        # recogniser drops the end of "twenty twenty-seven"): it is read back too
        if any(_param_kind(n, tool.properties[n]) in _READ_BACK for n in args if n in tool.properties):
            return True
        # an identifier or phone number the caller said (not one a tool gave): a digit is easily
        # misheard, so it is read back too
        said = [t.text for t in st.turns if t.kind == "user"]
        outputs = {t.call_id: t.ok for t in st.turns if t.kind == "output"}
        declined = self._declined_at(st, tool)
        used = {
            v for i, t in enumerate(st.turns) if t.kind == "call" and i > declined and outputs.get(t.call_id) for v in t.args.values()
        }  # (a value the caller said no to is not made good by a call that took it before)
        for name, value in args.items():
            if value in used:
                continue  # a value a successful call took already (a verified phone number)
            kind = _param_kind(name, tool.properties.get(name, {}))
            if kind in ("pattern", "phone") and isinstance(value, str):
                digits = re.sub(r"\D", "", value)
                if digits and any(
                    _extract_typed(kind, name, tool.properties[name], text, digits=self.spoken_digits) == value for text in said
                ):
                    return True
        return False

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
                if len(asked) == 1 and not _CLOSING_RE.match(t.text) and match_bool(t.text) is None and not (
                    _param_kind(asked[0], tool.properties[asked[0]]) in _FREE_TEXT and _ASKS_BACK.match(t.text.strip())
                ):
                    # a question back ("has it been sent out yet?") is not the value asked for
                    words = _answer_words(normalize_numbers(t.text), _label(asked[0], tool.properties[asked[0]]))
                    if words:
                        out[asked[0]] = (i, words)
                question = ""
        return out

    def _answered_others(self, st: _State, tool: _Tool, name: str) -> set[int]:
        """Turns that answer a question about other details of ``tool`` and not ``name``: their
        numbers are those details' (the pieces of a misheard member ID are no month count)."""
        out: set[int] = set()
        question = ""
        for i, t in enumerate(st.turns):
            if t.kind == "assistant":
                question = t.text.lower()
            elif t.kind in ("call", "output"):
                question = ""
            elif t.kind == "user" and question:
                asked = {n for n, schema in tool.properties.items() if _label(n, schema).lower() in question}
                if asked and name not in asked:
                    out.add(i)
                question = ""
        return out

    def _declined_at(self, st: _State, tool: _Tool) -> int:
        """The turn where the caller last said no to a read-back of ``tool`` (-1: never)."""
        ability = _ability(tool).split()[0].lower()
        last = -1
        for i, t in enumerate(st.turns):
            if t.kind != "user" or match_bool(t.text) is not False:
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
        # asked before in this task: other words, not the same line again
        times = sum(
            1 for i, t in enumerate(st.turns)
            if t.kind == "assistant" and t.text.startswith(_FALLBACK_LEADS) and i >= (st.window[0][0] if st.window else 0)
        )
        if abilities:
            if times == 0:
                return f"I'm sorry, I didn't catch that. I can {_or_join(abilities)}. What would you like to do?"
            if times == 1:
                return f"Sorry, I'm not sure which you need. Would you like me to {_or_join(abilities)}?"
            return f"Let's try it another way. Please say just one of these: {_or_join(abilities)}."
        if times == 0:
            return "I'm sorry, I didn't catch that. Could you say that again?"
        return "Sorry, I still didn't follow. Could you tell me in a few words what you need?"

    def _call_id(self, st: _State, name: str, args: dict[str, Any]) -> str:
        seed = json.dumps(
            [name, args, len(st.turns), [t.text for t in st.turns if t.kind == "user"][-1:]],
            sort_keys=True,
            ensure_ascii=False,
        )
        return "call_" + hashlib.sha256(seed.encode()).hexdigest()[:20]
