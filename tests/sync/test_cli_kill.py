"""`commune enrol` and `commune sync --once` as real processes, SIGKILLed at random points.

The enrolment runs the plain `commune` command in a fresh interpreter. The rounds of two killed
syncs (an officer pushing, a colleague's tablet pulling; until 50 processes died mid-sync) and
the clean runs after them are processes forked from a warm fork server
(`tests/sync/sync_child.py`) that runs the same `app.cli.main`: a cold interpreter spends its
first seconds importing on a loaded 2-core machine, and the kill points would then fall into
imports instead of into sync.
Each child creates a marker file just before its first HTTP request; it is killed a random delay
after that, and only such kills count: one while the store was still opening proves nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from functools import partial
from pathlib import Path

from sqlalchemy import text

from app.domain.models import ReceiveDossier
from app.storage import create_store, open_store
from app.sync.enrolment import save_enrolment
from tests.sync.conftest import PIN, TEST_KEYS

KILLS = 50
MAX_KILL_DELAY_S = 0.5
MAX_ROUNDS = 200  # bounds the loop if syncs keep finishing before the kill
MARK_WAIT_S = 15.0  # a child's store opens and its sync starts within this, or it is ended
REPO_ROOT = Path(__file__).resolve().parents[2]
_MAIN = "import sys; from app.cli import main; sys.exit(main())"


def _commune(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "COMMUNE_PIN": PIN}
    return subprocess.run(
        [sys.executable, "-c", _MAIN, *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class ForkServer:
    """Drives `python -m tests.sync.sync_child` (bounded: every read has a deadline)."""

    def __enter__(self) -> ForkServer:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.sync.sync_child"],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._ask(None) == {"ready": True}
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def run(self, argv: list[str], mark: Path | None = None) -> int:
        """Fork a `commune` child; with `mark`, it creates that file as its sync starts."""
        request = {"run": argv, "pin": PIN, "mark": str(mark) if mark else None}
        return self._ask(request)["pid"]

    def wait(self, pid: int) -> int:
        return self._ask({"wait": pid})["exit"]

    def _ask(self, request: dict | None) -> dict:
        if request is not None:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        line = self.proc.stdout.readline()  # the children are killed or end within seconds
        assert line, "the fork server died"
        return json.loads(line)


def _kill_after_sync_starts(runs: dict[int, Path], delay: Callable[[], float]) -> None:
    """SIGKILL each child a random delay after its marker file appears (its first request),
    bounded: a child that ends or never starts syncing within MARK_WAIT_S is left alone."""
    kill_at: dict[int, float] = {}
    deadline = time.monotonic() + MARK_WAIT_S
    while runs.keys() - kill_at.keys() or any(t is not None for t in kill_at.values()):
        now = time.monotonic()
        if now > deadline:
            break
        for pid, mark in runs.items():
            if pid not in kill_at and mark.exists():
                kill_at[pid] = now + delay()
            when = kill_at.get(pid)
            if when is not None and now >= when:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                kill_at[pid] = None
        time.sleep(0.002)
    for pid in runs:  # past the deadline: end it, it will not count (no mark, or exit 0)
        if kill_at.get(pid, 0) is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _edit(data_dir: Path, ward: str, rng: random.Random, created: list[str]) -> int:
    """Some local work between runs: new dossiers, status moves. Returns mutations queued."""
    store = open_store(data_dir, PIN)
    try:
        before = store.sync.summary().pending
        for _ in range(rng.randint(1, 4)):
            d = store.dossiers.receive(
                ReceiveDossier(
                    procedure_code="1.000894",
                    ward_code=ward,
                    applicant_name=f"Đỗ Thị Lan {len(created)}",
                    received_at=dt.datetime(2025, 11, 24, 2, 0, tzinfo=dt.UTC),
                )
            )
            created.append(d.id)
        for dossier_id in rng.sample(created, k=min(2, len(created))):
            # pushed or not yet: the server must see the intake and the move in order
            if store.dossiers.get(dossier_id).status == 2:
                store.dossiers.change_status(dossier_id, 4, note="chuyển xử lý")
        return store.sync.summary().pending - before
    finally:
        store.close()


def test_enrol_and_sync_survive_sigkill_at_random_points(sync_server, tmp_path, ward):
    from server.services import identity

    rng = random.Random(20251123)
    officer_dir, colleague_dir = tmp_path / "officer", tmp_path / "colleague"
    for folder in (officer_dir, colleague_dir):
        create_store(folder, PIN, settings=TEST_KEYS).close()  # cheap Argon2 for 100 opens
    sync_server.add_user(f"kill-officer-{ward}", "officer", [ward])
    code = identity.create_enrol_code(sync_server.engine, f"kill-officer-{ward}", 10)
    args = ["--data-dir", str(officer_dir), "enrol", "--server", sync_server.url, "--code", code]
    done = _commune(args)  # the real command, cold start and all, through POST /auth/enrol
    assert done.returncode == 0, done.stderr
    assert "enrolled as" in done.stdout
    sync_server.add_user(f"kill-colleague-{ward}", "officer", [ward])
    code = identity.create_enrol_code(sync_server.engine, f"kill-colleague-{ward}", 10)
    colleague = open_store(colleague_dir, PIN)
    save_enrolment(
        colleague.settings, sync_server.url, asdict(identity.enrol(sync_server.engine, code, "s"))
    )
    colleague.close()

    created: list[str] = []
    queued = sum(_edit(officer_dir, ward, rng, created) for _ in range(30))
    killed = rounds = early = 0
    window = MAX_KILL_DELAY_S  # adapts to how long a sync takes on this machine right now
    marks = tmp_path / "marks"
    marks.mkdir()
    with ForkServer() as forks:
        while killed < KILLS and rounds < MAX_ROUNDS:
            rounds += 1
            runs = {}
            for i, folder in enumerate((officer_dir, colleague_dir)):
                mark = marks / f"{rounds}-{i}"
                argv = ["--data-dir", str(folder), "sync", "--once", "--batch-kb", "4"]
                runs[forks.run(argv, mark)] = mark
            _kill_after_sync_starts(runs, partial(rng.uniform, 0.0, window))
            exits = {pid: forks.wait(pid) for pid in runs}
            # Only a kill after the first request counts: one while the store was still
            # opening tests nothing about sync.
            mid_sync = sum(
                code == -signal.SIGKILL and runs[pid].exists() for pid, code in exits.items()
            )
            too_early = sum(
                code == -signal.SIGKILL and not runs[pid].exists() for pid, code in exits.items()
            )
            finished = sum(code == 0 for code in exits.values())
            killed += mid_sync
            early += too_early
            if finished and not mid_sync:
                window *= 0.7  # done before the kill: aim earlier
            elif mid_sync == len(runs):
                window *= 1.1  # both cut: reach later points of a sync too
            window = min(MAX_KILL_DELAY_S * 4, max(0.02, window))
            if rounds % 5 == 0:
                queued += _edit(officer_dir, ward, rng, created)
        assert killed >= KILLS, (killed, early, rounds)  # SIGKILLed mid-sync >= KILLS times
        with sync_server.engine.connect() as conn:
            reached = conn.execute(
                text("SELECT count(*) FROM record WHERE ward_code = :w"), {"w": ward}
            ).scalar_one()
        assert reached > 0  # the killed runs got work through
        # then clean runs: the officer again last, the colleague's pull may be newer
        for folder in (officer_dir, colleague_dir, officer_dir):
            pid = forks.run(["--data-dir", str(folder), "sync", "--once"])
            assert forks.wait(pid) == 0

    officer = open_store(officer_dir, PIN)
    colleague = open_store(colleague_dir, PIN)
    try:
        assert officer.sync.summary().pending == 0
        with sync_server.engine.connect() as conn:
            on_server = conn.execute(
                text("SELECT entity, entity_id FROM record WHERE ward_code = :w"), {"w": ward}
            ).all()
            outcomes = conn.execute(
                text("SELECT DISTINCT status FROM applied_mutation WHERE device_id = :d"),
                {"d": officer.settings.get("server_device_id")},
            ).all()
        events = {e.id for d in created for e in officer.dossiers.history(d)}
        assert queued > len(created)  # the outbox carried dossiers, events and status moves
        # nothing lost, nothing extra, nothing twice: every dossier and every history event
        # once (a replayed intake or status move would have added an event record)
        assert sorted(i for e, i in on_server if e == "dossier") == sorted(created)
        assert sorted(i for e, i in on_server if e == "dossier_event") == sorted(events)
        assert {s for (s,) in outcomes} <= {"applied", "conflict"}
        for dossier_id in created:
            mine, theirs = officer.dossiers.get(dossier_id), colleague.dossiers.get(dossier_id)
            assert (theirs.code, theirs.status, theirs.applicant_name) == (
                mine.code,
                mine.status,
                mine.applicant_name,
            )
    finally:
        officer.close()
        colleague.close()


def test_background_sync_until_interrupted(sync_server, tmp_path, ward):
    """`commune sync` without --once: the scheduler runs, prints reports, ends on Ctrl-C."""
    from server.services import identity

    folder = tmp_path / "officer"
    store = create_store(folder, PIN, settings=TEST_KEYS)
    sync_server.add_user(f"bg-officer-{ward}", "officer", [ward])
    code = identity.create_enrol_code(sync_server.engine, f"bg-officer-{ward}", 10)
    save_enrolment(
        store.settings, sync_server.url, asdict(identity.enrol(sync_server.engine, code, "bg"))
    )
    store.dossiers.receive(
        ReceiveDossier(procedure_code="1.000894", ward_code=ward, applicant_name="Mai Thị Thu")
    )
    store.close()
    args = ["--data-dir", str(folder), "sync", "--interval", "3600", "--probe-interval", "3600"]
    proc = subprocess.Popen(
        [sys.executable, "-c", _MAIN, *args],
        cwd=REPO_ROOT,
        env={**os.environ, "COMMUNE_PIN": PIN, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "pushed=" in line:
                break
        assert any("pushed=2 " in line for line in lines), lines
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, err
    store = open_store(folder, PIN)
    try:
        assert store.sync.summary().pending == 0
    finally:
        store.close()
