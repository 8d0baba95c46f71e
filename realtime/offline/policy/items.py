"""The policy's inputs and outputs: GA conversation items as turns, GA function tools as
:class:`_Tool`, and the response (:class:`PolicyResponse`, :class:`FunctionCall`)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from realtime.offline.policy.vocabulary import tokens

TRANSFER_PREFIX = "transfer_to_"


_LONG_TEXT = re.compile(
    r"reason|question|summary|description|details|notes?|message|request|issue|problem|query|"
    r"comment|context|explanation",
    re.IGNORECASE,
)


_GATE = re.compile(r"verif|authenticat|identif", re.IGNORECASE)


_ESCALATION = re.compile(r"escalat|human|operator|end_call|hang_up|agent_handoff", re.IGNORECASE)


_END_CALL = re.compile(r"^(end_call|hang_up|end_conversation)$", re.IGNORECASE)


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
