"""Local OpenAI Realtime GA protocol server: the offline engine (the CLI default) and the test peer.

Two roles, two classes:

- `ProtocolServer` (`app`) and `RealtimeSession` (`session`): the production server. A session
  holds the protocol rules, the conversation, the input buffer (at most 15 MiB, as the API caps
  it), VAD, and the responder, transcriber and synthesizer; the server holds live sessions only
  and unexpired client secrets. Event logs are kept only with ``debug=True``.
- ``RealtimeServer`` (`peer`, loaded lazily from here): the test peer, a `ProtocolServer` with
  recording, scripts and faults. Production code never imports it.

Engines: ``python -m realtime.server`` runs the OFFLINE ENGINE (`offline`: Silero VAD, faster-whisper,
the deterministic dialogue policy, piper speech) under daphne (`serve`); ``--engine scripted``
(or ``REALTIME_SERVER_ENGINE=scripted``) answers without models ("I heard: ..."), and
``--test-peer`` serves the test peer (faults from ``--fault`` and ``?fault=`` only then). Offline
flags: ``--workers``, ``--max-sessions``, ``--stt-model`` (env ``REALTIME_OFFLINE_*``, see
`offline`). In-process: ``offline_server(OfflineSettings(...), **server_kwargs)`` from
`realtime.server.offline` (``server_class=RealtimeServer`` for the test peer on the offline
engine); tests construct ``RealtimeServer(...)`` with scripted responders. Every session keeps
its last ``voice_to_voice_ms`` (speech_stopped sent -> first audio delta sent).

Run: ``python -m realtime.server --host 127.0.0.1 --port 8765 [--api-key KEY]
[--max-session-seconds 3600] [--validate] [--debug] [--header-timeout 10] [--idle-timeout 60]
[--test-peer [--fault delay_ms:20]]``. ``--api-key`` (or ``REALTIME_SERVER_API_KEY``) is required
when ``--host`` is not a loopback address. Serves

- ``ws://HOST:PORT/v1/realtime?model=...`` — the Realtime GA protocol. Bearer auth: the server's
  API key (any non-empty key when none is configured, loopback only) or an unexpired ephemeral
  ``ek_...`` secret (also accepted as the browser subprotocol ``openai-insecure-api-key.<key>``);
  otherwise HTTP 401 before the upgrade (403 under daphne, which cannot send a body there).
  Test peer only: query ``fault=...`` injects faults for that session.
- ``POST /v1/realtime/client_secrets`` — mints an ``ek_`` secret (``expires_after.seconds``,
  default 60 s) whose ``session`` config seeds sessions opened with it.
- ``POST /v1/responses`` — non-streaming Responses API; outputs come from ``server.script_text``
  or the text responder.
- ``POST /v1/moderations`` — the moderation API answered by a deterministic lexicon per category
  (`moderation`); ``RealtimeServer(moderation_terms={"violence": ["tomato"]})`` or
  ``server.moderation.flag("violence", "tomato")`` decide what is flagged; ``server.moderation_requests``.
- ``GET /healthz``.

The official client works unchanged::

    client = AsyncOpenAI(base_url=server.base_url, api_key=server.api_key)
    async with client.realtime.connect(model="gpt-realtime-2") as conn: ...

In-process (tests)::

    server = RealtimeServer(api_key="sk-test", max_session_seconds=0.5, validate_outgoing=True)
    await server.start(host="127.0.0.1", port=0)   # server.url, server.base_url, server.port
    server.script(response("Hello there", delay_ms=20), response(function_call("lookup", {"id": 7})))
    server.script_text(response("supervisor says hi"))      # /v1/responses queue
    server.add_transcripts("my order is late")               # transcripts for committed audio
    session = await server.wait_for_session()                # RealtimeSession
    session.script(...); session.add_transcripts(...)        # per-session queues (checked first)
    session.items / .client_events / .server_events / .errors / .responses / .closed / .close_code
    await session.inject_error("server_error"); await session.drop(); session.faults.delay_ms = 5
    server.sessions (all, live and closed); server.validation_failures; server.responses_requests
    await server.stop()

``RealtimeServer(...)`` options: ``api_key``, ``responder`` (fallback when the queues are empty,
default `DefaultResponder`: "I heard: ..."), ``text_responder`` (for /v1/responses),
``transcriber``, ``synthesizer`` (default `ToneSynthesizer`: a quiet tone per word),
``vad_factory`` (default `EnergyVAD`), ``max_session_seconds`` (float; at the limit an ``error``
``session_expired`` then close 1001), ``faults`` (defaults for new sessions),
``validate_outgoing`` (check each server event against the package's union),
``default_model``, ``client_secret_ttl``, ``debug`` (event logs). The server object is itself the
ASGI app. Only the test peer takes ``faults`` and has the scripting and recording methods above.

Responses (`responders`): ``response(*outputs, delay_ms=0, words_per_delta=1, ms_per_word=200)``
where outputs are strings / ``text("...")`` (audio + transcript when the response's modality is
audio, text deltas otherwise) and ``function_call(name, args_dict_or_json, call_id=None)``.
Protocols: ``Responder.respond(ResponseContext) -> ScriptedResponse``,
``Transcriber.transcribe(bytes, fmt) -> str | None``, ``Synthesizer.synthesize(text, fmt,
ms_per_word) -> list[bytes]`` (a chunk per word), ``VoiceActivityDetector.feed/reset`` (`vad`).

Faults (`faults.Faults`, or query ``?fault=drop_after:12,delay_ms:5``): ``drop_after_events``
(abort TCP, client sees 1006), ``delay_ms`` (before every event), ``error_after_events`` +
``error_code`` (inject one ``error``), ``drop_after_audio_deltas`` (drop mid-response),
``close_after_events`` (clean close 1011).

Pluggable parts may go further (the offline engine's do): a VAD with ``feed_async(bytes, fmt,
start_ms, config)`` runs off the loop and may send "pause"/"resume" hints, upon which the session
transcribes early (a transcriber with ``speculative = True``) and lets a responder with
``prefetch(ctx)`` prepare its answer; a synthesizer with ``stream(text, fmt)`` streams
(transcript piece, audio) pairs. Transcription runs beside the session; a response waits for the
transcripts of the items it sees. ``RealtimeServer(max_sessions=N)``: a session past N live ones
gets an ``error`` ``engine_at_capacity`` and close 1013.

Usage in ``response.done``: input = instructions + tools + every conversation item at response
time (text ceil(chars/4); audio 1 token per 100 ms, assistant audio in history counted at the input
rate); output = text tokens + 1 token per 50 ms of produced audio; cached = the leading part of
the input identical to the previous response's input.

Fixtures (`testing`): ``realtime_server`` (validated, fails the test on an invalid server event),
``openai_client``; helpers ``running_server(**kw)``, ``openai_client_for(server)``,
``recv_until(conn, type)``, ``speech_then_silence(ms, ms)``, ``chunks``, ``b64``.
Nothing here imports Django.

Behaviour notes: items are announced with ``conversation.item.added`` / ``.done`` (the GA pair;
``conversation.item.created`` is not sent). Committed user audio is announced with
``transcript: null``; when ``audio.input.transcription`` is set, transcription delta/completed
follow. ``audio_end_ms`` of speech_stopped is the end of the last voiced 10 ms frame; the
committed item holds the whole buffer up to the stop (with turn detection on, audio older than the
15 MiB cap is dropped; with it off, an append past the cap is refused with
``input_audio_buffer_full``). Truncation cuts the item's transcript to the words whose audio was
heard (the API keeps no text the caller did not hear); a truncate of an item still being generated
also stops its audio at once. ``response.cancel`` stops a response's audio at once, without
waiting for the next sentence of speech (a responder or a transcription already running is let
finish first; nothing of its answer is then sent). ``semantic_vad`` maps to the energy VAD (eagerness low/auto/high -> 1000/500/300 ms
of silence). Not implemented yet: MCP tools, images, ``output_audio_buffer.clear`` (WebRTC-only;
refused over WebSocket), streaming /v1/responses.

``idle_timeout_ms`` (server_vad only; ignored under semantic_vad, as the API says): the count
starts when the last response's audio has finished playing, i.e. at ``response.done`` plus the
playback time of the audio that response produced, measured on the caller's audio clock (the
milliseconds of audio written to the input buffer), so tests drive it with silence frames. Speech
resets it (speech_started stops the count; it starts again at speech_stopped's ``audio_end_ms``);
an active response suspends it (it starts again at that response's end). When ``idle_timeout_ms``
of caller audio has been written with no speech: ``input_audio_buffer.timeout_triggered``
(``audio_start_ms`` = where the count started, ``audio_end_ms`` = audio written so far), the
buffer is committed as an ``input_audio`` user item (``input_audio_buffer.committed``; its
transcript is empty: silence is not sent to the transcriber), and a response follows when
``create_response`` is on. Wall-clock fallback when audio stops coming: it fires
``idle_timeout_ms`` after the later of the playback end and the last append (then the offsets are
of what was written, possibly equal). It fires once per response or speech, never before the first
response.
"""

