"""POST /twilio/voice picks the scenario by the number the caller dialled (`To`): the URL's
`?scenario=` first, then the dialled number, then TWILIO_DEFAULT_SCENARIO; a number that reaches no
scenario gets a short sorry and a hang-up, with the reason logged. Requests are signed over the form
actually posted, as Twilio signs them."""

from __future__ import annotations

import logging
from typing import Any
from xml.etree import ElementTree

import pytest
from django.test import Client

from agents.models import Scenario
from calls.models import Call
from calls.scenarios import dialled_number, resolve_inbound_scenario
from calls.tokens import read_twilio_stream_token
from calls.twilio import compute_signature
from demo.loader import CARRIER_NUMBER, RETAIL_NUMBER

AUTH_TOKEN = "twilio-routing-test-token"
BASE = "https://cc.example.com"
UNKNOWN_NUMBER = "+12025550199"


@pytest.fixture(autouse=True)
def twilio_settings(settings: Any) -> None:
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.PUBLIC_BASE_URL = BASE
    settings.TWILIO_DEFAULT_SCENARIO = ""


def form(to: str, sid: str = "CA" + "7" * 32) -> dict[str, str]:
    return {"CallSid": sid, "AccountSid": "AC" + "2" * 32, "From": "+15551234567", "To": to,
            "Called": to, "CallStatus": "ringing", "Direction": "inbound"}


def call_in(client: Client, to: str, query: str = "") -> Any:
    """A signed webhook for a call to `to`; the signature covers the URL and this very form."""
    path = "/twilio/voice" + query
    params = form(to)
    signature = compute_signature(AUTH_TOKEN, BASE + path, params.items())
    return client.post(path, params, HTTP_X_TWILIO_SIGNATURE=signature)


def routed_to(response: Any) -> str:
    """The scenario of the call the answer connects (checked in the record and the stream token)."""
    assert response.status_code == 200, response.content
    root = ElementTree.fromstring(response.content)
    stream = root.find("./Connect/Stream")
    assert stream is not None, response.content
    parameters = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    grant = read_twilio_stream_token(parameters["token"] or "")
    call = Call.objects.get(pk=grant.call_id)
    assert call.spec["slug"] == grant.scenario == parameters["scenario"]
    return str(call.spec["slug"])


def is_sorry_and_hangup(response: Any) -> bool:
    assert response.status_code == 200 and response["Content-Type"].startswith("text/xml")
    root = ElementTree.fromstring(response.content)
    said = root.find("./Say")
    return (said is not None and bool((said.text or "").strip()) and root.find("./Hangup") is not None
            and root.find("./Connect") is None and [child.tag for child in root] == ["Say", "Hangup"])


@pytest.mark.parametrize(("to", "slug"), [
    (RETAIL_NUMBER, "retail"),
    (CARRIER_NUMBER, "carrier"),
    ("+1 (202) 555-0101", "carrier"),
])
def test_the_dialled_number_picks_the_scenario(client: Client, demo: Any, to: str, slug: str) -> None:
    assert routed_to(call_in(client, to)) == slug


def test_a_number_added_in_the_configuration_routes_at_once(client: Client, demo: Any) -> None:
    carrier = Scenario.objects.get(slug="carrier")
    carrier.inbound_numbers = [CARRIER_NUMBER, "+442079460958"]
    carrier.full_clean()
    carrier.save()
    assert routed_to(call_in(client, "+442079460958")) == "carrier"


def test_the_url_choice_beats_the_number(client: Client, demo: Any, settings: Any) -> None:
    settings.TWILIO_DEFAULT_SCENARIO = "retail"
    assert routed_to(call_in(client, RETAIL_NUMBER, "?scenario=carrier")) == "carrier"


def test_the_number_beats_the_default(client: Client, demo: Any, settings: Any) -> None:
    settings.TWILIO_DEFAULT_SCENARIO = "retail"
    assert routed_to(call_in(client, CARRIER_NUMBER)) == "carrier"


def test_an_unknown_number_goes_to_the_default(client: Client, demo: Any, settings: Any) -> None:
    settings.TWILIO_DEFAULT_SCENARIO = "carrier"
    assert routed_to(call_in(client, UNKNOWN_NUMBER)) == "carrier"


def test_an_unknown_number_without_a_default_says_sorry_and_hangs_up(client: Client, demo: Any,
                                                                     caplog: Any) -> None:
    with caplog.at_level(logging.WARNING, logger="calls.views"):
        response = call_in(client, "+1 202 555 0199")
    assert is_sorry_and_hangup(response)
    assert f"the dialled number {UNKNOWN_NUMBER} reaches no scenario and no default scenario is set" in caplog.text
    assert not Call.objects.exists()


def test_an_explicit_unknown_scenario_is_not_routed_by_number(client: Client, demo: Any, caplog: Any) -> None:
    with caplog.at_level(logging.WARNING, logger="calls.views"):
        response = call_in(client, RETAIL_NUMBER, "?scenario=nope")
    assert is_sorry_and_hangup(response)
    assert "no scenario 'nope'" in caplog.text
    assert not Call.objects.exists()


def test_the_signature_covers_the_dialled_number(client: Client, demo: Any, caplog: Any) -> None:
    params = form(CARRIER_NUMBER)
    signature = compute_signature(AUTH_TOKEN, BASE + "/twilio/voice", params.items())
    with caplog.at_level(logging.WARNING, logger="calls.views"):
        response = client.post("/twilio/voice", {**params, "To": RETAIL_NUMBER}, HTTP_X_TWILIO_SIGNATURE=signature)
    assert response.status_code == 403
    assert not Call.objects.exists()


def test_with_no_numbers_configured_the_first_scenario_still_answers(client: Client, demo: Any) -> None:
    Scenario.objects.update(inbound_numbers=[])
    assert routed_to(call_in(client, UNKNOWN_NUMBER)) == "carrier"  # the first by slug: one line, nothing set up


def test_resolution_reasons(demo: Any) -> None:
    assert resolve_inbound_scenario(explicit="retail", dialled=CARRIER_NUMBER, default="carrier") == (
        resolve_inbound_scenario(explicit=" retail ")
    )
    route = resolve_inbound_scenario(dialled=f"<sip:{CARRIER_NUMBER}@sip.example.com>;tag=1", default="retail")
    assert (route.slug, route.reason) == ("carrier", f"dialled number {CARRIER_NUMBER}")
    route = resolve_inbound_scenario(dialled="sip:proj_abc@sip.api.openai.com", default="retail")
    assert (route.slug, route.reason) == ("retail", "default scenario setting")
    assert resolve_inbound_scenario(dialled="").slug == ""


def test_resolution_with_no_scenario_at_all(db: Any) -> None:
    route = resolve_inbound_scenario(dialled=RETAIL_NUMBER)
    assert route.slug == "" and "no scenario is configured" in route.reason


@pytest.mark.parametrize(("address", "number"), [
    ("+15550001111", "+15550001111"),
    ("sip:+15550001111@sip.example.com", "+15550001111"),
    ("<sip:+15550001111@sip.api.openai.com>;tag=abc", "+15550001111"),
    ('"Returns" <sips:+1-555-000-1111@sip.example.com;transport=tls>', "+15550001111"),
    ("<tel:+15550001111>", "+15550001111"),
    ("sip:%2B15550001111@sip.example.com", "+15550001111"),
    ("sip:proj_abc123@sip.api.openai.com", None),
    ("sip:15550001111@sip.example.com", None),
    ("", None),
])
def test_the_dialled_number_of_an_address(address: str, number: str | None) -> None:
    assert dialled_number(address) == number
