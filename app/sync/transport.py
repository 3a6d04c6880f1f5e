"""The one place the client speaks HTTP to the central API.

Built for slow, flaky links: one keep-alive connection, long read timeouts, request bodies
compressed with zstd (gzip when the server refuses zstd with 415), compressed responses, bounded
retries with exponential backoff and full jitter. Errors come out typed: `Offline` when the server
cannot be reached, `ServerError` when it answers 5xx, `RequestRejected` for a 4xx that retrying
cannot fix, and `DeviceRevoked` when this device's token was revoked (the caller crypto-erases).

Only https:// leaves this machine: http:// is refused (`InsecureUrl`) for anything but loopback
unless `allow_insecure_http` (a lab). Bearer tokens expire: with a refresh token the transport
renews its token shortly before it expires, or when the server says it has, and hands the new
one to `on_renewed` (which keeps it), so a sync never notices.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import ipaddress
import json
import logging
import random
import socket
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
import zstandard

from app.domain.columns import to_columns
from app.domain.mutations import (
    PULL_NEXT_HEADER,
    BatchesResponse,
    Mutation,
    PullHead,
    PullResponse,
    PushResponse,
    PushResult,
    PushSummary,
    clock_table,
    expand,
    leave_out_derived_id,
    one_clock,
)
from app.i18n import t

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
CHUNK_TYPE = "application/offset+octet-stream"
COMPRESS_MIN_BYTES = 512  # below this, framing costs more than it saves
RENEW_BEFORE = dt.timedelta(minutes=5)  # renew a token this long before it expires
# 401 codes a renewed token cures (a token renewed elsewhere, or the clock was off).
RENEWABLE_401 = frozenset({"token_expired", "unauthorized"})
# The largest pull page of servers before issue 13's fifth round: they refuse a larger limit
# with 422 (their route's bound), and the transport then asks that size instead.
LEGACY_PULL_LIMIT = 1000
MAX_CONNECTIONS = 4
READS_SETTING = "server_reads"  # the push forms the server last said it reads


class SyncError(Exception):
    """Base of every error the sync client raises."""


class NotConfigured(SyncError):
    """No server address or device token yet: the device is not enrolled."""


class InsecureUrl(SyncError):
    """http:// to another machine: tokens and records would cross the network in clear."""

    def __init__(self, url: str) -> None:
        super().__init__(t("sync.insecure_http", url=url))
        self.url = url


def check_scheme(url: str, allow_insecure_http: bool = False) -> None:
    """https:// anywhere; http:// only to this machine, unless a lab allows it."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "https" or (scheme == "http" and (allow_insecure_http or _loopback(parts))):
        return
    raise InsecureUrl(url)


def _loopback(parts) -> bool:
    host = (parts.hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Offline(SyncError):
    """The server could not be reached (no link, dropped link, timeouts) after the retries."""


class HttpError(SyncError):
    def __init__(self, status: int, code: str, message: str = "") -> None:
        super().__init__(f"HTTP {status} {code}: {message}".rstrip(": "))
        self.status = status
        self.code = code
        self.message = message
        # A 422's list of {"loc": [...], "msg": "..."}: which part of the request was refused.
        self.details: list[dict[str, Any]] = []


class ServerError(HttpError):
    """The server answered 5xx (or 408/429) on every attempt."""

    retry_after: int | None = None  # seconds, from a Retry-After header


class RequestRejected(HttpError):
    """A 4xx that retrying will not fix (bad request, forbidden, not found, ...)."""


class Unauthorized(RequestRejected):
    """401: the token is missing, wrong or expired."""


class DeviceRevoked(Unauthorized):
    """401 device_revoked: an administrator revoked this device; its data must be erased."""


class SessionExpired(Unauthorized):
    """The token could not be renewed (refresh token unknown, unused too long, or logged out):
    the user logs in or the device enrols again. Nothing is erased."""


class OffsetMismatch(RequestRejected):
    """409 on an attachment chunk: the server holds a different offset (in `server_offset`)."""

    def __init__(self, status: int, code: str, message: str, server_offset: int) -> None:
        super().__init__(status, code, message)
        self.server_offset = server_offset


class ChecksumMismatch(RequestRejected):
    """422 on the last chunk: the bytes did not hash to the name; the upload starts over."""


@dataclass(frozen=True)
class Timeouts:
    connect: float = 10.0
    read: float = 60.0
    write: float = 60.0
    pool: float = 10.0
    probe: float = 3.0


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_s: float = 0.5
    cap_s: float = 30.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: uniform between 0 and the capped exponential step."""
        return rng.uniform(0, min(self.cap_s, self.base_s * (2**attempt)))


