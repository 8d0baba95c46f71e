"""The supervisor dashboard's WebSockets (staff only; others are closed with 4401 / 4403).

`/ws/dashboard/`: a snapshot of the live and recently ended calls, then each change of a call's
row as `calls.actions` publishes it to the dashboard-wide group (`{"type": "call", ...}`, with
the call's sequence number so the page keeps the newest row).

`/ws/dashboard/calls/<id>/?last_seq=N`: resume, Zulip-style. The consumer joins the call's group
first, then sends the call's logged events after N (`{"type": "snapshot", ...}`), then every
published event in sequence order (`{"type": "event", "seq", "event"}`): an event already sent
is skipped, and a gap (a delta overtaken by a later one) is filled from the event log, so the
page sees each sequence number exactly once, in order. After a Redis restart the channel layer
tells the socket (`layer.resumed`) and it sends what was logged meanwhile. The page sends supervisor actions
(`{"type": "action", "action": "approve|deny|whisper|say|hangup", ...}`), which
`calls.actions.do_supervisor_action` records and hands to the live call's consumer.

Both sockets count against the user's cap of open browser sockets (`calls.limits`, 4429 past it)
and leave their channel groups however the consumer ends (a clean close, a crash, or the server
cancelling it). A frame nested deeper than DASHBOARD_MAX_JSON_DEPTH is answered, then the socket
is closed with 4400.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.conf import settings

from calls import actions
from calls.consumers import (
    CLOSE_BAD_MESSAGE,
    CLOSE_FORBIDDEN,
    CLOSE_NOT_FOUND,
    CLOSE_TOO_MANY,
    CLOSE_UNAUTHENTICATED,
    MAX_TEXT_CHARS,
    load_json,
)
from calls.dashboard_views import calls_snapshot, is_supervisor
from calls.events import DASHBOARD_GROUP
from calls.limits import USER_SOCKETS, SlotHolder
from calls.models import Call, CallEvent, call_events_group

logger = logging.getLogger(__name__)

SNAPSHOT_MAX_EVENTS = 5000
ACTIONS = ("approve", "deny", "whisper", "say", "hangup")


class SupervisorSocket(SlotHolder):
    """Shared by both sockets: who may connect, how many, JSON frames, the groups joined."""

    groups_joined: tuple[str, ...] = ()

    async def admit(self) -> bool:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.refuse(CLOSE_UNAUTHENTICATED, "not logged in")
            return False
        if not is_supervisor(user):
            await self.refuse(CLOSE_FORBIDDEN, f"{user.get_username()} is not a supervisor")
            return False
        if not self.hold(USER_SOCKETS, user.pk, settings.USER_MAX_SOCKETS):
            await self.refuse(CLOSE_TOO_MANY, f"{user.get_username()} has {settings.USER_MAX_SOCKETS} sockets open")
            return False
        return True

    async def join(self, group: str) -> None:
        self.groups_joined = (*self.groups_joined, group)
        if hasattr(self.channel_layer, "want_resumed"):  # told when Redis is back after an outage
            self.channel_layer.want_resumed(self.channel_name)
        await self.channel_layer.group_add(group, self.channel_name)

    async def leave_groups(self) -> None:
        if hasattr(self.channel_layer, "forget_resumed"):
            self.channel_layer.forget_resumed(self.channel_name)
        groups, self.groups_joined = self.groups_joined, ()
        for group in groups:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def disconnect(self, code: int) -> None:
        await self.leave_groups()

    async def on_application_end(self) -> None:
        await self.leave_groups()

    async def refuse(self, code: int, reason: str) -> None:
        """Accept only to close with a code the page can read (a refused handshake has none)."""
        logger.warning("dashboard socket refused (%s): %s", code, reason)
        await self.accept()
        await self.close(code=code)

    async def send_json(self, data: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(data, ensure_ascii=False, default=str))


class DashboardConsumer(SupervisorSocket):
    """`/ws/dashboard/`: the calls list."""

    async def connect(self) -> None:
        if not await self.admit():
            return
        await self.join(DASHBOARD_GROUP)
        await self.accept()
        snapshot = await database_sync_to_async(calls_snapshot)()
        await self.send_json({"type": "snapshot", **snapshot})

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        return None  # the list is read-only

    async def layer_resumed(self, message: dict[str, Any]) -> None:
        """Redis came back (contactcenter.layers): changes published meanwhile never arrived, so the
        page gets a fresh snapshot (it keeps the newest row of each call by sequence number)."""
        snapshot = await database_sync_to_async(calls_snapshot)()
        await self.send_json({"type": "snapshot", **snapshot})

    async def dashboard_call(self, message: dict[str, Any]) -> None:
        await self.send_json({"type": "call", "change": message["change"], "seq": message["seq"],
                              "call": message["call"]})


class DashboardCallConsumer(SupervisorSocket):
    """`/ws/dashboard/calls/<id>/?last_seq=N`: one call's events and the supervisor's actions."""

    call_id: int | None = None

    async def connect(self) -> None:
        if not await self.admit():
            return
        call_id = int(self.scope["url_route"]["kwargs"]["call_id"])
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        try:
            after = max(0, int((query.get("last_seq") or ["0"])[0]))
        except ValueError:
            after = 0
        if not await database_sync_to_async(Call.objects.filter(pk=call_id).exists)():
            await self.refuse(CLOSE_NOT_FOUND, f"no call {call_id}")
            return
        # Join first, then read the log: an event published meanwhile is in both, and skipped once.
        self.call_id = call_id
        await self.join(call_events_group(call_id))
        await self.accept()
        row, events = await database_sync_to_async(self._snapshot)(call_id, after)
        self.sent_seq = events[-1]["seq"] if events else after
        await self.send_json({"type": "snapshot", "call": row, "after": after, "events": events})

    @staticmethod
    def _snapshot(call_id: int, after: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        row = Call.objects.get(pk=call_id).dashboard_row()
        return row, logged_events(call_id, after)

    # --- the call's events ---------------------------------------------------------------------------

    async def call_event(self, message: dict[str, Any]) -> None:
        seq = int(message["seq"])
        if seq <= self.sent_seq:
            return
        if seq > self.sent_seq + 1:
            assert self.call_id is not None
            missing = await database_sync_to_async(logged_events)(self.call_id, self.sent_seq, seq - 1)
            for event in missing:
                await self.send_json({"type": "event", **event})
            if missing:
                self.sent_seq = missing[-1]["seq"]
            if self.sent_seq != seq - 1:  # never in practice: the log is written with the event
                logger.warning("dashboard call %s: events %s..%s missing from the log", self.call_id,
                               self.sent_seq + 1, seq - 1)
        await self.send_json({"type": "event", "seq": seq, "event": message["event"]})
        self.sent_seq = seq

    async def layer_resumed(self, message: dict[str, Any]) -> None:
        """Redis came back (contactcenter.layers): the events published while it was away never
        arrived; send those after the last one sent, from the event log, in order, once each."""
        assert self.call_id is not None
        for event in await database_sync_to_async(logged_events)(self.call_id, self.sent_seq):
            if event["seq"] > self.sent_seq:
                await self.send_json({"type": "event", **event})
                self.sent_seq = event["seq"]

    # --- supervisor actions --------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if len(text_data or "") > settings.CALL_MAX_FRAME_BYTES:
            await self.send_json({"type": "action_result", "ok": False,
                                  "detail": f"frames are at most {settings.CALL_MAX_FRAME_BYTES} bytes"})
            return
        try:
            message = load_json(text_data or "")
        except ValueError as error:
            if "nested" not in str(error):
                message = None
            else:
                await self.refuse_deep_json()
                return
        if json_depth(message) > settings.DASHBOARD_MAX_JSON_DEPTH:
            await self.refuse_deep_json()
            return
        if not isinstance(message, dict) or message.get("type") != "action":
            await self.send_json({"type": "action_result", "ok": False, "detail": "expected an action message"})
            return
        action = message.get("action")
        text = message.get("text") or ""
        tool_call_id = message.get("tool_call_id") or ""
        request_id = message.get("request_id")
        if not isinstance(request_id, str | int | None) or isinstance(request_id, bool) or len(str(request_id)) > 64:
            request_id = None
        if not isinstance(action, str) or action not in ACTIONS or not isinstance(text, str) or not isinstance(tool_call_id, str) \
                or len(text) > MAX_TEXT_CHARS:
            await self.send_json({"type": "action_result", "request_id": request_id, "action": action, "ok": False,
                                  "detail": f"actions are {', '.join(ACTIONS)}; text at most {MAX_TEXT_CHARS} characters"})
            return
        assert self.call_id is not None
        try:
            record = await database_sync_to_async(actions.do_supervisor_action)(
                self.call_id, user=self.scope["user"], kind=action, text=text.strip(), tool_call_id=tool_call_id,
                reply_channel=self.channel_name)
        except actions.SupervisorActionRefused as refused:
            await self.send_json({"type": "action_result", "request_id": request_id, "action": action, "ok": False,
                                  "detail": str(refused)})
            return
        await self.send_json({"type": "action_result", "request_id": request_id, "action": action, "ok": True,
                              "action_id": record.pk, "detail": "sent to the call"})

    async def refuse_deep_json(self) -> None:
        logger.warning("dashboard call %s: closed a socket that sent JSON nested too deeply", self.call_id)
        await self.send_json({"type": "action_result", "ok": False,
                              "detail": f"JSON nested deeper than {settings.DASHBOARD_MAX_JSON_DEPTH} levels"})
        await self.leave_groups()
        await self.close(code=CLOSE_BAD_MESSAGE)

    async def dashboard_reply(self, message: dict[str, Any]) -> None:
        """The call's consumer could (not) apply an action."""
        if not message.get("ok"):
            await self.send_json({"type": "action_result", "action_id": message.get("action_id"),
                                  "action": message.get("action"), "ok": False, "detail": message.get("detail", "")})


def logged_events(call_id: int, after: int, upto: int | None = None) -> list[dict[str, Any]]:
    """The call's logged events with after < seq (<= upto), in order, as the socket sends them."""
    rows = CallEvent.objects.filter(call_id=call_id, seq__gt=after)
    if upto is not None:
        rows = rows.filter(seq__lte=upto)
    return [{"seq": seq, "event": event}
            for seq, event in rows.order_by("seq").values_list("seq", "event")[:SNAPSHOT_MAX_EVENTS]]


def json_depth(value: Any) -> int:
    """How deeply ``value`` (parsed JSON) nests lists and objects; a scalar is 0."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            depth += 1
            deepest = max(deepest, depth)
            stack.extend((child, depth) for child in (item.values() if isinstance(item, dict) else item))
    return deepest
