"""One syncer per store: the app's scheduler and `commune sync` on the same data folder, in two
processes, never sync it at once. Also: a refused push does not stop the pull, and the saved
pull cursor never moves backwards."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.sync.conftest import PIN
from tests.sync.test_engine import _receive

REPO_ROOT = Path(__file__).resolve().parents[2]
HOLDER = """
import sys
from app.storage import open_store
store = open_store(sys.argv[1], sys.argv[2])
with store.sync.sync_lock() as held:
    print("held" if held else "busy", flush=True)
    sys.stdin.readline()  # hold it until the test says so
store.close()
"""


def _holder(data_dir: Path) -> subprocess.Popen:
    """Another process holding the store's sync lock until its stdin gets a line."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(data_dir), PIN], cwd=REPO_ROOT, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert proc.stdout.readline().strip() == "held", proc.stderr.read()
    return proc


def _release(proc: subprocess.Popen) -> None:
    proc.communicate("\n", timeout=30)
    assert proc.returncode == 0


def test_a_second_syncer_of_one_store_waits_its_turn(devices, sync_server, ward):
    officer = devices.enrol(devices.user("officer", [ward]))
    _receive(officer.store, ward, 2)
    pending = officer.store.sync.summary().pending
    holder = _holder(officer.data_dir)
    try:
        before = officer.transport.stats.requests
        report = officer.sync()
        assert report.busy and not report.ok
        assert "sync already running" in report.errors[0]
        assert officer.transport.stats.requests == before  # it did not touch the server
        assert officer.store.sync.summary().pending == pending

        done = subprocess.run(  # `commune sync --once` says so too
            [sys.executable, "-m", "app.cli", "--data-dir", str(officer.data_dir), "sync",
             "--once"],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
            env={**os.environ, "COMMUNE_PIN": PIN},
        )
        assert done.returncode == 1 and "sync already running" in done.stderr
    finally:
        _release(holder)
    report = officer.sync()  # the lock is free again
    assert report.ok and not report.busy and report.pushed == pending


def test_the_lock_is_released_when_its_holder_is_killed(devices, sync_server, ward):
    officer = devices.enrol(devices.user("officer", [ward]))
    holder = _holder(officer.data_dir)
    holder.kill()
    holder.wait(10)
    assert officer.sync().ok


def test_a_waiting_syncer_runs_once_the_holder_is_done(devices, sync_server, ward):
    import threading

    officer = devices.enrol(devices.user("officer", [ward]))
    _receive(officer.store, ward, 1)
    officer.engine.lock_wait_s = 30.0
    holder = _holder(officer.data_dir)
    timer = threading.Timer(0.5, lambda: _release(holder))
    timer.start()
    try:
        report = officer.sync()  # blocks until the holder lets go, then syncs
    finally:
        timer.join(30)
    assert holder.returncode == 0
    assert report.ok and report.pushed >= 1


def test_the_pull_cursor_never_moves_backwards(devices):
    store = devices.enrol(devices.user("officer", ["00070"])).store
    store.sync.apply_pull_page([], 40)
    store.sync.apply_pull_page([], 25)  # a late page, a replay, a server restored from backup
    assert store.sync.pull_cursor() == 40
