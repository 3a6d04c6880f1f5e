"""Request-body limits on a REAL server process: counted while reading whatever Content-Length
says (or without one), for plain, gzip and zstd bodies, with the decoded size counted too; and a
64 MB body leaves the server's memory alone, with or without a valid token."""

from __future__ import annotations

import gzip
import json
import socket
import tempfile
import threading
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
import zstandard

from tests.server.helpers import new_name, new_ward
from tests.support.server_proc import ApiServer, sqlite_url, start_api_server

LIMIT = 8 * 1024 * 1024  # the test server's body limit (COMMUNE_MAX_BODY_BYTES)
BIG = 64 * 1024 * 1024
PIECE = 256 * 1024
IO_TIMEOUT_S = 30


@pytest.fixture(scope="module")
def api() -> Iterator[ApiServer]:
    with tempfile.TemporaryDirectory(prefix="commune-bodies-") as tmp:
        server = start_api_server(
            sqlite_url(Path(tmp)), Path(tmp), extra_env={"COMMUNE_MAX_BODY_BYTES": str(LIMIT)}
        )
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="module")
def officer(api):
    return api.enrol(new_name("officer"), "officer", [new_ward()])


def _zeros(total: int) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        piece = min(PIECE, total - sent)
        sent += piece
        yield bytes(piece)


def _gzip_stream(plain: Iterable[bytes], level: int) -> Iterator[bytes]:
    """A gzip stream made while it is sent (level 0: as long as the plain bytes)."""
    packer = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    for piece in plain:
        out = packer.compress(piece)
        if out:
            yield out
    yield packer.flush()


