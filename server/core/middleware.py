"""ASGI middleware: request-body decompression (gzip, zstd) and request counters."""

from __future__ import annotations

import io
import json
import threading
import zlib
from collections import Counter

import zstandard

from server.errors import error_body

ENCODINGS = ("gzip", "zstd", "identity")


class TooLarge(Exception):
    pass


def decompress(data: bytes, encoding: str, limit: int) -> bytes:
    """At most `limit` bytes out (more: TooLarge, so no zip bombs); bad data: ValueError."""
    if encoding == "gzip":
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out = inflater.decompress(data, limit + 1)
        except zlib.error as exc:
            raise ValueError(str(exc)) from exc
        if not inflater.eof and len(out) <= limit:
            raise ValueError("truncated gzip stream")
    elif encoding == "zstd":
        try:
            reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data))
            out = reader.read(limit + 1)
        except zstandard.ZstdError as exc:
            raise ValueError(str(exc)) from exc
    else:
        out = data
    if len(out) > limit:
        raise TooLarge
    return out


class DecompressBodyMiddleware:
    """Replaces a gzip- or zstd-encoded request body by its plain bytes before routing."""

    def __init__(self, app, max_body_bytes: int) -> None:
        self.app = app
        self.limit = max_body_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length", b"0")
        if length.isdigit() and int(length) > self.limit:
            return await _send_error(send, 413, "too_large", "request body too large")
        encoding = headers.get(b"content-encoding", b"identity").decode("latin-1").strip().lower()
        if encoding == "identity":
            return await self.app(scope, receive, send)
        if encoding not in ENCODINGS:
            return await _send_error(send, 415, "unsupported_encoding", f"cannot decode {encoding}")
        raw = await _read_body(receive, self.limit)
        if raw is None:
            return await _send_error(send, 413, "too_large", "request body too large")
        try:
            body = decompress(raw, encoding, self.limit)
        except TooLarge:
            return await _send_error(send, 413, "too_large", "decompressed body too large")
        except ValueError:
            return await _send_error(send, 400, "bad_encoding", f"the body is not valid {encoding}")
        kept = [
            (k, v) for k, v in scope["headers"] if k not in (b"content-encoding", b"content-length")
        ]
        scope = dict(scope, headers=[*kept, (b"content-length", str(len(body)).encode())])
        sent = False

        async def replay():
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.app(scope, replay, send)


async def _read_body(receive, limit: int) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def _send_error(send, status: int, code: str, message: str) -> None:
    payload = json.dumps(error_body(code, message)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class Counters:
    """Process-local counters for /metrics."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.values: Counter[str] = Counter()

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.values[name] += n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.values)


class MetricsMiddleware:
    def __init__(self, app, counters: Counters) -> None:
        self.app = app
        self.counters = counters

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def counting_send(message):
            if message["type"] == "http.response.start":
                status = message["status"]
                self.counters.add("requests")
                if status >= 400:
                    self.counters.add(f"errors_{status // 100}xx")
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        except Exception:
            self.counters.add("requests")
            self.counters.add("errors_5xx")
            raise
