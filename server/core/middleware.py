"""ASGI middleware: request-body limits and decompression, security headers, counters."""

from __future__ import annotations

import io
import json
import tempfile
import threading
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import BinaryIO

import zstandard
from starlette.datastructures import Headers
from starlette.middleware.gzip import GZipMiddleware, IdentityResponder

from server.errors import ApiError, error_body

ENCODINGS = ("gzip", "zstd", "identity")
REPLAY_CHUNK = 64 * 1024


class TooLarge(ApiError):
    """A body past its limit. An ApiError, so a route streaming its body answers 413 too."""

    def __init__(self, message: str = "request body too large") -> None:
        super().__init__(413, "too_large", message)


def decompress(data: bytes, encoding: str, limit: int) -> bytes:
    """At most `limit` bytes out (more: TooLarge, so no zip bombs); bad data: ValueError."""
    out = io.BytesIO()
    sink = _Sink(out, limit, encoding)
    sink.feed(data)
    sink.finish()
    return out.getvalue()


class PastCap(Exception):
    """The body goes on past what is kept before the caller's token has been checked."""


class _Sink:
    """Takes a body's bytes as they arrive and writes them plain to `out`, counting both what
    arrives and what decompression yields against `limit` (TooLarge); bad data: ValueError."""

    def __init__(
        self, out: BinaryIO, limit: int, encoding: str = "identity", cap: int | None = None
    ) -> None:
        self.out = out
        self.limit = limit
        self.cap = cap  # past this, read or decoded: PastCap (the token is checked first)
        self.encoding = encoding
        self.received = 0
        self.written = 0
        self._gzip = zlib.decompressobj(16 + zlib.MAX_WBITS) if encoding == "gzip" else None
        self._zstd = (
            zstandard.ZstdDecompressor().stream_writer(self, write_size=REPLAY_CHUNK, closefd=False)
            if encoding == "zstd"
            else None
        )

    def write(self, data: bytes) -> int:  # also the zstd stream writer's output
        self.written += len(data)
        if self.cap is not None and self.written > self.cap:
            raise PastCap
        if self.written > self.limit:
            plain = self.encoding == "identity"
            raise TooLarge("request body too large" if plain else "decompressed body too large")
        return self.out.write(data)

    def feed(self, chunk: bytes) -> None:
        self.received += len(chunk)
        if self.received > self.limit:
            raise TooLarge
        if self.cap is not None and self.received > self.cap:
            raise PastCap
        if self._gzip is not None:
            self._inflate(chunk)
        elif self._zstd is not None:
            try:
                self._zstd.write(chunk)
            except zstandard.ZstdError as exc:
                raise ValueError(str(exc)) from exc
        else:
            self.write(chunk)

    def _inflate(self, chunk: bytes) -> None:
        data = chunk
        while data:
            if self._gzip.eof:
                raise ValueError("data after the end of the gzip stream")
            try:
                # Never more than the room left (+1 to see an overflow): no zip bomb in memory.
                self.write(self._gzip.decompress(data, self.limit - self.written + 1))
            except zlib.error as exc:
                raise ValueError(str(exc)) from exc
            data = self._gzip.unconsumed_tail

    def finish(self) -> None:
        if self._gzip is not None and not self._gzip.eof:
            raise ValueError("truncated gzip stream")
        if self._zstd is not None:
            self._zstd.flush()


def _limit_for(path: str, limits: dict[str, int], default: int) -> int:
    return min([default, *(size for prefix, size in limits.items() if path.startswith(prefix))])


