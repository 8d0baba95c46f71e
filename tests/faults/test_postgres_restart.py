"""PostgreSQL restarted in the middle of a call, on the stack users run (`scripts/stack`), with its
own throwaway PostgreSQL cluster (never the shared server) so it can be stopped and started:

- the call goes on: the agent's answer keeps streaming through the stop, and a conversation turn
  made while the database is down is answered;
- the database stays down longer than the heartbeat timeout, yet the reaper, once it can read again,
  does not end the call as lost: its worker is alive and its heartbeat lands again;
- the records made while the database was down are held and written once it is back (the
  transcript has the turn), and the call ends normally when the caller hangs up.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.stack import Phone, Stack, free_port, place_twilio_call

from .conftest import stack_env

pytestmark = [pytest.mark.slow]

DOWN_SECONDS = 7.0  # longer than the heartbeat timeout the stack runs with here (4 s)
LONG = " ".join(["one", "two", "three", "four", "five", "six", "seven", "eight"] * 12)


class Cluster:
    """A private PostgreSQL cluster in a temporary directory, on its own port."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        pg_ctl = found[-1] if found else shutil.which("pg_ctl")
        if not pg_ctl:
            pytest.skip("no PostgreSQL server binaries (pg_ctl, initdb) to run a private cluster")
        self.bin = Path(pg_ctl).parent
        self.root = Path(tempfile.mkdtemp(prefix="cc-pg-"))
        self.as_owner: list[str] = []
        if os.geteuid() == 0:  # the server refuses to run as root: run it as the postgres user
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip("running as root without a postgres user to run a private cluster")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self.as_owner = ["runuser", "-u", "postgres", "--"]
        self.data, self.port = self.root / "pgdata", free_port()
        self.sockets = self.root / "pgsock"
        subprocess.run([*self.as_owner, "mkdir", str(self.sockets)], check=True)
        subprocess.run([*self.as_owner, str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                        "-A", "trust", "--no-sync", "-E", "UTF8"], check=True, capture_output=True)
        self.start()
        subprocess.run([str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                        "cc"], check=True, capture_output=True)
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/cc"

    def _ctl(self, *args: str) -> None:
        subprocess.run([*self.as_owner, str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "pg.log"),
                        "-w", *args], check=True, capture_output=True)

    def start(self) -> None:
        self._ctl("-o", f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def stop(self) -> None:
        self._ctl("-m", "fast", "stop")

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.url) as db:
            return list(db.execute(sql, params).fetchall())


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    running = Cluster()
    try:
        yield running
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            running.stop()
        shutil.rmtree(running.root, ignore_errors=True)


def test_postgres_restarted_mid_call(cluster: Cluster, threaded_realtime_server: Any, tmp_path: Path) -> None:
    server = threaded_realtime_server
    env = stack_env(threaded_realtime_server, DATABASE_URL=cluster.url, CALL_HEARTBEAT_SECONDS="1",
                    CALL_HEARTBEAT_TIMEOUT_SECONDS="4", CALL_REAPER_SECONDS="1")
    stack = Stack(env, tmp_path / "stack.log").start()

    async def scenario() -> dict[str, Any]:
        sid, path = await asyncio.to_thread(place_twilio_call, stack.port)
        phone = await Phone(stack.port, sid, path).open()
        try:
            await phone.quiet()  # the greeting
            # A long answer is streaming when the database stops.
            server.call(_script(server.server, LONG))
            await phone.say()
            streaming = len(phone.arrivals)
            while len(phone.arrivals) <= streaming + 10:
                await asyncio.sleep(0.02)
            await asyncio.to_thread(cluster.stop)
            stopped = time.monotonic()
            await asyncio.sleep(1.0)
            gap = phone.max_gap_ms(stopped - 0.3, time.monotonic())
            await phone.quiet(timeout=30)
            # A turn while the database is down: heard and answered.
            server.call(_add_transcripts(server.server, "my order number is 4417"))
            heard = len(phone.arrivals)
            await phone.say()
            deadline = time.monotonic() + 10
            while len(phone.arrivals) <= heard and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            answered_while_down = len(phone.arrivals) > heard
            await phone.quiet()
            await asyncio.sleep(max(0.0, DOWN_SECONDS - (time.monotonic() - stopped)))
            down_for = time.monotonic() - stopped
            await asyncio.to_thread(cluster.start)
            # The reaper runs every second and needs the heartbeat timeout (4 s) of silence: give it
            # several chances to get this wrong.
            await asyncio.sleep(8.0)
            alive_after = not phone.closed.is_set()
            status = await asyncio.to_thread(
                cluster.query, "SELECT status, end_reason FROM calls_call WHERE external_id = %s", sid)
            return {"sid": sid, "gap": gap, "answered_while_down": answered_while_down, "down_for": down_for,
                    "alive_after": alive_after, "status_after": status[0]}
        finally:
            await phone.hang_up()

    try:
        result = asyncio.run(scenario())
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            ended = cluster.query("SELECT status, end_reason, id FROM calls_call WHERE external_id = %s",
                                  result["sid"])[0]
            if ended[0] == "ended":
                break
            time.sleep(0.2)
        turns = cluster.query("SELECT role, text FROM calls_transcriptitem WHERE call_id = %s "
                              "ORDER BY created_at, id", ended[2])
    finally:
        stack.stop()
    log = (tmp_path / "stack.log").read_text(errors="replace")

    assert result["down_for"] >= DOWN_SECONDS
    assert result["gap"] < 100, f"audio gap of {result['gap']:.0f} ms when the database stopped"
    assert result["answered_while_down"], "the agent did not answer while the database was down"
    assert result["alive_after"], "the call was cut after the database came back"
    assert result["status_after"][0] != "ended", f"the call was ended: {result['status_after']}"
    assert "heartbeat not written" in log  # the failure was seen, and the call outlived it
    assert ended[:2] == ("ended", "caller_hung_up"), ended
    assert ("user", "my order number is 4417") in turns, turns
    assert ("assistant", "I heard: my order number is 4417") in turns, turns
    assert "holding the call's records" in log and "records written again" in log


async def _add_transcripts(server: Any, text: str) -> None:
    server.add_transcripts(text)


async def _script(server: Any, text: str) -> None:
    from realtime.server import response

    server.script(response(text, delay_ms=20, ms_per_word=20))

