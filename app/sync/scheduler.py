"""Background sync: a periodic run, a cheap probe that syncs as soon as the link comes back,
`sync_now()` for the user's button, and state listeners for the UI.

Never two runs at once: a request that arrives during a run is remembered and served by one
follow-up run when the current one ends. Listeners are called from the scheduler's threads; a Flet
view forwards them to the page with `page.run_task`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler

from app.sync.engine import STALL_S, StallWatch, SyncEngine, SyncProgress, SyncReport
from app.sync.transport import DeviceRevoked, Transport

log = logging.getLogger(__name__)

MAX_FOLLOW_UPS = 3  # coalesced follow-up runs in a row, against a request storm
RESTART_AFTER_QUIET_S = 3.0  # "sync now" during a run this quiet cuts it and starts again


@dataclass(frozen=True)
class SyncStatus:
    online: bool | None = None  # None: not probed yet
    running: bool = False
    last_report: SyncReport | None = None
    last_error: str | None = None
    last_run_at: datetime | None = None
    revoked: bool = False
    progress: SyncProgress | None = None  # the running run's step
    progress_at: datetime | None = None  # when the running run last moved (wall clock)
    stall_s: float = STALL_S  # a run quiet this long is cut
    next_try_at: datetime | None = None  # when a run that could not reach the server retries
    queued: bool = False  # "sync now" asked during a run: another run follows it


Listener = Callable[[SyncStatus], None]


class SyncScheduler:
    def __init__(
        self,
        engine: SyncEngine,
        *,
        interval_s: float = 300.0,
        probe_interval_s: float = 30.0,
        probe: Callable[[], bool] | None = None,
        stall_s: float = STALL_S,
        new_transport: Callable[[], Transport] | None = None,
    ) -> None:
        self.engine = engine
        self.interval_s = interval_s
        self.probe_interval_s = probe_interval_s
        self.stall_s = stall_s
        # After a hung run is cut its transport is closed: the next run needs a new one.
        self._new_transport = new_transport
        self._probe_fn = probe or (lambda: self.engine.transport.probe())
        self._status = SyncStatus(stall_s=stall_s)
        engine.on_progress = self._on_progress
        self._listeners: list[Listener] = []
        self._state_lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self._pending = False
        self._scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
        )

    # ---- public ----------------------------------------------------------------------------
    @property
    def status(self) -> SyncStatus:
        return self._status

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def start(self, *, sync_at_start: bool = True) -> None:
        now = datetime.now(UTC)
        self._scheduler.add_job(
            self._periodic,
            "interval",
            seconds=self.interval_s,
            id="sync",
            # (None would add the job paused: it would never run at all.)
            next_run_time=now if sync_at_start else now + timedelta(seconds=self.interval_s),
        )
        self._scheduler.add_job(self._probe, "interval", seconds=self.probe_interval_s, id="probe")
        self._scheduler.start()

    def sync_now(self) -> None:
        """Ask for a run at once. During a run one follow-up run is queued instead, and a run
        that has had no answer for a few seconds is cut so the follow-up starts now."""
        if self._status.revoked:
            return
        if self._run_lock.locked():
            self._pending = True
            self._update(queued=True)
            quiet = time.monotonic() - self.engine.last_progress_at
            if quiet >= RESTART_AFTER_QUIET_S:
                self.engine.cut(f"restarted after {round(quiet)} s without an answer")
            return
        if self._scheduler.running:
            self._scheduler.add_job(self._run, id="sync-now", replace_existing=True)
        else:
            threading.Thread(target=self._run, daemon=True, name="sync-now").start()

    def job_ids(self) -> list[str]:
        """The scheduled jobs ("sync", "probe"); empty once stopped for a revoked device."""
        return [job.id for job in self._scheduler.get_jobs()]

    def wait_idle(self, timeout: float) -> bool:
        """True when no run is going on (within `timeout` seconds)."""
        return self._idle.wait(timeout)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the jobs; let a running sync finish for `timeout` s, then cut its retries."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        if not self._idle.wait(timeout):
            self.engine.transport.close()  # retry waits return at once, requests fail fast
            self._idle.wait(min(timeout, 5.0))

    # ---- jobs ------------------------------------------------------------------------------
    def _probe(self) -> None:
        was = self._status.online
        online = bool(self._probe_fn())
        if online != was or not online:
            retry_at = (
                None if online else datetime.now(UTC) + timedelta(seconds=self.probe_interval_s)
            )
            self._update(online=online, next_try_at=retry_at)
        if online and was is not True:
            self.sync_now()  # offline -> online edge: move what waited

    def _periodic(self) -> None:
        if self._status.online is False:
            return  # the probe syncs as soon as the link is back; no use burning retries
        self._run()

    def _run(self) -> None:
        if self._status.revoked or not self._run_lock.acquire(blocking=False):
            self._pending = True
            return
        self._idle.clear()
        try:
            for _ in range(1 + MAX_FOLLOW_UPS):
                self._pending = False
                self._run_one()
                if not self._pending or self._status.revoked:
                    break
        finally:
            self._run_lock.release()
            self._idle.set()
        if self._pending and not self._status.revoked:
            self.sync_now()  # asked for just as the last run ended

    def _on_progress(self, progress: SyncProgress) -> None:
        self._update(progress=progress, progress_at=datetime.now(UTC))

    def _run_one(self) -> None:
        self._update(running=True, queued=False, progress=None, progress_at=datetime.now(UTC))
        try:
            with StallWatch(self.engine, self.stall_s):
                report = self.engine.run_once()
        except DeviceRevoked as exc:
            self._pending = False
            self._stop_jobs()
            self._update(running=False, revoked=True, last_error=str(exc), online=True)
            return
        except Exception as exc:  # a bug must not kill the scheduler thread silently
            log.exception("sync run failed")
            self._renew_transport()
            self._update(running=False, last_error=f"{type(exc).__name__}: {exc}")
            return
        self._renew_transport()
        retry_at = None
        if report.offline:  # the probe tries again, and syncs as soon as it answers
            retry_at = datetime.now(UTC) + timedelta(seconds=self.probe_interval_s)
        self._update(
            running=False,
            progress=None,
            last_report=report,
            last_run_at=report.finished_at,
            last_error="; ".join(report.errors) or None,
            online=not report.offline,
            next_try_at=retry_at,
        )

    def _renew_transport(self) -> None:
        """A cut run closed its transport: give the engine a fresh one for the next run."""
        if self.engine.cut_reason is None or self._new_transport is None:
            return
        old, self.engine.transport = self.engine.transport, self._new_transport()
        with contextlib.suppress(Exception):
            old.close()

    def _stop_jobs(self) -> None:
        for job_id in ("sync", "probe", "sync-now"):
            with contextlib.suppress(Exception):  # absent job or stopped scheduler
                self._scheduler.remove_job(job_id)

    def _update(self, **changes: object) -> None:
        with self._state_lock:
            self._status = dataclasses.replace(self._status, **changes)
            status = self._status
        for listener in list(self._listeners):
            try:
                listener(status)
            except Exception:
                log.exception("sync status listener failed")
