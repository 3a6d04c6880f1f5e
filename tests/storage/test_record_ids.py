"""Record ids made on the device (app.storage.tables): time, a counter, and a node drawn once
per process. They must stay valid UUIDs and never repeat: not within a process when the
clock steps back, not between two processes (two devices, two stores) reading the same
instant, not between a store and its restored backup."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

from app.storage import create_store, restore_store
from app.storage import tables as T
from tests.storage.conftest import PIN, TEST_KEYS, WARD, request

FROZEN_NS = 1_796_000_000_000 * 1_000_000


def _valid(ids: list[str]) -> None:
    for text in ids:
        parsed = uuid.UUID(text)
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122 and str(parsed) == text


def test_a_clock_that_steps_back_or_stands_still_never_repeats_an_id(monkeypatch):
    readings = iter([FROZEN_NS, FROZEN_NS, FROZEN_NS - 10**12, FROZEN_NS] + [FROZEN_NS] * 10)
    monkeypatch.setattr(time, "time_ns", lambda: next(readings))
    ids = T.new_ids(5000) + [T.new_id()] + T.new_ids(3000) + [T.new_id(), T.new_id()]
    _valid(ids)
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)  # still time-ordered: new rows land at the end of the index
    assert {i[-17:] for i in ids} == {ids[0][-17:]}  # one node in one process


def _ids_of_child(make) -> list[str]:
    """The ids `make()` returns in a forked child (a second process, as a second device)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: write its ids and leave at once
        try:
            os.write(write, "\n".join(make()).encode())
        finally:
            os._exit(0)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 1 << 16):
        chunks.append(chunk)
    os.close(read)
    os.waitpid(pid, 0)
    return b"".join(chunks).decode().split("\n")


def test_two_processes_reading_the_same_instant_make_different_ids(monkeypatch):
    monkeypatch.setattr(time, "time_ns", lambda: FROZEN_NS)
    T.new_ids(10)  # the parent's source has counted before the fork: the child must not follow
    theirs = _ids_of_child(lambda: T.new_ids(2000))
    mine = T.new_ids(2000)
    _valid(theirs)
    assert len(theirs) == 2000
    assert not set(theirs) & set(mine)
    assert theirs[0][-17:] != mine[0][-17:]  # the child drew a node of its own


def _record_ids(store) -> set[str]:
    return {d.id for d in store.dossiers.everything()}


def test_two_stores_and_a_restored_backup_never_share_a_record_id(
    tmp_path: Path, procedure, monkeypatch
):
    monkeypatch.setattr(time, "time_ns", lambda: FROZEN_NS)  # every clock reads one instant
    first = create_store(tmp_path / "first", PIN, settings=TEST_KEYS)
    first.dossiers.receive_many(request(procedure, ward_code=WARD) for _ in range(20))
    backup = tmp_path / "first.cfbk"
    first.create_backup(backup, PIN)
    first.dossiers.receive_many(request(procedure, ward_code=WARD) for _ in range(20))
    kept = _record_ids(first)
    first.close()

    def second_device() -> list[str]:
        other = create_store(tmp_path / "second", PIN, settings=TEST_KEYS)
        other.dossiers.receive_many(request(procedure, ward_code=WARD) for _ in range(20))
        return sorted(_record_ids(other))

    second = set(_ids_of_child(second_device))
    restored = restore_store(backup, tmp_path / "restored", PIN, settings=TEST_KEYS)
    before = _record_ids(restored)
    restored.dossiers.receive_many(request(procedure, ward_code=WARD) for _ in range(20))
    after_restore = _record_ids(restored) - before
    restored.close()
    assert len(kept) == 40 and len(second) == 20 and len(after_restore) == 20
    assert before < kept  # the backup holds the first 20
    assert not (kept & second) and not (kept & after_restore) and not (second & after_restore)
