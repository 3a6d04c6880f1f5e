"""Create, open, close, reopen, migrate, change the PIN, wipe."""

from __future__ import annotations

import pytest

from app.domain.calendar import vn_date
from app.storage import (
    DossierQuery,
    StorageError,
    StoreDestroyed,
    TamperError,
    WrongPin,
    create_store,
    migrations,
    open_store,
    store_exists,
    wipe_store,
)
from app.storage.db import db_path
from tests.storage.conftest import PIN, TEST_KEYS, receive


def test_create_close_reopen_keeps_data_and_device_id(store, data_dir, procedure):
    dossier = receive(store, procedure)
    device_id = store.device_id
    store.close()
    assert store_exists(data_dir)
    with open_store(data_dir, PIN) as reopened:
        assert reopened.device_id == device_id
        assert reopened.dossiers.get(dossier.id) == dossier


def test_create_refuses_an_existing_store(store, data_dir):
    with pytest.raises(StorageError):
        create_store(data_dir, PIN, settings=TEST_KEYS)


def test_pragmas_wal_and_foreign_keys(store):
    with store.db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
        assert conn.exec_driver_sql("PRAGMA temp_store").scalar_one() == 2  # MEMORY


def test_opening_an_older_schema_migrates_it(data_dir, procedure, monkeypatch):
    every = migrations.MIGRATIONS
    monkeypatch.setattr(migrations, "MIGRATIONS", every[:1])
    old = create_store(data_dir, PIN, settings=TEST_KEYS)
    old.close()
    raw = old.db.connect_raw()
    assert raw.execute("SELECT version FROM schema_version").fetchone() == (1,)
    raw.close()
    monkeypatch.setattr(migrations, "MIGRATIONS", every)
    with open_store(data_dir, PIN) as store:
        dossier = receive(store, procedure)  # needs the v2 indexes' columns and blobs table
        assert store.dossiers.get(dossier.id).code == dossier.code
        with store.db.read() as conn:
            version = conn.exec_driver_sql("SELECT version FROM schema_version").scalar_one()
            indexes = {r[0] for r in conn.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert version == len(migrations.MIGRATIONS) == 5
    assert {"records_due", "records_status_due", "records_procedure_due"} <= indexes
    assert "records_received" not in indexes  # dropped by m005: no query seeks on it


def test_a_store_with_dossiers_keeps_listing_them_without_the_receipt_index(
    data_dir, procedure, monkeypatch
):
    every = migrations.MIGRATIONS
    monkeypatch.setattr(migrations, "MIGRATIONS", every[:4])
    old = create_store(data_dir, PIN, settings=TEST_KEYS)
    dossiers = [receive(old, procedure) for _ in range(3)]
    old.close()
    monkeypatch.setattr(migrations, "MIGRATIONS", every)
    with open_store(data_dir, PIN) as store:
        page = store.dossiers.list(DossierQuery())
        today = store.dossiers.dashboard(vn_date(dossiers[0].received_at))
        with store.db.read() as conn:
            index = conn.exec_driver_sql(
                "SELECT 1 FROM sqlite_master WHERE name = 'records_received'").first()
    assert index is None
    assert page.total == 3 and {d.id for d in page.items} == {d.id for d in dossiers}
    assert today.received_today == 3


def test_change_pin_keeps_data(store, data_dir, procedure):
    dossier = receive(store, procedure)
    store.change_pin(PIN, "9753")
    store.close()
    with pytest.raises(WrongPin):
        open_store(data_dir, PIN)
    with open_store(data_dir, "9753") as reopened:
        assert reopened.dossiers.get(dossier.id).applicant_name == "Nguyễn Thị Hương"


def test_wipe_removes_everything(store, data_dir, procedure):
    receive(store, procedure)
    store.attachments.add("dossier", "x", "00070", b"scan bytes", mime="image/jpeg")
    store.wipe()
    leftovers = [p.name for p in data_dir.rglob("*") if p.is_file()]
    assert not db_path(data_dir).exists()
    assert all(name == "unlock_state.json" for name in leftovers), leftovers
    assert not store_exists(data_dir)
    with pytest.raises(StoreDestroyed):
        open_store(data_dir, PIN)


def test_settings_survive_reopen_and_refuse_swapped_rows(store, data_dir):
    store.settings.set("server_url", "http://127.0.0.1:8000")
    store.settings.set("auto_lock_minutes", 5)
    assert store.settings.get("language", "vi") == "vi"
    store.close()
    with open_store(data_dir, PIN) as reopened:
        assert reopened.settings.get("server_url") == "http://127.0.0.1:8000"
        assert reopened.settings.get("auto_lock_minutes") == 5
    raw = store.db.connect_raw()
    with raw:
        raw.execute("UPDATE settings SET key = 'tmp' WHERE key = 'server_url'")
        raw.execute("UPDATE settings SET key = 'server_url' WHERE key = 'auto_lock_minutes'")
    raw.close()
    with open_store(data_dir, PIN) as reopened, pytest.raises(TamperError):
        reopened.settings.get("server_url")


def test_wipe_store_without_the_pin(store, data_dir, procedure):
    receive(store, procedure)
    store.close()
    wipe_store(data_dir)
    assert not db_path(data_dir).exists() and not store_exists(data_dir)
    with pytest.raises(StoreDestroyed):
        open_store(data_dir, PIN)


def test_the_data_dir_and_every_file_in_it_are_private(store, data_dir, procedure):
    dossier = receive(store, procedure)
    store.attachments.add("dossier", dossier.id, "00070", b"scan", filename="scan.jpg")
    with store.db.read():  # the WAL and shared-memory files exist while the store is open
        paths = [data_dir, *data_dir.rglob("*")]
        assert {"store.db-wal", "store.db-shm"} <= {p.name for p in paths}
        for path in paths:
            expected = 0o700 if path.is_dir() else 0o600
            assert path.stat().st_mode & 0o777 == expected, path.name
