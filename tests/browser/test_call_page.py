"""The call page in real headless Chromium against daphne, with the browser call WebSocket
answered by a fake consumer that speaks the wire protocol (tests/browser/fake_consumer.py): the
page's own behaviour — capture and encoding, playback and played positions, barge-in, transcript,
event log, text, hang-up, copy and the WAV recording — checked from the server side and the page."""

from __future__ import annotations

import asyncio
import io
import json
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.browser.conftest import DaphneServer, open_logged_in_page, server_env, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FRAME_BYTES = {"pcm16": 960, "pcmu": 160}  # 20 ms
RATES = {"pcm16": 24000, "pcmu": 8000}


@pytest.fixture(scope="module")
def fake_server(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaphneServer]:
    tmp = tmp_path_factory.mktemp("fake-server")
    log = tmp / "consumer.jsonl"
    server = DaphneServer("tests.browser.fake_asgi:application", server_env(BROWSER_TEST_LOG=str(log)), tmp / "daphne.log")
    server.consumer_log = log  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        server.close()


def read_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def demo_scenarios(transactional_db: None) -> None:
    from demo.loader import load_demo

    load_demo()


@pytest.mark.parametrize("codec", ["pcm16", "pcmu"])
async def test_call_from_the_page(codec, fake_server, staff_user, demo_scenarios, browser) -> None:
    log_path: Path = fake_server.consumer_log  # type: ignore[attr-defined]
    log_path.write_text("")
    page = await open_logged_in_page(browser, fake_server.url)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    await page.check(f"input[name=codec][value={codec}]")
    await page.select_option("#scenario", "retail")
    await page.click("#call-button")
    await page.wait_for_selector("#call-status[data-state=live]", timeout=15000)

    def entries(kind: str) -> list[dict[str, Any]]:
        return [e for e in read_log(log_path) if e["kind"] == kind]

    connect = (await wait_until(lambda: entries("connect"), 10, "the WebSocket connection", fake_server))[0]
    assert connect["codec"] == codec and connect["scenario"] == "retail"

    # The caller's audio arrives as 20 ms frames of the chosen codec, and it is not silence.
    audio = await wait_until(lambda: [e for e in entries("audio") if e["total"] >= FRAME_BYTES[codec] * 25] and entries("audio"),
                     10, "0.5 s of caller audio", fake_server)
    assert {e["bytes"] for e in audio} == {FRAME_BYTES[codec]}
    assert audio[-1]["rms"] > 300, audio[-1]

    # The short item plays to its end; its played position is reported as it goes.
    def playback(item_id: str) -> list[dict[str, Any]]:
        return [e for e in entries("text") if e["message"]["type"] == "playback" and e["message"]["item_id"] == item_id]

    await wait_until(lambda: any(e["message"]["played_ms"] >= 1150 for e in playback("item_short")), 10,
             "item_short played to the end", fake_server)
    short = [e["message"]["played_ms"] for e in playback("item_short")]
    assert short == sorted(short) and len(short) >= 3, short
    assert 1150 <= short[-1] <= 1200, short

    # Barge-in: the server says clear after 500 ms of the long item; the page stops at once and
    # reports where it stopped; nothing more of that item plays.
    await wait_until(lambda: entries("sent_clear"), 10, "the clear", fake_server)
    cleared_at = entries("sent_clear")[0]["t"]
    await wait_until(lambda: [e for e in playback("item_long") if e["t"] >= cleared_at], 3, "the played position after clear", fake_server)
    after = [e for e in playback("item_long") if e["t"] >= cleared_at]
    assert after[0]["t"] - cleared_at < 1.0
    stopped = after[0]["message"]["played_ms"]
    assert 500 <= stopped < 1500, stopped
    await asyncio.sleep(0.6)
    assert max(e["message"]["played_ms"] for e in playback("item_long")) == stopped

    # Transcript bubbles and breadcrumbs; the event log with both directions.
    await page.wait_for_selector(".bubble.user >> text=Hello there")
    assert await page.locator(".crumb.tool.done").count() == 1
    await page.locator(".crumb.tool.done summary").click()
    assert "shipped" in await page.locator(".crumb.tool.done pre").inner_text()
    assert "greeter → orders" in await page.locator(".crumb.handoff").inner_text()
    assert await page.locator(".log-entry.protocol.client .name", has_text="session.update").count() == 1
    assert await page.locator(".log-entry.server").count() > 3

    # Typed text goes to the server (and is answered).
    await page.fill("#text-input", "Where is my order?")
    await page.press("#text-input", "Enter")
    await wait_until(lambda: [e for e in entries("text") if e["message"] == {"type": "text", "text": "Where is my order?"}],
             5, "the typed text", fake_server)
    await page.wait_for_selector(".bubble.assistant >> text=You typed: Where is my order?")

    # Mute the microphone: frames keep coming (the server's VAD sees silence), and they are silent.
    await page.click("#mic-toggle")
    assert await page.get_attribute("#mic-toggle", "aria-pressed") == "true"
    await asyncio.sleep(0.4)
    mark = len(entries("audio"))
    await asyncio.sleep(0.4)
    muted = entries("audio")[mark:]
    assert muted, "no frames while muted"
    await page.click("#mic-toggle")

    # Copy the transcript.
    await page.click("#copy-button")
    copied = await page.evaluate("navigator.clipboard.readText()")
    assert "Caller: Hello there" in copied and "Handoff greeter → orders" in copied

    # Hang up.
    await page.click("#hangup-button")
    await wait_until(lambda: [e for e in entries("text") if e["message"] == {"type": "hangup"}], 5, "the hangup", fake_server)
    await page.wait_for_selector("#call-status[data-state=ended]")
    assert "hangup" in await page.inner_text("#call-status")

    # The recording: caller left, agent right, at the codec rate.
    async with page.expect_download() as info:
        await page.click("#download-button")
    download = await info.value
    data = Path(await download.path()).read_bytes()
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, RATES[codec])
        frames = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2).astype(float)
    assert len(frames) > RATES[codec] * 1.5
    caller_rms, agent_rms = np.sqrt(np.mean(frames**2, axis=0))
    assert caller_rms > 200 and agent_rms > 500, (caller_rms, agent_rms)
    agent_seconds = np.count_nonzero(np.abs(frames[:, 1]) > 100) / RATES[codec]
    assert 1.0 < agent_seconds < 2.5, agent_seconds  # 1.2 s short item + about 0.5 s of the long one

    assert not errors, errors



