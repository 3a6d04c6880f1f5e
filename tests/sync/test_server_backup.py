"""Sealed server backups through the real CLI, on SQLite and PostgreSQL: the restored database
has the same record digest, and the file shows nothing of what it holds."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from app.domain.models import ReceiveDossier
from server.core.backup import BackupSchedule, load_or_create_key
from tests.cli.conftest import Cli
from tests.support.server_proc import sqlite_url, start_api_server
from tests.sync.conftest import Devices

TABLES = ("app_user", "device", "record", "change_log", "applied_mutation", "audit_log")
NAMES = ["Nguyễn Thị Hường Máy Chủ", "Trần Văn Bảo Máy Chủ"]


def digest(db_url: str) -> str:
    engine = create_engine(db_url)
    total = hashlib.sha256()
    try:
        with engine.connect() as conn:
            for table in TABLES:
                rows = conn.execute(text(f"SELECT * FROM {table}")).all()  # noqa: S608
                for line in sorted(json.dumps(list(r), default=str, sort_keys=True) for r in rows):
                    total.update(f"{table}|{line}\n".encode())
    finally:
        engine.dispose()
    return total.hexdigest()


def _fill(server, tmp_path: Path, ward: str) -> None:
    made = Devices(server, tmp_path / "devices")
    try:
        officer = made.enrol(made.user("officer", [ward]))
        for name in NAMES:
            officer.store.dossiers.receive(ReceiveDossier(
                procedure_code="1.000894", ward_code=ward, applicant_name=name,
                applicant_id_number="001088765432",
                received_at=dt.datetime(2025, 11, 21, 2, 0, tzinfo=dt.UTC),
            ))
        assert officer.sync().ok
    finally:
        made.close()


def _round_trip(server, target_url: str, tmp_path: Path, ward: str) -> None:
    _fill(server, tmp_path, ward)
    before = digest(server.db_url)
    cli = Cli(tmp_path / "home")
    key, out = tmp_path / "backup.key", tmp_path / "central.cfsb"
    made = cli("api", "backup", "--db", server.db_url, "--out", str(out), "--key-file", str(key))
    assert made.code == 0, made.err
    blob = out.read_bytes()
    for name in NAMES + ["001088765432"]:
        for form in (name, name.encode("ascii", "ignore").decode()):
            for encoded in (form.encode(), form.encode("utf-16-le")):
                assert encoded not in blob
    assert b"SQLite format" not in blob and b"PGDMP" not in blob and b"CREATE TABLE" not in blob

    wrong_key = tmp_path / "other.key"
    load_or_create_key(wrong_key)
    refused = cli("api", "restore", str(out), "--db", target_url, "--key-file", str(wrong_key))
    assert refused.code == 1 and "another backup key" in refused.err

    restored = cli("api", "restore", str(out), "--db", target_url, "--key-file", str(key))
    assert restored.code == 0, restored.err
    assert digest(target_url) == before


def test_sqlite_backup_and_restore_keep_the_record_digest(sync_server, ward, tmp_path: Path):
    target = sqlite_url(tmp_path / "restored")
    (tmp_path / "restored").mkdir()
    _round_trip(sync_server, target, tmp_path, ward)


@pytest.mark.postgres
def test_postgres_backup_and_restore_keep_the_record_digest(
    postgres_server, postgres_api_server, ward, tmp_path: Path
):
    _round_trip(postgres_api_server, postgres_server.create_database(), tmp_path, ward)


def test_scheduled_backups_keep_the_newest_n(sync_server, tmp_path: Path) -> None:
    schedule = BackupSchedule(sync_server.db_url, tmp_path / "backups",
                              load_or_create_key(tmp_path / "k"), keep=2)
    made = [schedule.run_once() for _ in range(3)]
    assert sorted(p.name for p in (tmp_path / "backups").iterdir()) == [m.name for m in made[1:]]


def test_the_api_process_runs_its_scheduled_backup(tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    server = start_api_server(sqlite_url(tmp_path), tmp_path, extra_env={
        "COMMUNE_BACKUP_DIR": str(folder), "COMMUNE_BACKUP_KEEP": "3"})
    try:
        for _ in range(100):  # bounded: the first run is at start
            if list(folder.glob("commune-*.cfsb")):
                break
            time.sleep(0.1)
        (made,) = list(folder.glob("commune-*.cfsb"))
        assert (tmp_path / "backup.key").stat().st_mode & 0o777 == 0o600
        assert made.read_bytes()[:4] == b"CFSB"
    finally:
        server.stop()
