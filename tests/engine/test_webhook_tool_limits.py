"""Webhook tools against hostile endpoints: no https→http downgrade on a redirect, a compressed
body decompressed only up to the cap, and a secret sent only to the hosts it is bound to."""

from __future__ import annotations

import datetime
import functools
import gzip
import ipaddress
import socket
import ssl
import threading
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from realtime.tools import ToolRunner, ToolSecret, secrets_from_environment

from .factories import webhook_tool
from .webhook_server import Reply, Request, WebhookServer, webhook_server

SECRET = "s3cret-value"


def bound(*hosts: str) -> dict[str, ToolSecret]:
    return {"CRM": ToolSecret.bound(SECRET, hosts)}


# --- an https endpoint that redirects to plain http on the same host and port -------------------


@dataclass
class Seen:
    scheme: str
    path: str
    headers: dict[str, str]


@dataclass
class DualEndpoint:
    """One port that speaks TLS or plain HTTP, whichever the client starts with, and records what
    arrived in which form. `/start` (over TLS) redirects to `http://same-host:same-port/ok`."""

    port: int = 0
    seen: list[Seen] = field(default_factory=list)


def _self_signed(tmp: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cafile=str(cert_path))
    return server, client


@pytest.fixture
def dual(tmp_path: Path) -> Iterator[tuple[DualEndpoint, ssl.SSLContext]]:
    server_ctx, client_ctx = _self_signed(tmp_path)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    state = DualEndpoint(port=listener.getsockname()[1])
    stop = threading.Event()

    def handle(conn: socket.socket) -> None:
        conn.settimeout(3)
        scheme = "http"
        if conn.recv(1, socket.MSG_PEEK) == b"\x16":  # a TLS ClientHello
            conn = server_ctx.wrap_socket(conn, server_side=True)
            scheme = "https"
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                return
            data += chunk
        head = data.split(b"\r\n\r\n")[0].decode()
        lines = head.split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        path = lines[0].split(" ")[1]
        # Read the body too: closing a socket with unread data resets it, and the client would see
        # a read error instead of the answer.
        body = data.split(b"\r\n\r\n", 1)[1]
        while len(body) < int(headers.get("content-length", "0") or 0):
            chunk = conn.recv(4096)
            if not chunk:
                break
            body += chunk
        state.seen.append(Seen(scheme, path, headers))
        if path == "/start":
            reply = (f"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{state.port}/ok\r\n"
                     "Content-Length: 0\r\nConnection: close\r\n\r\n")
        else:
            reply = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\nConnection: close\r\n\r\n{\"ok\":true}"
        conn.sendall(reply.encode())
        conn.close()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            try:
                handle(conn)
            except (OSError, ssl.SSLError):
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield state, client_ctx
    finally:
        stop.set()
        thread.join(2)
        listener.close()


async def test_https_to_http_redirect_on_the_same_host_is_refused(dual: tuple[DualEndpoint, ssl.SSLContext]) -> None:
    endpoint, client_ctx = dual
    runner = ToolRunner(secrets=bound("127.0.0.1"), transport=httpx.AsyncHTTPTransport(verify=client_ctx))
    base = f"https://127.0.0.1:{endpoint.port}"
    outcome = await runner.run(webhook_tool("crm", base + "/start", secret_name="CRM"), {}, timeout_s=5)
    assert outcome.error == "the webhook redirected from https to http; refused"
    assert [(s.scheme, s.path) for s in endpoint.seen] == [("https", "/start")]
    assert endpoint.seen[0].headers["x-api-key"] == SECRET  # sent once, encrypted
    assert all(SECRET not in s.headers.values() for s in endpoint.seen if s.scheme == "http")


async def test_https_endpoint_answers_through_tls(dual: tuple[DualEndpoint, ssl.SSLContext]) -> None:
    endpoint, client_ctx = dual
    runner = ToolRunner(secrets=bound("127.0.0.1"), transport=httpx.AsyncHTTPTransport(verify=client_ctx))
    outcome = await runner.run(webhook_tool("crm", f"https://127.0.0.1:{endpoint.port}/ok", secret_name="CRM"), {},
                               timeout_s=5)
    assert outcome.result == {"ok": True}
    assert [(s.scheme, s.path) for s in endpoint.seen] == [("https", "/ok")]


# --- compressed bodies ---------------------------------------------------------------------------

BOMB_BYTES = 32 * 1024 * 1024  # zeros: about 32 KB once gzipped, under the 64 KB cap as sent


def _raw_deflate(data: bytes) -> bytes:
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return raw.compress(data) + raw.flush()


@functools.cache
def compressed_bodies() -> dict[str, tuple[str, bytes]]:
    """path -> (Content-Encoding, body as sent); built once, on first use."""
    return {
        "/bomb": ("gzip", gzip.compress(b"\0" * BOMB_BYTES, compresslevel=9)),
        "/gzip": ("gzip", gzip.compress(b'{"ok": true, "via": "gzip"}')),
        "/deflate": ("deflate", zlib.compress(b'{"ok": true, "via": "deflate"}')),
        "/raw-deflate": ("deflate", _raw_deflate(b'{"ok": true, "via": "raw"}')),
        "/corrupt": ("gzip", b"\x1f\x8b\x08\x00not really gzip"),
        "/brotli": ("br", b"\x0b\x02\x80{}\x03"),
    }


async def _compressed_answer(request: Request, server: WebhookServer) -> Reply:
    encoding, body = compressed_bodies()[request.path]
    return Reply(body=body, headers={"Content-Encoding": encoding})


@pytest_asyncio.fixture
async def compressed() -> AsyncIterator[WebhookServer]:
    async with webhook_server(_compressed_answer) as server:
        yield server


async def test_a_compressed_body_stops_at_the_cap_without_expanding_in_memory(compressed: WebhookServer) -> None:
    assert len(compressed_bodies()["/bomb"][1]) < 64 * 1024
    runner = ToolRunner()
    tracemalloc.start()
    try:
        outcome = await runner.run(webhook_tool("bomb", compressed.base + "/bomb"), {}, timeout_s=10)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert outcome.error == "the webhook's response is larger than 65536 bytes"
    assert peak < 4 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB while reading a {BOMB_BYTES >> 20} MB gzip bomb"


@pytest.mark.parametrize("path, via", [("/gzip", "gzip"), ("/deflate", "deflate"), ("/raw-deflate", "raw")])
async def test_compressed_bodies_under_the_cap_are_read(compressed: WebhookServer, path: str, via: str) -> None:
    outcome = await ToolRunner().run(webhook_tool("z", compressed.base + path), {}, timeout_s=5)
    assert outcome.result == {"ok": True, "via": via}


async def test_corrupt_or_unsupported_encodings_are_tool_errors(compressed: WebhookServer) -> None:
    corrupt = await ToolRunner().run(webhook_tool("z", compressed.base + "/corrupt"), {}, timeout_s=5)
    assert corrupt.error == "the webhook's compressed response is corrupt"
    brotli = await ToolRunner().run(webhook_tool("z", compressed.base + "/brotli"), {}, timeout_s=5)
    assert brotli.error == "the webhook's response uses an unsupported content-encoding (br)"


# --- secrets bound to hosts ----------------------------------------------------------------------


async def _empty_answer(request: Request, server: WebhookServer) -> Reply:
    return Reply(body=b"{}")


@pytest_asyncio.fixture
async def listener() -> AsyncIterator[WebhookServer]:
    async with webhook_server(_empty_answer) as server:
        yield server


async def test_a_secret_is_never_sent_to_a_host_it_is_not_bound_to(listener: WebhookServer) -> None:
    runner = ToolRunner(secrets=bound("crm.example.com"))
    outcome = await runner.run(webhook_tool("crm", listener.base + "/steal", secret_name="CRM"), {}, timeout_s=2)
    assert outcome.error == "the webhook's secret may not be sent to 127.0.0.1; refused"
    assert [r.key for r in listener.requests] == []  # nothing was sent at all


async def test_a_secret_bound_to_no_host_is_never_sent(listener: WebhookServer) -> None:
    runner = ToolRunner(secrets={"CRM": ToolSecret(SECRET)})
    outcome = await runner.run(webhook_tool("crm", listener.base + "/ok", secret_name="CRM"), {}, timeout_s=2)
    assert outcome.error == "the webhook's secret is bound to no host; it is not sent"
    assert [r.key for r in listener.requests] == []


async def test_a_secret_goes_to_its_host_and_port(listener: WebhookServer) -> None:
    for hosts in (("127.0.0.1",), (f"127.0.0.1:{listener.port}",), ("crm.example.com", "127.0.0.1")):
        outcome = await ToolRunner(secrets=bound(*hosts)).run(
            webhook_tool("crm", listener.base + "/ok", secret_name="CRM"), {}, timeout_s=2)
        assert outcome.result == {}, hosts
    wrong_port = await ToolRunner(secrets=bound(f"127.0.0.1:{listener.port + 1}")).run(
        webhook_tool("crm", listener.base + "/ok", secret_name="CRM"), {}, timeout_s=2)
    assert wrong_port.error == "the webhook's secret may not be sent to 127.0.0.1; refused"
    assert [r.key for r in listener.requests] == [SECRET] * 3


def test_secrets_and_their_hosts_are_read_from_the_environment() -> None:
    environ = {
        "TOOL_SECRET_CRM": "crm-key", "TOOL_SECRET_CRM_HOSTS": "crm.example.com, api.crm.example.com:8443",
        "TOOL_SECRET_LEGACY": "no-hosts", "PATH": "/bin",
    }
    secrets = secrets_from_environment(environ)
    assert secrets == {
        "CRM": ToolSecret("crm-key", frozenset({"crm.example.com", "api.crm.example.com:8443"})),
        "LEGACY": ToolSecret("no-hosts", frozenset()),
    }
    assert secrets["CRM"].allows("https://API.crm.example.com:8443/v1")
    assert not secrets["CRM"].allows("https://api.crm.example.com/v1")
    assert not secrets["CRM"].allows("https://crm.example.com.evil.test/")
