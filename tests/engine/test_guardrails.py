"""Output guardrails: the streaming transcript is checked about every 100 characters and at the
end; a trip cancels, truncates (audio) or removes (text) the answer and sends a correction."""

from __future__ import annotations

from realtime import events as ev
from realtime.guardrails import SpecClassifier
from realtime.server import RealtimeServer, response
from realtime.spec import Guardrails

from .factories import make_session, retail_spec

RULES = Guardrails(blocked_phrases=("guaranteed refund",), off_brand_terms=("MegaMart",), patterns=(r"\b\d{16}\b",))
LEAK = (
    "Good news, you will get a guaranteed refund today and everything else you ask for, "
    "because we always say yes to every request without checking anything at all, ever."
)


async def test_spec_classifier_categories() -> None:
    classifier = SpecClassifier(RULES)
    assert (await classifier.classify("a Guaranteed  Refund")).category == "blocked_phrase"
    assert (await classifier.classify("try megamart instead")).category == "off_brand"
    assert (await classifier.classify("card 4111111111111111 ok")).category == "pattern"
    assert await classifier.classify("refunds are guaranteed within policy") is None


async def test_trip_mid_stream_cancels_truncates_and_corrects(server: RealtimeServer) -> None:
    server.script(
        response("Hello.", ms_per_word=30),
        response(LEAK, delay_ms=15, ms_per_word=60),
        response("Sorry, let me check the refund policy for you.", ms_per_word=30),
    )
    session, rec = make_session(server, retail_spec(modality="audio", guardrails=RULES))
    await session.start()
    await rec.wait_type(ev.TranscriptDone, role="assistant")
    await session.send_text("can I get a refund?")
    trip = await rec.wait_type(ev.GuardrailTripped)
    assert trip.category == "blocked_phrase" and trip.matched == "guaranteed refund"
    assert 100 <= len(trip.text) < len(LEAK)  # caught while streaming, not at the end
    clear = await rec.wait_type(ev.ClearPlayback, reason="guardrail")
    assert clear.item_id == trip.item_id
    await rec.wait_for(lambda e: isinstance(e, ev.TranscriptDone) and e.text.startswith("Sorry, let me check"), timeout=5)
    live = server.sessions[0]
    types = [e["type"] for e in live.client_events]
    assert "response.cancel" in types and "conversation.item.truncate" in types
    corrections = [
        e for e in live.client_events
        if e["type"] == "conversation.item.create" and e["item"].get("role") == "system"
    ]
    assert len(corrections) == 1 and "withdrawn" in corrections[0]["item"]["content"][0]["text"]
    assert not [e for e in live.errors if e["code"] != "response_cancel_not_active"]
    await session.close()
    tripped = next(i for i in session.transcript if i.item_id == trip.item_id)
    assert tripped.interrupted  # kept in the call's transcript, marked
    assert [i.role for i in session.transcript] == ["assistant", "user", "assistant", "assistant"]


async def test_trip_at_the_end_of_a_short_text_answer(server: RealtimeServer) -> None:
    server.script(response("Hi."), response("Shop at MegaMart."), response("I can help you here."))
    session, rec = make_session(server, retail_spec(guardrails=RULES))
    await session.start()
    await rec.wait_type(ev.TranscriptDone, role="assistant")
    await session.send_text("where else can I shop?")
    trip = await rec.wait_type(ev.GuardrailTripped)
    assert (trip.category, trip.text) == ("off_brand", "Shop at MegaMart.")
    await rec.wait_for(lambda e: isinstance(e, ev.TranscriptDone) and e.text == "I can help you here.")
    live = server.sessions[0]
    assert trip.item_id not in [i.id for i in live.items]  # removed from the model's context
    assert session.state == "active"
    await session.close()
    assert [i.text for i in session.transcript] == ["Hi.", "where else can I shop?", "Shop at MegaMart.", "I can help you here."]
