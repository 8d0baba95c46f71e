"""Rolling context: every N caller turns, older items on the Realtime session become one summary
item, so input tokens per response stay flat; the call's own transcript keeps everything."""

from __future__ import annotations

import asyncio
from itertools import pairwise

from realtime import events as ev
from realtime.context import SUMMARY_PREFIX, TranscriptItem, extractive_summary
from realtime.server import RealtimeServer

from .factories import make_session, retail_spec

TURNS = 10


async def _run_turns(server: RealtimeServer, every: int) -> tuple[list[int], object, object]:
    session, rec = make_session(server, retail_spec(summarize_every=every))
    await session.start()
    await rec.wait_type(ev.TranscriptDone, role="assistant")
    for n in range(TURNS):
        mark = len(rec.events)
        await session.send_text(
            f"Question {n} is about opening hours. I would like to know when the shop on the high street opens "
            f"on day {n}, whether the pharmacy counter keeps the same hours, and if parking is free after six."
        )
        await rec.wait_type(ev.Usage, after=mark, timeout=3)
    inputs = [u.tokens["input_tokens"] for u in rec.of(ev.Usage)]
    return inputs, session, rec


async def test_summaries_keep_input_tokens_flat(server: RealtimeServer) -> None:
    _, session, rec = await _run_turns(server, every=2)
    summaries = rec.of(ev.ContextSummarized)
    assert len(summaries) >= 3 and all(s.removed_items > 0 for s in summaries)
    live = server.sessions[0]
    assert sum(1 for e in live.client_events if e["type"] == "conversation.item.delete") >= 6
    summary_items = [i for i in live.items if i.data.get("role") == "system" and SUMMARY_PREFIX in str(i.public())]
    assert len(summary_items) == 1 and live.items[0] is summary_items[0]
    assert len(live.items) <= 8
    assert not live.errors
    await session.close()
    assert len(session.transcript) == 1 + 2 * TURNS  # nothing lost on our side


async def test_growth_without_summaries_and_bound_with_them(server: RealtimeServer) -> None:
    growing, s1, _ = await _run_turns(server, every=0)
    await s1.close()
    flat, s2, _ = await _run_turns(server, every=2)
    await s2.close()
    per_turn = growing[-1] - growing[-2]
    assert all(b - a == per_turn for a, b in pairwise(growing[2:]))  # linear growth
    # With summaries: a sawtooth within a bounded band once they start, well below the growth.
    assert max(flat[5:]) - min(flat[5:]) <= 2.5 * per_turn
    assert growing[-1] - flat[-1] >= 2.5 * per_turn


async def test_custom_summarizer_is_used(server: RealtimeServer) -> None:
    seen: list[list[str]] = []

    async def summarizer(turns: list[TranscriptItem], previous: str) -> str:
        seen.append([t.text for t in turns])
        return f"caller asked {len(turns)} things"

    session, rec = make_session(server, retail_spec(summarize_every=2))
    session.summarizer = summarizer
    await session.start()
    await rec.wait_type(ev.TranscriptDone, role="assistant")
    for n in range(4):
        mark = len(rec.events)
        await session.send_text(f"question {n}")
        await rec.wait_type(ev.Usage, after=mark)
    await rec.wait_type(ev.ContextSummarized)
    assert seen and seen[0][0] == session.transcript[0].text
    assert session.summary.startswith("caller asked")
    await session.close()


async def test_a_restored_summary_adds_only_the_turns_it_does_not_cover(server: RealtimeServer) -> None:
    """A summary records the items it covers: a recreated session's summary adds the older turns
    the summary does not hold, and none it does (even when its words are not the turns' words)."""
    covered: set[str] = set()

    async def summarizer(turns: list[TranscriptItem], previous: str) -> str:
        covered.update(t.item_id for t in turns)
        return f"caller asked {len(turns)} things"

    session, rec = make_session(server, retail_spec(summarize_every=4), restore_recent_items=4)
    session.summarizer = summarizer
    await session.start()
    await rec.wait_type(ev.TranscriptDone, role="assistant")
    for n in range(6):
        mark = len(rec.events)
        await session.send_text(f"question {n}")
        await rec.wait_type(ev.Usage, after=mark)
        if n == 3:
            await rec.wait_type(ev.ContextSummarized)
    condensed = rec.of(ev.ContextSummarized)[-1].summary
    older = session.transcript[:-4]
    uncovered = [i for i in older if i.item_id not in covered]
    assert covered and uncovered  # the summary holds some older turns, not all of them
    assert await session.recreate("max_session_length")
    lines = session.summary.splitlines()
    assert lines[0] == condensed
    assert lines[1:] == (await extractive_summary(uncovered)).splitlines()
    restored = SUMMARY_PREFIX + session.summary
    fresh = server.sessions[-1]
    for _ in range(100):  # the server reads what was sent on its own time
        creates = [e for e in fresh.client_events if e["type"] == "conversation.item.create"]
        if creates:
            break
        await asyncio.sleep(0.02)
    assert creates and creates[0]["item"]["content"][0]["text"] == restored
    await session.close()
