"""The SQLCipher layer: the whole file encrypted where sqlcipher3 imports (the dev group has it),
the plain path on request, and a plain store converted when SQLCipher becomes available."""

from __future__ import annotations

import os
import shutil
import sqlite3

import pytest

from app.storage import DossierQuery, StorageError, TamperError, create_store, open_store
from app.storage.db import PLAIN_HEADER, SQLCIPHER_ENV, Database, db_path, sqlcipher_available
from tests.storage.conftest import PIN, TEST_KEYS, receive
from tests.support.tools import missing_tool

if not sqlcipher_available():
    missing_tool("sqlcipher3 (the dev group installs it) does not import or is switched off")


def _header(data_dir) -> bytes:
    return db_path(data_dir).read_bytes()[: len(PLAIN_HEADER)]


def test_the_store_file_is_sqlcipher_encrypted_and_round_trips(store, data_dir, procedure):
    assert store.db.encrypted
    dossier = receive(store, procedure, applicant_name="Đinh Thị Ngọc Ánh")
    store.close()
    assert _header(data_dir) != PLAIN_HEADER
    plain = sqlite3.connect(db_path(data_dir))
    with pytest.raises(sqlite3.DatabaseError, match="not a database"):
        plain.execute("SELECT count(*) FROM records").fetchone()
    plain.close()
    with open_store(data_dir, PIN) as reopened:
        assert reopened.dossiers.get(dossier.id).applicant_name == "Đinh Thị Ngọc Ánh"
        found = reopened.dossiers.list(DossierQuery(search="dinh thi ngoc anh")).items
        assert [d.id for d in found] == [dossier.id]


def test_a_wrong_key_is_a_clear_tamper_error(store, data_dir):
    store.close()
    with pytest.raises(TamperError, match="does not open with this store's key"):
        Database(db_path(data_dir), os.urandom(32)).connect_raw()


def test_another_stores_file_in_place_is_refused_clearly(store, tmp_path, data_dir):
    other_dir = tmp_path / "other"
    create_store(other_dir, PIN, settings=TEST_KEYS).close()
    store.close()
    shutil.copyfile(db_path(other_dir), db_path(data_dir))
    with pytest.raises(TamperError) as caught:
        open_store(data_dir, PIN)
    assert "Dữ liệu đã bị sửa đổi" in str(caught.value)


def test_the_plain_path_on_request_reads_an_encrypted_file_clearly(store, data_dir, monkeypatch):
    store.close()
    monkeypatch.setenv(SQLCIPHER_ENV, "off")
    with pytest.raises(StorageError, match="SQLCipher-encrypted"):
        open_store(data_dir, PIN)


def test_a_plain_store_is_converted_when_sqlcipher_is_on(data_dir, procedure, monkeypatch):
    monkeypatch.setenv(SQLCIPHER_ENV, "off")
    with create_store(data_dir, PIN, settings=TEST_KEYS) as plain_store:
        assert not plain_store.db.encrypted
        dossier = receive(plain_store, procedure)
    assert _header(data_dir) == PLAIN_HEADER
    monkeypatch.delenv(SQLCIPHER_ENV)
    with open_store(data_dir, PIN) as converted:
        assert converted.db.encrypted
        assert converted.dossiers.get(dossier.id).code == dossier.code
        assert converted.dossiers.list(DossierQuery(search="huong")).total == 1
        receive(converted, procedure)  # and it takes writes
    assert _header(data_dir) != PLAIN_HEADER
    assert not (data_dir / "store.db.encrypting").exists()
    with open_store(data_dir, PIN) as again:
        assert again.dossiers.list(DossierQuery()).total == 2
