"""The official openai client connects unchanged and gets session.created."""

from realtime.server import RealtimeServer, response
from realtime.server.testing import recv_until


async def test_official_client_connects_and_converses(realtime_server: RealtimeServer, openai_client) -> None:
    realtime_server.script(response("Hello there friend"))
    async with openai_client.realtime.connect(model="gpt-realtime-2") as conn:
        first = await conn.recv()
        assert first.type == "session.created"
        assert first.session.type == "realtime"
        await conn.session.update(session={"type": "realtime", "output_modalities": ["audio"], "instructions": "Be brief."})
        updated = await recv_until(conn, "session.updated")
        assert updated[-1].session.instructions == "Be brief."
        await conn.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
        )
        await conn.response.create()
        events = await recv_until(conn, "response.done")
        done = events[-1]
        assert done.response.status == "completed"
        transcript = next(e for e in events if e.type == "response.output_audio_transcript.done").transcript
        assert transcript == "Hello there friend"
        assert done.response.usage.output_token_details.audio_tokens == 12  # 600 ms / 50
    session = realtime_server.sessions[0]
    assert [i.data["role"] for i in session.items] == ["user", "assistant"]