def _send(
    api: ApiServer,
    path: str,
    pieces: Iterable[bytes],
    headers: dict[str, str],
    content_length: int | None = None,
    method: str = "POST",
) -> tuple[int, dict]:
    """A request over a raw socket, chunked unless a Content-Length is given (which may lie). The
    answer is read while sending, since the server answers 413 and closes before the end."""
    sock = socket.create_connection(("127.0.0.1", api.port), timeout=IO_TIMEOUT_S)
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{api.port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append(
        f"Content-Length: {content_length}"
        if content_length is not None
        else "Transfer-Encoding: chunked"
    )
    answer = bytearray()
    done = threading.Event()

    def read() -> None:
        try:
            while not _complete(answer):
                data = sock.recv(65536)
                if not data:
                    break
                answer.extend(data)
        except OSError:
            pass
        finally:
            done.set()

    reader = threading.Thread(target=read, daemon=True)
    try:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        reader.start()
        for piece in pieces:
            if done.is_set():
                break
            if content_length is None:
                piece = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
            sock.sendall(piece)
        if content_length is None and not done.is_set():
            sock.sendall(b"0\r\n\r\n")
    except OSError:
        pass  # the server stopped reading: its answer is already on the way
    reader.join(IO_TIMEOUT_S)
    sock.close()
    head, _, body = bytes(answer).partition(b"\r\n\r\n")
    assert head, "no answer"
    json_answer = b"application/json" in head.lower()
    return int(head.split()[1]), json.loads(body) if json_answer else {"text": body.decode()}


def _complete(answer: bytearray) -> bool:
    head, sep, body = bytes(answer).partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def _json_push() -> bytes:
    return json.dumps({"mutations": []}).encode()


def _auth(device) -> dict[str, str]:
    return {"Authorization": f"Bearer {device.token}"} if device else {}


@pytest.mark.parametrize("with_token", [True, False])
@pytest.mark.parametrize("encoding", ["identity", "gzip", "zstd"])
def test_a_body_past_the_limit_without_content_length_is_refused(
    api, officer, with_token, encoding
):
    """413 at the limit for a valid token; without one the reading stops at 1 MiB (read or
    decoded) with 401, long before the limit."""
    plain = _zeros(LIMIT + PIECE)
    headers = {"Content-Type": "application/json", **_auth(officer if with_token else None)}
    if encoding == "gzip":
        pieces: Iterable[bytes] = _gzip_stream(plain, 0)  # the stream itself is past the limit
    elif encoding == "zstd":
        # a stream far below the limit that decodes past it: the decoded size is counted
        pieces = [zstandard.ZstdCompressor().compress(bytes(LIMIT + PIECE))]
    else:
        pieces = plain
    if encoding != "identity":
        headers["Content-Encoding"] = encoding
    status, body = _send(api, "/sync/push", pieces, headers)
    if with_token:
        assert status == 413, body
        assert body["error"]["code"] == "too_large"
    else:
        assert status == 401, body
        assert body["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("token", [None, "not-a-token", "revoked"])
def test_past_the_memory_spool_only_a_good_token_is_read_further(api, token):
    """Past 1 MiB the body is read on only for a valid token: the rest of a 64 MB body from an
    outsider is never stored (401, not 413 after the limit was written to disk)."""
    if token == "revoked":
        victim = api.enrol(new_name("lost"), "officer", [new_ward()])
        from server.services import identity

        identity.revoke_device(api.engine, victim.device_id)
        token = victim.token
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    status, body = _send(api, "/sync/push", _zeros(BIG), headers)
    assert status == 401, body
    assert body["error"]["code"] in ("unauthorized", "device_revoked")


def test_a_small_gzip_body_that_decodes_past_the_limit_is_413(api, officer):
    bomb = gzip.compress(bytes(LIMIT * 4), compresslevel=9)
    assert len(bomb) < LIMIT // 100
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json", **_auth(officer)}
    status, body = _send(api, "/sync/push", [bomb], headers, content_length=len(bomb))
    assert status == 413 and body["error"]["message"] == "decompressed body too large"


@pytest.mark.parametrize("encoding", ["identity", "gzip", "zstd"])
def test_bodies_within_the_limit_still_pass_chunked(api, officer, encoding):
    raw = _json_push()
    headers = {"Content-Type": "application/json", **_auth(officer)}
    if encoding == "gzip":
        raw, headers["Content-Encoding"] = gzip.compress(raw), "gzip"
    elif encoding == "zstd":
        raw, headers["Content-Encoding"] = zstandard.ZstdCompressor().compress(raw), "zstd"
    status, body = _send(api, "/sync/push", [raw[:5], raw[5:]], headers)
    assert status == 200 and body == {"results": []}


@pytest.mark.parametrize("encoding", ["identity", "gzip", "zstd"])
def test_a_body_past_the_memory_spool_passes_whole_with_a_good_token(api, officer, encoding):
    """3 MiB of JSON: read (or decoded) past 1 MiB, the token checked, what was kept decoded
    again, the rest spooled to a file: the route still gets every byte."""
    raw = b'{"mutations": [' + b" " * (3 * 1024 * 1024) + b"]}"
    headers = {"Content-Type": "application/json", **_auth(officer)}
    if encoding == "gzip":
        raw, headers["Content-Encoding"] = gzip.compress(raw), "gzip"
    elif encoding == "zstd":
        raw, headers["Content-Encoding"] = zstandard.ZstdCompressor().compress(raw), "zstd"
    pieces = [raw[i : i + 100_000] for i in range(0, len(raw), 100_000)]
    status, body = _send(api, "/sync/push", pieces, headers)
    assert status == 200 and body == {"results": []}, body


def test_a_lying_content_length_lets_no_more_through(api, officer):
    """Content-Length 5 with a long body behind it: the body is those 5 bytes (invalid JSON, 422),
    and the rest is read as the next request, which is no HTTP (uvicorn's 400 and a closed
    connection, sometimes before the app answers the first): never as more body."""
    real = json.dumps({"mutations": []}).encode() + b" " * (LIMIT + PIECE)
    headers = {"Content-Type": "application/json", **_auth(officer)}
    status, body = _send(api, "/sync/push", [real], headers, content_length=5)
    assert status in (400, 422), (status, body)
    if status == 422:
        assert body["error"]["code"] == "validation_error"
    with api.client(officer.token) as client:
        assert client.get("/health").status_code == 200  # still serving


def test_auth_routes_have_a_smaller_limit(api):
    big_name = json.dumps({"code": "X" * 10, "device_name": "n" * (100 * 1024)}).encode()
    status, body = _send(api, "/auth/enrol", [big_name], {"Content-Type": "application/json"})
    assert status == 413 and body["error"]["code"] == "too_large"


def test_attachment_chunks_are_counted_while_streamed(api, officer):
    sha = "b" * 64
    with api.client(officer.token) as client:
        started = client.post("/attachments", json={"sha256": sha, "size": 40 * 1024 * 1024})
        assert started.status_code == 200, started.text
    headers = {
        "Content-Type": "application/offset+octet-stream",
        "Upload-Offset": "0",
        **_auth(officer),
    }
    pieces = _zeros(LIMIT + PIECE)
    status, body = _send(api, f"/attachments/{sha}", pieces, headers, method="PATCH")
    assert status == 413 and body["error"]["code"] == "too_large"


# ---- memory ---------------------------------------------------------------------------------


def _memory_kib(pid: int) -> dict[str, int]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0])
    return values


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
def test_a_64_mb_body_does_not_grow_the_server_memory(api, officer, encoding):
    """Sent chunked with and without a valid token: the server's peak memory (VmHWM) grows by
    less than the body limit, so the body was never held whole."""
    pid = api.process.pid
    headers = {"Content-Type": "application/json"}
    if encoding == "gzip":
        headers["Content-Encoding"] = "gzip"
    # warm up: a body past the spool threshold within the limit, so the first real case does
    # not count the allocator's first growth
    _send(api, "/sync/push", [b" " * (2 * 1024 * 1024)], {**headers, **_auth(officer)})
    before = _memory_kib(pid)
    for device in (officer, None):
        pieces = _zeros(BIG) if encoding == "identity" else _gzip_stream(_zeros(BIG), 0)
        status, body = _send(api, "/sync/push", pieces, {**headers, **_auth(device)})
        assert status == (413 if device else 401), body
    after = _memory_kib(pid)
    grown_bytes = (after["VmHWM"] - before["VmHWM"]) * 1024
    assert grown_bytes < LIMIT, (before, after)
    assert (after["VmRSS"] - before["VmRSS"]) * 1024 < LIMIT, (before, after)
