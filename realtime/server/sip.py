"""OpenAI SIP on the protocol server: incoming calls, accept / reject / hangup, and the sideband.

With OpenAI SIP the provider answers the phone network's INVITE, posts a `realtime.call.incoming`
webhook (call_id, SIP headers) to the project and waits for `POST /v1/realtime/calls/{call_id}/accept`
(with the session configuration) or `/reject`. The application then controls the call over a
WebSocket `/v1/realtime?call_id=...` (no model): the sideband. Audio flows between the phone network
and the provider and never crosses the sideband.

Here `SipCalls.incoming()` stands for the INVITE (tests build and sign the webhook themselves with
`testing.signed_webhook`), and `SipCall.caller_audio()` for the caller's RTP: it goes into the
call's input buffer as the phone leg's audio would, so VAD, transcription and responses run as on
any session, and the sideband sees the same server events.

Limits of this stand-in: the call's Realtime session is made when the sideband first connects (with
the accepted configuration) rather than at accept; one sideband at a time; a sideband that connects
again gets a fresh session with the accepted configuration (the real API keeps the conversation).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from openai.types.realtime import RealtimeSessionCreateRequest
from openai.types.realtime.call_accept_params import CallAcceptParams
from pydantic import ValidationError

from .session import RealtimeSession
from .state import new_id
from .validation import _adapter, unknown_fields

SipState = Literal["incoming", "accepted", "rejected", "ended"]

_ACCEPT_KEYS = frozenset(CallAcceptParams.__required_keys__ | CallAcceptParams.__optional_keys__)


def _error(status: int, message: str, code: str, param: str | None = None) -> tuple[int, bytes]:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}
    return status, json.dumps(body).encode()


@dataclass
class SipCall:
    """One SIP call the provider holds; inspect ``state``, ``accepted_session``, ``reject_status``."""

    call_id: str
    sip_headers: list[dict[str, str]]
    state: SipState = "incoming"
    accepted_session: dict[str, Any] | None = None
    reject_status: int | None = None
    ended_by: str = ""
    sessions: list[RealtimeSession] = field(default_factory=list)
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """Every accept / reject / hangup request, with its body, in order."""

    @property
    def session(self) -> RealtimeSession | None:
        """The sideband's current Realtime session (None before the sideband connects)."""
        return self.sessions[-1] if self.sessions else None

    def webhook_event(self, event_id: str | None = None) -> dict[str, Any]:
        """The `realtime.call.incoming` event OpenAI posts for this call."""
        return {
            "id": event_id or new_id("evt"),
            "object": "event",
            "created_at": int(time.time()),
            "type": "realtime.call.incoming",
            "data": {"call_id": self.call_id, "sip_headers": [dict(h) for h in self.sip_headers]},
        }

    async def wait_state(self, *states: SipState, timeout: float = 5.0) -> SipState:
        deadline = time.monotonic() + timeout
        while self.state not in states:
            if time.monotonic() > deadline:
                raise TimeoutError(f"SIP call {self.call_id} is {self.state}, not {'/'.join(states)}")
            await asyncio.sleep(0.02)
        return self.state

    async def wait_sideband(self, timeout: float = 5.0) -> RealtimeSession:
        deadline = time.monotonic() + timeout
        while self.session is None or self.session.closed:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no sideband joined SIP call {self.call_id}")
            await asyncio.sleep(0.02)
        return self.session

    async def caller_audio(self, data: bytes) -> None:
        """The caller's audio (in the session's input format) reaching the call's input buffer."""
        session = self.session
        if self.state != "accepted" or session is None or session.closed:
            raise RuntimeError(f"SIP call {self.call_id} has no live session")
        await session._on_input_audio_buffer_append({"audio": base64.b64encode(data).decode("ascii")}, None)

    async def hang_up(self) -> None:
        """The caller hangs up: the call ends and the sideband is closed cleanly (1000)."""
        await self._end("caller")

    async def _end(self, by: str) -> None:
        if self.state == "ended":
            return
        self.state = "ended"
        self.ended_by = by
        for session in self.sessions:
            if not session.closed:
                await session.close(1000, "call ended")


