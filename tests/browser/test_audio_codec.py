"""The page's G.711 mu-law encoder (in the AudioWorklet) is bit-exact with the server's codec
(realtime.audio, the ITU-T reference), checked for every 16-bit sample in real Chromium."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from realtime.audio import ulaw_decode, ulaw_encode

pytestmark = pytest.mark.browser

WORKLET = Path(__file__).resolve().parents[2] / "static" / "calls" / "call-audio-worklet.js"
CALL_JS = Path(__file__).resolve().parents[2] / "static" / "calls" / "call.js"

# Just enough of the AudioWorkletGlobalScope to evaluate the processor file in a page.
STUBS = "globalThis.sampleRate = 48000; class AudioWorkletProcessor {}; function registerProcessor() {}"


async def test_worklet_mulaw_encoder_matches_reference(browser) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    await page.set_content("<!doctype html><title>codec</title>")
    await page.add_script_tag(content=STUBS + "\n" + WORKLET.read_text())
    encoded = await page.evaluate(
        "() => { const out = []; for (let s = -32768; s < 32768; s += 1) out.push(linearToMulaw(s)); return out; }"
    )
    await context.close()
    reference = np.frombuffer(ulaw_encode(np.arange(-32768, 32768, dtype=np.int16)), dtype=np.uint8)
    assert np.array_equal(np.array(encoded, dtype=np.uint8), reference)


async def test_page_mulaw_decoder_matches_reference(browser) -> None:
    # call.js is a module: take its decoding table out by name and run it alone.
    source = CALL_JS.read_text()
    start = source.index("const MULAW_TABLE")
    end = source.index("})();", start) + len("})();")
    context = await browser.new_context()
    page = await context.new_page()
    await page.set_content("<!doctype html><title>codec</title>")
    table = await page.evaluate(f"() => {{ {source[start:end]} return Array.from(MULAW_TABLE, (x) => Math.round(x * 32768)); }}")
    await context.close()
    assert np.array_equal(np.array(table, dtype=np.int16), ulaw_decode(bytes(range(256))))
