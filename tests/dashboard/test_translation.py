"""Live translation while a person has the call (calls.translation, realtime.translation), against
the protocol server's scripted peer: two interpreter sessions with strict translation-only
instructions open beside the call, the person's English reaches the caller in the caller's
language and the caller's words reach the person in English (side t of the listen channel), both
transcripts are kept; on the local offline engine the take-over is refused with
translation_unavailable."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from channels.db import database_sync_to_async

from agents.models import Scenario
from calls.listen import PAGE_HEADER
from calls.models import TranscriptItem
from realtime.server import response
from tests.calls.conftest import browser_call, speech_frames
from tests.dashboard.conftest import dashboard_socket

pytestmark = pytest.mark.django_db(transaction=True)


def is_frame(kind: str, **fields: Any) -> Any:
    return lambda f: isinstance(f, dict) and f.get("type") == kind and all(f.get(k) == v for k, v in fields.items())


async def spanish_call(upstream: Any, operator: Any) -> tuple[Any, int]:
    await database_sync_to_async(Scenario.objects.filter(slug="retail").update)(caller_language="es")
    upstream.script(response("Hola, ¿en qué puedo ayudarle?"))
    call = await browser_call(operator)
    call_id = (await call.wait_for(is_frame("call")))["call_id"]
    await call.wait_event("transcript.done", role="assistant")
    return call, call_id


async def test_the_person_and_the_caller_hear_each_other_in_their_own_language(
        live_demo: Any, upstream: Any, operator: Any, supervisor: Any) -> None:
    call, call_id = await spanish_call(upstream, operator)
    main = upstream.sessions[0]
    person, connected = await dashboard_socket(supervisor, f"/ws/dashboard/calls/{call_id}/takeover/")
    assert connected
    taken = await person.wait_for(is_frame("taken_over"))
    assert taken["translation"] == "es"
    to_caller, to_person = upstream.sessions[1], upstream.sessions[2]
    for side, source, target in ((to_caller, "English", "Spanish"), (to_person, "Spanish", "English")):
        setup = next(e for e in side.client_events if e.get("type") == "session.update")["session"]
        assert "interpreter" in setup["instructions"] and f"Everything you hear is {source}" in setup["instructions"]
        assert f"Speak only {target}" in setup["instructions"] and setup["tools"] == []
        assert setup["audio"]["input"]["turn_detection"]["create_response"] is True

    # The person speaks English: the caller hears the Spanish interpretation (the person's item).
    to_caller.add_transcripts("Hi, I am Sam and I will help you.")
    to_caller.script(response("Hola, soy Sam y le voy a ayudar."))
    for frame in speech_frames(400, 700):
        await person.communicator.send_to(bytes_data=frame)
    await call.wait_event("transcript.done", role="human", text="Hi, I am Sam and I will help you.")
    item = await call.wait_for(lambda f: isinstance(f, dict) and f.get("type") == "audio"
                               and str(f.get("item_id")).startswith("human_"))
    await call.wait_for(lambda f: isinstance(f, bytes))
    assert item

    # The caller speaks Spanish: the call still transcribes it; the person hears the English.
    main.add_transcripts("Necesito ayuda con mi pedido.")
    to_person.add_transcripts("Necesito ayuda con mi pedido.")
    to_person.script(response("I need help with my order."))
    for frame in speech_frames(400, 700):
        await call.communicator.send_to(bytes_data=frame)
    english = await person.wait_for(lambda f: isinstance(f, bytes) and f[:1] == b"t", timeout=15)
    rate = PAGE_HEADER.unpack_from(english)[1]
    pcm = np.frombuffer(english[PAGE_HEADER.size:], dtype="<i2")
    assert rate == 24000 and pcm.size
    await call.wait_event("transcript.done", role="user", text="Necesito ayuda con mi pedido.")
    assert not any(isinstance(f, bytes) and f[:1] == b"c" for f in person.frames)  # only the interpretation

    expected = {("system", "Interpreted for the caller (es): Hola, soy Sam y le voy a ayudar."),
                ("system", "Interpreted for sam (en): I need help with my order."),
                ("human", "Hi, I am Sam and I will help you."), ("user", "Necesito ayuda con mi pedido.")}
    lines: set[tuple[str, str]] = set()
    for _ in range(100):  # both transcripts are kept (written by the call's recorder, in order)
        lines = set(await database_sync_to_async(lambda: list(TranscriptItem.objects.filter(call_id=call_id)
                                                              .values_list("role", "text")))())
        if expected <= lines:
            break
        await person.drain(0.05)
    assert expected <= lines, lines

    await person.communicator.send_to(text_data=json.dumps({"type": "hand_back"}))
    assert await person.wait_closed() == 1000
    await call.wait_event("human.left")
    await call.communicator.send_json_to({"type": "hangup"})
    await call.wait_closed()


async def test_the_offline_engine_refuses_translation(live_demo: Any, operator: Any, supervisor: Any,
                                                       settings: Any) -> None:
    from calls.upstream import LOCAL_PLACEHOLDER_KEY
    from realtime.server.testing import running_server

    async with running_server(api_key=LOCAL_PLACEHOLDER_KEY) as local:
        # No OpenAI key: the deployment's engine is the local one (here the protocol server).
        settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY = local.base_url, ""
        await refused_on_the_local_engine(local, operator, supervisor)


async def refused_on_the_local_engine(local: Any, operator: Any, supervisor: Any) -> None:
    call, call_id = await spanish_call(local, operator)
    person, _ = await dashboard_socket(supervisor, f"/ws/dashboard/calls/{call_id}/takeover/")
    assert await person.wait_closed() == 4404
    stopped = next(f for f in person.frames if isinstance(f, dict) and f.get("type") == "stopped")
    assert "translation_unavailable" in stopped["reason"]
    error = await call.wait_event("error")
    assert error["code"] == "translation_unavailable"
    await call.communicator.send_json_to({"type": "hangup"})
    await call.wait_closed()
