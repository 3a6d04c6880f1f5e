"""Errors reach the user of `commune` as one clear line and a non-zero exit, never a traceback
(the `cli` fixture fails any run whose stderr holds one)."""

from __future__ import annotations

import sqlite3

from app.domain import reference
from app.storage.db import SQLCIPHER_ENV
from tests.cli.conftest import PIN, row, write_csv

PROCEDURE = next(p for p in reference.procedures() if p.processing_days >= 1)
STORAGE_ERROR_EXIT = 3


def _store_with_one_dossier(cli, tmp_path, **env) -> str:
    data = str(tmp_path / "data")
    assert cli("init", "--data-dir", data, COMMUNE_PIN=PIN, **env).code == 0
    register = write_csv(tmp_path / "one.csv", [
        row(PROCEDURE.code, applicant_name="Mai Thị Tuyết", applicant_id_number="001099000111")])
    assert cli("dossiers", "import", str(register), "--data-dir", data, COMMUNE_PIN=PIN,
               **env).code == 0
    return data


def test_a_short_pin_is_one_clear_line(cli, tmp_path):
    done = cli("init", "--data-dir", str(tmp_path / "data"), COMMUNE_PIN="12")
    assert done.code == STORAGE_ERROR_EXIT
    assert done.err.strip().splitlines() == [
        "error: Mã PIN phải có ít nhất 4 ký tự / The PIN needs at least 4 characters"]
    assert not (tmp_path / "data" / "key.json").exists()


def test_a_tampered_row_is_reported_as_tampering(cli, tmp_path):
    plain = {SQLCIPHER_ENV: "off"}  # the row bytes are edited with the plain sqlite3 module
    data = _store_with_one_dossier(cli, tmp_path, **plain)
    with sqlite3.connect(tmp_path / "data" / "store.db") as raw:
        (rowid, blob) = raw.execute(
            "SELECT id, sealed FROM records WHERE entity = 'dossier'").fetchone()
        edited = bytearray(blob)
        edited[len(edited) // 2] ^= 0x01
        raw.execute("UPDATE records SET sealed = ? WHERE id = ?", (bytes(edited), rowid))
    raw.close()
    done = cli("dossiers", "list", "--data-dir", data, COMMUNE_PIN=PIN, **plain)
    assert done.code == STORAGE_ERROR_EXIT
    [line] = done.err.strip().splitlines()
    assert line.startswith("error: Dữ liệu đã bị sửa đổi hoặc hoán đổi / Data was modified")
    # the list itself still comes, the row as one unreadable line (see docs/security.md)
    assert "Hồ sơ không đọc được: dữ liệu trên máy đã bị sửa" in done.out
    assert done.out.splitlines()[-1] == "0 of 1"
    assert "Tuyết" not in done.out + done.err


def test_a_damaged_sqlcipher_file_is_reported_as_tampering(cli, tmp_path):
    data = _store_with_one_dossier(cli, tmp_path)
    path = tmp_path / "data" / "store.db"
    content = bytearray(path.read_bytes())
    assert not content.startswith(b"SQLite format 3")  # the default path is SQLCipher here
    for offset in range(4096 + 100, len(content), 4096):  # one byte in every page but the first
        content[offset] ^= 0x01
    path.write_bytes(bytes(content))
    done = cli("dossiers", "list", "--data-dir", data, COMMUNE_PIN=PIN)
    assert done.code == STORAGE_ERROR_EXIT
    [line] = done.err.strip().splitlines()
    assert line.startswith("error: Dữ liệu đã bị sửa đổi hoặc hoán đổi")


def test_an_import_file_missing_columns_names_them(cli, tmp_path):
    data = str(tmp_path / "data")
    short = write_csv(tmp_path / "short.csv", [row(PROCEDURE.code, applicant_name="A")],
                      header=["procedure_code", "ward_code", "applicant_name", "received_at",
                              "status"])
    done = cli("dossiers", "import", str(short), "--data-dir", data, COMMUNE_PIN=PIN)
    assert done.code == 2
    [line] = done.err.strip().splitlines()
    assert "missing columns: code, applicant_id_number, applicant_phone, applicant_address, " \
           "channel, notes" in line


def test_an_xlsx_register_imports_like_the_csv_and_names_bad_lines(cli, tmp_path):
    from openpyxl import Workbook

    from app.storage.services.register_file import IMPORT_COLUMNS

    data = str(tmp_path / "data")
    assert cli("init", "--data-dir", data, COMMUNE_PIN=PIN).code == 0
    book = Workbook()
    book.active.append(list(IMPORT_COLUMNS))
    good = row(PROCEDURE.code, applicant_name="Mai Thị Tuyết")
    book.active.append([good.get(name) for name in IMPORT_COLUMNS])
    book.active.append([{**good, "applicant_name": ""}.get(name) for name in IMPORT_COLUMNS])
    path = tmp_path / "so.xlsx"
    book.save(path)
    done = cli("dossiers", "import", str(path), "--data-dir", data, COMMUNE_PIN=PIN)
    assert done.code == 1
    assert "imported 1, skipped 0 already present, 1 rejected" in done.out
    [line] = done.err.strip().splitlines()
    assert line.startswith(f"{path}:3: ")