@dataclass(frozen=True)
class UploadState:
    offset: int
    complete: bool
    size: int | None = None


@dataclass
class TransferStats:
    requests: int = 0
    body_bytes_sent: int = 0  # request bodies as sent (after compression)
    raw_bytes_sent: int = 0  # request bodies before compression
    retries: int = 0


@dataclass
class Transport:
    """HTTP to the central API. Thread-safe enough for one sync at a time (the scheduler's lock)."""

    base_url: str
    token: str | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    encoding: str = "zstd"  # "zstd" | "gzip" | "identity"
    # 11: the bytes of 15 on push JSON (2.3 MB of dossiers: 102 KB either way) for 0.37x its CPU;
    # 19 costs ~40x the CPU for ~4-7% fewer bytes (docs/benchmarks.md, issue 13)
    zstd_level: int = 11
    rng: random.Random = field(default_factory=random.Random)
    http_transport: httpx.BaseTransport | None = None
    stats: TransferStats = field(default_factory=TransferStats)
    allow_insecure_http: bool = False  # a lab: http:// to other machines too
    refresh_token: str | None = None
    expires_at: dt.datetime | None = None  # when `token` stops working (None: unknown)
    # Called with {"token", "refresh_token", "expires_at"} after each renewal: keep them.
    on_renewed: Callable[[dict[str, Any]], None] | None = None
    # The forms the server said it read when last asked (kept in the store's settings by
    # `from_settings`): a run's first push need not wait for this run's reference answer.
    # Assumed, not known, until the server says it again (`server_forms_assumed`).
    remembered_reads: list[str] | None = None
    on_reads: Callable[[list[str] | None], None] | None = None  # keeps what the server said

    def __post_init__(self) -> None:
        check_scheme(self.base_url, self.allow_insecure_http)
        self._renew_lock = threading.Lock()
        # Set once a push is answered with a summary: that server also reads a mutation whose
        # fields share one clock carried once (issue 13); older servers never see that form.
        self.server_reads_one_clock = False
        # Set when a summary lists "derived_ids": ids the server can make are left out.
        self.server_reads_derived_ids = False
        self.server_reads_clock_table = False  # said by a server since issue 13's fourth round
        # The forms above are known: a push was answered, or the reference answer listed them
        # (each run asks for it first), so a run's first push need not be a short probe.
        self.server_forms_known = False
        # Set when a summary lists "batches": the server keeps each push's answer under the id
        # the client gave it (`batches`), so two whole batches may be in flight.
        self.server_keeps_batches = False
        # Set when a server lists "then_pull": a push may ask for the pull page after it.
        self.server_pulls_after_push = False
        # Set when a server lists "columns": a push's mutations go as blocks of columns.
        self.server_reads_columns = False
        # Set when the server refused a pull page larger than `LEGACY_PULL_LIMIT` (a server
        # before pages grew): every later pull of this transport asks at most that.
        self.server_pull_limit: int | None = None
        self.server_forms_assumed = False
        self._kept_reads = self.remembered_reads
        if self.remembered_reads is not None and _reads_list(self.remembered_reads):
            self._set_reads(list(self.remembered_reads))
            self.server_forms_assumed = True
        self._closed = threading.Event()
        self._backend = _CuttableBackend()
        # Pushes in flight (the engine's PIPELINE) and one more request beside them.
        limits = httpx.Limits(max_connections=MAX_CONNECTIONS, keepalive_expiry=120)
        self._client = httpx.Client(
            base_url=self.base_url.rstrip("/"),
            timeout=httpx.Timeout(
                connect=self.timeouts.connect,
                read=self.timeouts.read,
                write=self.timeouts.write,
                pool=self.timeouts.pool,
            ),
            headers={"Accept-Encoding": "zstd, gzip", "User-Agent": "commune-field-sync/1"},
            transport=self.http_transport or self._backend.transport(limits),
        )
        self._local = threading.local()  # a compressor per thread: pushes overlap (engine)

    @classmethod
    def from_settings(cls, settings: Any, server_url: str | None = None, **kw: Any) -> Transport:
        """From the store's sealed settings (`server_url`, `device_token`, `refresh_token`,
        `token_expires_at`, `allow_insecure_http`); renewed tokens are saved back there."""
        url = server_url or settings.get("server_url")
        token = settings.get("device_token")
        if not url or not token:
            raise NotConfigured("this device is not enrolled: run `commune enrol` first")
        kw.setdefault("allow_insecure_http", bool(settings.get("allow_insecure_http")))
        kw.setdefault("refresh_token", settings.get("refresh_token"))
        kw.setdefault("expires_at", parse_expiry(settings.get("token_expires_at")))
        kw.setdefault("on_renewed", lambda answer: save_tokens(settings, answer))
        remembered = settings.get(READS_SETTING)
        kw.setdefault("remembered_reads", remembered if _reads_list(remembered) else None)
        kw.setdefault("on_reads", lambda reads: settings.set(READS_SETTING, reads))
        return cls(url, token, **kw)

    def retarget(self, base_url: str) -> None:
        """Talk to another address from now on (a new server address, or a relay)."""
        check_scheme(base_url, self.allow_insecure_http)
        self.base_url = base_url
        self._client.base_url = base_url.rstrip("/")

    def close(self) -> None:
        """Stop retry waits at once, cut requests in flight (from any thread), close the pool."""
        self._closed.set()
        self._backend.cut_all()
        self._client.close()

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- the API ---------------------------------------------------------------------------
    def probe(self) -> bool:
        """A cheap connectivity check: GET /health with a short timeout and no retries."""
        try:
            resp = self._client.get("/health", timeout=self.timeouts.probe)
        except httpx.HTTPError:
            return False
        return resp.status_code < 500

    def enrol(self, code: str, device_name: str) -> dict[str, Any]:
        body = {"code": code, "device_name": device_name}
        return self._json("POST", "/auth/enrol", body=body, auth=False)

    def login(self, username: str, password: str) -> dict[str, Any]:
        """A desktop login (supervisors, admins): the same answer as an enrolment."""
        body = {"username": username, "password": password}
        return self._json("POST", "/auth/login", body=body, auth=False)

    def logout(self) -> None:
        """End this desktop login on the server: its tokens stop working at once."""
        self._send("POST", "/auth/logout")

    def renew(self, refused: str | None = None) -> None:
        """A new bearer token for the refresh token (SessionExpired when refused, DeviceRevoked
        when the device was revoked); `on_renewed` keeps it. `refused`: the token the server
        just refused; when another thread has renewed it meanwhile, there is nothing to do
        (renewing again would retire the token that thread is about to send)."""
        with self._renew_lock:
            if refused is not None and self.token != refused:
                return
            if not self.refresh_token:
                raise SessionExpired(401, "no_refresh_token", t("sync.session_expired"))
            try:
                answer = self._json(
                    "POST", "/auth/refresh", body={"refresh_token": self.refresh_token}, auth=False
                )
            except Unauthorized as exc:
                if isinstance(exc, DeviceRevoked):
                    raise
                raise SessionExpired(exc.status, exc.code, t("sync.session_expired")) from exc
            # The token last: a thread that reads the new token finds its new expiry too.
            self.refresh_token = answer.get("refresh_token") or self.refresh_token
            self.expires_at = parse_expiry(answer.get("expires_at"))
            self.token = answer["token"]
            if self.on_renewed is not None:
                self.on_renewed(answer)

    def _renew_due(self) -> bool:
        if not self.refresh_token or self.expires_at is None:
            return False
        return dt.datetime.now(dt.UTC) >= self.expires_at - RENEW_BEFORE

    def push(
        self,
        mutations: Sequence[Mutation],
        incarnation: str = "",
        batch: str = "",
        receipt: PushReceipt | None = None,
    ) -> list[PushResult]:
        """Results of the mutations the server answered. Asks for the compact summary; a
        server older than it ignores the ask and answers one result per mutation.
        `incarnation`: the store's, with which the ids it leaves out were derived. `batch`: this
        push's id, under which the server keeps its answer (an older server ignores it).
        `receipt` keeps what the answer says beyond the results (`PushReceipt`): the log's
        head after the push and, when it asks and the server reads "then_pull", the pull page
        after the push (a page that does not read is left out: the caller pulls as usual)."""
        wire = [m.model_dump(mode="json") for m in mutations]
        if self.server_reads_one_clock:  # a server that answered a summary reads it too
            wire = [one_clock(m) for m in wire]
        if self.server_reads_clock_table:
            wire = [clock_table(m) for m in wire]
        if self.server_reads_derived_ids:
            wire = [leave_out_derived_id(m, incarnation) for m in wire]
        body: dict[str, Any] = {"answer": "summary"}
        if self.server_reads_columns:  # about a third fewer zstd bytes (issue 13, ninth round)
            body["columns"] = to_columns(wire)
        else:
            body["mutations"] = wire
        if incarnation:
            body["incarnation"] = incarnation
        if batch:
            body["batch"] = batch
        params = None
        if receipt is not None and receipt.pull_from is not None and self.server_pulls_after_push:
            params = {"pull": receipt.pull_from, "limit": receipt.limit, "cols": 1}
            if receipt.node:
                params["held"] = receipt.node
        data = self._json("POST", "/sync/push", body=body, params=params)
        self.server_forms_known = True
        if receipt is not None and isinstance(data, dict):
            receipt.page = _page_or_none(data.pop("pull")) if "pull" in data else None
            through = data.get("through")
            receipt.through = through if type(through) is int else None
        if isinstance(data, dict) and "results" in data:
            return PushResponse.model_validate(data).results
        summary = PushSummary.model_validate(data)
        self._learn_reads(["one_clock", *summary.reads])  # a summary's server reads one clock
        return expand(summary, [m.mutation_id for m in mutations])

    def _learn_reads(self, reads: list[str]) -> None:
        """The wire forms the server said it reads (`app.domain.mutations.READS`), kept for
        the next transport (`on_reads`) when they changed."""
        self._set_reads(reads)
        self.server_forms_assumed = False
        if self.on_reads is not None and sorted(reads) != sorted(self._kept_reads or ()):
            self.on_reads(list(reads))
        self._kept_reads = list(reads)

    def forget_forms(self) -> None:
        """The server refused a push sent in forms remembered from an earlier run (it may be
        an older server now): none is assumed any longer, here or in the settings, and the
        next push is the short probe in the original form."""
        self._set_reads([])
        self.server_forms_known = self.server_forms_assumed = False
        if self.on_reads is not None:
            self.on_reads(None)
        self._kept_reads = None

    def _set_reads(self, reads: list[str]) -> None:
        self.server_reads_one_clock = "one_clock" in reads
        self.server_reads_derived_ids = "derived_ids" in reads
        self.server_keeps_batches = "batches" in reads
        self.server_reads_clock_table = "clock_table" in reads
        self.server_pulls_after_push = "then_pull" in reads
        self.server_reads_columns = "columns" in reads
        self.server_forms_known = True

    def batches(self, batch_ids: Sequence[str]) -> dict[str, PushSummary]:
        """{id: the answer its push was given} for the ids of this device's pushes the server
        committed (POST /sync/batches); an id left out is not known there. An older server
        answers 404 (`RequestRejected`)."""
        data = self._json("POST", "/sync/batches", body={"ids": list(batch_ids)})
        return BatchesResponse.model_validate(data).batches

    def pull(
        self,
        cursor: int,
        limit: int = 500,
        node: str = "",
        *,
        own: bool = False,
        on_head: Callable[[PullHead], None] | None = None,
    ) -> PullResponse:
        """`node`: the store's clock node; of the device's own records the server then sends
        only the fields others wrote (the pull merges field by field). An older server ignores
        it and sends them whole, as it ignores `clocks` and stamps every field (`Change` reads
        both forms). `own`: send this device's own pushes too, whole (a store put back from a
        backup lacks what it pushed after the copy). A server may serve fewer than `limit`
        (it clamps to its largest page); one older than growing pages refuses more than
        `LEGACY_PULL_LIMIT` with 422, and the page is asked again at that size. `on_head` is
        called with what the answer's head says (`PullHead`) before its body is read, on each
        attempt whose head says it (a server since issue 13's fifth round): the caller may ask
        for the next page while this one is still on its way."""
        if self.server_pull_limit is not None:
            limit = min(limit, self.server_pull_limit)
        # `tables`: several clocks of a record written once each; `lean`: no `seq` nor a
        # `ward_code` the fields repeat (`Change` reads both forms); `cols`: the changes as
        # blocks of columns (`PullResponse` reads both forms); older servers ignore them.
        params: dict[str, Any] = {
            "cursor": cursor,
            "limit": limit,
            "clocks": "one",
            "tables": 1,
            "lean": 1,
            "cols": 1,
        }
        if own:
            params["own"] = "1"
        elif node:
            params["held"] = node
        head = None
        if on_head is not None:

            def head(headers: httpx.Headers) -> None:
                said = PullHead.parse(headers.get(PULL_NEXT_HEADER))
                if said is not None:
                    on_head(said)

        try:
            data = self._json("GET", "/sync/pull", params=params, on_head=head)
        except RequestRejected as exc:
            # A server older than growing pages refuses a limit past its bound (422): the
            # page again at the size it takes (a 422 at that size is a refusal of its own).
            if exc.status != 422 or limit <= LEGACY_PULL_LIMIT or isinstance(exc, Unauthorized):
                raise
            self.server_pull_limit = LEGACY_PULL_LIMIT
            params["limit"] = LEGACY_PULL_LIMIT
            data = self._json("GET", "/sync/pull", params=params, on_head=head)
        return PullResponse.model_validate(data)

    def reference(self, catalogue: int, calendar: int) -> dict[str, Any]:
        """The server's catalogue and calendar newer than the versions held (`null` parts
        when none is)."""
        data = self._json(
            "GET", "/sync/reference", params={"catalogue": catalogue, "calendar": calendar}
        )
        if not isinstance(data, dict):
            return {}
        if isinstance(data.get("reads"), list):  # an older server's answer has no "reads"
            self._learn_reads([str(r) for r in data["reads"]])
        return data

    def recovery_key(self) -> str | None:
        """The organisation's recovery public key (base64), or None when none is set."""
        data = self._json("GET", "/recovery/key")
        return data.get("public_key") if isinstance(data, dict) else None

    def put_escrow(self, escrow: dict[str, Any]) -> None:
        self._json("PUT", "/recovery/escrow", body={"escrow": escrow})

    def index_keys(self, wards: Sequence[str]) -> dict[str, Any]:
        """The duplicate check's ward keys for these wards of the caller's scope."""
        return self._json("GET", "/counter/index-keys", params={"ward": list(wards)})

    def ward_duplicates(
        self, procedure_code: str, key_id: str, terms: dict[str, str]
    ) -> list[dict[str, Any]]:
        """Open dossiers of the procedure whose ID term matches (code, day, ward only)."""
        body = {"procedure_code": procedure_code, "key_id": key_id, "terms": terms}
        data = self._json("POST", "/counter/duplicates", body=body)
        return list(data.get("duplicates") or []) if isinstance(data, dict) else []

    def upload_start(self, sha256: str, size: int) -> UploadState:
        data = self._json("POST", "/attachments", body={"sha256": sha256, "size": size})
        return _upload_state(data, size)

    def upload_offset(self, sha256: str) -> UploadState:
        return _upload_state(self._json("GET", f"/attachments/{sha256}/offset"))

    def upload_chunk(self, sha256: str, offset: int, chunk: bytes) -> UploadState:
        """One PATCH, not retried here: after a drop the caller asks the server's offset."""
        resp = self._send(
            "PATCH",
            f"/attachments/{sha256}",
            content=chunk,
            headers={"Upload-Offset": str(offset), "Content-Type": CHUNK_TYPE},
            attempts=1,
        )
        return _upload_state(_parse_json(resp))

    def download(self, sha256: str) -> bytes:
        return self._send("GET", f"/attachments/{sha256}").content

    def backoff(self, attempt: int, at_least: float = 0.0) -> None:
        """Wait before another attempt (full jitter, or the server's Retry-After when longer,
        within the cap); returns early when the transport closes."""
        delay = max(self.retry.delay(attempt, self.rng), min(at_least, self.retry.cap_s))
        self._closed.wait(delay)

    # ---- plumbing --------------------------------------------------------------------------
    def _json(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        auth: bool = True,
        on_head: Callable[[httpx.Headers], None] | None = None,
    ) -> Any:
        raw = None
        if body is not None:
            raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        parsed: list[Any] = []
        resp = self._send(
            method, path, raw_json=raw, params=params, auth=auth, parsed=parsed, on_head=on_head
        )
        if parsed:  # already read once when it arrived (a pull page: parsed once, not twice)
            return parsed[0]
        return _parse_json(resp)

    def _send(
        self,
        method: str,
        path: str,
        *,
        raw_json: bytes | None = None,
        content: bytes | None = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
        attempts: int | None = None,
        parsed: list[Any] | None = None,
        on_head: Callable[[httpx.Headers], None] | None = None,
    ) -> httpx.Response:
        """`parsed`, when given, receives the JSON body of the answer returned (if it is JSON).
        `on_head`, when given, is called with the headers of each answer below 400 before its
        body is read (a hint: its failure is logged, never the request's)."""
        attempts = attempts or self.retry.attempts
        last: Exception | None = None
        attempt = 0
        renewed = False
        held = self.token  # read before the expiry (see `renew`)
        if auth and self._renew_due():
            self.renew(refused=held)  # once, though several requests find it due
            renewed = True
        while attempt < attempts:
            if self._closed.is_set():
                raise Offline("the sync transport was closed")
            hdrs = dict(headers or {})
            sent_token = self.token
            if auth and sent_token:
                hdrs["Authorization"] = f"Bearer {sent_token}"
            body, encoding = content, None
            if raw_json is not None:
                body, encoding = self._encode(raw_json)
                hdrs["Content-Type"] = "application/json"
                if encoding:
                    hdrs["Content-Encoding"] = encoding
            try:
                self.stats.requests += 1
                self.stats.body_bytes_sent += len(body or b"")
                self.stats.raw_bytes_sent += len(raw_json or content or b"")
                request = self._client.build_request(
                    method, path, content=body, params=params, headers=hdrs
                )
                resp = self._client.send(request, stream=True)
                try:
                    if on_head is not None and resp.status_code < 400:
                        _tell(on_head, resp.headers)
                    resp.read()  # the whole body now, so a cut or short body surfaces here
                finally:
                    resp.close()
                data = None
                if resp.headers.get("content-type", "").startswith("application/json"):
                    data = resp.json()  # a body that does not parse was damaged on the way
            except (httpx.TransportError, ValueError) as exc:
                last = exc
            else:
                if resp.status_code < 400:
                    if parsed is not None and data is not None:
                        parsed[:] = [data]
                    return resp
                if resp.status_code == 415 and encoding and self._fall_back(encoding):
                    continue  # the server refused this encoding: same attempt, plainer body
                error = _http_error(resp)
                if auth and not renewed and self.refresh_token and _renewable(error):
                    self.renew(refused=sent_token)  # expired meanwhile: once, then again
                    renewed = True
                    continue
                if resp.status_code not in RETRYABLE_STATUS:
                    raise error
                last = error
            attempt += 1
            if attempt < attempts:
                self.stats.retries += 1
                self.backoff(attempt - 1, _retry_after(last))
        if isinstance(last, HttpError):
            raise last
        raise Offline(f"{method} {path}: {type(last).__name__}: {last}") from last

    def _encode(self, raw: bytes) -> tuple[bytes, str | None]:
        if len(raw) < COMPRESS_MIN_BYTES or self.encoding == "identity":
            return raw, None
        if self.encoding == "zstd":
            return self._compressor().compress(raw), "zstd"
        return gzip.compress(raw, compresslevel=6), "gzip"

    def _compressor(self) -> zstandard.ZstdCompressor:
        """A zstd compressor of this thread (one must not be used by two threads at once)."""
        zstd = getattr(self._local, "zstd", None)
        if zstd is None:
            zstd = self._local.zstd = zstandard.ZstdCompressor(level=self.zstd_level)
        return zstd

    def _fall_back(self, refused: str) -> bool:
        self.encoding = {"zstd": "gzip", "gzip": "identity"}.get(refused, "identity")
        return refused != "identity"