async def test_push_to_talk(fake_server, staff_user, demo_scenarios, browser) -> None:
    """In push-to-talk mode audio goes out only while the space bar (or the button) is held,
    between {"type":"ptt","state":"down"} and {"type":"ptt","state":"up"}."""
    log_path: Path = fake_server.consumer_log  # type: ignore[attr-defined]
    log_path.write_text("")
    page = await open_logged_in_page(browser, fake_server.url)

    def entries(kind: str) -> list[dict[str, Any]]:
        return [e for e in read_log(log_path) if e["kind"] == kind]

    def ptt() -> list[str]:
        return [e["message"]["state"] for e in entries("text") if e["message"]["type"] == "ptt"]

    await page.check("input[name=mode][value=ptt]")
    assert await page.is_visible("#ptt-button")
    await page.click("#call-button")
    await page.wait_for_selector("#call-status[data-state=live]")
    await wait_until(lambda: entries("connect"), 10, "the connection", fake_server)
    await asyncio.sleep(0.5)
    assert entries("audio") == []

    await page.keyboard.down("Space")
    await wait_until(lambda: len(entries("audio")) >= 10, 5, "audio while the space bar is held", fake_server)
    assert ptt() == ["down"]
    assert await page.get_attribute("#ptt-button", "aria-pressed") == "true"
    await page.keyboard.up("Space")
    await wait_until(lambda: ptt() == ["down", "up"], 5, "ptt up", fake_server)
    await asyncio.sleep(0.3)
    held = len(entries("audio"))
    await asyncio.sleep(0.5)
    assert len(entries("audio")) == held

    # The button works the same with a pointer; typing a space in the text box does not talk.
    await page.locator("#ptt-button").hover()
    await page.mouse.down()
    await wait_until(lambda: len(entries("audio")) > held + 5, 5, "audio while the button is held", fake_server)
    await page.mouse.up()
    await wait_until(lambda: ptt() == ["down", "up", "down", "up"], 5, "ptt up (button)", fake_server)
    await page.fill("#text-input", "a b")
    await page.press("#text-input", "Space")
    await asyncio.sleep(0.3)
    assert ptt() == ["down", "up", "down", "up"]
    await page.click("#hangup-button")
    await page.wait_for_selector("#call-status[data-state=ended]")
