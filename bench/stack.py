"""The multi-process stack (`scripts/stack`) for the fault tests and `python -m bench.faults`: start it
as users do, find its processes, place phone calls on it, and stop it.

Nothing here stands in for a component: `scripts/stack` runs migrations, the demo loader and
`manage.py runcontactcenter` (daphne workers sharing one socket, a Celery worker and beat) against
the Redis and PostgreSQL in the environment; the upstream is whatever OPENAI_BASE_URL names.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

ROOT = Path(__file__).resolve().parents[1]
PUBLIC = "https://cc.example.com"
TWILIO_TOKEN = "twilio-auth-token-for-the-stack"

#: Test and bench calls come in from a few caller numbers within minutes, so every test or bench
#: server raises the Twilio voice rate limits out of the way (the limits' own tests set them low).
RAISED_RATE_LIMITS = {"TWILIO_VOICE_CALLER_RATE_LIMIT": 100_000, "TWILIO_VOICE_RATE_LIMIT": 100_000}


def with_raised_rate_limits(env: dict[str, str]) -> dict[str, str]:
    """``env`` (a process environment) with the raised rate limits wherever it does not set them."""
    return {**{name: str(value) for name, value in RAISED_RATE_LIMITS.items()}, **env}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Stack:
    """`scripts/stack` in a subprocess on a free port, its output in ``log_path``."""

    def __init__(self, env: dict[str, str], log_path: Path, workers: int = 2) -> None:
        self.env = with_raised_rate_limits(
            {**env, "RUN_WORKERS": str(workers), "TWILIO_AUTH_TOKEN": TWILIO_TOKEN, "PUBLIC_BASE_URL": PUBLIC})
        self.env.pop("TEST_DATABASE_NAME", None)
        self.log_path = log_path
        self.workers = workers
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180.0) -> Stack:
        self.port = free_port()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([str(ROOT / "scripts" / "stack")], cwd=ROOT,
                                         env={**self.env, "RUN_PORT": str(self.port)},
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while b"Press Ctrl-C to stop." not in self.log_path.read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the stack did not start:\n{self.log_tail()}")
            time.sleep(0.2)
        return self

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None

    # --- its processes ---------------------------------------------------------------------------

    def children(self, marker: str) -> list[int]:
        """Direct children of the run command whose command line contains ``marker``."""
        assert self.proc is not None
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except (OSError, IndexError, ValueError):
                continue
            if ppid == self.proc.pid and marker in cmdline:
                found.append(int(entry.name))
        return sorted(found)

    def daphne_pids(self) -> list[int]:
        return self.children("contactcenter.worker")

    def celery_worker_pid(self) -> int:
        return self.children("celery -A contactcenter worker")[0]

    def pid_holding(self, client_port: int) -> int | None:
        """The daphne worker holding the server end of the connection from ``client_port``."""
        inodes = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                lines = Path(table).read_text().splitlines()[1:]
            except OSError:
                continue
            for line in lines:
                fields = line.split()
                local, remote, inode = fields[1], fields[2], fields[9]
                if int(local.rsplit(":", 1)[1], 16) == self.port and int(remote.rsplit(":", 1)[1], 16) == client_port:
                    inodes.add(f"socket:[{inode}]")
        for pid in self.daphne_pids():
            try:
                for fd in Path(f"/proc/{pid}/fd").iterdir():
                    try:
                        if os.readlink(fd) in inodes:
                            return pid
                    except OSError:
                        continue
            except OSError:
                continue
        return None


# --- phone calls on it ---------------------------------------------------------------------------------


def place_twilio_call(port: int, scenario: str = "retail") -> tuple[str, str]:
    """The signed voice webhook; the call's Twilio sid and its media stream path."""
    import httpx

    from calls.twilio import compute_signature

    call_sid = "CA" + uuid.uuid4().hex
    params = {"CallSid": call_sid, "AccountSid": "AC" + "c" * 32, "From": "+447700900123", "To": "+15550001111",
              "CallStatus": "ringing", "Direction": "inbound"}
    path = f"/twilio/voice?scenario={scenario}"
    signature = compute_signature(TWILIO_TOKEN, PUBLIC + path, params.items())
    answer = httpx.post(f"http://127.0.0.1:{port}{path}", data=params, headers={"X-Twilio-Signature": signature},
                        timeout=20)
    answer.raise_for_status()
    stream = ElementTree.fromstring(answer.content).find("./Connect/Stream")
    if stream is None:
        raise RuntimeError(f"no stream in the answer: {answer.text[:300]}")
    return call_sid, re.sub(r"^wss://cc\.example\.com", "", stream.get("url", ""))


class Phone:
    """A Twilio Media Streams client: sends the caller's mu-law audio, keeps when each agent frame came."""

    def __init__(self, port: int, call_sid: str, path: str) -> None:
        self.port, self.call_sid, self.path = port, call_sid, path
        self.stream_sid = "MZ" + uuid.uuid4().hex
        self.arrivals: list[float] = []  # monotonic time of each agent audio frame
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.ws: Any = None
        self.client_port = 0
        self._reader: asyncio.Task[None] | None = None

    async def open(self) -> Phone:
        import websockets

        self.ws = await websockets.connect(f"ws://127.0.0.1:{self.port}{self.path}", max_size=2**20)
        self.client_port = int(self.ws.local_address[1])
        await self.ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await self.ws.send(json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": self.stream_sid, "start": {
            "accountSid": "AC" + "c" * 32, "streamSid": self.stream_sid, "callSid": self.call_sid,
            "tracks": ["inbound"], "customParameters": {},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}))
        self._reader = asyncio.ensure_future(self._read())
        return self

    async def _read(self) -> None:
        import websockets

        try:
            async for message in self.ws:
                if isinstance(message, str) and message.startswith('{"event":"media"'):
                    self.arrivals.append(time.monotonic())
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.closed.set()

    async def quiet(self, ms: float = 400, timeout: float = 20.0) -> None:
        """Until the agent has said something and then been silent for ``ms``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.arrivals and time.monotonic() - self.arrivals[-1] > ms / 1000:
                return
            await asyncio.sleep(0.05)
        raise TimeoutError(f"call {self.call_sid}: the agent never finished speaking")

    async def say(self, speech_ms: int = 600, silence_ms: int = 900, realtime: bool = False) -> None:
        """A loud tone (speech to the VAD), then silence, in 20 ms media frames."""
        from realtime import audio

        data = (audio.tone(speech_ms, audio.PCMU, amplitude=0.3, frequency=300.0)
                + audio.silence(silence_ms, audio.PCMU))
        for offset in range(0, len(data), 160):
            payload = base64.b64encode(data[offset:offset + 160]).decode("ascii")
            await self.ws.send(json.dumps({"event": "media", "streamSid": self.stream_sid,
                                           "media": {"track": "inbound", "payload": payload}}))
            if realtime:
                await asyncio.sleep(0.02)

    async def hang_up(self) -> None:
        if self.ws is not None and not self.closed.is_set():
            with contextlib.suppress(Exception):  # the socket may already be gone
                await self.ws.send(json.dumps({"event": "stop", "streamSid": self.stream_sid}))
                await asyncio.wait_for(self.closed.wait(), 10)
            await self.ws.close()

    def max_gap_ms(self, start: float, end: float) -> float:
        """The longest wait between agent frames that arrived between ``start`` and ``end``."""
        times = [t for t in self.arrivals if start <= t <= end]
        return max(((b - a) * 1000 for a, b in itertools.pairwise(times)), default=0.0)
