""""Nhập sổ" from the app: a register file (XLSX or CSV) through the real reader and the real
store, in chunks with progress, every refused line named, nothing lost when it stops halfway."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from openpyxl import Workbook

from app.storage import DossierQuery
from app.storage.services.register_file import IMPORT_COLUMNS
from app.views.import_models import RegisterFileError, RegisterImport, run_import
from tests.views.seed import WARD

PROCEDURE = "1.004884"


def _xlsx(rows: list[dict], header: tuple[str, ...] = IMPORT_COLUMNS) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(list(header))
    for row in rows:
        sheet.append([row.get(name) for name in header])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _row(i: int, **values) -> dict:
    return {
        "procedure_code": PROCEDURE,
        "ward_code": WARD,
        "applicant_name": f"Nguyễn Văn {i}",
        "applicant_id_number": f"0011900{i:05d}",
        "channel": 1,  # a number cell, as a spreadsheet holds it
        "received_at": dt.datetime(2026, 11, 20, 8, 30) + dt.timedelta(minutes=i),  # a date cell
        "status": 2,
        **values,
    }


def test_an_xlsx_register_imports_in_chunks_with_progress_and_line_errors(store) -> None:
    rows = [_row(i) for i in range(12)]
    rows[4] = _row(4, procedure_code="9.999999")  # sheet line 6
    rows[9] = _row(9, applicant_name="")  # sheet line 11
    job = RegisterImport.from_file(_xlsx(rows), "so-theo-doi.xlsx")
    job.chunk_rows = 5
    seen: list[str] = []
    run_import(store.dossiers.import_rows, job, lambda j: seen.append(j.progress_text()))
    assert seen == ["Đã xử lý 5/12 dòng", "Đã xử lý 10/12 dòng", "Đã xử lý 12/12 dòng"]
    assert (job.imported, job.skipped, len(job.errors)) == (10, 0, 2)
    assert [line for line, _ in sorted(job.errors)] == [6, 11]
    lines = job.error_lines()
    assert lines[0].startswith("Dòng 6: ") and lines[1].startswith("Dòng 11: ")
    assert job.summary() == "Đã nhập 10 hồ sơ, bỏ qua 0 hồ sơ đã có, 2 dòng bị từ chối."
    found = store.dossiers.list(DossierQuery(search="Nguyễn Văn 7"))
    assert found.total == 1
    [d] = found.items
    assert d.received_at == dt.datetime(2026, 11, 20, 1, 37, tzinfo=dt.UTC)  # Vietnam time


def test_stopping_halfway_loses_nothing_the_same_file_again_finishes_it(store) -> None:
    data = _xlsx([_row(i) for i in range(9)])
    half = RegisterImport.from_file(data, "so.xlsx")
    half.chunk_rows = 4
    first = next(half.chunks())
    half.add(first, store.dossiers.import_rows(first))  # then the app stops
    again = run_import(store.dossiers.import_rows, RegisterImport.from_file(data, "so.xlsx"))
    assert (again.imported, again.skipped, again.errors) == (5, 4, [])
    assert store.dossiers.list(DossierQuery()).total == 9


def test_a_csv_register_and_files_that_cannot_be_imported(store) -> None:
    header = ",".join(IMPORT_COLUMNS)
    line = f",{PROCEDURE},{WARD},Trần Thị Bình,001190000001,,,1,2026-11-20T08:30:00,2,"
    job = RegisterImport.from_file(f"{header}\n{line}\n".encode(), "so.csv")
    assert run_import(store.dossiers.import_rows, job).imported == 1
    with pytest.raises(RegisterFileError, match="missing columns: notes"):
        RegisterImport.from_file(_xlsx([_row(1)], IMPORT_COLUMNS[:-1]), "so.xlsx")
    with pytest.raises(RegisterFileError, match="not an XLSX workbook"):
        RegisterImport.from_file(b"PK\x03\x04 broken", "so.xlsx")
    with pytest.raises(RegisterFileError, match="not a UTF-8 CSV"):
        RegisterImport.from_file("Trần".encode("utf-16"), "so.csv")
