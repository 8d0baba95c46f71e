"""Taking a call over and handing it back (calls.takeover, realtime.takeover) against live browser
and Twilio calls and the protocol server: the agent stops at once (cancelled, cleared), the person
hears the caller and the caller hears the person, the caller is still transcribed and the person's
lines are kept marked human, the agent resumes knowing what was said, both are SupervisorActions
on the timeline; only supervisors and human agents reach the socket, a bad frame closes it (4400)
and the call goes on."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import Group

from calls.listen import PAGE_HEADER
from calls.models import CallEvent, SupervisorAction, TranscriptItem
from calls.takeover import HUMAN_AGENTS_GROUP
from realtime.audio import ulaw_decode
from realtime.server import response
from tests.calls.conftest import CallClient, browser_call, speech_frames
from tests.dashboard.conftest import close, dashboard_socket

pytestmark = pytest.mark.django_db(transaction=True)


def is_frame(kind: str, **fields: Any) -> Any:
    return lambda f: isinstance(f, dict) and f.get("type") == kind and all(f.get(k) == v for k, v in fields.items())


def energy(pcm: np.ndarray) -> float:
    samples = pcm.astype(np.float64)
    return float(np.sqrt(np.mean(samples ** 2))) if samples.size else 0.0


async def take_over(user: Any, call_id: int) -> tuple[CallClient, bool]:
    return await dashboard_socket(user, f"/ws/dashboard/calls/{call_id}/takeover/")


async def speak(person: CallClient, ms: int = 400, silence_ms: int = 700) -> None:
    for frame in speech_frames(ms, silence_ms):
        await person.communicator.send_to(bytes_data=frame)


def human_audio(call: CallClient, item_id: str) -> bytes:
    """The binary frames the caller's page got after the `audio` frame naming `item_id`."""
    out, on = [], False
    for frame in call.frames:
        if isinstance(frame, dict) and frame.get("type") == "audio":
            on = frame.get("item_id") == item_id
        elif isinstance(frame, bytes) and on:
            out.append(frame)
    return b"".join(out)


def timeline(call_id: int) -> list[tuple[str, str]]:
    return [(e["action"], e["by"]) for e in CallEvent.objects.filter(call_id=call_id, type="supervisor")
            .order_by("seq").values_list("event", flat=True)]


