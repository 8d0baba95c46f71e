"""The protocol server's OpenAI SIP surface, through the official `openai` package: accept with a
session, reject, hangup, the `?call_id=` sideband, and what each refuses."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from realtime.server.testing import openai_client_for, recv_until, signed_webhook

SECRET = "whsec_" + "c2lwLXRlc3Qtc2VjcmV0LWZvci13ZWJob29rcw=="


async def test_accept_then_sideband_joins_the_call_with_its_session(realtime_server: Any) -> None:
    call = realtime_server.incoming_sip_call(from_="+15551234567", headers={"X-Scenario": "retail"})
    client = openai_client_for(realtime_server)
    await client.realtime.calls.accept(
        call.call_id, type="realtime", model="gpt-realtime-1.5", instructions="You are the store.",
        audio={"output": {"voice": "marin"}},
    )
    assert call.state == "accepted"
    async with client.realtime.connect(call_id=call.call_id) as connection:
        created = (await recv_until(connection, "session.created"))[-1]
        assert created.session.instructions == "You are the store."
        assert created.session.model == "gpt-realtime-1.5"
        assert (await call.wait_sideband()) is realtime_server.sessions[-1]
        await call.hang_up()
        with pytest.raises(Exception):  # noqa: B017 — the connection closes when the caller hangs up
            await recv_until(connection, "never.sent")
    assert (call.state, call.ended_by, realtime_server.sessions[-1].close_code) == ("ended", "caller", 1000)
    await client.close()


async def test_reject_unknown_calls_and_bad_bodies(realtime_server: Any) -> None:
    client = openai_client_for(realtime_server)
    with pytest.raises(openai.NotFoundError):
        await client.realtime.calls.accept("rtc_unknown", type="realtime")
    call = realtime_server.incoming_sip_call()
    with pytest.raises(openai.BadRequestError, match="unknown_parameter|Unknown parameter"):
        await client.realtime.calls.accept(call.call_id, type="realtime", extra_body={"bogus": 1})
    with pytest.raises(openai.BadRequestError):
        await client.realtime.calls.accept(call.call_id, type="realtime", audio={"output": {"voice": 3}})  # type: ignore[dict-item]
    assert call.state == "incoming"
    await client.realtime.calls.reject(call.call_id, status_code=486)
    assert (call.state, call.reject_status) == ("rejected", 486)
    with pytest.raises(openai.BadRequestError):
        await client.realtime.calls.accept(call.call_id, type="realtime")
    with pytest.raises(openai.BadRequestError):  # only an accepted call can be hung up
        await client.realtime.calls.hangup(call.call_id)
    await client.close()


async def test_sideband_needs_an_accepted_call(realtime_server: Any) -> None:
    from websockets.exceptions import InvalidStatus

    call = realtime_server.incoming_sip_call()
    client = openai_client_for(realtime_server)
    for call_id in ("rtc_unknown", call.call_id):
        with pytest.raises(InvalidStatus) as refused:
            async with client.realtime.connect(call_id=call_id):
                pass
        assert refused.value.response.status_code == 404
    await client.close()


def test_signed_webhook_verifies_with_the_openai_package() -> None:
    from openai import OpenAI

    from realtime.server.sip import SipCalls

    event = SipCalls().incoming(from_="+15551234567").webhook_event()
    body, headers = signed_webhook(event, SECRET)
    unwrapped = OpenAI(api_key="sk-unused").webhooks.unwrap(body, headers, secret=SECRET)
    assert unwrapped.type == "realtime.call.incoming"
    assert unwrapped.data.call_id == event["data"]["call_id"]
    with pytest.raises(openai.InvalidWebhookSignatureError):
        OpenAI(api_key="sk-unused").webhooks.unwrap(body + b" ", headers, secret=SECRET)