from typing import Any

from realtime.vad import VadConfig

from .app import ProtocolServer
from .moderation import Moderator
from .responders import (
    DefaultResponder,
    FunctionCallOutput,
    Responder,
    ResponseContext,
    ScriptedResponder,
    ScriptedResponse,
    ScriptedTranscriber,
    Synthesizer,
    TextOutput,
    ToneSynthesizer,
    Transcriber,
    function_call,
    response,
    text,
)
from .session import RealtimeSession
from .vad import EnergyVAD, VoiceActivityDetector

__all__ = [
    "DefaultResponder",
    "EnergyVAD",
    "Faults",
    "FunctionCallOutput",
    "Moderator",
    "PeerSession",
    "ProtocolServer",
    "RealtimeServer",
    "RealtimeSession",
    "Responder",
    "ResponseContext",
    "ScriptedResponder",
    "ScriptedResponse",
    "ScriptedTranscriber",
    "Synthesizer",
    "TextOutput",
    "ToneSynthesizer",
    "Transcriber",
    "VadConfig",
    "VoiceActivityDetector",
    "function_call",
    "parse_faults",
    "response",
    "text",
]

_TEST_PEER = {"RealtimeServer": "peer", "PeerSession": "peer", "Faults": "faults", "parse_faults": "faults"}


def __getattr__(name: str) -> Any:
    """The test peer's names, imported only when asked for (production never asks)."""
    if name in _TEST_PEER:
        import importlib

        return getattr(importlib.import_module(f".{_TEST_PEER[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
