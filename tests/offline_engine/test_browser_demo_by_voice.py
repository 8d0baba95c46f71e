"""The demo scenarios by voice from the browser call page's socket (pcm16 24 kHz binary frames)
against the offline server: retail sales (verified -> sales -> offers -> cart -> checkout link),
escalation to a human (an Escalation recorded) and the carrier's chat supervisor (its tools run
over /v1/responses; its answer is spoken)."""

from __future__ import annotations

from typing import Any

import pytest

from realtime.server import RealtimeServer
from tests.calls.conftest import browser_call

from .demo_calls import ADA_DETAILS, ADA_PHONE, VoiceCall, recorded
from .speech import Caller

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def operator(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("operator", password="call-me-maybe-123")


async def _browser_call(server: RealtimeServer, caller: Caller, operator: Any, scenario: str,
                        utterances: list[str]) -> dict[str, list[Any]]:
    client = await browser_call(operator, scenario=scenario)
    hello = await client.wait_for(lambda f: isinstance(f, dict) and f.get("type") == "call")
    call = VoiceCall(client, server, caller, "audio/pcm", twilio=False)
    await call.settle()
    for text in utterances:
        await call.say(text)
    await client.communicator.send_json_to({"type": "hangup"})
    assert await client.wait_closed() == 1000
    return await recorded(hello["call_id"])


def _succeeded(story: dict[str, list[Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(name, agent, args) for name, agent, args, status in story["tools"] if status == "succeeded"]


async def test_retail_sales_by_voice(demo_db: Any, offline_upstream: RealtimeServer, caller: Caller,
                                     operator: Any) -> None:
    story = await _browser_call(offline_upstream, caller, operator, "retail", [
        ADA_DETAILS,
        "I'd like to buy something on sale.",
        "Add the headphones to my cart.",
        "Send me the checkout link.",
    ])
    tools = _succeeded(story)
    assert [t[0] for t in tools] == ["verify_customer", "transfer_to_sales", "list_discounted_products",
                                     "add_to_cart", "checkout_link"], story
    assert tools[3] == ("add_to_cart", "sales", {"phone_number": ADA_PHONE, "sku": "SKU-1001", "quantity": 1})
    assert story["handoffs"] == [("authentication", "sales", 1)]
    said = " ".join(text for role, _, text in story["transcript"] if role == "assistant")
    assert "Noise-cancelling headphones (SKU-1001), sale price 149.25" in said
    assert "total: 149.25" in said and "/checkout/" not in said  # the link is texted, not read out


async def test_escalation_to_a_human_by_voice(demo_db: Any, offline_upstream: RealtimeServer, caller: Caller,
                                              operator: Any) -> None:
    story = await _browser_call(offline_upstream, caller, operator, "retail",
                                ["Can I talk to a real person, please?"])
    assert [t[:2] for t in _succeeded(story)] == [
        ("transfer_to_human_escalation", "authentication"), ("escalate_to_human", "human_escalation")], story
    assert story["handoffs"] == [("authentication", "human_escalation", 1)]
    assert len(story["escalations"]) == 1
    source, agent, reason = story["escalations"][0]
    assert agent == "human_escalation" and "person" in reason and source
    assert story["transcript"][-1][2] == "A human colleague has been asked to join."


async def test_carrier_supervisor_by_voice(demo_db: Any, offline_upstream: RealtimeServer, caller: Caller,
                                           operator: Any) -> None:
    story = await _browser_call(offline_upstream, caller, operator, "carrier", [
        "What's my data usage? My mobile number is plus four four seven seven zero zero nine zero zero seven eight nine.",
        "How much does roaming cost?",
    ])
    tools = _succeeded(story)
    assert [t[:2] for t in tools] == [
        ("ask_supervisor", "carrier_front"), ("lookup_account", "carrier_supervisor"),
        ("ask_supervisor", "carrier_front"), ("lookup_policy", "carrier_supervisor")], story
    assert tools[1][2] == {"phone_number": "+447700900789"}
    assert tools[3][2] == {"topic": "roaming"}
    said = [text for role, _, text in story["transcript"] if role == "assistant"]
    assert said[0].startswith("Hello, thank you for calling Brightline Mobile.")
    assert any("data used GB: 41.20" in line for line in said)
    assert any(line.startswith("Roaming in the EU and US costs 5.00 a day") for line in said)
    assert not story["handoffs"]