class BodyLimitMiddleware:
    """Every request body is counted as it is read, whatever Content-Length says or whether it
    is sent at all: past the limit the answer is 413 and reading stops. Bodies are gathered (and
    gzip/zstd decoded, the decoded size counted too) before routing, in memory up to
    `spool_bytes` and in a temporary file beyond, so no request holds more than that in memory
    before its token is checked. A body that goes on past `spool_bytes` is read further only
    once `authorize(scope)` has accepted the request's token (it raises ApiError otherwise,
    which is the answer): nothing past that is stored for an outsider, in memory or on disk.
    Routes in `streamed` read their own body (the attachment chunks, which have a smaller
    limit of their own, after their token check) through the same count."""

    def __init__(
        self,
        app,
        max_body_bytes: int,
        spool_bytes: int = 1024 * 1024,
        limits: dict[str, int] | None = None,
        streamed: tuple[tuple[str, str], ...] = (("PATCH", "/attachments/"),),
        authorize: Callable[[dict], Awaitable[None]] | None = None,
    ) -> None:
        self.app = app
        self.authorize = authorize
        self.limit = max_body_bytes
        self.spool_bytes = spool_bytes
        self.limits = limits or {}
        self.streamed = streamed

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = _limit_for(scope.get("path", ""), self.limits, self.limit)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length", b"0")
        if length.isdigit() and int(length) > limit:
            return await _send_error(send, 413, "too_large", "request body too large")
        encoding = headers.get(b"content-encoding", b"identity").decode("latin-1").strip().lower()
        if encoding not in ENCODINGS:
            return await _send_error(send, 415, "unsupported_encoding", f"cannot decode {encoding}")
        if encoding == "identity" and self._streams(scope):
            return await self.app(scope, _counting(receive, limit), send)
        with tempfile.SpooledTemporaryFile(max_size=self.spool_bytes) as spool:
            try:
                size = await self._gather(scope, receive, spool, limit, encoding)
            except TooLarge as exc:
                return await _send_error(send, 413, "too_large", exc.message)
            except ApiError as exc:  # refused by `authorize`
                return await _send_error(send, exc.status, exc.code, exc.message)
            except ValueError:
                return await _send_error(
                    send, 400, "bad_encoding", f"the body is not valid {encoding}"
                )
            if size is None:
                return None  # the client went away
            kept = [
                (k, v)
                for k, v in scope["headers"]
                if k not in (b"content-encoding", b"content-length")
            ]
            scope = dict(scope, headers=[*kept, (b"content-length", str(size).encode())])
            spool.seek(0)
            return await self.app(scope, _replay(spool, receive), send)

    def _streams(self, scope) -> bool:
        method, path = scope.get("method", ""), scope.get("path", "")
        return any(method == m and path.startswith(p) for m, p in self.streamed)

    async def _gather(self, scope, receive, spool: BinaryIO, limit: int, encoding: str):
        """The whole body, decoded, into `spool`; its plain size, or None when the client went
        away. Until `authorize` has passed, at most `spool_bytes` are read and decoded (the raw
        bytes kept in memory); past that the token is checked, and the kept bytes decoded again
        into a sink without that cap."""
        cap = None if self.authorize is None else self.spool_bytes
        sink = _Sink(spool, limit, encoding, cap)
        kept: list[bytes] | None = [] if cap is not None else None
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            more = bool(message.get("more_body"))
            if kept is not None:
                kept.append(chunk)
            try:
                _take(sink, chunk, more)
            except PastCap:
                await self.authorize(scope)  # ApiError: the answer, nothing more is read
                spool.seek(0)
                spool.truncate()
                sink = _Sink(spool, limit, encoding)
                _take(sink, b"".join(kept or []), more)
                kept = None
            if not more:
                return sink.written


def _take(sink: _Sink, chunk: bytes, more: bool) -> None:
    sink.feed(chunk)
    if not more:
        sink.finish()


def _replay(spool: BinaryIO, receive):
    done = False

    async def replay():
        nonlocal done
        if done:
            return await receive()
        chunk = spool.read(REPLAY_CHUNK)
        more = len(chunk) == REPLAY_CHUNK
        done = not more
        return {"type": "http.request", "body": chunk, "more_body": more}

    return replay


def _counting(receive, limit: int):
    seen = 0

    async def counted():
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        if seen > limit:
            raise TooLarge
        return message

    return counted


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


# The interactive docs load their scripts and styles from a CDN: a CSP for them only keeps
# them from being framed. Every other answer is JSON or bytes, never a page.
DOC_PATHS = ("/docs", "/redoc")
STRICT_CSP = b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


class SecurityHeadersMiddleware:
    """The same protective headers on every answer, errors from any layer included."""

    def __init__(self, app, hsts_seconds: int = 0) -> None:
        self.app = app
        self.fixed = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-resource-policy", b"same-origin"),
        ]
        if hsts_seconds > 0:
            self.fixed.append(
                (
                    b"strict-transport-security",
                    f"max-age={hsts_seconds}; includeSubDomains".encode(),
                )
            )

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        docs = scope.get("path", "").startswith(DOC_PATHS)
        csp = b"frame-ancestors 'none'" if docs else STRICT_CSP

        async def with_headers(message):
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self.fixed if k not in names]
                if b"content-security-policy" not in names:
                    extra.append((b"content-security-policy", csp))
                if b"cache-control" not in names:
                    extra.append((b"cache-control", b"no-store"))
                message = dict(message, headers=[*message.get("headers", []), *extra])
            await send(message)

        return await self.app(scope, receive, with_headers)


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


RESPONSE_ZSTD_LEVEL = 11  # the pull: ~15% fewer bytes than gzip-9 (docs/benchmarks.md)


class ResponseCompression(GZipMiddleware):
    """Compressed answers: zstd to a client that accepts it (sync clients send
    `Accept-Encoding: zstd, gzip`; on the pull about 15% fewer bytes than gzip, issue 13),
    else gzip as before, else none. Small answers go plain, as GZipMiddleware sends them."""

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and _accepts_zstd(Headers(scope=scope)):
            await _ZstdResponder(self.app, self.minimum_size)(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _accepts_zstd(headers: Headers) -> bool:
    for part in headers.get("Accept-Encoding", "").lower().split(","):
        name, _, params = part.partition(";")
        if name.strip() == "zstd":
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


class _ZstdResponder(IdentityResponder):
    content_encoding = "zstd"

    def __init__(self, app, minimum_size: int) -> None:
        super().__init__(app, minimum_size)
        self._stream = None  # a streamed answer's compressor, frame by frame

    def apply_compression(self, body: bytes, *, more_body: bool) -> bytes:
        if self._stream is None and not more_body:
            return zstandard.ZstdCompressor(level=RESPONSE_ZSTD_LEVEL).compress(body)
        if self._stream is None:
            self._stream = zstandard.ZstdCompressor(level=RESPONSE_ZSTD_LEVEL).compressobj()
        done = zstandard.COMPRESSOBJ_FLUSH_FINISH
        mode = zstandard.COMPRESSOBJ_FLUSH_BLOCK if more_body else done
        return self._stream.compress(body) + self._stream.flush(mode)
