"""One sync run: push the outbox, pull the change log, move attachments.

Push is idempotent (each mutation carries its own UUID, the server applies it at most once), so a
run cut anywhere can simply run again. Pull stores each page and its cursor in one local
transaction, so a cut pull resumes after the last stored page.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from app.domain.mutations import (
    MAX_BATCH_IDS,
    MAX_MUTATIONS,
    PULL_PAGE_LIMIT,
    Mutation,
    PullHead,
    PullResponse,
    PushResult,
    PushSummary,
    expand,
)
from app.sync import attachments, coalesce
from app.sync.ports import SyncStorePort
from app.sync.transport import (
    DeviceRevoked,
    HttpError,
    Offline,
    PushReceipt,
    RequestRejected,
    SyncError,
    Transport,
    Unauthorized,
)

log = logging.getLogger(__name__)

# JSON bytes per push before compression: about 23 KB of zstd for dossiers, enough that two in
# flight keep a 2G link busy (the answer's round trip hides under the next upload).
PUSH_BATCH_BYTES = 1024 * 1024
# Rejections the server gives for its own momentary trouble: the mutation stays queued.
TRANSIENT_REJECTIONS = frozenset({"busy_retry"})
MAX_BUSY_ROUNDS = 3
# The server's own codes for a 422 about the push's content: only these are split down to rows.
# Any other 422 (no error envelope: a proxy or filter on the way) says nothing about a row, and
# splitting on it would end by rejecting rows that may be fine: it refuses the push as a whole.
ROW_REFUSAL_CODES = frozenset({"validation_error", "invalid_data"})
MIN_BATCH_BYTES = 8 * 1024
# The server takes at most MAX_MUTATIONS (2,000) wire mutations per push: small rows (a status
# move is ~300 bytes) could pass that within the byte budget. Rows fold into fewer wire
# mutations, never more, so a batch of that many rows always fits.
MAX_BATCH_ROWS = MAX_MUTATIONS
# Until the server has said which forms it reads (a push's answer, or the reference answer each
# run asks for first), a push carries every id and stamp: that first push is short.
FIRST_PUSH_ROWS = 50
PIPELINE = 3  # pushes in flight at most (see `_budget` and `_fill_pipeline`)
PULL_PAGE = 1000  # the first page of a pull (and the largest of servers before pages grew)
# Full pages double up to this, the server's largest page since issue 13's fifth round: fewer
# round trips on a slow link, while the first page, and a short pull, stays small.
PULL_PAGE_MAX = PULL_PAGE_LIMIT
MAX_ROUNDS = 100_000  # a bound on batches and pages per run, against a store or server bug
MAX_REASON = 300


@dataclass(frozen=True)
class SyncProgress:
    """Where a run is: a step ("push", "pull", "upload") with what is done of it, sent to
    `on_progress` before each request and after each answer."""

    stage: str
    done: int
    total: int | None = None  # None when not known ahead (pull pages)


ProgressListener = Callable[[SyncProgress], None]
STALL_S = 25.0  # no answer for this long: the run is cut, the link treated as down
WATCH_TICK_S = 1.0


@dataclass
class SyncReport:
    pushed: int = 0
    applied: int = 0
    conflicts: int = 0
    rejected: int = 0
    pulled: int = 0
    uploads: int = 0
    errors: list[str] = field(default_factory=list)
    offline: bool = False
    busy: bool = False  # another syncer held this store's lock: nothing was done
    reference: list[str] = field(default_factory=list)  # "catalogue:3", "calendar:2" received
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        return (
            f"pushed={self.pushed} applied={self.applied} conflicts={self.conflicts} "
            f"rejected={self.rejected} pulled={self.pulled} uploads={self.uploads} "
            f"errors={len(self.errors)}"
        )


class SyncEngine:
    def __init__(
        self,
        store: SyncStorePort,
        transport: Transport,
        *,
        on_revoked: Callable[[], None] | None = None,
        push_batch_bytes: int = PUSH_BATCH_BYTES,
        pull_page: int = PULL_PAGE,
        pull_page_max: int = PULL_PAGE_MAX,
        chunk_bytes: int = attachments.CHUNK_BYTES,
        lock_wait_s: float = 0.0,
        on_progress: ProgressListener | None = None,
        pipeline: bool = True,
        whole_batches: bool = True,
    ) -> None:
        self.store = store
        self.transport = transport
        self.on_revoked = on_revoked
        self.on_progress = on_progress
        self.last_progress_at = time.monotonic()  # the last step started or answered
        self.progress: SyncProgress | None = None
        self.cut_reason: str | None = None  # set when a watch cut this run
        self.push_batch_bytes = push_batch_bytes
        self.pull_page = pull_page  # the first page's size
        self.pull_page_max = pull_page_max  # full pages grow up to this
        self.chunk_bytes = chunk_bytes
        self.lock_wait_s = lock_wait_s
        self.last_uploads: list[attachments.UploadOutcome] = []
        self.pipeline = pipeline  # send the next batch while the server applies the previous
        # Overlap whole batches when the server keeps each push's answer (half batches if not,
        # or when False: the measure of issue 13 compares both).
        self.whole_batches = whole_batches
        # This run's push that empties the outbox asks for the pull page after it (`_receipt`).
        self._pull_after_push = False
        self._asked: PushReceipt | None = None
        self._receipts: list[PushReceipt] | None = []  # None: a push went without one

    def run_once(self, *, push: bool = True, pull: bool = True) -> SyncReport:
        """Push, pull, upload (`push=False` or `pull=False` leaves that step out; uploads go
        with the push). Offline and server errors end up in the report; a revoked device
        fires `on_revoked`, crypto-erases the store and raises `DeviceRevoked`."""
        report = SyncReport()
        self.cut_reason = None
        self._progress("start", 0)
        with self.store.sync_lock(self.lock_wait_s) as held:
            if held:
                self._run(report, push=push, pull=pull)
            else:  # the app and `commune sync` on one store: this one does nothing now
                report.busy = True
                report.errors.append("busy: sync already running for this store")
        report.finished_at = datetime.now(UTC)
        if report.ok and push and pull:
            self.store.set_last_synced(report.finished_at)
        return report

    def _run(self, report: SyncReport, *, push: bool, pull: bool) -> None:
        try:
            # With nothing to push, the reference data is asked while the first pull page
            # travels (a round trip less); it is still in force before any page is stored.
            early = pull and (not push or self._nothing_to_push())
            # When the forms a push uses are known (an earlier answer), the reference data
            # travels beside the push (a round trip less) and is in force before the pull;
            # pipeline=False keeps one request at a time.
            beside = pull and not early and self.pipeline and self._server_known()
            if pull and not early and not beside:
                self._reference(report)  # first: its answer also says the forms a push uses
            self._pull_after_push, self._asked, self._receipts = pull, None, []
            if push and beside:
                self._push_beside_reference(report)
            elif push:
                self._push_then_go_on(report)
            if pull:
                first = (lambda: self._reference(report)) if early else None
                self._pull(report, first=first, given=self._page_after_push(report))
            if push:
                self._upload(report)
                self._escrow()
        except DeviceRevoked:
            self._erase()
            raise
        except Offline as exc:
            report.offline = True
            report.errors.append(f"offline: {self.cut_reason or exc}")
        except (HttpError, SyncError) as exc:
            report.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            self._refresh_contact()

    def _page_after_push(self, report: SyncReport) -> PullResponse | None:
        """The pull page the push that emptied the outbox asked for, when it can stand for the
        pull's first page: it came, from the cursor the store is still at, read from a log head
        (`through`) at least as high as every push of this run was committed at (a push still
        in flight when it was read may come back changed by the server: an audit's score),
        and no answer of the run was a conflict. Otherwise the pull asks from the store's
        cursor as it always did."""
        asked, receipts = self._asked, self._receipts
        self._asked, self._receipts = None, []
        if asked is None or asked.page is None or asked.through is None or report.conflicts:
            return None
        if receipts is None:  # a push of the run went without a receipt
            return None
        if any(r.through is None or r.through > asked.through for r in receipts):
            return None
        if asked.pull_from != self.store.pull_cursor():
            return None
        return asked.page

    def _nothing_to_push(self) -> bool:
        """The outbox is empty and no push's answer is awaited (a stand-in store that cannot
        say: False, and the run keeps its order)."""
        count = getattr(self.store, "pending_count", None)
        unanswered = getattr(self.store, "unanswered_batches", None)
        if not callable(count) or not callable(unanswered):
            return False
        return int(count()) == 0 and not unanswered()

    def _reference(
        self, report: SyncReport, fetched: Callable[[], dict | None] | None = None
    ) -> None:
        """The catalogue and working calendar in force on the server, when newer than the
        device's, first: intake and the device's checks then use what the server checks
        against. A server without the route (404, older) is left alone. `fetched`: the
        answer, asked on another thread (`_fetch_reference`); stored on this one."""
        keeper = getattr(self.store, "reference", None)
        try:
            answer = (fetched or self._fetch_reference)()
        except RequestRejected as exc:
            if isinstance(exc, Unauthorized):
                raise
            if exc.status != 404:
                report.errors.append(f"reference refused: {exc}")
            return
        if keeper is not None and answer is not None:
            report.reference = keeper.apply(answer)

    def _reference_versions(self) -> tuple[int, int] | None:
        keeper = getattr(self.store, "reference", None)
        return None if keeper is None else keeper.versions()

    def _fetch_reference(self, versions: tuple[int, int] | None = None) -> dict | None:
        """The server's answer for the reference versions held (read here unless given: a
        thread beside the push only speaks HTTP); None for a stand-in store or transport
        that has none."""
        fetch = getattr(self.transport, "reference", None)
        versions = versions or self._reference_versions()
        if versions is None or fetch is None:
            return None
        return fetch(*versions)

    def _refresh_contact(self) -> None:
        """The locked check proves the device with its token's hash: a token renewed during
        this run (whatever step failed after it) must reach `device_contact.json` too."""
        keeper = getattr(self.store, "escrow", None)
        if keeper is None:
            return
        try:
            keeper.refresh_contact()
        except Exception:  # an erased store (revoked) has nothing left to refresh
            return

    def _escrow(self) -> None:
        """The store's data key sealed to the recovery key travels to the server once per key
        (app.storage.escrow); a server without a recovery key (404) is left alone."""
        keeper = getattr(self.store, "escrow", None)
        if keeper is None:
            return
        keeper.refresh_contact()  # a new enrolment or server address: the locked check's too
        try:
            if not keeper.public_key():
                if not keeper.due_to_ask():
                    return
                public = self.transport.recovery_key()
                keeper.asked()
                if not public:
                    return
                keeper.set_public_key(public)
            escrow = keeper.pending_upload()
            if escrow is not None:
                self.transport.put_escrow(escrow)
                keeper.mark_uploaded(escrow)
        except RequestRejected as exc:
            keeper.asked()
            if exc.status != 404:
                raise

    def _push_beside_reference(self, report: SyncReport) -> None:
        """The push, with the reference data asked on another thread meanwhile (HTTP only: the
        versions are read here) and stored on this one after the push, before the pull."""
        with ThreadPoolExecutor(1, thread_name_prefix="sync-reference") as aside:
            fetched = aside.submit(self._fetch_reference, self._reference_versions())
            try:
                self._push_then_go_on(report)
            except BaseException:
                _wait_out(fetched)  # no thread outlives the run
                raise
        self._reference(report, fetched=fetched.result)

    def _push_then_go_on(self, report: SyncReport) -> None:
        """A push the server refuses outright (a 4xx other than auth; the server's own 422 is
        split down to its bad rows first, see `_split_refused`) is reported, and the pull still
        runs: a bad push must not keep the device from receiving. Offline, 5xx and auth errors
        end the run as before."""
        try:
            self._push(report)
        except RequestRejected as exc:
            if isinstance(exc, Unauthorized):
                raise
            report.errors.append(f"push refused: {exc}")
            log.warning("push refused, pulling anyway: %s", exc)

    def open_attachment(self, sha256: str) -> bytes:
        """An attachment's bytes for the screen that opens it: from this device when it holds
        them, else downloaded now (once: the download is kept). Raises `Offline` and the
        transport's other errors when it must download and cannot."""
        if self.store.has_attachment(sha256):
            return self.store.read_attachment(sha256)
        return self.fetch_attachment(sha256)

    def fetch_attachment(self, sha256: str) -> bytes:
        """Download on first open: fetch, check the hash, keep it sealed locally."""
        try:
            data = attachments.download(self.transport, sha256)
        except DeviceRevoked:
            self._erase()
            raise
        self.store.store_downloaded(sha256, data)
        return data

    def _progress(self, stage: str, done: int, total: int | None = None) -> None:
        self.last_progress_at = time.monotonic()
        self.progress = SyncProgress(stage, done, total)
        if self.on_progress is not None:
            try:
                self.on_progress(self.progress)
            except Exception:  # a display must never break a run
                log.exception("sync progress listener failed")

    def cut(self, reason: str) -> None:
        """End a run that hangs (from another thread): requests in flight fail at once and the
        transport is closed; the owner gives the engine a new one before the next run."""
        self.cut_reason = reason
        self.transport.close()

    # ---- steps -----------------------------------------------------------------------------
    def _push(self, report: SyncReport) -> None:
        """Batches from the outbox head. While one push is in flight the next batch is read,
        compressed and sent (`PIPELINE` pushes at most), when it touches no record of the one
        in flight: the server may apply them in either order, and a record's rows stay in
        order. Each batch's rows leave the outbox only by that batch's own answer (or, after a
        cut, by the answer the server kept for it: `_resume`). See `_budget` for why a cut
        resends at most one batch's rows."""
        counter = getattr(self.store, "pending_count", None)  # optional in the port
        total = int(counter()) if callable(counter) else 0
        self._progress("push", 0, total or None)
        self._resume(report)
        run = _PushRun(total)
        with ThreadPoolExecutor(PIPELINE, thread_name_prefix="sync-push") as pool:
            try:
                for _ in range(MAX_ROUNDS):
                    if not self._push_round(pool, report, run):
                        return
            finally:
                self._settle_all(run, report)  # their answers still count if they came

    def _push_round(self, pool: ThreadPoolExecutor, report: SyncReport, run: _PushRun) -> bool:
        """One batch sent (or taken from the one sent ahead) and answered; False when the
        outbox is empty."""
        current = run.ahead.popleft() if run.ahead else None
        overlap = run.suspect is None and self.pipeline and self._server_known()
        if current is None:
            budget, rows = self._budget(overlap)
            if not self._server_known():  # a short first push learns which forms it reads
                rows = min(rows, FIRST_PUSH_ROWS)
            limit = rows if run.suspect is None else run.suspect.take()
            batch = self.store.pending_mutations(budget, max_rows=limit)[:limit]
            self._count_set_aside(report)
            if not batch:
                return False
            if run.suspect is not None and run.suspect.found():  # found by halving
                self._reject(report, batch[:1], run.suspect.reason or "refused")
                run.suspect = None
                return True
            if batch[0].mutation_id == run.seen_first:
                raise SyncError("the outbox did not move after a push")
            current = self._send(pool, batch, self._drains(len(batch)))
        self._progress("push", report.pushed, max(run.total, report.pushed) or None)
        if overlap:  # not before the server's first answer: it says which forms it reads
            self._fill_pipeline(pool, current, run, report)
        try:
            answers = current.answers()
        except RequestRejected as exc:
            self._forget(current)  # refused: the server committed none of it
            self._settle_all(run, report)
            self._refused(report, run, current, exc)
            return True
        if run.suspect is not None:
            run.suspect = run.suspect.after_push(len(current.batch))
        if self._record(report, current, answers):
            run.seen_first = current.batch[0].mutation_id
        else:  # the server was busy: keep those queued, back off
            self._settle_all(run, report)
            run.busy_rounds += 1
            if run.busy_rounds > MAX_BUSY_ROUNDS:
                raise SyncError("the server stayed busy; the rest waits for the next run")
            self.transport.backoff(run.busy_rounds)
            run.seen_first = None
            run.suspect = None  # rows stayed queued: the counts no longer hold
        self._progress("push", report.pushed, max(run.total, report.pushed) or None)
        return True

    def _refused(
        self, report: SyncReport, run: _PushRun, current: _InFlight, exc: RequestRejected
    ) -> None:
        if exc.status == 422 and current.assumed:
            # Sent in forms an earlier run learned: the server may be older now. Its rows
            # stay queued (none is refused for a form) and go again as the short probe.
            self.transport.forget_forms()
            return
        if exc.status == 413 and self.push_batch_bytes > MIN_BATCH_BYTES:
            # The server's body limit is lower than ours: smaller batches.
            self.push_batch_bytes = max(MIN_BATCH_BYTES, self.push_batch_bytes // 2)
            return
        if exc.status == 422 and exc.code in ROW_REFUSAL_CODES:
            run.suspect = self._split_refused(report, current.batch, current.groups, exc)
            return
        raise exc

    def _budget(self, overlap: bool) -> tuple[int, int]:
        """JSON bytes and rows of one batch. A cut must resend at most one batch's rows. When
        the server keeps each push's answer under the batch id the client gave (it says
        "batches" in its summaries), whole batches overlap: after a cut the client asks for
        the answers of the pushes it lost (`_resume`), so a batch the server committed is not
        sent again (one cut on its way in was not committed: its rows must go again). Otherwise
        overlapped batches are half batches: the two in flight never hold more than one
        batch's rows."""
        if not overlap or self._whole():
            return self.push_batch_bytes, MAX_BATCH_ROWS
        return max(1, self.push_batch_bytes // PIPELINE), MAX_BATCH_ROWS // PIPELINE

    def _whole(self) -> bool:
        return self.whole_batches and self._keeps_batches() is True

    def _keeps_batches(self) -> bool | None:
        """The server keeps push answers by batch id: True, False, or None (not known yet, or
        a store or transport that cannot take part)."""
        if not callable(getattr(self.store, "remember_batch", None)):
            return False
        if not callable(getattr(self.transport, "batches", None)):
            return False
        if not self._server_known():
            return None
        return bool(getattr(self.transport, "server_keeps_batches", False))

    def _resume(self, report: SyncReport) -> None:
        """Pushes of an earlier run whose answers never came: the server says which it
        committed, with the answer it gave each, and their rows are settled by it as by the
        answer itself (applied, conflict, rejected), without sending them again. The others'
        rows are still queued and go again (the server answers those it applied from its
        stored results). An older server (404) knows none; an ask that fails otherwise (but
        for offline and auth) is taken as knowing none: the rows go again, answered once."""
        unanswered = getattr(self.store, "unanswered_batches", None)
        ask = getattr(self.transport, "batches", None)
        if not callable(unanswered) or not callable(ask):
            return
        waiting: dict = unanswered()
        if not waiting:
            return
        ids = sorted(waiting)[-MAX_BATCH_IDS:]
        try:
            found: dict[str, PushSummary] = ask(ids)
        except HttpError as exc:
            if isinstance(exc, Unauthorized):
                raise
            log.warning("lost pushes not asked about: %s", exc)
            found = {}
        for batch_id in ids:
            summary = found.get(batch_id)
            if summary is not None:
                self._settle_kept(report, waiting[batch_id], summary)
        self.store.forget_batches(list(waiting))

    def _settle_kept(self, report: SyncReport, carried: list, summary: PushSummary) -> None:
        """A lost push's rows settled by the answer the server kept for it."""
        try:
            groups = [(str(sent), [str(m) for m in members]) for sent, members in carried]
            answers = expand(summary, [sent for sent, _ in groups])
        except (TypeError, ValueError):  # not what was sent: its rows go again
            return
        final = [r for r in coalesce.unfold_ids(groups, answers) if not _transient(r)]
        self.store.record_push_results(final)
        report.pushed += len(final)
        for r in final:
            self._count(report, r)

    def _server_known(self) -> bool:
        """The transport knows the wire forms the server reads: it answered a push, or listed
        them with the reference data (a stand-in transport: never)."""
        return bool(getattr(self.transport, "server_forms_known", False))

    def _send(
        self, pool: ThreadPoolExecutor, batch: list[Mutation], drains: bool = False
    ) -> _InFlight:
        """The batch pushed from a push thread. Unless the server is known not to keep answers
        by batch id, the push carries a new id, and what it carries is remembered under it
        until its answer is kept (a cut: `_resume`). `drains`: it holds the outbox's last
        rows; then it also asks for the pull page after it (`_receipt`)."""
        groups = coalesce.fold(batch)
        sent = [g.mutation for g in groups]
        incarnation = getattr(self.store, "incarnation", "")
        receipt = self._receipt(drains)
        extra = {"receipt": receipt} if receipt is not None else {}
        assumed = bool(getattr(self.transport, "server_forms_assumed", False))
        if self._keeps_batches() is False:
            future = pool.submit(self.transport.push, sent, incarnation, **extra)
            return _InFlight(batch, groups, future, assumed=assumed)
        batch_id = uuid.uuid4().hex
        self.store.remember_batch(batch_id, coalesce.carried(groups))
        future = pool.submit(self.transport.push, sent, incarnation, batch_id, **extra)
        return _InFlight(batch, groups, future, batch_id, assumed)

    def _receipt(self, drains: bool) -> PushReceipt | None:
        """What a push's answer is to keep beyond its results, when the run pulls after its
        push and the server reads "then_pull" (else None, and this run's pull asks as it
        always did). The push that empties the outbox also asks for the pull page after it,
        unless the store pulls its own records (put back from a backup: `_pull`)."""
        if not self._pull_after_push:
            return None
        if self._receipts is None or not getattr(self.transport, "server_pulls_after_push", False):
            self._receipts = None
            return None
        receipt = PushReceipt()
        if drains and not self.store.pulls_own_records():
            receipt.pull_from, receipt.limit = self.store.pull_cursor(), self.pull_page
            receipt.node = str(getattr(self.store, "device_id", "") or "")
            self._asked = receipt
        self._receipts.append(receipt)
        return receipt

    def _drains(self, rows: int, in_flight: int = 0) -> bool:
        """Whether a batch of `rows` leaves no row of the outbox unsent (with `in_flight` rows
        of a push still unanswered); a store that cannot count: never."""
        counter = getattr(self.store, "pending_count", None)
        return callable(counter) and int(counter()) <= rows + in_flight

    def _fill_pipeline(
        self, pool: ThreadPoolExecutor, current: _InFlight, run: _PushRun, report: SyncReport
    ) -> None:
        """Batches sent ahead until `PIPELINE` pushes are in flight or nothing is left: the
        link uploads the next while the server applies the ones before (with two, the link
        sat idle for the answer's round trip and the server's apply of each batch)."""
        while len(run.ahead) < PIPELINE - 1:
            ahead = self._send_ahead(pool, [current, *run.ahead], report)
            if ahead is None:
                return
            run.ahead.append(ahead)

    def _send_ahead(
        self, pool: ThreadPoolExecutor, flying: list[_InFlight], report: SyncReport
    ) -> _InFlight | None:
        """The next batch, sent now, or None: nothing left. Rows of a record a push in flight
        also carries wait for that push's answer; the rows of other records behind them go (a
        batch cut by the row limit in the middle of an audit's answers need not stall the
        link)."""
        in_flight = {m.mutation_id for f in flying for m in f.batch}
        budget, limit = self._budget(True)
        rows = self.store.pending_mutations(budget, skip=in_flight, max_rows=limit)
        self._count_set_aside(report)
        records = {(m.entity, m.entity_id) for f in flying for m in f.batch}
        batch: list[Mutation] = []
        for m in rows[:limit]:
            if (m.entity, m.entity_id) not in records:
                batch.append(m)
        if not batch:
            return None
        return self._send(pool, batch, self._drains(len(batch), len(in_flight)))

    def _settle_all(self, run: _PushRun, report: SyncReport) -> None:
        """Every push sent ahead waited for, oldest first, and what its answer says kept."""
        while run.ahead:
            self._settle(run.ahead.popleft(), report)

    def _settle(self, ahead: _InFlight | None, report: SyncReport) -> None:
        """Wait for a push sent ahead and keep what its answer says; a failed one leaves its
        rows queued (the next push sends them again, the server answers them once)."""
        if ahead is None:
            return
        try:
            answers = ahead.answers()
        except (SyncError, HttpError):
            return
        self._record(report, ahead, answers)

    def _record(self, report: SyncReport, flight: _InFlight, answers: list[PushResult]) -> bool:
        """Keep a batch's answers; False when the server was busy for some rows (kept queued)."""
        self._check_answers(flight.sent, answers)
        results = coalesce.unfold(flight.groups, answers)
        final = [r for r in results if not _transient(r)]
        self.store.record_push_results(final)
        self._forget(flight)
        report.pushed += len(final)
        for r in final:
            self._count(report, r)
        return len(final) == len(results)

    def _forget(self, flight: _InFlight) -> None:
        if flight.batch_id:
            self.store.forget_batches([flight.batch_id])

    def _count_set_aside(self, report: SyncReport) -> None:
        for r in self.store.take_set_aside():  # rows this client itself cannot send
            self._count(report, r)

    def _split_refused(
        self,
        report: SyncReport,
        batch: list[Mutation],
        groups: list[coalesce.Folded],
        exc: HttpError,
    ) -> _Suspect | None:
        """A 422 for the whole push: the server's schema refused part of it. Reject the rows it
        names (each one outbox row) at once; otherwise narrow down by halves to the one row,
        so that one bad row never blocks the outbox."""
        named = _named_groups(exc, len(groups))
        if len(batch) == 1:
            self._reject(report, batch, named.get(0) or _reason(exc.code, exc.message))
            return None
        alone = [g for g in sorted(named) if len(groups[g].members) == 1]
        if alone:
            rejected = {groups[g].members[0]: named[g] for g in alone}
            self._reject(report, [m for m in batch if m.mutation_id in rejected], None, rejected)
            return None
        if named:  # a folded group: the bad row is one of its rows
            g = min(named)
            lo = sum(len(x.members) for x in groups[:g])
            return _Suspect(lo, lo + len(groups[g].members), named[g])
        return _Suspect(0, len(batch), None)

    def _reject(
        self,
        report: SyncReport,
        rows: list[Mutation],
        reason: str | None,
        reasons: dict[str, str] | None = None,
    ) -> None:
        results = [
            PushResult(
                mutation_id=m.mutation_id,
                status="rejected",
                reason=(reasons or {}).get(m.mutation_id) or reason or "refused",
            )
            for m in rows
        ]
        self.store.record_push_results(results)
        report.pushed += len(results)
        for r in results:
            self._count(report, r)

    @staticmethod
    def _count(report: SyncReport, r: PushResult) -> None:
        if r.status == "applied":
            report.applied += 1
        elif r.status == "conflict":
            report.conflicts += 1
        else:
            report.rejected += 1
            log.warning("mutation %s rejected: %s", r.mutation_id, r.reason)

    def _pull(
        self,
        report: SyncReport,
        first: Callable[[], None] | None = None,
        given: PullResponse | None = None,
    ) -> None:
        """Pages from the saved cursor, each stored with its cursor in one local transaction,
        strictly in order: a cut pull resumes after the last stored page. The first page asks
        `pull_page` records, and each page that comes back full asks twice the last, up to
        `pull_page_max` (a server that serves fewer, or refuses more: see `Transport.pull`).

        The next page is asked for as soon as its cursor is known, from pull threads, at most
        one page ahead of the page this thread waits for: when the answer's head says it (a
        server since issue 13's fifth round), while that page's body is still on its way;
        otherwise when its body is read. It comes while this thread stores the page before
        it, so the link is idle neither while a page is stored nor for the round trip after
        one. A page asked from a head is used only if the body's cursor is the same (else it
        is dropped and asked again). Only this thread writes the store; a failed page
        (offline, revoked, 5xx) ends the run as before, with nothing after it stored.
        `first` runs on this thread once the first page is asked, before any page is stored
        (the reference data, asked meanwhile: `_run`). `given`: the first page, which came
        with the push's answer (`_page_after_push`): stored, and asked on from its end only
        when it says more is waiting."""
        cursor = self.store.pull_cursor()
        own = self.store.pulls_own_records()  # a store put back from a backup: see its docs
        if given is not None and (not given.has_more or given.next_cursor > cursor):
            self._store_page(report, given, cursor, own)
            if not given.has_more:
                return
            cursor = given.next_cursor
        node = str(getattr(self.store, "device_id", "") or "")  # the clock node of its stamps
        lock = threading.Lock()  # `ahead` runs from this thread and from pull threads
        unread: set[Future[PullResponse]] = set()  # asked, and not read by this thread yet
        stopped = [False]
        with ThreadPoolExecutor(2, thread_name_prefix="sync-pull") as pool:

            def ask(after: int, size: int) -> _Asked:
                asked = _Asked(after, size)

                def on_head(head: PullHead) -> None:  # from a pull thread, before the body
                    with lock:
                        asked.head = head
                        ahead(asked)

                early = on_head if self.pipeline else None  # pipeline=False: one at a time
                asked.future = pool.submit(
                    self.transport.pull, after, size, node, own=own, on_head=early
                )
                unread.add(asked.future)
                return asked

            def ahead(asked: _Asked) -> None:
                """The page after `asked` from its head, once this thread waits for `asked`
                (every page before it stored: at most one page ahead); under `lock`."""
                head = asked.head
                if stopped[0] or asked.next is not None or not asked.waited or head is None:
                    return
                if head.has_more and head.next_cursor > asked.cursor:
                    asked.next = ask(head.next_cursor, self._next_page(asked.limit, head))

            current: _Asked | None = ask(cursor, self.pull_page)
            try:
                if first is not None:
                    first()
                for _ in range(MAX_ROUNDS):
                    if current is None:  # the last page is stored
                        return
                    self._progress("pull", report.pulled)
                    with lock:
                        current.waited = True
                        ahead(current)
                    page = current.answer()
                    unread.discard(current.future)
                    if page.has_more and page.next_cursor <= cursor:
                        raise SyncError("the server's pull cursor did not advance")
                    with lock:  # no head of `current` comes after its answer
                        later = current.next
                    belied = later is not None and later.cursor != page.next_cursor
                    if belied or not page.has_more:
                        later = None  # the head said otherwise than the body: asked again
                    if later is None and page.has_more:  # the next page travels meanwhile
                        later = ask(page.next_cursor, self._next_page(current.limit, page))
                    self._store_page(report, page, cursor, own)
                    cursor = page.next_cursor
                    current = later
            finally:
                with lock:  # no page is asked from a head after this
                    stopped[0] = True
                for future in list(unread):  # the run failed, or a head was belied
                    _wait_out(future)

    def _store_page(self, report: SyncReport, page: PullResponse, cursor: int, own: bool) -> None:
        """One page and its cursor, in one local transaction (`own`: see `_pull`)."""
        if page.changes or page.next_cursor != cursor:
            self.store.apply_pull_page(page.changes, page.next_cursor)
        report.pulled += len(page.changes)
        if not page.has_more and own:
            self.store.pulled_to_the_end()
        self._progress("pull", report.pulled)

    def _next_page(self, asked: int, page: PullResponse | PullHead) -> int:
        """The size to ask after `page`: twice the last when it came back full, up to
        `pull_page_max`; the same when it did not (the server clamped its size, or left out
        rows the device holds: asking more again costs nothing)."""
        served = asked
        refused = getattr(self.transport, "server_pull_limit", None)  # an older server's bound
        if isinstance(refused, int):
            served = min(asked, refused)
        changes = page.changes if isinstance(page, PullHead) else len(page.changes)
        if changes < served:
            return asked
        return max(asked, min(asked * 2, self.pull_page_max))

    def _upload(self, report: SyncReport) -> None:
        self.last_uploads = []
        waiting = self.store.pending_uploads()
        for done, sha256 in enumerate(waiting):
            self._progress("upload", done, len(waiting))
            data = self.store.read_attachment(sha256)
            try:
                outcome = attachments.upload(self.transport, sha256, data, self.chunk_bytes)
            except RequestRejected as exc:  # this file only; the others still go
                if isinstance(exc, DeviceRevoked):
                    raise
                report.errors.append(f"attachment {sha256[:12]}: {exc}")
                continue
            self.store.mark_uploaded(sha256)
            self.last_uploads.append(outcome)
            report.uploads += 1

    def _check_answers(self, batch, results: list[PushResult]) -> None:
        sent = {m.mutation_id for m in batch}
        answered = {r.mutation_id for r in results}
        if not answered <= sent:
            raise SyncError("the server answered mutations that were not sent")

    def _erase(self) -> None:
        log.warning("this device was revoked: erasing the local store")
        try:
            if self.on_revoked is not None:
                self.on_revoked()
        finally:
            self.store.crypto_erase()


class StallWatch:
    """Cuts a run that has had no answer for `stall_s` seconds (a server that accepts and never
    answers, a link that died silently): the run ends as offline, within a bound, instead of
    waiting out every timeout and retry. Use as a context manager around `run_once`."""

    def __init__(self, engine: SyncEngine, stall_s: float = STALL_S) -> None:
        self.engine = engine
        self.stall_s = stall_s
        self.cut = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True, name="sync-watch")

    def __enter__(self) -> StallWatch:
        self.engine.last_progress_at = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(WATCH_TICK_S * 5)

    def _watch(self) -> None:
        while not self._done.wait(WATCH_TICK_S):
            quiet = time.monotonic() - self.engine.last_progress_at
            if quiet >= self.stall_s:
                self.cut = True
                self.engine.cut(f"the server did not answer for {round(quiet)} s")
                return


def _wait_out(ahead: Future) -> None:
    """A page (or the reference) asked ahead, waited for after the run failed otherwise (no
    thread of this run outlives it); its answer is dropped, but a revoked device still
    erases."""
    try:
        ahead.result()
    except DeviceRevoked:
        raise
    except Exception:  # noqa: BLE001 (the run's own error is the one to report)
        return


def _transient(result: PushResult) -> bool:
    return result.status == "rejected" and (result.reason or "") in TRANSIENT_REJECTIONS


@dataclass
class _PushRun:
    """What one run's push keeps between batches."""

    total: int
    seen_first: str | None = None
    busy_rounds: int = 0
    suspect: _Suspect | None = None
    # The next batches, oldest first, sent while the one before was applied.
    ahead: deque[_InFlight] = field(default_factory=deque)


@dataclass
class _Asked:
    """A pull page asked for: from which cursor, how many, its answer to come, what its head
    said, and the page asked after it (from that head or from its body)."""

    cursor: int
    limit: int
    future: Future[PullResponse] = field(default_factory=Future)
    head: PullHead | None = None
    waited: bool = False  # the engine waits for it: every page before it is stored
    next: _Asked | None = None

    def answer(self) -> PullResponse:
        return self.future.result()


@dataclass
class _InFlight:
    """A push sent: its outbox rows, their folded groups, and the answer to come."""

    batch: list[Mutation]
    groups: list[coalesce.Folded]
    future: Future[list[PushResult]]
    batch_id: str = ""  # under which the server keeps its answer ("" : not asked to)
    assumed: bool = False  # sent in forms remembered from an earlier run, not yet confirmed

    @property
    def sent(self) -> list[Mutation]:
        return [g.mutation for g in self.groups]

    def answers(self) -> list[PushResult]:
        return self.future.result()


@dataclass
class _Suspect:
    """Outbox rows [lo, hi) from the head hold a row the server refused in a whole push (422).

    The rows before `lo` go first; then the first half of the suspects: if it passes the bad
    row is in the other half, if not in this one. Each push halves the span, so finding one
    bad row among n costs at most ceil(log2(n)) more pushes (one more to learn its reason when
    the server's answer named none), and the good rows pushed on the way are not pushed again."""

    lo: int
    hi: int
    reason: str | None  # what the server said of the suspects, when its answer named them

    def take(self) -> int:
        return self.lo if self.lo else max(1, self.hi // 2)

    def found(self) -> bool:
        """One row left, and the server's reason for it already known: no push needed."""
        return self.lo == 0 and self.hi == 1 and self.reason is not None

    def after_push(self, rows: int) -> _Suspect | None:
        if rows >= self.hi:  # the server took them all after all
            return None
        return _Suspect(max(0, self.lo - rows), self.hi - rows, self.reason)


def _named_groups(exc: HttpError, count: int) -> dict[int, str]:
    """{index in the push: reason} for the mutations a 422's details point at
    (locations like body.mutations.3.fields.x)."""
    named: dict[int, str] = {}
    for detail in exc.details:
        loc = [str(p) for p in detail.get("loc") or []]
        if loc[:2] != ["body", "mutations"] or len(loc) < 3 or not loc[2].isdigit():
            continue
        index = int(loc[2])
        if index < count and index not in named:
            where = ".".join(loc[3:])
            named[index] = _reason(exc.code, f"{where}: {detail.get('msg', '')}".strip(": "))
    return named


def _reason(code: str, message: str) -> str:
    """The server's words, fit to keep and show: one line, no control characters."""
    text = f"{code}:{message}" if message else code
    return "".join(c if c.isprintable() else "?" for c in text)[:MAX_REASON]
