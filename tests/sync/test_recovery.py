"""A forgotten PIN, recovered through the organisation's offline recovery key: with the local
escrow of a device that never synced, and with the server's copy after a sync. Real CLI, real
API process; every recovery is in the server's audit log."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import text

from app.domain.models import ReceiveDossier
from app.storage import StoreDestroyed, WrongPin, open_store
from app.storage.recovery import ESCROW_FILE
from app.sync.enrolment import _fetch_recovery_key
from tests.cli.conftest import Cli
from tests.sync.conftest import PIN

NEW_PIN = "con mèo đen 1357"  # the recovered store has no keystore here: a passphrase
PASSPHRASE = "khoa khoi phuc cua so 2026"


def _receive(store, ward: str, name: str) -> str:
    return store.dossiers.receive(ReceiveDossier(
        procedure_code="1.000894", ward_code=ward, applicant_name=name,
        applicant_id_number="001088123456",
        received_at=dt.datetime(2025, 11, 21, 2, 0, tzinfo=dt.UTC),
    )).id


def _recoveries(server) -> list[dict]:
    with server.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT device_id, detail FROM audit_log WHERE action = 'recover_device'")
        ).all()
    return [{"device_id": d, **(json.loads(x) if isinstance(x, str) else x)} for d, x in rows]


def _admin_key(cli: Cli, server, tmp_path: Path) -> Path:
    key = tmp_path / "recovery.pem"
    made = cli("admin", "recovery-key", "create", "--out", str(key), "--db", server.db_url,
               COMMUNE_RECOVERY_PASSPHRASE=PASSPHRASE)
    assert made.code == 0, made.err
    assert b"PRIVATE KEY" in key.read_bytes() and b"ENCRYPTED" in key.read_bytes()
    with server.engine.connect() as conn:
        stored = conn.execute(text("SELECT public_key FROM recovery_key WHERE active")).all()
    assert len(stored) == 1 and stored[0][0] not in key.read_text()  # only the public half
    return key


def _recover(cli: Cli, server, folder: Path, key: Path, tmp_path: Path, *extra: str) -> None:
    request, answer = tmp_path / "request.json", tmp_path / "answer.json"
    asked = cli("recover", "--request-out", str(request), "--data-dir", str(folder))
    assert asked.code == 0, asked.err
    answered = cli("admin", "recover-device", "--request", str(request), "--key", str(key),
                   "--out", str(answer), "--db", server.db_url, *extra,
                   COMMUNE_RECOVERY_PASSPHRASE=PASSPHRASE)
    assert answered.code == 0, answered.err
    done = cli("recover", "--answer", str(answer), "--data-dir", str(folder),
               COMMUNE_NEW_PIN=NEW_PIN)
    assert done.code == 0, done.err
    again = cli("recover", "--answer", str(answer), "--data-dir", str(folder),
                COMMUNE_NEW_PIN="another passphrase of words 42")
    assert again.code == 3 and "no open recovery request" in again.err  # one-time


def test_recovery_of_a_device_that_never_synced_from_its_local_escrow(
    devices, sync_server, ward, tmp_path: Path
) -> None:
    cli = Cli(tmp_path / "home")
    key = _admin_key(cli, sync_server, tmp_path)
    officer = devices.enrol(devices.user("officer", [ward]))
    _fetch_recovery_key(officer.transport, officer.store.settings, officer.transport.token)
    officer.store.escrow.refresh()  # what the next unlock does
    ids = [_receive(officer.store, ward, f"Vũ Thị Lan {i}") for i in range(3)]
    folder = officer.data_dir
    officer.store.close()
    assert (folder / ESCROW_FILE).exists()
    with sync_server.engine.connect() as conn:  # never synced: the server has no escrow
        assert conn.execute(text("SELECT count(*) FROM device_escrow WHERE device_id = :d"),
                            {"d": officer.server_device_id}).scalar_one() == 0

    for _ in range(9):  # the PIN is forgotten; the tenth wrong one erases the key
        with pytest.raises(WrongPin):
            open_store(folder, "0000")
    with pytest.raises(StoreDestroyed):
        open_store(folder, "0000")

    _recover(cli, sync_server, folder, key, tmp_path)
    with open_store(folder, NEW_PIN) as store:
        assert [store.dossiers.get(i).applicant_name for i in ids] == [
            f"Vũ Thị Lan {i}" for i in range(3)]
        assert store.sync.summary().pending >= 3  # the unsynced work is still queued
    (logged,) = [r for r in _recoveries(sync_server) if r["device_id"] == officer.server_device_id]
    assert logged["escrow"] == "device"


def test_recovery_after_a_sync_from_the_servers_escrow(
    devices, sync_server, ward, tmp_path: Path
) -> None:
    cli = Cli(tmp_path / "home")
    key = _admin_key(cli, sync_server, tmp_path)
    officer = devices.enrol(devices.user("officer", [ward]))
    dossier = _receive(officer.store, ward, "Hoàng Văn Tùng")
    officer.store.escrow.asked(now=0)  # last asked long ago: this sync asks for the key
    assert officer.sync().ok  # the sync fetched the public key and sent the escrow
    assert officer.store.escrow.public_key()
    with sync_server.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM device_escrow WHERE device_id = :d"),
                            {"d": officer.server_device_id}).scalar_one() == 1
    folder = officer.data_dir
    officer.store.close()
    (folder / ESCROW_FILE).unlink()  # the local copy is lost too: only the server's is left

    _recover(cli, sync_server, folder, key, tmp_path, "--device-id", officer.server_device_id)
    with pytest.raises(WrongPin):
        open_store(folder, PIN)  # the old PIN no longer opens it
    with open_store(folder, NEW_PIN) as store:
        assert store.dossiers.get(dossier).applicant_name == "Hoàng Văn Tùng"
    (logged,) = [r for r in _recoveries(sync_server) if r["device_id"] == officer.server_device_id]
    assert logged["escrow"] == "server"


def test_a_backup_restores_on_a_new_device_through_recovery_without_its_secret(
    devices, sync_server, ward, tmp_path: Path
) -> None:
    cli = Cli(tmp_path / "home")
    key = _admin_key(cli, sync_server, tmp_path)
    officer = devices.enrol(devices.user("officer", [ward]))
    _fetch_recovery_key(officer.transport, officer.store.settings, officer.transport.token)
    dossier = _receive(officer.store, ward, "Bùi Thị Hoa")
    backup = tmp_path / "tablet.cfbk"
    made = cli("backup", "create", "--out", str(backup), "--data-dir", str(officer.data_dir),
               COMMUNE_PIN=PIN, COMMUNE_BACKUP_PASSPHRASE="a secret the officer then forgot")
    assert made.code == 0, made.err

    new_tablet, request, answer = tmp_path / "new", tmp_path / "req.json", tmp_path / "ans.json"
    asked = cli("recover", "--backup", str(backup), "--request-out", str(request),
                "--data-dir", str(new_tablet))
    assert asked.code == 0, asked.err
    answered = cli("admin", "recover-device", "--request", str(request), "--key", str(key),
                   "--out", str(answer), "--db", sync_server.db_url,
                   COMMUNE_RECOVERY_PASSPHRASE=PASSPHRASE)
    assert answered.code == 0, answered.err
    restored = cli("backup", "restore", str(backup), "--answer", str(answer),
                   "--data-dir", str(new_tablet), COMMUNE_PIN=NEW_PIN)
    assert restored.code == 0, restored.err
    with open_store(new_tablet, NEW_PIN) as store:
        assert store.dossiers.get(dossier).applicant_name == "Bùi Thị Hoa"
    assert any(r["store_device_id"] == officer.store.device_id for r in _recoveries(sync_server))
