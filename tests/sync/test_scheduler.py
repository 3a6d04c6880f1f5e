"""The background scheduler: probe edge, one run at a time with coalesced requests, listeners,
bounded shutdown. Real engine, real store, real API behind the fault proxy."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from app.storage import store_exists
from app.sync.scheduler import SyncScheduler, SyncStatus
from app.sync.transport import Timeouts
from app.views.sync_bridge import SyncBridge
from tests.support.netproxy import NetProxy
from tests.sync.test_engine import _receive, assert_erased

WAIT_S = 20.0


class Recorder:
    """Collects statuses and lets a test wait for one that matches, bounded in time."""

    def __init__(self) -> None:
        self.seen: list[SyncStatus] = []
        self._cond = threading.Condition()

    def __call__(self, status: SyncStatus) -> None:
        with self._cond:
            self.seen.append(status)
            self._cond.notify_all()

    def wait_for(self, predicate, timeout: float = WAIT_S) -> SyncStatus:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for status in self.seen:
                    if predicate(status):
                        return status
                left = deadline - time.monotonic()
                assert left > 0, f"no such status within {timeout}s: {self.seen[-3:]}"
                self._cond.wait(left)


def _through_proxy(device, proxy: NetProxy) -> None:
    device.transport.retarget(proxy.url)


def test_link_coming_back_triggers_a_sync(devices, sync_server, ward):
    officer = devices.enrol(devices.user("officer", [ward]))
    with NetProxy(sync_server.port) as proxy:
        _through_proxy(officer, proxy)
        proxy.set_offline(True)
        ids = _receive(officer.store, ward, 3)
        scheduler = SyncScheduler(officer.engine, interval_s=3600, probe_interval_s=0.2)
        seen = Recorder()
        scheduler.add_listener(seen)
        scheduler.start()
        try:
            seen.wait_for(lambda s: s.online is False)
            assert officer.store.sync.summary().pending > 0
            proxy.set_offline(False)  # the link comes back: the probe notices and syncs
            done = seen.wait_for(lambda s: s.last_report is not None and s.last_report.ok)
        finally:
            scheduler.shutdown(timeout=5)
    assert done.online is True and done.running is False and done.last_error is None
    assert done.last_report.pushed >= 3
    assert officer.store.sync.summary().pending == 0
    assert {officer.store.dossiers.get(i).sync_state for i in ids} == {"synced"}


def test_never_two_runs_at_once_and_requests_coalesce(devices, sync_server, ward):
    officer = devices.enrol(devices.user("officer", [ward]))
    _receive(officer.store, ward, 5)
    active, peak, runs = [0], [0], [0]
    lock = threading.Lock()
    real_run = officer.engine.run_once

    def counted_run():
        with lock:
            active[0] += 1
            runs[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            return real_run()
        finally:
            with lock:
                active[0] -= 1

    officer.engine.run_once = counted_run
    with NetProxy(sync_server.port) as proxy:
        _through_proxy(officer, proxy)
        proxy.set_link(delay_ms=150)  # each run takes a few round trips: room to pile requests
        scheduler = SyncScheduler(officer.engine, interval_s=3600, probe_interval_s=3600)
        seen = Recorder()
        scheduler.add_listener(seen)
        scheduler.start(sync_at_start=False)
        try:
            scheduler.sync_now()
            seen.wait_for(lambda s: s.running)
            for _ in range(5):
                scheduler.sync_now()  # during the run: one follow-up, not five
            assert scheduler.wait_idle(0.05) is False
            time.sleep(0.05)
            seen.wait_for(lambda s: s.last_report is not None and s.last_report.pushed == 0)
            assert scheduler.wait_idle(WAIT_S)
        finally:
            scheduler.shutdown(timeout=5)
    assert peak[0] == 1
    assert runs[0] == 2
    assert officer.store.sync.summary().pending == 0


def test_shutdown_is_bounded_during_a_stalled_sync(devices, sync_server, ward):
    officer = devices.enrol(devices.user("officer", [ward]), timeouts=Timeouts(read=30))
    _receive(officer.store, ward, 2)
    with NetProxy(sync_server.port) as proxy:
        _through_proxy(officer, proxy)
        proxy.stall(60.0, times=None)
        scheduler = SyncScheduler(officer.engine, interval_s=3600, probe_interval_s=3600)
        seen = Recorder()
        scheduler.add_listener(seen)
        scheduler.start()
        seen.wait_for(lambda s: s.running)
        scheduler.shutdown(timeout=0.5)  # the run is stuck on a 30 s read: cut it
        assert scheduler.wait_idle(10.0)
        proxy.clear_faults()
    last = scheduler.status
    assert last.running is False
    assert last.last_report is not None and not last.last_report.ok
    assert officer.store.sync.summary().pending > 0  # nothing was lost, it waits for next time


def test_revoked_device_stops_the_scheduler_after_erasing(devices, sync_server, ward):
    from server.services import identity

    officer = devices.enrol(devices.user("officer", [ward]))
    (dossier_id,) = _receive(officer.store, ward, 1)
    identity.revoke_device(sync_server.engine, officer.server_device_id)
    readable: list[str] = []
    officer.engine.on_revoked = lambda: readable.append(
        officer.store.dossiers.get(dossier_id).applicant_name
    )
    scheduler = SyncScheduler(officer.engine, interval_s=3600, probe_interval_s=3600)
    seen = Recorder()
    scheduler.add_listener(seen)
    scheduler.start()
    try:
        final = seen.wait_for(lambda s: s.revoked)
        assert scheduler.wait_idle(WAIT_S)
        scheduler.sync_now()  # ignored from now on
        assert scheduler.job_ids() == []
    finally:
        scheduler.shutdown(timeout=5)
    assert final.running is False and "device_revoked" in (final.last_error or "")
    assert readable == ["Nguyễn Thị Hương 0"]  # the callback ran before the erase
    assert_erased(officer.data_dir)


def test_the_apps_bridge_shows_the_notice_before_the_erase(devices, sync_server, ward):
    """SyncBridge (what the app starts) waits for the notice's future, then lets the erase go."""
    from server.services import identity

    officer = devices.enrol(devices.user("officer", [ward]))
    (dossier_id,) = _receive(officer.store, ward, 1)
    identity.revoke_device(sync_server.engine, officer.server_device_id)
    shown: list[tuple[str, bool]] = []
    ui_thread = ThreadPoolExecutor(max_workers=1)  # stands in for the page's event loop

    def paint_notice() -> None:
        time.sleep(0.3)  # a slow paint: the erase must still wait for it
        name = officer.store.dossiers.get(dossier_id).applicant_name
        shown.append((name, store_exists(officer.data_dir)))

    bridge = SyncBridge.start_for(officer.store, lambda: ui_thread.submit(paint_notice))
    assert bridge is not None
    seen = Recorder()
    bridge.add_listener(seen)
    try:
        seen.wait_for(lambda s: s.revoked)
    finally:
        bridge.shutdown()
        ui_thread.shutdown(wait=True)
    assert shown == [("Nguyễn Thị Hương 0", True)]
    assert_erased(officer.data_dir)


def test_the_scheduler_runs_on_its_interval(devices, sync_server, ward):
    officer = devices.enrol(devices.user("officer", [ward]))
    runs: list[float] = []
    real_run = officer.engine.run_once

    def counted_run(**kw):
        runs.append(time.monotonic())
        return real_run(**kw)

    officer.engine.run_once = counted_run
    scheduler = SyncScheduler(officer.engine, interval_s=0.5, probe_interval_s=3600)
    seen = Recorder()
    scheduler.add_listener(seen)
    scheduler.start(sync_at_start=False)  # nothing at start, no probe, no sync_now: the interval
    try:
        _receive(officer.store, ward, 2)
        done = seen.wait_for(lambda s: s.last_report is not None and s.last_report.pushed >= 2)
        seen.wait_for(lambda s: len(runs) >= 3)
    finally:
        scheduler.shutdown(timeout=5)
    assert done.last_report.ok
    assert len(runs) >= 3
    assert officer.store.sync.summary().pending == 0