async def test_take_over_speak_and_hand_back_on_a_browser_call(
        live_demo: Any, upstream: Any, operator: Any, supervisor: Any) -> None:
    upstream.script(response("Hello, how can I help?"), response("Of course, your refund is on its way."))
    call = await browser_call(operator)
    call_id = (await call.wait_for(is_frame("call")))["call_id"]
    await call.wait_event("transcript.done", role="assistant")
    main = upstream.sessions[0]

    person, connected = await take_over(supervisor, call_id)
    assert connected
    await person.wait_for(is_frame("taken_over", call_id=call_id))
    await call.wait_event("human.joined")
    assert any(is_frame("clear")(f) for f in call.frames)  # the phone's/page's audio cleared
    held = [e for e in main.client_events if e.get("type") == "session.update"][-1]
    assert held["session"]["audio"]["input"]["turn_detection"]["create_response"] is False
    side = await upstream.wait_for_session(2)  # the person's voice is transcribed beside the call

    # The caller speaks: the person hears it, the caller's words are transcribed, the agent stays silent.
    main.add_transcripts("I want to talk to a person")
    for frame in speech_frames(400, 700):
        await call.communicator.send_to(bytes_data=frame)
    heard = await person.wait_for(lambda f: isinstance(f, bytes) and f[:1] == b"c")
    assert PAGE_HEADER.unpack_from(heard)[1] == 24000
    await call.wait_event("transcript.done", role="user", text="I want to talk to a person")

    # The person speaks: the caller's page gets the person's voice; the line is kept as human.
    side.add_transcripts("Hi, this is Sam, I will sort out your refund.")
    await speak(person)
    item_id = f"human_{(await database_sync_to_async(SupervisorAction.objects.get)(kind='take_over')).pk}"
    await call.wait_for(is_frame("audio", item_id=item_id))
    await call.wait_for(lambda f: len(human_audio(call, item_id)) >= 48 * 300)
    pcm = np.frombuffer(human_audio(call, item_id), dtype="<i2")
    assert energy(pcm) > 1000
    await call.wait_event("transcript.done", role="human", text="Hi, this is Sam, I will sort out your refund.")
    await person.drain(0.3)
    assert not any(e.get("type") == "response.create" for e in main.client_events[-40:])
    assert main.scripted_responses_pending()  # the agent's second line was never asked for

    await person.communicator.send_to(text_data=json.dumps({"type": "hand_back"}))
    assert await person.wait_closed() == 1000
    await call.wait_event("human.left")
    restored = [e for e in main.client_events if e.get("type") == "session.update"][-1]
    assert restored["session"]["audio"]["input"]["turn_detection"].get("create_response") is not False
    notes = [e["item"]["content"][0]["text"] for e in main.client_events
             if e.get("type") == "conversation.item.create" and e["item"].get("role") == "system"]
    assert any("Caller: I want to talk to a person" in n and "Colleague: Hi, this is Sam" in n for n in notes)

    # The agent answers the caller's next spoken turn.
    main.add_transcripts("So is it done?")
    for frame in speech_frames(400, 700):
        await call.communicator.send_to(bytes_data=frame)
    await call.wait_event("transcript.done", role="assistant", text="Of course, your refund is on its way.")

    rows = await database_sync_to_async(lambda: list(
        SupervisorAction.objects.filter(call_id=call_id).order_by("id").values_list("kind", "username", "ended_at")))()
    assert [(k, u) for k, u, _ in rows] == [("take_over", "sam"), ("hand_back", "sam")]
    assert rows[0][2] is not None
    assert await database_sync_to_async(timeline)(call_id) == [("take_over", "sam"), ("hand_back", "sam")]
    roles = await database_sync_to_async(lambda: list(
        TranscriptItem.objects.filter(call_id=call_id).values_list("role", "text")))()
    assert ("human", "Hi, this is Sam, I will sort out your refund.") in roles
    assert ("user", "I want to talk to a person") in roles
    await call.communicator.send_json_to({"type": "hangup"})
    await call.wait_closed()
    assert side.closed or await upstream.wait_for_session(2)  # the side session ended with the take-over


async def test_who_may_take_over_and_a_bad_frame_closes_only_the_persons_socket(
        live_demo: Any, upstream: Any, operator: Any, supervisor: Any, outsider: Any, django_user_model: Any) -> None:
    upstream.script(response("Hello, how can I help?"), response("Anything else?"))
    call = await browser_call(operator)
    call_id = (await call.wait_for(is_frame("call")))["call_id"]
    await call.wait_event("transcript.done", role="assistant")

    for user, code in ((None, 4401), (outsider, 4403), (operator, 4403)):
        client, connected = await take_over(user, call_id)
        assert await client.wait_closed() == code
    agent_user = await database_sync_to_async(django_user_model.objects.create_user)("hana", password="human-agent-123")
    group, _ = await database_sync_to_async(Group.objects.get_or_create)(name=HUMAN_AGENTS_GROUP)
    await database_sync_to_async(agent_user.groups.add)(group)

    person, connected = await take_over(agent_user, call_id)
    assert connected
    await person.wait_for(is_frame("taken_over"))
    second, _ = await take_over(supervisor, call_id)  # one person at a time
    assert await second.wait_closed() == 4404
    assert any(is_frame("refused")(f) and "hana" in f["reason"] for f in second.frames)

    await person.communicator.send_to(bytes_data=b"\x01\x02\x03")  # odd length: not pcm16
    assert await person.wait_closed() == 4400
    await call.wait_event("human.left")
    await call.communicator.send_json_to({"type": "text", "text": "Hello?"})
    await call.wait_event("transcript.done", role="assistant", text="Anything else?")
    kinds = await database_sync_to_async(lambda: list(
        SupervisorAction.objects.filter(call_id=call_id).values_list("kind", "username")))()
    assert kinds == [("take_over", "hana"), ("hand_back", "hana")]
    await call.communicator.send_json_to({"type": "hangup"})
    await call.wait_closed()
    await close(second)


