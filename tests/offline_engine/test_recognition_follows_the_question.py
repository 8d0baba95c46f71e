"""The offline transcriber is prompted with the question the agent just asked (and a placeholder
answer of that parameter's type), taken from the session's own conversation and tools."""

from __future__ import annotations

import base64

from realtime.offline import hints
from realtime.server import RealtimeServer
from realtime.server.testing import openai_client_for

from .speech import Caller, frames

TOOLS = [
    {
        "type": "function",
        "name": "verify_member",
        "description": "Verify the member before any change.",
        "parameters": {
            "type": "object",
            "properties": {
                "birth_date": {"type": "string", "format": "date", "description": "The member's date of birth"},
            },
            "required": ["birth_date"],
        },
    }
]
QUESTION = "Thanks. Could you please tell me your date of birth?"


async def test_the_pending_question_biases_recognition(server: RealtimeServer, caller: Caller) -> None:
    fmt = "audio/pcmu"
    client = openai_client_for(server)
    async with client.realtime.connect(model="gpt-realtime-2") as conn:
        await conn.session.update(session={
            "type": "realtime",
            "instructions": "You are the membership desk.",
            "tools": TOOLS,
            "audio": {
                "input": {"format": {"type": fmt}, "transcription": {"model": "gpt-4o-mini-transcribe"},
                          "turn_detection": {"type": "server_vad", "silence_duration_ms": 500, "create_response": False}},
                "output": {"format": {"type": fmt}},
            },
        })
        await conn.conversation.item.create(item={
            "type": "message", "role": "assistant", "content": [{"type": "output_text", "text": QUESTION}],
        })
        speech = caller.utterance("It is the fourth of July, nineteen ninety.", fmt, lead_ms=300, tail_ms=900)
        for frame in frames(speech, fmt, 40):
            await conn.input_audio_buffer.append(audio=base64.b64encode(frame).decode())
        async for event in conn:
            if event.type == "conversation.item.input_audio_transcription.completed":
                transcript = event.transcript
                break
    prompt = server.deps.transcriber.last_prompt  # type: ignore[attr-defined]
    assert prompt.startswith(QUESTION) and hints.SAMPLE_DATE in prompt, prompt
    assert "1990" in transcript and "July" in transcript, transcript
