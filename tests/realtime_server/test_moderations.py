"""POST /v1/moderations through the official client: the exact `ModerationCreateResponse` shape,
a deterministic lexicon per category (whole words), test-controlled terms, and the API's errors."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from openai.types import Moderation, ModerationCreateResponse

from realtime.server import RealtimeServer
from realtime.server.moderation import CATEGORIES, Moderator, check_response
from realtime.server.testing import TEST_API_KEY, openai_client_for, running_server
from realtime.server.validation import unknown_fields


def flagged_categories(result: Moderation) -> set[str]:
    return {name for name, on in result.categories.model_dump(by_alias=True).items() if on}


async def post(server: RealtimeServer, body: Any, api_key: str = TEST_API_KEY, method: str = "POST") -> httpx.Response:
    async with httpx.AsyncClient() as client:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return await client.request(
            method, f"{server.base_url}/moderations", content=content,
            headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
        )


async def test_a_flagged_and_a_clean_text(realtime_server: RealtimeServer, openai_client: Any) -> None:
    flagged = await openai_client.moderations.create(model="omni-moderation-latest", input="I will STAB the fence post.")
    assert isinstance(flagged, ModerationCreateResponse)
    assert flagged.model == "omni-moderation-latest" and flagged.id.startswith("modr-")
    [result] = flagged.results
    assert result.flagged and flagged_categories(result) == {"violence"}
    assert result.categories.violence and not result.categories.violence_graphic
    assert result.category_scores.violence == 0.6 and result.category_scores.hate == 0.0
    assert result.category_applied_input_types.violence == ["text"]

    clean = await openai_client.moderations.create(model="omni-moderation-latest", input="Your parcel ships on Monday.")
    [result] = clean.results
    assert not result.flagged and flagged_categories(result) == set()
    assert set(result.category_scores.model_dump(by_alias=True).values()) == {0.0}
    assert [r["input"] for r in realtime_server.moderation_requests] == [
        "I will STAB the fence post.", "Your parcel ships on Monday."
    ]


async def test_the_raw_body_is_exactly_the_package_type(realtime_server: RealtimeServer) -> None:
    reply = await post(realtime_server, {"model": "omni-moderation-latest", "input": "watch your back, loser"})
    assert reply.status_code == 200
    body = reply.json()
    assert set(body) == {"id", "model", "results"}
    [raw] = body["results"]
    assert set(raw) == {"flagged", "categories", "category_scores", "category_applied_input_types"}
    for key in ("categories", "category_scores", "category_applied_input_types"):
        assert list(raw[key]) == list(CATEGORIES)  # every category, by the API's names
    parsed = ModerationCreateResponse.model_validate(body, strict=True)
    assert not unknown_fields(parsed) and check_response(body) == []
    assert parsed.model_dump(mode="json", by_alias=True) == body
    # a flagged sub-category flags its parent too
    assert raw["categories"]["harassment/threatening"] and raw["categories"]["harassment"]
    assert raw["category_scores"]["harassment"] == raw["category_scores"]["harassment/threatening"] == 0.6
    assert raw["flagged"] is True
    two = (await post(realtime_server, {"input": "you idiot, you loser"})).json()["results"][0]
    assert two["category_scores"]["harassment"] == 0.7  # one more term, a higher score


async def test_one_result_per_string_and_one_for_multimodal_parts(openai_client: Any) -> None:
    many = await openai_client.moderations.create(input=["hello", "that was gory", "no gore-free options"])
    assert [r.flagged for r in many.results] == [False, True, True]
    assert many.model == "omni-moderation-latest"  # the API's default model
    parts = await openai_client.moderations.create(
        model="omni-moderation-latest",
        input=[{"type": "text", "text": "first part"}, {"type": "text", "text": "I want to die"}],
    )
    [result] = parts.results
    assert flagged_categories(result) == {"self-harm", "self-harm/intent"}


async def test_terms_match_whole_words_only(openai_client: Any) -> None:
    texts = ["They stabilize prices.", "Idiotic sounds", "a stabbing pain", "gore", "Gore."]
    reply = await openai_client.moderations.create(model="omni-moderation-latest", input=texts)
    assert [r.flagged for r in reply.results] == [False, False, False, True, True]


async def test_a_test_decides_what_is_flagged() -> None:
    async with running_server(moderation_terms={"hate": ["pineapple pizza"]}) as server:
        client = openai_client_for(server)
        server.moderation.flag("illicit", "coupon stacking")
        reply = await client.moderations.create(
            model="omni-moderation-latest",
            input=["Pineapple   pizza again?", "We allow coupon stacking.", "pineapple and pizza"],
        )
        assert [flagged_categories(r) for r in reply.results] == [{"hate"}, {"illicit"}, set()]
        assert not server.validation_failures
    with pytest.raises(ValueError, match="unknown moderation category"):
        Moderator({"rudeness": ["meh"]})
    bare = Moderator(defaults=False)
    assert not bare.result("you idiot")["flagged"]
    bare.flag("harassment", "idiot")
    assert bare.terms("harassment") == ["idiot"] and bare.result("you idiot")["flagged"]


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"model": "omni-moderation-latest"}, "missing_required_parameter", "input"),
        ({"input": 5}, "invalid_type", "input"),
        ({"input": []}, "invalid_value", "input"),
        ({"input": ["ok", 3]}, "invalid_type", "input[1]"),
        ({"input": [{"type": "text", "text": "ok"}, "b"]}, "invalid_type", "input[1]"),
        ({"input": [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}, "invalid_value",
         "input[0].type"),
        ({"input": [{"type": "text", "text": "hi", "extra": 1}]}, "unknown_parameter", "input[0].extra"),
        ({"input": "hi", "model": "gpt-4.1"}, "invalid_value", "model"),
        ({"input": "hi", "model": 7}, "invalid_type", "model"),
        ({"input": "hi", "temperature": 0}, "unknown_parameter", "temperature"),
    ],
)
async def test_a_bad_body_is_a_400_in_the_api_error_shape(
    realtime_server: RealtimeServer, body: dict[str, Any], code: str, param: str
) -> None:
    reply = await post(realtime_server, body)
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", code, param)
    assert error["message"]


async def test_the_official_client_sees_bad_request_and_invalid_json(realtime_server: RealtimeServer, openai_client: Any) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await openai_client.moderations.create(model="not-a-moderation-model", input="hello")
    assert info.value.status_code == 400 and info.value.code == "invalid_value" and info.value.param == "model"
    reply = await post(realtime_server, b"{not json")
    assert reply.status_code == 400 and reply.json()["error"]["code"] == "invalid_json"


async def test_a_bad_key_is_a_401(realtime_server: RealtimeServer) -> None:
    client = openai_client_for(realtime_server, api_key="sk-wrong")
    with pytest.raises(openai.AuthenticationError) as info:
        await client.moderations.create(model="omni-moderation-latest", input="hello")
    assert info.value.status_code == 401 and info.value.code == "invalid_api_key"
    assert realtime_server.moderation_requests == []  # refused before the body was read
    assert (await post(realtime_server, {"input": "hi"}, method="GET")).status_code == 405
