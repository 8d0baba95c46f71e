"""The fuzz suite: generated frames and bodies, valid-looking and hostile (wrong types, deep
nesting, huge numbers, wrong order, huge payloads), against every socket and webhook of a real
server process (the production worker, `contactcenter.worker`, as `make run` starts it): the browser call socket, the Twilio media socket, the dashboard list and call
sockets, the Twilio voice webhook and the SIP webhook.

Asserted, for the whole run:
- the server process survives, and no consumer or view dies of an unhandled exception;
- a good call running alongside keeps its agent audio flowing: p99 gap between two audio frames
  < 100 ms, largest gap (less the time its own process was seen not running) < 250 ms; its peer
  runs in another process, `fuzz_peer`, so the fuzzer never delays it (see MAX_GAP_NET_MS);
- every call a fuzzed connection opened has ended once its connection did;
- the server's resident memory grows by less than MEMORY_BOUND_MB over the run.

Hypothesis runs derandomized (a fixed seed per test: the same inputs every run) with no example
database, and without shrinking (each example is a network round trip). Under two minutes.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from websockets.exceptions import WebSocketException
from websockets.sync.client import connect

from calls import tokens
from calls.models import Call
from calls.twilio import compute_signature
from realtime.server.testing import signed_webhook
from tests.browser.conftest import DaphneServer, server_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
TWILIO_TOKEN = "twilio-auth-token-for-fuzzing"
SIP_SECRET = "whsec_" + base64.b64encode(b"sip-webhook-secret-for-fuzzing!!").decode()
MEMORY_BOUND_MB = 120
TOKEN_SLOT = "stream-token-goes-here"
# The good call's audio while the fuzzing runs. Its p99 gap stays under the 100 ms. Its
# largest gap is taken less any time the good call's own process (the peer) was seen not running
# (its event loop late: on a shared machine the peer, not the platform, is then what waits). The big
# gaps measured before (139-340 ms, up to 1.2 s on a loaded machine) came from the server's event
# loop being held: a TLS context built for each SIP webhook and webhook-tool request (CA store
# loading, 50-300 ms with the GIL held), modules loaded on first use, and full garbage collections
# walking every object loaded at start; the worker now loads those at start and freezes them
# (contactcenter/asgi.py). Since then the largest gap measured 42-116 ms (load average 3.5-6 on 2
# cores): under 100 ms in most runs, not in all (call set-up work on the worker's threads holds the
# GIL for tens of ms), so the bound below leaves room for a busy machine and a second bound says
# the call never stalls.
MAX_GAP_NET_MS = 250.0
P99_GAP_MS = 100.0
GOOD_CALL_MIN_S = 13.0
MAX_GAP_MS = 1000.0
FUZZ = settings(max_examples=20, derandomize=True, database=None, deadline=None, phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck))

# --- inputs -------------------------------------------------------------------------------------

scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=40))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=12), inner, max_size=4), max_leaves=12)


def nested(depth: int, opener: str = "[") -> str:
    closer = {"[": "]", "{": "}"}[opener]
    if opener == "{":
        return '{"a":' * depth + "1" + closer * depth
    return opener * depth + closer * depth


hostile_text = st.one_of(
    st.integers(100, 20_000).map(nested),  # deep nesting, past the parser's recursion limit
    st.integers(100, 10_000).map(lambda n: nested(n, "{")),
    st.sampled_from(["1e999", "-Infinity", "NaN", "9" * 4400, '{"type": "text", "text": 1e400}',
                     '{"type": "playback", "item_id": "x", "played_ms": 1e308}', "\x00\x01", "{" * 3, "null",
                     '{"type": {"type": "text"}}', '{"type": ["ptt"], "state": "down"}']),
    st.integers(60_000, 200_000).map(lambda n: json.dumps({"type": "text", "text": "x" * n})),  # huge payloads
    st.text(max_size=200),
)


def as_text(value: Any) -> str:
    return json.dumps(value, allow_nan=True)


def frames(messages: st.SearchStrategy[Any]) -> st.SearchStrategy[list[str | bytes]]:
    """1-6 frames: well-formed messages, hostile text, binary."""
    one = st.one_of(messages.map(as_text), hostile_text, json_values.map(as_text),
                    st.binary(max_size=2000), st.integers(65_000, 140_000).map(lambda n: b"\x01" * n))
    return st.lists(one, min_size=1, max_size=6)


browser_messages = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": st.one_of(st.text(max_size=50), json_values)}),
    st.fixed_dictionaries({"type": st.just("playback"), "item_id": st.one_of(st.text(max_size=20), json_values),
                           "played_ms": st.one_of(st.integers(-10, 2**64), st.floats(), json_values)}),
    st.fixed_dictionaries({"type": st.just("ptt"), "state": st.one_of(st.sampled_from(["down", "up"]), json_values)}),
    st.fixed_dictionaries({"type": st.one_of(st.sampled_from(["hangup", "audio", "call", "event"]), json_values)}),
)


def twilio_messages(token: str) -> st.SearchStrategy[Any]:
    media_format = st.one_of(
        st.just({"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}),
        st.fixed_dictionaries({"encoding": st.one_of(st.just("audio/x-mulaw"), json_values),
                               "sampleRate": st.one_of(st.just(8000), st.just("8000"), json_values),
                               "channels": st.one_of(st.just(1), json_values)}),
        json_values)
    start = st.fixed_dictionaries({
        "event": st.just("start"), "streamSid": st.one_of(st.just("MZfuzz"), json_values),
        "start": st.one_of(st.fixed_dictionaries({
            "callSid": st.one_of(st.just("CAfuzz"), json_values), "mediaFormat": media_format,
            "customParameters": st.one_of(st.just({"token": token}), json_values)}), json_values)})
    return st.one_of(
        start,
        st.fixed_dictionaries({"event": st.just("media"), "media": st.one_of(st.fixed_dictionaries({
            "track": st.one_of(st.just("inbound"), json_values),
            "payload": st.one_of(st.binary(max_size=400).map(lambda b: base64.b64encode(b).decode()), json_values)}),
            json_values)}),
        st.fixed_dictionaries({"event": st.just("dtmf"), "dtmf": st.one_of(
            st.fixed_dictionaries({"digit": st.one_of(st.sampled_from(list("0123456789*#")), json_values)}),
            json_values)}),
        st.fixed_dictionaries({"event": st.just("mark"), "mark": st.one_of(
            st.fixed_dictionaries({"name": json_values}), json_values)}),
        st.fixed_dictionaries({"event": st.one_of(st.sampled_from(["connected", "stop"]), json_values)}),
    )


dashboard_messages = st.fixed_dictionaries({
    "type": st.one_of(st.just("action"), json_values),
    "action": st.one_of(st.sampled_from(["approve", "deny", "whisper", "say", "hangup", "teleport"]), json_values),
    "text": st.one_of(st.text(max_size=60), json_values),
    "tool_call_id": st.one_of(st.text(max_size=20), json_values),
    "request_id": json_values,
})

# --- the run ------------------------------------------------------------------------------------


class Peer:
    """`fuzz_peer` in a subprocess: the upstream and the good call."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.security.fuzz_peer"], cwd=REPO, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=dict(os.environ))

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, "the fuzz peer exited"
        return json.loads(line)

    def write(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def sign_body(body: bytes, webhook_id: str, stamp: str) -> dict[str, str]:
    """Standard Webhooks headers for any body (signed_webhook signs only JSON events)."""
    import hashlib
    import hmac

    digest = hmac.new(base64.b64decode(SIP_SECRET[6:]), f"{webhook_id}.{stamp}.".encode() + body, hashlib.sha256)
    return {"webhook-id": webhook_id, "webhook-timestamp": stamp,
            "webhook-signature": "v1," + base64.b64encode(digest.digest()).decode()}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
def peer() -> Iterator[Peer]:
    process = Peer()
    yield process
    process.close()


def session_cookie(user: Any) -> str:
    from django.test import Client

    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def exchange(url: str, headers: dict[str, str], sent: list[str | bytes], read_s: float = 0.03) -> None:
    """Open a socket, send the frames, read what comes back for a moment, close."""
    try:
        with connect(url, additional_headers=headers, open_timeout=10, close_timeout=2, max_size=None) as ws:
            for frame in sent:
                ws.send(frame)
                try:
                    while True:
                        ws.recv(timeout=read_s)
                except TimeoutError:
                    pass
    except (WebSocketException, OSError):
        pass  # refused or closed by the server: an answer too


def test_fuzz_every_socket_and_webhook(live_demo: Any, django_user_model: Any, peer: Peer, tmp_path: Path) -> None:
    upstream = peer.read()
    caller = django_user_model.objects.create_user("fuzzy", password="fuzz-the-calls-123")
    staff = django_user_model.objects.create_user("sam", password="watch-the-calls-123", is_staff=True)
    ended = Call.objects.create(channel=Call.Channel.BROWSER, status=Call.Status.ENDED, spec={})
    server = DaphneServer("contactcenter.asgi:application", server_env(
        OPENAI_BASE_URL=upstream["base_url"], OPENAI_API_KEY=upstream["api_key"], TWILIO_AUTH_TOKEN=TWILIO_TOKEN,
        OPENAI_WEBHOOK_SECRET=SIP_SECRET, TWILIO_START_TIMEOUT_SECONDS="2", USER_MAX_LIVE_CALLS="100",
        USER_MAX_SOCKETS="100", LOG_LEVEL="WARNING"), tmp_path / "server.log", worker=True)
    try:
        run_fuzz(server, peer, caller, staff, ended)
    finally:
        server.close()


def run_fuzz(server: DaphneServer, peer: Peer, caller: Any, staff: Any, ended_call: Call) -> None:
    ws_base = server.url.replace("http://", "ws://")
    public = server.url  # what Twilio signs: PUBLIC_BASE_URL is unset, so the URL the server sees
    caller_headers = {"Cookie": session_cookie(caller), "Origin": server.url}
    staff_headers = {"Cookie": session_cookie(staff), "Origin": server.url}
    started_at = time.monotonic()

    # The good call: the peer opens it and measures its audio until told to stop.
    good_token = tokens.browser_token(user_id=caller.pk, scenario="retail", codec="pcm16")
    peer.write(json.dumps({"ws_url": f"{ws_base}/ws/calls/browser/?token={good_token}",
                           "cookie": caller_headers["Cookie"], "origin": server.url}))
    started = peer.read()
    assert started.get("started"), started
    good_call_id = started["call_id"]
    memory_before = rss_mb(server.proc.pid)
    http = httpx.Client(base_url=server.url, timeout=10)
    # Ringing calls whose stream was opened without the token in its URL: unless a valid start
    # brings the token, no connection ever knew the call; the reaper ends those (checked below).
    unclaimed: set[int] = set()

    def ringing_call() -> str:
        """A signed voice webhook: a ringing call and its media stream URL (with the token)."""
        params = {"CallSid": "CA" + uuid.uuid4().hex, "From": "+447700900123", "To": "+15550001111",
                  "AccountSid": "AC" + "c" * 32, "CallStatus": "ringing"}
        path = "/twilio/voice?scenario=retail"
        reply = http.post(path, data=params, headers={
            "X-Twilio-Signature": compute_signature(TWILIO_TOKEN, public + path, params.items())})
        assert reply.status_code == 200, reply.text
        match = re.search(r'url="wss?://[^/"]+(/twilio/media[^"]*)"', reply.text)
        assert match, reply.text
        return ws_base + match.group(1).replace("&amp;", "&")

    # 1. The browser call socket.
    @FUZZ
    @given(sent=frames(browser_messages), token_kind=st.sampled_from(["valid", "valid", "valid", "garbage", "other"]))
    def browser_socket(sent: list[str | bytes], token_kind: str) -> None:
        token = {"valid": lambda: tokens.browser_token(user_id=caller.pk, scenario="retail", codec="pcm16"),
                 "garbage": lambda: "x" * 40,
                 "other": lambda: tokens.browser_token(user_id=staff.pk, scenario="retail", codec="pcmu")}[token_kind]()
        exchange(f"{ws_base}/ws/calls/browser/?token={token}", caller_headers, sent)

    # 2. The Twilio media socket: with a ringing call's token in the URL, in the start, or none.
    @FUZZ
    @given(data=st.data(), where=st.sampled_from(["url", "start", "none"]))
    def twilio_socket(data: st.DataObject, where: str) -> None:
        # Draw first, then make the call: an example Hypothesis abandons mid-draw leaves no call behind.
        sent = data.draw(st.lists(st.one_of(twilio_messages(TOKEN_SLOT).map(as_text), hostile_text), min_size=1,
                                  max_size=6))
        url = ringing_call() if where != "none" else f"{ws_base}/twilio/media"
        token = url.split("token=", 1)[1] if "token=" in url else "forged"
        if where == "start":
            url = url.split("?", 1)[0]
            unclaimed.add(tokens.read_twilio_stream_token(token).call_id)
        exchange(url, {}, [frame.replace(TOKEN_SLOT, token) for frame in sent])

    # 3. The dashboard list socket and 4. the dashboard call socket (an ended call, or none).
    @FUZZ
    @given(sent=frames(dashboard_messages), path=st.sampled_from(["list", "call", "missing"]),
           last_seq=st.one_of(st.integers(-(2**70), 2**70).map(str), st.text(max_size=10)))
    def dashboard_sockets(sent: list[str | bytes], path: str, last_seq: str) -> None:
        query = urlencode({"last_seq": last_seq})
        url = {"list": f"{ws_base}/ws/dashboard/",
               "call": f"{ws_base}/ws/dashboard/calls/{ended_call.pk}/?{query}",
               "missing": f"{ws_base}/ws/dashboard/calls/{2**40}/?{query}"}[path]
        exchange(url, staff_headers, sent)

    # 5. The Twilio voice webhook: signed or not, plausible or hostile parameters.
    @FUZZ
    @given(params=st.dictionaries(st.sampled_from(["CallSid", "From", "To", "AccountSid", "CallStatus", "Digits"])
                                  | st.text(max_size=10), st.text(max_size=60), max_size=8),
           signed=st.booleans(), query=st.text(max_size=30))
    def voice_webhook(params: dict[str, str], signed: bool, query: str) -> None:
        path = "/twilio/voice?" + urlencode({"scenario": query or "retail"})
        headers = {"X-Twilio-Signature": compute_signature(TWILIO_TOKEN, public + path, params.items())
                   if signed else base64.b64encode(os.urandom(20)).decode()}
        reply = http.post(path, data=params, headers=headers)
        assert reply.status_code < 500, (reply.status_code, reply.text[:300])
        match = re.search(r'url="wss?://[^/"]+(/twilio/media[^"]*)"', reply.text)
        if match:  # a call was created: Twilio connects, then hangs up at once
            exchange(ws_base + match.group(1).replace("&amp;", "&"), {}, [])

    # 6. The SIP webhook: signed events of every shape, unsigned and malformed bodies.
    sip_events = st.one_of(
        st.fixed_dictionaries({"type": st.one_of(st.just("realtime.call.incoming"), json_values),
                               "id": st.text(max_size=20), "created_at": st.one_of(st.integers(0, 2**40), json_values),
                               "data": st.one_of(st.fixed_dictionaries({
                                   "call_id": st.one_of(st.text(max_size=30), json_values),
                                   "sip_headers": st.one_of(st.lists(st.fixed_dictionaries({
                                       "name": json_values, "value": json_values}), max_size=4), json_values)}),
                                   json_values)}),
        json_values)

    @FUZZ
    @given(event=sip_events, how=st.sampled_from(["signed", "signed", "unsigned", "garbage", "deep"]))
    def sip_webhook(event: Any, how: str) -> None:
        body, headers = signed_webhook(event if isinstance(event, dict) else {"value": event}, SIP_SECRET)
        if how == "unsigned":
            headers = {}
        elif how == "garbage":
            body = os.urandom(64)
        elif how == "deep":
            body = nested(50_000).encode()
            headers = sign_body(body, headers["webhook-id"], headers["webhook-timestamp"])
        reply = http.post("/openai/webhook", content=body, headers={**headers, "Content-Type": "application/json"})
        # An answer the view chose (a 500 it sends on purpose is JSON: OpenAI then retries), never a crash.
        assert reply.status_code < 500 or reply.headers.get("content-type") == "application/json", (
            reply.status_code, reply.text[:300])

    for target in (browser_socket, twilio_socket, dashboard_sockets, voice_webhook, sip_webhook):
        began, cpu = time.monotonic(), cpu_seconds(server.proc.pid)
        target()
        print(f"fuzz {target.__name__}: {time.monotonic() - began:.1f} s, server cpu "
              f"{cpu_seconds(server.proc.pid) - cpu:.1f} s, ended at {time.time():.2f}, load {os.getloadavg()[0]:.1f}")
        assert server.proc.poll() is None, f"the server died during {target.__name__}:\n{server.output()}"

    # The good call runs for at least GOOD_CALL_MIN_S (a faster server fuzzes in less time, and
    # an agent turn takes about 3 s): long enough for the turns it is checked on.
    time.sleep(max(0.0, started_at + GOOD_CALL_MIN_S - time.monotonic()))
    peer.write("stop")
    result = peer.read()
    fuzz_seconds = time.monotonic() - started_at
    http.close()

    # Every call a fuzzed connection opened ends with it (a Twilio stream that never started
    # ends its ringing call too); the good call ended with its hang-up.
    deadline = time.monotonic() + 15
    while (open_calls := list(Call.objects.exclude(status=Call.Status.ENDED).exclude(pk__in=unclaimed).values_list(
            "pk", "channel", "status"))) and time.monotonic() < deadline:
        time.sleep(0.2)
    orphans = set(Call.objects.filter(pk__in=unclaimed).exclude(status=Call.Status.ENDED).values_list(
        "status", flat=True))
    assert orphans <= {Call.Status.RINGING}, orphans  # never answered: no stream carried them
    from django.test import override_settings

    from calls.tasks import reap_lost_calls

    with override_settings(CALL_HEARTBEAT_TIMEOUT_SECONDS=0):
        reap_lost_calls()
    assert not Call.objects.filter(pk__in=unclaimed).exclude(status=Call.Status.ENDED).exists()
    print(f"fuzz: calls ended after {time.monotonic() - deadline + 15:.1f} s")
    memory_after = rss_mb(server.proc.pid)
    log = server.output()
    print(f"fuzz: {fuzz_seconds:.1f} s, {Call.objects.count()} calls, good call {result}, "
          f"server RSS {memory_before:.0f} -> {memory_after:.0f} MB")

    assert server.proc.poll() is None, log
    assert "Exception inside application" not in log and "Exception in ASGI application" not in log, log
    assert "Traceback" not in log, log
    assert not open_calls, f"calls left open: {open_calls}\n{log}"
    assert result["ended_early"] is False and result["call_id"] == good_call_id, result
    assert result["audio_frames"] > 100 and result["turns"] >= 3, result
    assert result["p99_gap_ms"] < P99_GAP_MS, result
    assert result["max_gap_net_ms"] < MAX_GAP_NET_MS, result
    assert result["max_gap_ms"] < MAX_GAP_MS, result
    assert memory_after - memory_before < MEMORY_BOUND_MB, (memory_before, memory_after)
