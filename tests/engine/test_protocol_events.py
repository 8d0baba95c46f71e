"""Every raw protocol event in both directions is emitted for the event log, audio elided."""

from __future__ import annotations

import base64
import json

from realtime import events as ev
from realtime.server import RealtimeServer, response

from .factories import make_session, retail_spec


async def test_raw_events_both_directions_with_audio_elided(server: RealtimeServer) -> None:
    server.script(response("Hello there.", ms_per_word=40))
    session, rec = make_session(server, retail_spec(modality="audio"))
    await session.start()
    await rec.wait_type(ev.TranscriptDone, role="assistant")
    frame = bytes(range(256)) * 4
    await session.send_audio(frame)
    appended = await rec.wait_for(lambda e: isinstance(e, ev.ProtocolEvent) and e.payload["type"] == "input_audio_buffer.append")
    full = base64.b64encode(frame).decode()
    assert full not in json.dumps(appended.to_dict()) and "elided" in appended.payload["audio"]
    deltas = rec.protocol("server", "response.output_audio.delta")
    assert deltas and all("elided" in d["delta"] for d in deltas)
    audio = rec.of(ev.AudioOut)
    assert audio and len(audio[0].audio) > 100  # the transport still gets the real bytes
    server_types = {p["type"] for p in (e.payload for e in rec.of(ev.ProtocolEvent) if e.direction == "server")}
    assert {"session.created", "response.created", "response.done"} <= server_types
    assert [e.payload["type"] for e in rec.of(ev.ProtocolEvent) if e.direction == "client"][:2] == ["session.update", "response.create"]
    await session.close()


def test_a_spec_hash_is_computed_once_and_a_changed_copy_gets_its_own() -> None:
    from realtime.spec import ScenarioSpec

    from .factories import retail_spec

    spec = retail_spec()
    assert spec.hash is spec.hash  # computed once: the same object every time
    assert ScenarioSpec.from_dict(spec.to_dict()).hash == spec.hash
    moved = spec.model_copy(update={"failover_provider": "offline"})
    assert moved.hash != spec.hash and moved.to_dict()["failover_provider"] == "offline"
    assert ScenarioSpec.from_dict(moved.to_dict()).hash == moved.hash
