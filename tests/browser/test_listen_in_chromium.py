"""Listening in from the call's dashboard page, in real headless Chromium: a caller talks to the
local offline engine from the call page (fake microphone), a supervisor on the call's dashboard
page clicks Listen, and the page hears the agent and the caller (audio energy measured in the page
from the frames it schedules); the listen is a SupervisorAction."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from channels.db import database_sync_to_async

from calls.models import Call, SupervisorAction
from tests.browser.conftest import (
    PASSWORD,
    DaphneServer,
    chromium,
    open_logged_in_page,
    server_env,
    supervisor_page,
    wait_until,
)
from tests.browser.test_voice_call_offline import caller_wav, demo_scenarios, offline_engine  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.slow]


async def test_a_supervisor_hears_a_live_offline_call(staff_user: Any, demo_scenarios: Any,  # noqa: F811
                                                      offline_engine: str, tmp_path: Path,  # noqa: F811
                                                      django_user_model: Any) -> None:
    await database_sync_to_async(django_user_model.objects.create_user)("sam", password=PASSWORD, is_staff=True)
    wav = await asyncio.to_thread(caller_wav, tmp_path / "caller.wav")
    env = server_env(OPENAI_BASE_URL=offline_engine, OPENAI_API_KEY="")
    server = await asyncio.to_thread(DaphneServer, "contactcenter.asgi:application", env, tmp_path / "daphne.log")
    try:
        async with chromium(wav) as browser:
            caller = await open_logged_in_page(browser, server.url)
            await caller.select_option("#scenario", "retail")
            await caller.click("#call-button")
            call_id = await wait_until(database_sync_to_async(
                lambda: Call.objects.filter(status=Call.Status.ACTIVE).values_list("pk", flat=True).first()),
                60, "a live call", server, every=0.2)
            supervisor = await supervisor_page(browser, server.url, call_id)
            await supervisor.click("#listen-start")
            await supervisor.wait_for_function("document.getElementById('listen-status').textContent"
                                               ".startsWith('Listening')", timeout=15000)
            # The agent answers the caller's first line (and may still be greeting): half a second of its voice.
            deadline = time.monotonic() + 150
            while time.monotonic() < deadline:
                stats = await supervisor.evaluate("window.listenStats")
                if stats["samples"]["a"] > 12000 and stats["samples"]["c"] > 8000:
                    break
                await asyncio.sleep(0.5)
            status = await supervisor.locator("#listen-status").inner_text()
            assert stats["samples"]["a"] > 12000 and stats["samples"]["c"] > 8000, (
                f"{status}; {stats['frames']} frames, samples {stats['samples']}\n{server.output()}")
            await supervisor.click("#listen-stop")
            await supervisor.wait_for_function("document.getElementById('listen-start').hidden === false")
            await caller.click("#hangup-button")
    finally:
        await asyncio.to_thread(server.close)

    agent_rms = (stats["energy"]["a"] / stats["samples"]["a"]) ** 0.5
    caller_rms = (stats["energy"]["c"] / stats["samples"]["c"]) ** 0.5
    assert agent_rms > 0.01, stats  # the agent's synthesised voice, not silence
    assert caller_rms > 0.001, stats  # the caller's microphone (speech and pauses)
    delays = sorted(stats["delays"])
    assert delays[len(delays) // 2] < 2000, delays[-20:]
    action = await database_sync_to_async(SupervisorAction.objects.get)(call_id=call_id)
    assert (action.kind, action.username, action.text) == ("listen", "sam", "mixed")
