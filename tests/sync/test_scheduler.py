"""The background scheduler: probe edge, one run at a time with coalesced requests, listeners,
bounded shutdown. Real engine, real store, real API behind the fault proxy."""

from __future__ import annotations

import threading
import time

import pytest

from app.sync.scheduler import SyncScheduler, SyncStatus
from app.sync.transport import Timeouts
from tests.support.netproxy import NetProxy
from tests.sync.test_engine import _receive

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
    from app.storage import StoreDestroyed, open_store, store_exists
    from server.services import identity
    from tests.sync.conftest import PIN

    officer = devices.enrol(devices.user("officer", [ward]))
    identity.revoke_device(sync_server.engine, officer.server_device_id)
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
    assert officer.revoked_calls == ["called"]
    if store_exists(officer.data_dir):
        with pytest.raises(StoreDestroyed):
            open_store(officer.data_dir, PIN)