async def test_take_over_a_phone_call_clears_twilio_and_plays_the_person_in_mulaw(
        live_demo: Any, upstream: Any, supervisor: Any, settings: Any) -> None:
    from tests.calls.test_twilio_call import STREAM_SID, TwilioStream, answer_call

    settings.TWILIO_AUTH_TOKEN = "twilio-auth-token-for-tests"
    settings.PUBLIC_BASE_URL = "https://cc.example.com"
    upstream.script(response("Thanks for calling the store today, let me tell you about all of our weekly offers",
                             delay_ms=25, ms_per_word=100))
    stream = TwilioStream(await answer_call())
    await stream.open()
    await stream.client.wait_for(lambda f: isinstance(f, dict) and f.get("event") == "media")
    call_id = await database_sync_to_async(lambda: SupervisorAction._meta.apps.get_model(
        "calls", "Call").objects.order_by("-pk").values_list("pk", flat=True).first())()

    person, connected = await take_over(supervisor, call_id)
    assert connected
    await person.wait_for(is_frame("taken_over"))
    await stream.client.wait_for(lambda f: isinstance(f, dict) and f.get("event") == "clear")
    assert any(e.get("type") == "response.cancel" for e in upstream.sessions[0].client_events)
    sent = len([f for f in stream.client.texts() if f.get("event") == "media"])
    await speak(person)

    def person_media() -> list[bytes]:
        media = [f for f in stream.client.texts() if f.get("event") == "media"][sent:]
        return [base64.b64decode(f["media"]["payload"]) for f in media]

    await stream.client.wait_for(lambda f: sum(len(m) for m in person_media()) >= 8 * 300)
    assert energy(ulaw_decode(b"".join(person_media()))) > 1000  # the person's tone, in mu-law 8 kHz
    await person.communicator.send_to(text_data=json.dumps({"type": "hand_back"}))
    assert await person.wait_closed() == 1000
    await stream.send({"event": "stop", "streamSid": STREAM_SID, "stop": {}})
    assert await stream.client.wait_closed() == 1000


async def test_a_take_over_whose_socket_went_quiet_is_handed_back(
        live_demo: Any, upstream: Any, operator: Any, supervisor: Any, settings: Any) -> None:
    """The person's worker died: no renewals reach the call, which hands itself back and says so."""
    from channels.layers import get_channel_layer

    from calls import actions
    from calls.models import call_group
    from calls.takeover import CALL_TAKEOVER

    settings.TAKEOVER_LOST_SECONDS = 0.6
    upstream.script(response("Hello, how can I help?"), response("I'm back, how can I help?"))
    call = await browser_call(operator)
    call_id = (await call.wait_for(is_frame("call")))["call_id"]
    await call.wait_event("transcript.done", role="assistant")
    row = await database_sync_to_async(actions.do_take_over)(call_id, user=supervisor)
    await get_channel_layer().group_send(call_group(call_id), {"type": CALL_TAKEOVER, "op": "start",
                                                               "action_id": row.pk, "by": "sam"})
    await call.wait_event("human.joined")
    await call.wait_event("human.left", timeout=10)
    kinds = await database_sync_to_async(lambda: list(SupervisorAction.objects.filter(call_id=call_id)
                                                      .order_by("id").values_list("kind", "text")))()
    for _ in range(50):
        if len(kinds) == 2:
            break
        await call.drain(0.1)
        kinds = await database_sync_to_async(lambda: list(SupervisorAction.objects.filter(call_id=call_id)
                                                          .order_by("id").values_list("kind", "text")))()
    assert kinds == [("take_over", ""), ("hand_back", "the person's connection was lost")]
    await call.communicator.send_json_to({"type": "text", "text": "Hello?"})
    await call.wait_event("transcript.done", role="assistant", text="I'm back, how can I help?")
    await call.communicator.send_json_to({"type": "hangup"})
    await call.wait_closed()
