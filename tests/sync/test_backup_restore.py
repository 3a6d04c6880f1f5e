"""Device backups through the real `commune backup` CLI, restored on a new data folder, then
synced against the real API process: nothing readable in the file, nothing lost, nothing twice."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

from sqlalchemy import text

from app.domain.models import ReceiveDossier
from app.domain.text import fold
from app.storage import open_store, restore_store
from app.storage.services.records import NotFound
from app.sync.engine import SyncEngine
from app.sync.transport import Timeouts, Transport
from tests.cli.conftest import Cli
from tests.sync.conftest import FAST_RETRY, PIN, TEST_KEYS, server_state

PROCEDURE = "1.000894"
NAMES = ["Nguyễn Thị Hường", "Trần Văn Bảo", "Lê Thị Ánh", "Phạm Đức Mạnh", "Đỗ Thị Ngọc"]


def _receive(store, ward: str, index: int) -> str:
    dossier = store.dossiers.receive(
        ReceiveDossier(
            procedure_code=PROCEDURE,
            ward_code=ward,
            applicant_name=f"{NAMES[index]} Sao Lưu",
            applicant_id_number=f"00108877{index:04d}",
            applicant_address="Số 12 phố Hàng Bạc, phường Hoàn Kiếm",
            received_at=dt.datetime(2025, 11, 21, 2, 0, tzinfo=dt.UTC),
        )
    )
    return dossier.id


def _holds(store, dossier_id: str) -> bool:
    try:
        store.dossiers.get(dossier_id)
    except NotFound:
        return False
    return True


def _marker_forms(markers: list[str]) -> list[bytes]:
    forms: set[bytes] = set()
    for marker in markers:
        for variant in {marker, fold(marker), marker.lower(), fold(marker).lower()}:
            forms |= {variant.encode("utf-8"), variant.encode("utf-16-le"),
                      variant.encode("utf-16-be")}
    return sorted(forms)


def _dossiers(server, ward: str) -> dict[str, dict]:
    return {k: v for k, v in server_state(server, ward).items() if v["_entity"] == "dossier"}


def _change_rows(server, ward: str) -> int:
    with server.engine.connect() as conn:
        return conn.execute(
            text("SELECT count(*) FROM change_log WHERE ward_code = :w"), {"w": ward}
        ).scalar_one()


def _engine_for(store) -> tuple[SyncEngine, Transport]:
    transport = Transport.from_settings(
        store.settings, retry=FAST_RETRY, timeouts=Timeouts(connect=5, read=20, write=20),
        rng=random.Random(7), zstd_level=3,
    )
    return SyncEngine(store.sync, transport, on_revoked=lambda: None), transport


def test_backup_restores_on_a_new_folder_and_unsynced_work_syncs_exactly_once(
    devices, sync_server, ward, tmp_path: Path
) -> None:
    officer = devices.enrol(devices.user("officer", [ward]))
    synced = [_receive(officer.store, ward, i) for i in range(2)]
    assert officer.sync().ok
    unsynced = [_receive(officer.store, ward, i) for i in range(2, 5)]
    pending = officer.store.sync.summary().pending
    assert pending >= 3
    assert len(_dossiers(sync_server, ward)) == 2

    cli = Cli(tmp_path / "home")
    backup = tmp_path / "tablet.cfbk"
    made = cli("backup", "create", "--out", str(backup), "--data-dir", str(officer.data_dir),
               COMMUNE_PIN=PIN)
    assert made.code == 0, made.err
    assert "backup written" in made.out and "100%" in made.err  # progress on stderr

    # Nothing readable: names, ID numbers, the address, in UTF-8, UTF-16 and without accents.
    markers = [f"{n} Sao Lưu" for n in NAMES] + NAMES + [
        f"00108877{i:04d}" for i in range(5)] + ["Hàng Bạc", "Hoàn Kiếm", "Sao Lưu"]
    blob = backup.read_bytes()
    hits = [form for form in _marker_forms(markers) if form in blob]
    assert hits == []
    assert b"SQLite format" not in blob and b"CFSF" not in blob

    wrong = cli("backup", "restore", str(backup), "--data-dir", str(tmp_path / "x"),
                COMMUNE_PIN="9999")
    assert wrong.code == 3 and "Wrong PIN or passphrase for this backup" in wrong.err

    new_folder = tmp_path / "new-tablet"
    restored = cli("backup", "restore", str(backup), "--data-dir", str(new_folder),
                   COMMUNE_PIN=PIN)
    assert restored.code == 0, restored.err
    assert f"{pending} changes to sync" in restored.out

    again = cli("backup", "restore", str(backup), "--data-dir", str(new_folder),
                COMMUNE_PIN=PIN)
    assert again.code == 2 and "already exists" in again.err

    store = open_store(new_folder, PIN)
    engine, transport = _engine_for(store)
    try:
        assert store.device_id == officer.store.device_id
        assert {store.dossiers.get(i).applicant_name for i in synced + unsynced} == {
            f"{n} Sao Lưu" for n in NAMES}
        report = engine.run_once()
        assert report.ok and report.applied == pending and report.rejected == 0
        assert store.sync.summary().pending == 0
        state = _dossiers(sync_server, ward)
        assert sorted(state) == sorted(synced + unsynced)
        assert {v["applicant_name"] for v in state.values()} == {f"{n} Sao Lưu" for n in NAMES}
        assert engine.run_once().pushed == 0
    finally:
        transport.close()
        store.close()

    # The old tablet still holds the same outbox: pushing it again changes nothing on the server.
    changes = _change_rows(sync_server, ward)
    replay = officer.sync()
    assert replay.ok and replay.rejected == 0
    assert _change_rows(sync_server, ward) == changes
    assert len(_dossiers(sync_server, ward)) == 5


def test_a_store_put_back_from_an_older_backup_gets_back_what_it_pushed_after_the_copy(
    devices, sync_server, ward, tmp_path: Path
) -> None:
    """The server leaves a device's own pushes out of its pulls (the device holds them). A
    store put back from a backup made before some of those pushes does not: its first pull
    asks for them too, and later pulls leave them out again."""
    officer = devices.enrol(devices.user("officer", [ward]))
    before = _receive(officer.store, ward, 0)
    assert officer.sync().ok
    backup = tmp_path / "older.cfbk"
    officer.store.create_backup(backup, PIN)
    after = [_receive(officer.store, ward, i) for i in (1, 2)]
    assert officer.sync().ok and officer.store.sync.summary().pending == 0
    assert not officer.store.sync.pulls_own_records()  # the original store holds its pushes

    store = restore_store(backup, tmp_path / "put-back", PIN, settings=TEST_KEYS)
    engine, transport = _engine_for(store)
    try:
        assert store.device_id == officer.store.device_id
        assert [i for i in after if _holds(store, i)] == []
        assert store.sync.pulls_own_records()
        report = engine.run_once()
        assert report.ok and report.pushed == 0
        assert report.pulled >= len(after)
        assert {store.dossiers.get(i).applicant_name for i in [before, *after]} == {
            f"{NAMES[i]} Sao Lưu" for i in range(3)}
        assert not store.sync.pulls_own_records()
        assert engine.run_once().pulled == 0  # own pushes are left out again
    finally:
        transport.close()
        store.close()
