"""The connection's typed model events: one meaning, one type, whichever wire event carried it."""

from __future__ import annotations

import base64

from realtime import model_events as me


def test_a_function_call_parses_the_same_from_either_event() -> None:
    args = {"call_id": "c1", "name": "lookup", "arguments": '{"id": 1}'}
    from_arguments = me.parse({"type": "response.function_call_arguments.done", "item_id": "i", **args})
    from_item = me.parse({"type": "response.output_item.done", "item": {"type": "function_call", "id": "i", **args}})
    assert from_arguments == from_item == me.FunctionCallDone(call_id="c1", name="lookup", arguments='{"id": 1}')
    assert me.parse({"type": "response.output_item.done", "item": {"type": "message", "id": "m"}}) is None


def test_events_no_session_acts_on_parse_to_none() -> None:
    assert me.parse({"type": "rate_limits.updated", "rate_limits": []}) is None
    assert me.parse({}) is None
    assert me.parse({"type": "conversation.item.added", "item": {}}) is None  # no id: nothing to track


def test_fields_are_read_once_with_their_meaning() -> None:
    audio = base64.b64encode(b"\x01\x02").decode()
    delta = me.parse({"type": "response.output_audio.delta", "item_id": "a", "content_index": 0, "delta": audio})
    assert delta == me.AudioDelta(item_id="a", content_index=0, data=b"\x01\x02", base64=audio)
    error = me.parse({"type": "error", "error": {"type": "invalid_request_error", "message": "bad", "event_id": "e"}})
    assert error == me.ModelError(code="invalid_request_error", message="bad", event_id="e")
    done = me.parse({"type": "response.done", "response": {"id": "r", "status": "cancelled", "output": [
        {"type": "message", "id": "m1"}, {"type": "function_call", "id": "f1"}]}})
    assert isinstance(done, me.ResponseDone)
    assert (done.output_ids, done.called_tool, done.status) == (frozenset({"m1", "f1"}), True, "cancelled")
    text = me.parse({"type": "response.output_text.done", "item_id": "t", "text": "Hi."})
    heard = me.parse({"type": "response.output_audio_transcript.done", "item_id": "t", "transcript": "Hi."})
    assert text == heard == me.OutputTextDone(item_id="t", text="Hi.")
    added = me.parse({"type": "conversation.item.added", "item": {
        "id": "u", "type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello"}]}})
    assert added == me.ItemAdded(item_id="u", kind="message", role="user", text="hello")
    stopped = me.parse({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 1200})
    assert stopped == me.SpeechStopped(audio_end_ms=1200.0)
