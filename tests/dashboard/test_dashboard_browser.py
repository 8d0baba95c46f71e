"""The dashboard in real headless Chromium against daphne: the list updates live when a call
starts, the call page shows the timeline, follows new events, and sends a supervisor action.
Screenshots go to $DASHBOARD_SCREENSHOTS (or the test's tmp dir) for a look."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from channels.db import database_sync_to_async

from calls import actions
from calls.models import Call, SupervisorAction
from tests.browser.conftest import PASSWORD, DaphneServer, chromium, server_env, speech_like_wav

pytestmark = pytest.mark.django_db(transaction=True)

SPEC = {"slug": "retail", "root_agent": "authentication", "hash": "e" * 64, "limits": {}, "agents": {}}


def busy_call() -> Call:
    call = actions.do_start_call(channel=Call.Channel.TWILIO, spec=SPEC, caller_id="+447700900123")
    actions.do_open_session(call.pk, model="gpt-realtime-1.5", agent="authentication")
    actions.do_record_transcript(call.pk, item_id="a1", role="assistant", agent="authentication",
                                 text="Hello, thanks for calling Northwind Home. Who am I speaking with?")
    actions.do_record_transcript(call.pk, item_id="u1", role="user",
                                 text="It's Ada Lovelace, I'd like to return my headphones.")
    actions.do_record_tool(call.pk, tool_call_id="fc_1", name="verify_customer", status="succeeded",
                           agent="authentication", arguments={"phone_number": "+447700900123"},
                           result={"verified": True}, duration_ms=38)
    actions.do_record_handoff(call.pk, from_agent="authentication", to_agent="returns",
                              reason="The caller wants to return an order.", depth=1, duration_ms=41)
    actions.do_record_usage(call.pk, agent="returns", usage={"input_tokens": 1200, "output_tokens": 300,
                                                             "text_in_cached": 900}, cost=Decimal("0.0213"))
    actions.do_record_latency(call.pk, voice_to_voice_ms=640)
    actions.do_record_caller_idle(call.pk, ms=8000, agent="returns", item_id="item_silence_1")
    actions.do_record_tool(call.pk, tool_call_id="fc_2", name="start_return", status="awaiting_approval",
                           agent="returns", arguments={"order_id": "ORD-10231", "reason": "too small"})
    return call


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    path = Path(os.environ.get("DASHBOARD_SCREENSHOTS") or tmp_path)
    path.mkdir(parents=True, exist_ok=True)
    return path


async def test_dashboard_in_chromium(django_user_model: Any, tmp_path: Path, screenshots: Path) -> None:
    await database_sync_to_async(django_user_model.objects.create_user)("sam", password=PASSWORD, is_staff=True)
    call = await database_sync_to_async(busy_call)()
    ended = await database_sync_to_async(actions.do_start_call)(channel=Call.Channel.BROWSER, spec=SPEC,
                                                                caller_id="operator")
    await database_sync_to_async(actions.do_end_call)(ended.pk, "hangup")

    server = DaphneServer("contactcenter.asgi:application", server_env(), tmp_path / "daphne.log")
    try:
        async with chromium(speech_like_wav(tmp_path / "mic.wav")) as browser:
            context = await browser.new_context(base_url=server.url, viewport={"width": 1400, "height": 900})
            page = await context.new_page()
            await page.goto("/dashboard/")
            await page.fill("#id_username", "sam")
            await page.fill("#id_password", PASSWORD)
            await page.click("input[type=submit]")
            await page.wait_for_url("**/dashboard/")
            await page.wait_for_selector("#live-state[data-state=live]")
            assert await page.locator(f"#live-calls tr[data-call='{call.pk}'] .attention").inner_text() == \
                "1 awaiting approval"
            assert await page.locator(f"#recent-calls tr[data-call='{ended.pk}']").count() == 1
            assert await page.locator(f"#live-calls tr[data-call='{call.pk}'] td.idle").inner_text() == "1"

            started = await database_sync_to_async(actions.do_start_call)(
                channel=Call.Channel.BROWSER, spec=SPEC, caller_id="operator")
            row = page.locator(f"#live-calls tr[data-call='{started.pk}']")
            await row.wait_for()
            assert "operator" in await row.inner_text()
            await page.screenshot(path=str(screenshots / "dashboard.png"), full_page=True)

            await page.goto(f"/dashboard/calls/{call.pk}/")
            await page.wait_for_selector("#live-state[data-state=live]")
            timeline = page.locator("#timeline")
            assert "return my headphones" in await timeline.inner_text()
            assert "authentication → returns" in await timeline.inner_text()
            assert await page.locator("#approvals .approval").count() == 1
            assert await page.locator("#timeline .crumb-idle").inner_text() == \
                "… Caller silent for 8 s agent returns"
            assert await page.locator("#stat-idle").inner_text() == "1"

            await database_sync_to_async(actions.do_record_caller_idle)(call.pk, ms=9400, agent="returns")
            await page.locator("#timeline .crumb-idle", has_text="Caller silent for 9 s").wait_for()
            await page.locator("#stat-idle", has_text="2").wait_for()

            await database_sync_to_async(actions.do_record_transcript)(
                call.pk, item_id="a2", role="assistant", agent="returns",
                text="I can start that return for you once it is approved.")
            await page.locator("#timeline .turn", has_text="once it is approved").wait_for()

            await page.fill("#whisper-text", "Offer free return shipping.")
            await page.click("#whisper-form button")
            await page.locator("#action-result[data-ok=true]").wait_for()
            await page.locator("#audit li", has_text="Offer free return shipping.").wait_for()
            await page.screenshot(path=str(screenshots / "dashboard-call.png"), full_page=True)
            await context.close()
    finally:
        server.close()
    action = await database_sync_to_async(SupervisorAction.objects.get)(call_id=call.pk)
    assert (action.kind, action.username, action.text) == ("whisper", "sam", "Offer free return shipping.")