class _CuttableBackend(httpcore.SyncBackend):
    """Keeps the sockets it opens, so that `close()` can wake a read blocked on a stalled link.

    Closing a socket from another thread does not wake a blocked recv() on Linux; shutdown()
    does. httpx has no public hook for the network backend, hence the pool attribute below.
    """

    def __init__(self) -> None:
        super().__init__()
        self._sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()

    def transport(self, limits: httpx.Limits) -> httpx.HTTPTransport:
        http = httpx.HTTPTransport(limits=limits)
        pool = getattr(http, "_pool", None)
        if pool is not None and hasattr(pool, "_network_backend"):
            pool._network_backend = self
        return http

    def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        stream = super().connect_tcp(*args, **kwargs)
        sock = stream.get_extra_info("socket")
        if sock is not None:
            self._sockets.add(sock)
        return stream

    def cut_all(self) -> None:
        for sock in list(self._sockets):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _tell(on_head: Callable[[httpx.Headers], None], headers: httpx.Headers) -> None:
    try:
        on_head(headers)
    except Exception:  # a hint's listener must never fail the request
        log.exception("sync: the listener of an answer's head failed")


@dataclass
class PushReceipt:
    """What a push's answer says beyond its results. `through`: the change log's head once the
    push was committed (None from a server before issue 13's sixth round). With `pull_from`
    set, the push asks for the pull page from that cursor as it stands after the push (at most
    `limit` changes, without the fields `node`, the store's clock node, stamped on its own
    records, as `pull` asks): `page`, when it came and reads, read from a head of `through`."""

    pull_from: int | None = None
    limit: int = 0
    node: str = ""
    through: int | None = None
    page: PullResponse | None = None


