"""The province's catalogue file: good and bad CSV and XLSX files, exact line errors, nothing
stored when a line is bad, each import a new version on a real server database (SQLite file;
the PostgreSQL path is exercised by tests/sync/test_reference_sync.py)."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest
from openpyxl import Workbook

from app.cli import main
from app.cli.catalogue_cmds import read_file
from app.domain import reference
from app.domain.calendar import WorkingCalendar
from app.domain.catalogue import merged
from app.domain.records import Honoured, validate_record

HEADER = ["code", "name", "level", "processing_days", "fee", "documents", "forms", "field"]
GOOD = [
    [
        "1.999001",
        "Thủ tục cấp giấy xác nhận thử nghiệm",
        "Xã",
        "3",
        "50.000",
        "Tờ khai (1 bản chính) | Bản sao căn cước (1 bản sao) | Văn bản ủy quyền ~ nếu nộp thay",
        "Mẫu TK-01 | Mẫu TK-02",
        "Thử nghiệm",
    ],
    # a shipped code: the import replaces it (new fee and days)
    [
        "1.001193", "Thủ tục đăng ký khai sinh", "cấp xã", "0", "0",
        "Tờ khai đăng ký khai sinh", "", "Hộ tịch",
    ],
]
BAD = [
    GOOD[0],
    ["1.999002", "Thủ tục hai", "Xã", "năm", "0", "Tờ khai", "", ""],  # line 3
    ["1.00119", "Thủ tục ba", "Xã", "1", "0", "Tờ khai", "", ""],  # line 4
    ["1.999001", "Trùng mã", "Xã", "1", "0", "Tờ khai", "", ""],  # line 5
    ["1.999004", "Tên có \x00 NUL", "Xã", "1", "0", "Tờ khai", "", ""],  # line 6
    ["1.999005", "Thủ tục cấp tỉnh", "Tỉnh", "1", "0", "Tờ khai", "", ""],  # line 7
    ["1.999006", "Thủ tục sáu", "Xã", "1", "0", "Văn bản ~ ", "", ""],  # line 8
    ["1.999007", "Thủ tục bảy", "Xã", "400", "0", "Tờ khai", "", ""],  # line 9
]
BAD_LINES = [
    "line 3: processing_days:not_a_number (năm)",
    "line 4: code:format (expected like 1.001193)",
    "line 5: code:duplicate_of_line_2",
    "line 6: name:nul_char",
    "line 7: level:not_commune (Tỉnh)",
    "line 8: documents:condition_missing (Văn bản)",
    "line 9: processing_days:out_of_range_max_365",
]


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def write_xlsx(path: Path, rows: list[list[str]]) -> Path:
    book = Workbook()
    sheet = book.active
    sheet.append(HEADER)
    for row in rows:  # numbers as numbers, as a spreadsheet holds them
        sheet.append([int(c) if c.isdigit() else c.replace("\x00", "\x7f") for c in row])
    book.save(path)
    return path


@pytest.mark.parametrize("writer", [write_csv, write_xlsx], ids=["csv", "xlsx"])
def test_a_good_file_gives_every_procedure_with_its_documents_fee_and_forms(tmp_path, writer):
    found, errors = read_file(writer(tmp_path / f"good.{writer.__name__[6:]}", GOOD))
    assert errors == []
    new = found[0]
    assert (new.code, new.processing_days, new.fee, new.level) == ("1.999001", 3, 50000, "Xã")
    documents = new.required_documents
    assert [(d.name, d.originals, d.copies, d.required, d.condition) for d in documents] == [
        ("Tờ khai", 1, 0, True, ""),
        ("Bản sao căn cước", 0, 1, True, ""),
        ("Văn bản ủy quyền", 1, 0, False, "nếu nộp thay"),
    ]
    assert new.forms == ["Mẫu TK-01", "Mẫu TK-02"]
    catalogue = merged(reference.shipped_catalogue(), found, 1)
    # merged: shipped codes kept, the shipped one replaced in place, the new one added
    assert len(catalogue.procedures) == len(reference.shipped_catalogue().procedures) + 1
    assert catalogue.procedure("1.001193").required_documents[0].name == "Tờ khai đăng ký khai sinh"
    assert len(catalogue.procedure("1.001193").required_documents) == 1


def test_a_bad_csv_names_every_bad_line_and_its_reason(tmp_path):
    found, errors = read_file(write_csv(tmp_path / "bad.csv", BAD))
    assert [str(e) for e in errors] == BAD_LINES
    assert [p.code for p in found] == ["1.999001"]


def test_a_bad_xlsx_names_the_same_rows(tmp_path):
    found, errors = read_file(write_xlsx(tmp_path / "bad.xlsx", BAD))
    # openpyxl cannot write a NUL; the cell holds DEL, another control character
    expected = [e.replace("nul_char", "control_char") for e in BAD_LINES]
    assert [str(e) for e in errors] == expected


def test_a_file_without_a_required_column_is_refused_at_its_header(tmp_path):
    path = tmp_path / "cols.csv"
    path.write_text("code,name,level\n1.999001,Một,Xã\n", encoding="utf-8")
    _, errors = read_file(path)
    assert [str(e) for e in errors] == [
        "line 1: missing_columns:processing_days,fee,documents,forms"
    ]


def test_vietnamese_headers_are_read(tmp_path):
    path = tmp_path / "vi.csv"
    path.write_text(
        "Mã thủ tục,Tên thủ tục,Cấp thực hiện,Thời hạn giải quyết,Lệ phí,Thành phần hồ sơ,Mẫu đơn\n"
        "1.999010,Thủ tục mười,Xã,2,10000,Tờ khai,\n",
        encoding="utf-8",
    )
    found, errors = read_file(path)
    assert errors == [] and found[0].fee == 10000


def _db(tmp_path: Path) -> list[str]:
    return ["--data-dir", str(tmp_path / "srv"), "procedures", "import"]


def test_the_cli_stores_nothing_from_a_bad_file_and_a_new_version_per_good_import(
    tmp_path, capsys
):
    url = f"sqlite:///{tmp_path / 'central.db'}"
    bad = write_csv(tmp_path / "bad.csv", BAD)
    assert main([*_db(tmp_path), str(bad), "--db", url]) != 0
    said = capsys.readouterr()
    assert said.out.splitlines() == BAD_LINES
    assert "7 bad line(s) in bad.csv; nothing stored" in said.err
    from server import migrate
    from server.core.db import make_engine
    from server.services import reference as server_reference

    engine = make_engine(url, pool_size=1)
    migrate.upgrade(engine)
    assert server_reference.in_force(engine) == (0, 0)  # nothing stored
    good = write_xlsx(tmp_path / "good.xlsx", GOOD)
    assert main([*_db(tmp_path), str(good), "--check", "--db", url]) == 0
    assert "2 procedures, no bad line (nothing stored: --check)" in capsys.readouterr().out
    assert server_reference.in_force(engine) == (0, 0)
    assert main([*_db(tmp_path), str(good), "--db", url]) == 0
    assert main([*_db(tmp_path), str(good), "--db", url]) == 0
    assert "catalogue version 2: 2 procedures from good.xlsx" in capsys.readouterr().out
    assert server_reference.in_force(engine) == (2, 0)
    assert main(["--data-dir", str(tmp_path / "srv"), "procedures", "versions", "--db", url]) == 0
    listing = capsys.readouterr().out
    assert "catalogue\t2\tyes" in listing and "catalogue\t1\t\t" in listing
    assert main([
        "--data-dir", str(tmp_path / "srv"), "admin", "calendar", "--db", url,
        "--make-up-days", "2026-12-05", "--extra-holidays", "2026-12-07",
    ]) == 0
    assert server_reference.in_force(engine) == (2, 1)
    assert main(["--data-dir", str(tmp_path / "srv"), "admin", "calendar", "--db", url,
                 "--make-up-days", "5/12/2026"]) != 0
    assert "not a date (YYYY-MM-DD): '5/12/2026'" in capsys.readouterr().err
    assert server_reference.in_force(engine) == (2, 1)


def _dossier(procedure: str, appointment: dt.date) -> dict:
    return {
        "code": "000.00.70.H26-261204-0001",
        "procedure_code": procedure,
        "ward_code": "00070",
        "applicant_name": "Lê Văn Tám",
        "received_at": "2026-12-04T02:00:00+00:00",  # Friday 4 December, 09:00 in Hanoi
        "appointment_date": appointment.isoformat(),
        "status": 2,
        "channel": 1,
    }


def test_the_check_honours_each_published_version_and_nothing_else(tmp_path):
    found, _ = read_file(write_csv(tmp_path / "good.csv", GOOD))
    imported = merged(reference.shipped_catalogue(), found, 1)
    old = WorkingCalendar(make_up_days=[dt.date(2026, 12, 5)])  # Saturday worked
    new = WorkingCalendar()
    # 3 working days after Friday 4 December: Wed 9 under the new calendar, Tue 8 under the old
    device_date, server_date = dt.date(2026, 12, 8), dt.date(2026, 12, 9)
    honoured = {"catalogues": (imported,), "calendars": (new, old)}
    assert validate_record("dossier", _dossier("1.999001", device_date), **honoured) == []
    assert validate_record("dossier", _dossier("1.999001", server_date), **honoured) == []
    only_new = {"catalogues": (imported,), "calendars": (new,)}
    assert validate_record("dossier", _dossier("1.999001", device_date), **only_new) == [
        "appointment_date_mismatch"
    ]
    assert validate_record(
        "dossier", _dossier("1.999001", server_date), calendar=new
    ) == ["unknown_procedure"]  # the shipped catalogue in force does not know it
    assert Honoured((imported,), (new, old)).appointments(
        "2026-12-04T02:00:00+00:00", "1.999001"
    ) == {device_date, server_date}


def test_a_dossier_of_a_procedure_a_later_catalogue_dropped_still_moves(tmp_path):
    found, _ = read_file(write_csv(tmp_path / "good.csv", GOOD))
    first = merged(reference.shipped_catalogue(), found, 1)
    later = merged(reference.shipped_catalogue(), [], 2)  # the province dropped 1.999001
    before = _dossier("1.999001", dt.date(2026, 12, 9))
    assert validate_record("dossier", before, catalogues=(first,)) == []
    moved = {**before, "status": 4}
    assert validate_record("dossier", moved, before, catalogues=(later,)) == []
    assert validate_record("dossier", before, catalogues=(later,)) == ["unknown_procedure"]


def test_a_cell_past_the_csv_limit_is_a_line_error_not_a_crash(tmp_path):
    path = tmp_path / "huge.csv"
    huge = "x" * 200_000
    path.write_text(
        ",".join(HEADER) + "\n1.999001,Một,Xã,1,0,Tờ khai,,\n"
        f'1.999002,"{huge}",Xã,1,0,Tờ khai,,\n',
        encoding="utf-8",
    )
    found, errors = read_file(path)
    assert found == [] and [e.line for e in errors] == [3]
    assert errors[0].reason.startswith("csv:field larger than field limit")
