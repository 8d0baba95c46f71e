"""POST /v1/realtime/client_secrets and POST /v1/responses through the official client."""

import json
import time

import openai
import pytest
from openai.types.responses import Response
from websockets.exceptions import InvalidStatus

from realtime.server import RealtimeServer, function_call, response
from realtime.server.testing import openai_client_for
from realtime.server.validation import unknown_fields


async def test_client_secret_then_connect_with_it(realtime_server: RealtimeServer, openai_client) -> None:
    secret = await openai_client.realtime.client_secrets.create(
        session={"type": "realtime", "instructions": "From the secret.", "audio": {"output": {"voice": "marin"}}}
    )
    assert secret.value.startswith("ek_")
    assert 55 <= secret.expires_at - time.time() <= 61
    assert secret.session.type == "realtime" and secret.session.instructions == "From the secret."
    ephemeral = openai_client_for(realtime_server, api_key=secret.value)
    async with ephemeral.realtime.connect(model="gpt-realtime-2") as conn:
        created = await conn.recv()
        assert created.type == "session.created"
        assert created.session.instructions == "From the secret."
        assert created.session.audio.output.voice == "marin"


async def test_expired_or_unknown_secret_is_refused(realtime_server: RealtimeServer, openai_client) -> None:
    secret = await openai_client.realtime.client_secrets.create(session={"type": "realtime"})
    realtime_server.secrets[secret.value].expires_at = time.time() - 1
    for key in (secret.value, "ek_unknown"):
        with pytest.raises(InvalidStatus) as info:
            async with openai_client_for(realtime_server, api_key=key).realtime.connect(model="gpt-realtime-2"):
                pass
        assert info.value.response.status_code == 401


async def test_client_secret_refuses_bad_session(openai_client) -> None:
    with pytest.raises(openai.BadRequestError):
        await openai_client.realtime.client_secrets.create(session={"type": "realtime", "nonsense": 1})  # type: ignore[typeddict-unknown-key]


async def test_responses_text_and_function_calls(realtime_server: RealtimeServer, openai_client) -> None:
    realtime_server.script_text(
        response(function_call("get_weather", {"city": "Oslo"}, call_id="call_w")),
        response("It is sunny in Oslo."),
    )
    tools = [{"type": "function", "name": "get_weather", "description": "w", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": False}]
    first = await openai_client.responses.create(model="gpt-5.4-mini", input="weather in Oslo?", tools=tools)
    assert isinstance(first, Response)
    call = first.output[0]
    assert call.type == "function_call"
    assert (call.name, call.call_id, json.loads(call.arguments)) == ("get_weather", "call_w", {"city": "Oslo"})
    second = await openai_client.responses.create(
        model="gpt-5.4-mini",
        input=[
            {"role": "user", "content": "weather in Oslo?"},
            {"type": "function_call", "call_id": "call_w", "name": "get_weather", "arguments": '{"city":"Oslo"}'},
            {"type": "function_call_output", "call_id": "call_w", "output": '{"sky":"sunny"}'},
        ],
        tools=tools,
    )
    assert second.output_text == "It is sunny in Oslo."
    assert second.usage is not None and second.usage.input_tokens > first.usage.input_tokens
    # the queue is empty: the default text responder answers
    third = await openai_client.responses.create(model="gpt-5.4-mini", input="ping")
    assert third.output_text == "I heard: ping"
    # the raw body validates as the package's Response model (the client itself parses leniently)
    realtime_server.script_text(response("a", function_call("f", {})))
    raw = await openai_client.responses.with_raw_response.create(model="gpt-5.4-mini", input="x")
    body = raw.http_response.json()
    validated = Response.model_validate(body)
    assert validated.output[1].type == "function_call"
    assert unknown_fields(validated) == []
    assert [r["model"] for r in realtime_server.responses_requests] == ["gpt-5.4-mini"] * 4


async def test_responses_requires_api_key(realtime_server: RealtimeServer) -> None:
    client = openai_client_for(realtime_server, api_key="sk-nope")
    with pytest.raises(openai.AuthenticationError):
        await client.responses.create(model="gpt-5.4-mini", input="hi")
