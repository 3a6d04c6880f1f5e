"""Dossier codes issued on a device: never twice, skipping codes already here, with or without
an enrolment slot."""

from __future__ import annotations

import pytest

from app.domain import codes
from app.storage import create_store, migrations, open_store
from app.storage.services import dossiers as dossier_service
from app.storage.services.dossiers import DossierService, DuplicateCode
from tests.storage.conftest import PIN, TEST_KEYS, receive

AGENCY = "000.00.70.H26"  # the default agency code of ward 00070
DAY = "251121"  # the conftest request's receipt day in Hanoi


def _sequence(code: str) -> int:
    return codes.parse_code(code).sequence


def _import_code(store, procedure, code: str):
    row = {"code": code, "procedure_code": procedure.code, "ward_code": "00070",
           "channel": "1", "status": "2", "received_at": "2025-11-21T09:00:00+07:00",
           "applicant_name": "Trịnh Văn Tùng"}
    assert store.dossiers.import_rows([row]).imported == 1


def test_codes_already_imported_in_the_slot_are_skipped(store, procedure):
    store.settings.set("code_slot", 3)
    first, second = codes.sequence_range(3)[:2]
    _import_code(store, procedure, f"{AGENCY}-{DAY}-{first:04d}")
    _import_code(store, procedure, f"{AGENCY}-{DAY}-{second:04d}")
    issued = [receive(store, procedure).code for _ in range(3)]
    assert [_sequence(c) for c in issued] == [second + 1, second + 2, second + 3]


def test_the_database_refuses_a_code_given_out_twice(store, procedure):
    issued = receive(store, procedure).code
    with pytest.raises(DuplicateCode):
        receive(store, procedure, code=issued)
    with store.db.read() as conn, pytest.raises(Exception, match="UNIQUE"):
        conn.exec_driver_sql("INSERT INTO dossier_codes (code) VALUES (?)", (issued,))


def test_an_unenrolled_device_issues_from_the_local_range_only(store, procedure):
    assert store.settings.get("code_slot") is None
    every_slot = {n for slot in range(codes.SLOTS) for n in codes.sequence_range(slot)}
    issued = [_sequence(receive(store, procedure).code) for _ in range(5)]
    assert all(n in codes.LOCAL_SEQUENCES for n in issued)
    assert not set(issued) & every_slot
    assert len(set(issued)) == 5
    offset = store.settings.get("local_code_offset")
    assert issued[0] == codes.device_sequences(None, offset)[0]


def test_the_local_range_is_spent_once_then_refused(store, procedure):
    numbers = {_sequence(receive(store, procedure).code)
               for _ in range(len(codes.LOCAL_SEQUENCES))}
    assert numbers == set(codes.LOCAL_SEQUENCES)
    with pytest.raises(codes.SequenceExhausted):
        receive(store, procedure)


def test_two_unenrolled_devices_start_at_their_own_offsets(tmp_path, procedure):
    offsets = set()
    for i in range(6):  # six stores: all six drawing the same offset is (1/199)^5
        with create_store(tmp_path / f"d{i}", PIN, settings=TEST_KEYS) as s:
            receive(s, procedure)
            offsets.add(s.settings.get("local_code_offset"))
    assert len(offsets) > 1


def test_an_older_store_registers_its_codes_when_migrated(data_dir, procedure, monkeypatch):
    every = migrations.MIGRATIONS
    monkeypatch.setattr(migrations, "MIGRATIONS", every[:3])
    # the code of that time: no register to write or read
    monkeypatch.setattr(DossierService, "_register_codes", lambda *a: None)
    monkeypatch.setattr(dossier_service, "_code_taken", lambda *a: False)
    with create_store(data_dir, PIN, settings=TEST_KEYS) as old:
        old.settings.set("code_slot", 0)
        code = receive(old, procedure).code
    monkeypatch.undo()
    with open_store(data_dir, PIN) as store:
        raw = store.db.connect_raw()
        store.settings.delete(f"code_counter:{AGENCY}:{DAY}:0")  # even a lost counter is safe
        assert receive(store, procedure).code != code
    with raw:
        assert raw.execute("SELECT code FROM dossier_codes WHERE code = ?", (code,)).fetchone()