def _page_or_none(data: Any) -> PullResponse | None:
    """A push answer's pull page; one that does not read costs only the round trip it saved."""
    try:
        return PullResponse.model_validate(data)
    except ValueError:
        log.warning("sync: a push answer's pull page did not read; pulling as usual")
        return None


def _reads_list(value: Any) -> bool:
    """A non-empty list of form names, as kept in the settings (anything else: none kept)."""
    return isinstance(value, list) and bool(value) and all(type(r) is str for r in value)


def _renewable(error: HttpError) -> bool:
    return (
        isinstance(error, Unauthorized)
        and not isinstance(error, DeviceRevoked)
        and error.code in RENEWABLE_401
    )


def parse_expiry(value: Any) -> dt.datetime | None:
    """An ISO 8601 expiry from the server or the settings (naive: UTC); None when absent."""
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, str) and value:
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def save_tokens(settings: Any, answer: dict[str, Any]) -> None:
    """Keep a token answer (enrolment, login or renewal) in the store's sealed settings."""
    settings.set("device_token", answer["token"])
    if answer.get("refresh_token"):
        settings.set("refresh_token", answer["refresh_token"])
    expires = parse_expiry(answer.get("expires_at"))
    settings.set("token_expires_at", expires.isoformat() if expires else None)


def _retry_after(error: Exception | None) -> float:
    """Seconds from a Retry-After header (delta form), else 0."""
    value = getattr(error, "retry_after", None)
    return float(value) if value else 0.0


