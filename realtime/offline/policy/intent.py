"""Intent: which tool the caller's words ask for, scored against tool names, descriptions,
parameter descriptions and enum values (idf-weighted, through the vocabulary)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from realtime.offline.policy.arguments import changes_data
from realtime.offline.policy.items import _Tool, _Turn
from realtime.offline.policy.vocabulary import expand, tokens

STRONG = 2.5


WEAK = 1.0

MARGIN = 2.0
MARGIN_FLOOR = 1.0
"""A weaker match still wins when it scores at least ``MARGIN`` times any other tool (and at least
``MARGIN_FLOOR``); a tie between tools that share the caller's words is no match (the agent asks)."""


"""In text mode (a supervisor that is asked because facts are needed) a weaker match will do."""


_CLOSING_RE = re.compile(
    r"^\W*(no|nope|no thanks?|no thank you|that'?s (all|it)|nothing else|bye|goodbye|thanks?|"
    r"thank you|thanks?,? bye|thank you,? (goodbye|bye)|that is all|i'?m good|all good)"
    r"(\W+(that'?s (all|it)|that is all|nothing else|thanks?|thank you|bye|goodbye|i'?m good|all good|"
    r"(have a )?(nice|good|great) (day|one)|cheers))*\W*$",
    re.IGNORECASE,
)


INFO_QUESTION = re.compile(
    r"^\W*(?:(?:hi|hello|hey|so|um|uh|and|i told you|like i said)\W+)*"
    r"(has|have|is|isn'?t|are|was|were|did|does|do|where|when|what|which|how (much|many|long|far)|am i)\b[^.!]*\?\W*$",
    re.IGNORECASE,
)
"""A question for information ("Has my order been sent out yet?", "Where is my parcel?"), not a
request to do something ("Can you send it elsewhere?")."""


_QUESTION_PARAM = re.compile(r"^(question|query|request|message|prompt)$", re.IGNORECASE)


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


def _is_small_talk(text: str) -> bool:
    return not tokens(text) or bool(
        re.fullmatch(r"\W*(hi|hello|hey|good (morning|afternoon|evening))( there)?\W*", text, re.IGNORECASE)
    )


def tool_score(st: _State, tool: _Tool, text: str, *, name_only: bool = False) -> float:
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


def best_tool(
    st: _State, texts: list[str], exclude: set[str], *, name_only: bool = False
) -> _Tool | None:
    best: tuple[float, int] | None = None
    chosen = None
    joined = " ".join(texts)
    # words said before the last handoff brought the caller here: they don't transfer again
    before = {t for i, t in st.window if i < st.segment_start}
    recent = " ".join(t for t in texts if t not in before)
    threshold = WEAK if st.text_mode else STRONG
    runner_up = 0.0
    for tool in st.tools:
        if tool.name in exclude:
            continue
        score = tool_score(st, tool, recent if tool.is_transfer else joined, name_only=name_only)
        if changes_data(tool) and any(INFO_QUESTION.match(t) for t in texts[-1:]):
            score /= 2  # a question asks to know, not to change
        if best is None or (score, -tool.index) > best:
            if best is not None:
                runner_up = max(runner_up, best[0])
            best, chosen = (score, -tool.index), tool
        else:
            runner_up = max(runner_up, score)
    if best is None or chosen is None:
        return None
    score = best[0]
    if score >= threshold:
        return chosen  # of strong matches that tie, the first tool (a check listed before its action)
    asking = any(INFO_QUESTION.match(t) for t in texts[-1:])
    # a clear winner that is not strong on its own: the words point to one tool and not the others
    # (one that changes data only on a strong match when the caller asks a question)
    if score >= MARGIN_FLOOR and score >= MARGIN * runner_up and not (asking and changes_data(chosen)):
        return chosen
    return None


def catch_all_tool(st: _State, text: str, done: set[str]) -> _Tool | None:
    if not tokens(text):
        return None
    for tool in st.tools:
        if tool.name in done or tool.is_transfer:
            continue
        if any(_QUESTION_PARAM.match(p) for p in tool.required or tool.properties):
            return tool
    return None


def only_lookup(st: _State) -> _Tool | None:
    """The one tool that only reads (checks a status, looks something up) among tools that
    otherwise change things: a caller's question for information that names no tool is for it
    ("Has my dinner left the restaurant yet?" with track_order beside cancel_order). None when
    there are several such tools or none, or no other tool (nothing to tell it apart from)."""
    tools = [t for t in st.tools if not t.is_transfer and not t.is_escalation and not t.is_gate]
    reads = [t for t in tools if not changes_data(t)]
    return reads[0] if len(reads) == 1 and len(tools) > 1 else None


def asks_for_information(text: str) -> bool:
    """Whether the caller asks to know something: the whole turn, or its last clause ("I dropped
    off a dress last week, is it finished?"), is a question for information."""
    last = re.split(r"[,;.!]\s+", text.strip())[-1]
    return bool(INFO_QUESTION.match(text) or INFO_QUESTION.match(last))
