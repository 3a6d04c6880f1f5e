"""The sealed backup file: truncated, edited or wrongly opened backups never restore."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.storage import KeySettings, create_store, open_store, restore_store
from app.storage.backup import HEADER_BYTES, WrongBackupSecret
from app.storage.errors import TamperError

PIN = "2468"
PHOTO = b"\xff\xd8 a photo of an ID card, Nguyen Thi Huong "  # x25000: over 1 MiB, two chunks


@pytest.fixture
def backup(tmp_path: Path) -> Path:
    with create_store(tmp_path / "a", PIN, settings=KeySettings.for_tests()) as store:
        store.settings.set("note", "Nguyễn Thị Hường")
        store.attachments.add("dossier", "d1", "00070", PHOTO * 25000, filename="cmnd.jpg")
        store.create_backup(tmp_path / "b.cfbk", PIN)
    return tmp_path / "b.cfbk"


def test_round_trip_keeps_the_data_and_a_new_pin_opens_it(backup: Path, tmp_path: Path) -> None:
    assert b"Nguyen Thi Huong" not in backup.read_bytes()
    with restore_store(backup, tmp_path / "c", "1357", secret=PIN) as store:
        assert store.settings.get("note") == "Nguyễn Thị Hường"
        (meta,) = store.attachments.list("d1")
        assert store.attachments.read(meta.sha256) == PHOTO * 25000
    with open_store(tmp_path / "c", "1357") as store:
        assert store.settings.get("note") == "Nguyễn Thị Hường"


def test_wrong_secret_restores_nothing(backup: Path, tmp_path: Path) -> None:
    with pytest.raises(WrongBackupSecret):
        restore_store(backup, tmp_path / "c", PIN, secret="9999")
    assert not (tmp_path / "c" / "store.db").exists()


@pytest.mark.parametrize("damage", ["truncate", "flip", "drop_tail"])
def test_damaged_backups_fail_as_tampering(backup: Path, tmp_path: Path, damage: str) -> None:
    data = bytearray(backup.read_bytes())
    if damage == "truncate":
        data = data[: HEADER_BYTES + (len(data) - HEADER_BYTES) // 2]
    elif damage == "flip":
        data[HEADER_BYTES + 40] ^= 1
    else:
        data = data[:-1]
    backup.write_bytes(bytes(data))
    with pytest.raises(TamperError):
        restore_store(backup, tmp_path / "c", PIN)
    assert not (tmp_path / "c" / "store.db").exists()


def test_a_backup_whose_secret_is_forgotten_restores_through_recovery(tmp_path: Path) -> None:
    import json

    from app.storage.backup import read_backup_escrow
    from app.storage.recovery import (
        answer_request,
        forget_request,
        load_recovery_key,
        new_request,
        open_answer,
    )
    from app.storage.recovery import new_recovery_key as new_key

    pem, public = new_key("a long admin passphrase")
    with create_store(tmp_path / "a", PIN, settings=KeySettings.for_tests()) as store:
        store.escrow.set_public_key(public)
        store.settings.set("note", "Phạm Đức Mạnh")
        store.create_backup(tmp_path / "b.cfbk", "a backup secret nobody remembers")
    new_device = tmp_path / "new"
    new_device.mkdir()
    request = new_request(new_device, read_backup_escrow(tmp_path / "b.cfbk"), None)
    answer = answer_request(load_recovery_key(pem, "a long admin passphrase"), request)
    backup_key, _ = open_answer(new_device, json.loads(json.dumps(answer)))
    with restore_store(tmp_path / "b.cfbk", new_device, "135790", backup_key=backup_key) as s:
        assert s.settings.get("note") == "Phạm Đức Mạnh"
    forget_request(new_device)
    with open_store(new_device, "135790") as store:
        assert store.settings.get("note") == "Phạm Đức Mạnh"


def test_a_store_put_back_from_a_backup_never_reuses_a_write_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tablet whose clock stands still (reset, never set again) restored from a backup stamps
    its next write exactly as the original did after the backup. Write ids are derived from
    the write (so a push may leave them out); each copy of a store derives them with its own
    incarnation, or the server would answer the restored write as already applied and drop it."""
    import datetime as dt
    import time
    from types import SimpleNamespace

    from app.domain.models import ReceiveDossier

    stuck = time.time()
    monkeypatch.setattr("app.domain.hlc.time", SimpleNamespace(time=lambda: stuck))

    def status_writes(store, dossier_id: str) -> set[str]:
        pending = store.sync.pending_mutations(10_000_000)
        return {m.mutation_id for m in pending
                if m.entity_id == dossier_id and set(m.fields) == {"status"}}

    with create_store(tmp_path / "a", PIN, settings=KeySettings.for_tests()) as store:
        dossier = store.dossiers.receive(ReceiveDossier(
            procedure_code="1.000894", ward_code="00070", applicant_name="Lê Thị Ánh",
            received_at=dt.datetime(2025, 11, 21, 2, 0, tzinfo=dt.UTC),
        ))
        store.create_backup(tmp_path / "b.cfbk", PIN)
    with open_store(tmp_path / "a", PIN) as store:  # the tablet goes on after its backup
        store.dossiers.change_status(dossier.id, 4, note="chuyển xử lý")
        original = status_writes(store, dossier.id)
        original_incarnation = store.records.incarnation
    with restore_store(tmp_path / "b.cfbk", tmp_path / "c", PIN, secret=PIN) as restored:
        assert restored.records.incarnation not in ("", original_incarnation)
        restored.dossiers.change_status(dossier.id, 4, note="chuyển xử lý")
        again = status_writes(restored, dossier.id)
    assert len(original) == len(again) == 1
    assert original.isdisjoint(again)
