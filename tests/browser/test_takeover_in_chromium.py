"""Taking a call over from the call's dashboard page, in real headless Chromium, on the local
offline engine: a caller talks to the agent from the call page (fake microphone), a supervisor
clicks Take over and speaks (the same fake microphone), the caller's page receives the person's
voice (audio energy measured in the page, for the person's item); after Hand back the agent
answers the caller's next turn. (Listening in is covered by test_listen_in_chromium.)"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from channels.db import database_sync_to_async

from calls.models import Call, SupervisorAction, TranscriptItem
from tests.browser.conftest import (
    PASSWORD,
    DaphneServer,
    chromium,
    open_logged_in_page,
    server_env,
    staff_page,
    supervisor_page,
    wait_until,
)
from tests.browser.test_voice_call_offline import demo_scenarios, offline_engine  # noqa: F401
from tests.calls.conftest import threaded_realtime_server  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: The fake microphone (both pages: Chromium has one): short pauses, so whoever listens hears speech soon;
#: then a long one, so the agent's answer to the last line is not cut off by the next.
LINES = ["I would like to return my headphones.", "They arrived damaged.", "Can I speak to a person please?"]


def talking_wav(path: Path) -> Path:
    import numpy as np

    from realtime.audio import resample, write_wav
    from realtime.offline.tts import get_synthesizer

    synthesizer = get_synthesizer()
    parts = []
    for text in LINES:
        parts.append(np.zeros(int(24000 * 1.5), dtype=np.int16))
        parts.append((synthesizer.synthesize_all(text) * 0.6).astype(np.int16))
    parts.append(np.zeros(24000 * 10, dtype=np.int16))  # time for the agent to answer the last line
    write_wav(str(path), resample(np.concatenate(parts), 24000, 48000), 48000)
    return path


async def test_a_supervisor_takes_over_speaks_and_hands_back(staff_user: Any, demo_scenarios: Any,  # noqa: F811
                                                             offline_engine: str, tmp_path: Path,  # noqa: F811
                                                             django_user_model: Any) -> None:
    await database_sync_to_async(django_user_model.objects.create_user)("sam", password=PASSWORD, is_staff=True)
    wav = await asyncio.to_thread(talking_wav, tmp_path / "talking.wav")
    env = server_env(OPENAI_BASE_URL=offline_engine, OPENAI_API_KEY="")
    server = await asyncio.to_thread(DaphneServer, "contactcenter.asgi:application", env, tmp_path / "daphne.log")
    try:
        async with chromium(wav) as browser:
            caller = await open_logged_in_page(browser, server.url)
            await caller.select_option("#scenario", "retail")
            await caller.click("#call-button")

            async def live_call() -> int | None:
                return await database_sync_to_async(
                    lambda: Call.objects.filter(status=Call.Status.ACTIVE).values_list("pk", flat=True).first())()

            call_id = await wait_until(live_call, 60, "a live call", server, every=0.3)
            supervisor = await supervisor_page(browser, server.url, call_id)
            # The fake microphone plays what the caller's plays, which this page plays back: echo
            # cancellation would take it out, as it should for a person without a headset.
            await supervisor.check("#takeover-headset")
            await supervisor.click("#takeover-start")
            await supervisor.wait_for_function("window.takeoverStats.state === 'taken_over'", timeout=15000)
            take_over = await database_sync_to_async(SupervisorAction.objects.get)(call_id=call_id, kind="take_over")
            item = f"human_{take_over.pk}"

            async def caller_heard_the_person() -> Any:
                received = await caller.evaluate(f"(window.callPage.call.stats.received[{item!r}] || null)")
                # The fake microphone starts with a pause: wait for the person's words.
                return received if received and received["samples"] and (
                    received["energy"] / received["samples"]) ** 0.5 > 0.005 else None

            received = await wait_until(caller_heard_the_person, 30, "the person's voice on the caller's page", server, every=0.3)
            sent = await supervisor.evaluate("window.takeoverStats")
            await supervisor.click("#takeover-stop")
            await supervisor.wait_for_function("window.takeoverStats.state === 'closed'", timeout=15000)

            async def hand_back() -> Any:
                return await database_sync_to_async(
                    SupervisorAction.objects.filter(call_id=call_id, kind="hand_back").first)()

            handed_back = await wait_until(hand_back, 10, "the hand-back record", server, every=0.3)

            async def agent_answered_after() -> bool:
                return await database_sync_to_async(TranscriptItem.objects.filter(
                    call_id=call_id, role="assistant", created_at__gt=handed_back.created_at).exclude(text="").exists)()

            # The caller's microphone goes on (the fake one loops): the agent answers its next turn.
            try:
                await wait_until(agent_answered_after, 90, "the agent answering after the hand-back", server, every=0.3)
            except AssertionError:
                rows = await database_sync_to_async(lambda: list(TranscriptItem.objects.filter(call_id=call_id)
                                                                 .values_list("created_at", "role", "text")))()
                log = await caller.evaluate("Array.from(document.querySelectorAll('#event-log > li'))"
                                            ".slice(-80).map(e => e.textContent.slice(0, 300))")
                raise AssertionError(f"{handed_back.created_at}\n{rows}\n{log}") from None
            await caller.click("#hangup-button")
    finally:
        await asyncio.to_thread(server.close)

    assert sent["sent"] > 20 and sent["level"] > 0, sent  # the person's microphone frames went out
    rms = (received["energy"] / received["samples"]) ** 0.5
    assert rms > 0.005, received  # the person's voice, not silence


async def test_a_queued_escalation_is_accepted_by_an_available_human(
        staff_user: Any, demo_scenarios: Any, threaded_realtime_server: Any,  # noqa: F811
        tmp_path: Path, django_user_model: Any) -> None:
    from django.contrib.auth.models import Group

    from agents.compile import compile_scenario
    from agents.models import Scenario
    from calls.models import QueueEntry
    from calls.takeover import HUMAN_AGENTS_GROUP
    from realtime.server import function_call, response
    from tests.calls.conftest import transfer_arguments

    def setup() -> Any:
        sam = django_user_model.objects.create_user("sam", password=PASSWORD, is_staff=True)
        sam.groups.add(Group.objects.get_or_create(name=HUMAN_AGENTS_GROUP)[0])
        Scenario.objects.filter(slug="retail").update(human_queue_timeout_seconds=120)
        return compile_scenario(Scenario.objects.get(slug="retail"))

    spec = await database_sync_to_async(setup)()
    peer = threaded_realtime_server
    # The scripted peer answers whatever the caller says: a greeting, the transfer to the fallback
    # agent (an escalation: the call queues), then the hold line's answers.
    peer.loop.call_soon_threadsafe(peer.server.script, response("Hello, how can I help?"),
                                   response(function_call("transfer_to_human_escalation", transfer_arguments(
                                       spec, "authentication", "human_escalation"))),
                                   response("Let me connect you to a colleague."),
                                   *[response("A colleague will be with you shortly.")] * 5)
    wav = await asyncio.to_thread(talking_wav, tmp_path / "talking.wav")
    env = server_env(OPENAI_BASE_URL=peer.server.base_url, OPENAI_API_KEY=peer.server.api_key)
    server = await asyncio.to_thread(DaphneServer, "contactcenter.asgi:application", env, tmp_path / "daphne.log")
    try:
        async with chromium(wav) as browser:
            caller = await open_logged_in_page(browser, server.url)
            await caller.select_option("#scenario", "retail")
            await caller.click("#call-button")

            async def waiting() -> Any:
                return await database_sync_to_async(QueueEntry.objects.filter(status="waiting").first)()

            entry = await wait_until(waiting, 60, "the escalated call in the queue", server, every=0.3)
            human = await staff_page(browser, server.url, "/dashboard/queue/")
            await human.wait_for_selector(f"tr[data-entry='{entry.pk}'] .wait")
            await human.check("#available")
            await human.click(f"tr[data-entry='{entry.pk}'] button.accept:not([disabled])")
            await human.wait_for_url(f"**/dashboard/calls/{entry.call_id}/?accepted=1")
            # Accepting connects the person: the call page takes the call over on arrival, no click.
            await human.wait_for_function("window.takeoverStats.state === 'taken_over'", timeout=15000)
            assert await human.is_visible("#takeover-stop")
            await caller.click("#hangup-button")
    finally:
        await asyncio.to_thread(server.close)

    entry = await database_sync_to_async(QueueEntry.objects.get)(pk=entry.pk)
    assert (entry.status, entry.accepted_username) == ("accepted", "sam")
    take_over = await database_sync_to_async(SupervisorAction.objects.get)(call_id=entry.call_id, kind="take_over")
    assert take_over.username == "sam"
