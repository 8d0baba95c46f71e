"""The queue of human agents (calls.queue): an escalation (a transfer to the fallback agent) puts
a call of a scenario with a human queue in the queue, its webhook deferred, and the agent is told
to keep the caller company; the dashboard shows the queue with wait times; the first available
human agent accepts it (a second is refused) and takes it over; past the timeout nobody accepted,
the call takes the scenario's fallback (a callback request, the agent tells the caller)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import Group
from django.test import AsyncClient

from agents.models import Scenario
from calls.models import CallEvent, Escalation, QueueEntry
from calls.queue import HOLD_LINE, TIMEOUT_LINES
from calls.takeover import HUMAN_AGENTS_GROUP
from realtime.server import function_call, response
from tests.calls.conftest import browser_call, transfer_arguments
from tests.dashboard.conftest import dashboard_socket

pytestmark = pytest.mark.django_db(transaction=True)


def is_frame(kind: str, **fields: Any) -> Any:
    return lambda f: isinstance(f, dict) and f.get("type") == kind and all(f.get(k) == v for k, v in fields.items())


async def human_agent(django_user_model: Any, name: str) -> tuple[Any, AsyncClient]:
    def make() -> Any:
        user = django_user_model.objects.create_user(name, password="human-agent-123", is_staff=True)
        user.groups.add(Group.objects.get_or_create(name=HUMAN_AGENTS_GROUP)[0])
        return user

    user = await database_sync_to_async(make)()
    http = AsyncClient()
    await http.aforce_login(user)
    return user, http


async def escalated_call(upstream: Any, operator: Any, *, timeout_s: int, fallback: str) -> tuple[Any, int]:
    def configure() -> Any:
        Scenario.objects.filter(slug="retail").update(human_queue_timeout_seconds=timeout_s,
                                                      human_queue_fallback=fallback)
        from agents.compile import compile_scenario

        return compile_scenario(Scenario.objects.get(slug="retail"))

    spec = await database_sync_to_async(configure)()
    upstream.script(response("Hello, how can I help?"),
                    response(function_call("transfer_to_human_escalation",
                                           transfer_arguments(spec, "authentication", "human_escalation"))),
                    response("Let me connect you to a colleague; please hold."),
                    response("You are next in line."), response("Thanks for holding."))
    call = await browser_call(operator)
    call_id = (await call.wait_for(is_frame("call")))["call_id"]
    await call.wait_event("transcript.done", role="assistant")
    await call.communicator.send_json_to({"type": "text", "text": "I want to speak to a person"})
    await call.wait_event("transcript.done", role="assistant", text="Let me connect you to a colleague; please hold.")
    return call, call_id


async def wait_for_db(query: Any, timeout: float = 10.0) -> Any:
    for _ in range(int(timeout / 0.05)):
        value = await database_sync_to_async(query)()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


async def test_an_escalated_call_waits_and_the_first_available_human_takes_it(
        live_demo: Any, upstream: Any, operator: Any, django_user_model: Any, settings: Any) -> None:
    settings.ESCALATION_WEBHOOK_URL = "https://crm.example.com/escalations"
    call, call_id = await escalated_call(upstream, operator, timeout_s=60, fallback="webhook")
    entry = await wait_for_db(lambda: QueueEntry.objects.filter(call_id=call_id, status="waiting").first())
    assert entry.timeout_s == 60 and entry.fallback == "webhook"
    escalation = await database_sync_to_async(Escalation.objects.get)(pk=entry.escalation_id)
    assert escalation.webhook_status == "pending" and escalation.attempts == 0  # deferred, not posted
    main = upstream.sessions[0]
    await wait_for_db(lambda: any(HOLD_LINE in str(e) for e in main.client_events
                                  if e.get("type") == "conversation.item.create"))
    # The agent keeps the caller company: it still answers.
    await call.communicator.send_json_to({"type": "text", "text": "How long will it be?"})
    await call.wait_event("transcript.done", role="assistant", text="You are next in line.")

    hana, hana_http = await human_agent(django_user_model, "hana")
    _, ivan_http = await human_agent(django_user_model, "ivan")
    state = (await hana_http.get("/dashboard/queue/state/")).json()
    assert [w["call_id"] for w in state["waiting"]] == [call_id] and state["waiting"][0]["waited_s"] >= 0
    page = await hana_http.get("/dashboard/queue/")
    assert page.status_code == 200 and b"Queue of human agents" in page.content
    refused = await hana_http.post(f"/dashboard/queue/{entry.pk}/accept/")
    assert refused.status_code == 409 and "available" in refused.json()["error"]
    for http in (hana_http, ivan_http):
        assert (await http.post("/dashboard/queue/availability/", {"available": "1"})).json()["available"]
    accepted = await hana_http.post(f"/dashboard/queue/{entry.pk}/accept/")
    assert accepted.status_code == 200 and accepted.json()["call_id"] == call_id
    late = await ivan_http.post(f"/dashboard/queue/{entry.pk}/accept/")
    assert late.status_code == 409 and "hana" in late.json()["error"]

    person, connected = await dashboard_socket(hana, f"/ws/dashboard/calls/{call_id}/takeover/")
    assert connected
    await person.wait_for(is_frame("taken_over"))
    await call.wait_event("human.joined")
    statuses = await database_sync_to_async(lambda: [
        (e["status"], e["by"]) for e in CallEvent.objects.filter(call_id=call_id, type="queue")
        .order_by("seq").values_list("event", flat=True)])()
    assert statuses == [("waiting", ""), ("accepted", "hana")]
    await call.communicator.send_json_to({"type": "hangup"})
    await call.wait_closed()
    await person.wait_closed()
    escalation = await database_sync_to_async(Escalation.objects.get)(pk=entry.escalation_id)
    assert escalation.attempts == 0  # a human took it: the webhook never went
    staff = AsyncClient()
    await staff.aforce_login(hana)
    page = await staff.get(f"/dashboard/calls/{call_id}/")
    assert page.status_code == 200 and b"Queue: <strong>accepted</strong> by hana" in page.content
    assert b"took the call over" in page.content


async def test_nobody_answers_in_time_the_call_takes_the_callback_path(
        live_demo: Any, upstream: Any, operator: Any, django_user_model: Any) -> None:
    call, call_id = await escalated_call(upstream, operator, timeout_s=1, fallback="callback")
    entry = await wait_for_db(lambda: QueueEntry.objects.filter(call_id=call_id, status="timed_out").first(), 10)
    assert entry.fallback == "callback"
    main = upstream.sessions[0]
    said = await wait_for_db(lambda: [e for e in main.client_events if e.get("type") == "response.create"
                                      and TIMEOUT_LINES["callback"] in str(e.get("response", {}).get("instructions"))])
    assert said
    _, http = await human_agent(django_user_model, "hana")
    state = (await http.get("/dashboard/queue/state/")).json()
    assert state["waiting"] == [] and [c["call_id"] for c in state["callbacks"]] == [call_id]
    late = await http.post("/dashboard/queue/availability/", {"available": "1"})
    assert late.status_code == 200
    assert (await http.post(f"/dashboard/queue/{entry.pk}/accept/")).status_code == 409
    await call.communicator.send_json_to({"type": "hangup"})
    await call.wait_closed()


async def test_only_supervisors_see_the_queue_and_only_human_agents_take_calls(
        live_demo: Any, outsider: Any, supervisor: Any) -> None:
    http = AsyncClient()
    await http.aforce_login(outsider)
    assert (await http.get("/dashboard/queue/state/")).status_code == 403
    staff = AsyncClient()
    await staff.aforce_login(supervisor)
    assert (await staff.get("/dashboard/queue/state/")).json()["human_agent"] is False
    assert (await staff.post("/dashboard/queue/availability/", {"available": "1"})).status_code == 403


async def test_nobody_answers_in_time_the_caller_leaves_a_voicemail(
        live_demo: Any, upstream: Any, operator: Any, supervisor: Any, settings: Any) -> None:
    from calls.models import Call, Voicemail
    from tests.calls.conftest import speech_frames

    settings.VOICEMAIL_SECONDS = 1.5
    call, call_id = await escalated_call(upstream, operator, timeout_s=1, fallback="voicemail")
    await wait_for_db(lambda: QueueEntry.objects.filter(call_id=call_id, status="timed_out").exists(), 10)
    await call.wait_event("human.joined", timeout=15)  # the agent said its line and is silenced
    for _ in range(3):
        for frame in speech_frames(300, 200):
            await call.communicator.send_to(bytes_data=frame)
        await asyncio.sleep(0.2)
    assert await call.wait_closed(15) == 1000
    voicemail = await wait_for_db(lambda: Voicemail.objects.filter(call_id=call_id).first())
    assert 200 <= voicemail.duration_ms <= 1500
    reason = await database_sync_to_async(lambda: Call.objects.get(pk=call_id).end_reason)()
    assert reason == "voicemail_recorded"
    staff = AsyncClient()
    await staff.aforce_login(supervisor)
    state = (await staff.get("/dashboard/queue/state/")).json()
    url = state["voicemails"][0]["url"]
    audio = await staff.get(url)
    assert audio.status_code == 200 and audio["Content-Type"] == "audio/wav" and audio.content[:4] == b"RIFF"