class SipCalls:
    """The SIP calls of one server, by call_id."""

    def __init__(self) -> None:
        self.calls: dict[str, SipCall] = {}

    def incoming(self, from_: str = "+15550100000", to: str = "+15550199999",
                 headers: Mapping[str, str] | None = None) -> SipCall:
        """A new incoming call (an INVITE from ``from_`` to ``to`` with extra ``headers``)."""
        call_id = new_id("rtc")
        sip_headers = [
            {"name": "From", "value": f'"{from_}" <sip:{from_}@pstn.example.net>;tag={new_id("tag")[4:14]}'},
            {"name": "To", "value": f"<sip:{to}@sip.api.openai.com>"},
            {"name": "Call-ID", "value": new_id("sipcall")},
            *({"name": name, "value": value} for name, value in (headers or {}).items()),
        ]
        call = SipCall(call_id=call_id, sip_headers=sip_headers)
        self.calls[call_id] = call
        return call

    async def handle_http(self, path: str, payload: dict[str, Any]) -> tuple[int, bytes]:
        """`POST .../realtime/calls/{call_id}/{accept|reject|hangup}`."""
        parts = path.rstrip("/").split("/")
        call_id, action = (parts[-2], parts[-1]) if len(parts) >= 2 else ("", "")
        call = self.calls.get(call_id)
        if action not in ("accept", "reject", "hangup"):
            return _error(404, f"Unknown path {path}", "not_found")
        if call is None:
            return _error(404, f"No call found with id '{call_id}'.", "call_not_found", "call_id")
        call.requests.append((action, payload))
        if action == "accept":
            return self._accept(call, payload)
        if action == "reject":
            return self._reject(call, payload)
        if call.state != "accepted":
            return _error(400, f"Call '{call_id}' is {call.state}; only an accepted call can be hung up.",
                          "call_not_active")
        await call._end("api")
        return 200, b""

    def _accept(self, call: SipCall, payload: dict[str, Any]) -> tuple[int, bytes]:
        if call.state != "incoming":
            return _error(400, f"Call '{call.call_id}' is {call.state}; only an incoming call can be accepted.",
                          "call_not_incoming")
        unknown = sorted(set(payload) - _ACCEPT_KEYS)
        if unknown:
            return _error(400, f"Unknown parameter: '{unknown[0]}'.", "unknown_parameter", unknown[0])
        if payload.get("type") != "realtime":
            return _error(400, "Missing or invalid 'type': must be 'realtime'.", "invalid_value", "type")
        try:
            _adapter(CallAcceptParams).validate_python(payload, strict=True)
            parsed = _adapter(RealtimeSessionCreateRequest).validate_python(payload, strict=True)
        except ValidationError as exc:
            first = exc.errors()[0]
            param = ".".join(str(p) for p in first["loc"])
            return _error(400, f"Invalid value for '{param}': {first['msg']}.", "invalid_value", param)
        extra = unknown_fields(parsed)
        if extra:
            return _error(400, f"Unknown parameter: '{extra[0]}'.", "unknown_parameter", extra[0])
        call.accepted_session = dict(payload)
        call.state = "accepted"
        return 200, b""

    def _reject(self, call: SipCall, payload: dict[str, Any]) -> tuple[int, bytes]:
        if call.state != "incoming":
            return _error(400, f"Call '{call.call_id}' is {call.state}; only an incoming call can be rejected.",
                          "call_not_incoming")
        status = payload.get("status_code", 603)
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 699:
            return _error(400, "status_code must be a SIP final response code (400-699).", "invalid_value",
                          "status_code")
        call.reject_status = status
        call.state = "rejected"
        return 200, b""

    def sideband(self, call_id: str) -> tuple[SipCall | None, int, bytes]:
        """The call a `?call_id=` WebSocket joins, or the HTTP status and body refusing it."""
        call = self.calls.get(call_id)
        if call is None or call.state != "accepted" or call.accepted_session is None:
            state = "unknown" if call is None else call.state
            status, body = _error(404, f"No accepted call with id '{call_id}' ({state}).", "call_not_found", "call_id")
            return None, status, body
        if call.session is not None and not call.session.closed:
            status, body = _error(409, f"Call '{call_id}' already has a sideband connection.", "call_in_use")
            return None, status, body
        return call, 0, b""