def _parse_json(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError as exc:
        raise ServerError(resp.status_code, "bad_json", "the server sent no valid JSON") from exc


def _upload_state(data: dict[str, Any], size: int | None = None) -> UploadState:
    return UploadState(int(data["offset"]), bool(data["complete"]), data.get("size", size))


def _error_body(resp: httpx.Response) -> tuple[str, str, dict[str, Any]]:
    try:
        data = resp.json()
    except ValueError:
        return f"http_{resp.status_code}", resp.text[:200], {}
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        return str(err.get("code", f"http_{resp.status_code}")), str(err.get("message", "")), data
    detail = data.get("detail") if isinstance(data, dict) else None
    return f"http_{resp.status_code}", str(detail or ""), data if isinstance(data, dict) else {}


def _http_error(resp: httpx.Response) -> HttpError:
    status = resp.status_code
    code, message, data = _error_body(resp)
    if status == 401:
        cls: type[HttpError] = DeviceRevoked if code == "device_revoked" else Unauthorized
        return cls(status, code, message)
    if status == 409 and "/attachments/" in str(resp.request.url):
        return OffsetMismatch(status, code, message, _server_offset(resp, data))
    if status == 422 and code == "checksum_mismatch":
        return ChecksumMismatch(status, code, message)
    if status >= 500 or status in RETRYABLE_STATUS:
        error = ServerError(status, code, message)
        header = resp.headers.get("Retry-After", "")
        error.retry_after = int(header) if header.isdigit() else None
        return error
    rejected = RequestRejected(status, code, message)
    err = data.get("error")
    details = err.get("details") if isinstance(err, dict) else None
    if isinstance(details, list):
        rejected.details = [d for d in details if isinstance(d, dict)]
    return rejected


def _server_offset(resp: httpx.Response, data: dict[str, Any]) -> int:
    for source in (data, data.get("error") or {}):
        if isinstance(source, dict) and "offset" in source:
            return int(source["offset"])
    header = resp.headers.get("Upload-Offset")
    return int(header) if header and header.isdigit() else -1
