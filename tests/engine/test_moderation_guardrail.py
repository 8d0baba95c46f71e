"""The moderation guardrail: with the scenario's ``moderation`` on (or the engine's), each checked
chunk of an answer goes to POST /v1/moderations of the protocol server; a flagged answer trips a
``moderation:<category>`` guardrail and is withdrawn like any other trip. With it off, no request
is sent and the same answer goes through."""

from __future__ import annotations

import asyncio

from realtime import events as ev
from realtime.guardrails import ChainClassifier
from realtime.server import RealtimeServer, response
from realtime.spec import Guardrails

from .factories import make_session, retail_spec

ANSWER = (
    "I checked your order and, frankly, whoever packed it must be an idiot, so I will send a "
    "replacement today and add a voucher for the trouble you had with the delivery last week."
)
FLAGGED_AT = ANSWER.index("idiot")


async def test_a_flagged_answer_is_withdrawn_mid_stream_and_the_call_goes_on(server: RealtimeServer) -> None:
    server.script(
        response("Hello.", ms_per_word=30),
        response(ANSWER, delay_ms=15, ms_per_word=60),
        response("Sorry about that. A replacement is on its way.", ms_per_word=30),
        response("You're welcome, goodbye.", ms_per_word=30),
    )
    spec = retail_spec(modality="audio", guardrails=Guardrails(moderation=True))
    session, rec = make_session(server, spec)
    assert isinstance(session.classifier, ChainClassifier)
    await session.start()
    await rec.wait_type(ev.TranscriptDone, role="assistant")
    await session.send_text("my parcel arrived broken")
    trip = await rec.wait_type(ev.GuardrailTripped, timeout=5)
    assert trip.category == "moderation:harassment"
    assert FLAGGED_AT < len(trip.text) < len(ANSWER) and ANSWER.startswith(trip.text)  # caught while streaming
    clear = await rec.wait_type(ev.ClearPlayback, reason="guardrail")
    assert clear.item_id == trip.item_id
    await rec.wait_for(lambda e: isinstance(e, ev.TranscriptDone) and e.text.startswith("Sorry about that"), timeout=5)

    # The checks went to the moderation endpoint, the whole answer so far each time.
    assert {r["model"] for r in server.moderation_requests} == {"omni-moderation-latest"}
    inputs = [r["input"] for r in server.moderation_requests]
    assert "Hello." in inputs
    of_answer = [text for text in inputs if ANSWER.startswith(text)]
    assert of_answer and trip.text in of_answer and "idiot" in trip.text
    assert all(text in ("Hello.", "Sorry about that. A replacement is on its way.") for text in inputs if text not in of_answer)
    live = server.sessions[0]
    types = [e["type"] for e in live.client_events]
    assert "response.cancel" in types and "conversation.item.truncate" in types
    corrections = [
        e for e in live.client_events if e["type"] == "conversation.item.create" and e["item"].get("role") == "system"
    ]
    assert len(corrections) == 1 and "withdrawn" in corrections[0]["item"]["content"][0]["text"]

    # The call carries on.
    assert session.state == "active"
    mark = len(rec.events)
    await session.send_text("thanks")
    await rec.wait_type(ev.TranscriptDone, role="assistant", text="You're welcome, goodbye.", after=mark, timeout=5)
    assert len(rec.of(ev.GuardrailTripped)) == 1
    await session.close()
    tripped = next(i for i in session.transcript if i.item_id == trip.item_id)
    assert tripped.interrupted
    assert not [e for e in rec.of(ev.Error) if e.code == "guardrail_failed"]


async def test_with_moderation_off_the_same_answer_goes_through_unchecked(server: RealtimeServer) -> None:
    server.script(response("Hello.", ms_per_word=10), response(ANSWER, ms_per_word=5))
    session, rec = make_session(server, retail_spec(guardrails=Guardrails()))
    assert not isinstance(session.classifier, ChainClassifier)
    await session.start()
    await rec.wait_type(ev.TranscriptDone, role="assistant")
    await session.send_text("my parcel arrived broken")
    done = await rec.wait_type(ev.TranscriptDone, role="assistant", text=ANSWER, timeout=5)
    await asyncio.sleep(0.3)  # the final check runs beside the call
    assert not rec.of(ev.GuardrailTripped)
    assert server.moderation_requests == []
    assert not next(i for i in session.transcript if i.item_id == done.item_id).interrupted
    await session.close()


async def test_terms_the_server_is_told_to_flag_trip_at_the_end_of_a_short_text_answer(server: RealtimeServer) -> None:
    server.moderation.flag("violence", "pillow fight")
    server.script(response("Hi."), response("Let us settle this with a Pillow  Fight."), response("How else can I help?"))
    # The engine's own switch turns moderation on for a scenario that does not ask for it.
    session, rec = make_session(server, retail_spec(), moderation=True)
    await session.start()
    await rec.wait_type(ev.TranscriptDone, role="assistant")
    await session.send_text("I want a discount")
    trip = await rec.wait_type(ev.GuardrailTripped, timeout=5)
    assert (trip.category, trip.text) == ("moderation:violence", "Let us settle this with a Pillow  Fight.")
    await rec.wait_for(lambda e: isinstance(e, ev.TranscriptDone) and e.text == "How else can I help?", timeout=5)
    assert trip.item_id not in [i.id for i in server.sessions[0].items]  # removed from the model's context
    assert session.state == "active"
    await session.close()


async def test_the_spec_rules_still_come_first(server: RealtimeServer) -> None:
    server.script(response("Hi."), response("Shop at MegaMart, you idiot."), response("I can help you here."))
    spec = retail_spec(guardrails=Guardrails(off_brand_terms=("MegaMart",), moderation=True))
    session, rec = make_session(server, spec)
    await session.start()
    await rec.wait_type(ev.TranscriptDone, role="assistant")
    first_checks = len(server.moderation_requests)
    await session.send_text("where else can I shop?")
    trip = await rec.wait_type(ev.GuardrailTripped, timeout=5)
    assert trip.category == "off_brand"  # decided locally, no moderation request for it
    await rec.wait_for(lambda e: isinstance(e, ev.TranscriptDone) and e.text == "I can help you here.", timeout=5)
    await asyncio.sleep(0.2)
    inputs = [r["input"] for r in server.moderation_requests[first_checks:]]
    assert "Shop at MegaMart, you idiot." not in inputs and "I can help you here." in inputs
    await session.close()
