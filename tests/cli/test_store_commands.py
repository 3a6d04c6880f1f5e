"""The local store commands through the real `commune` command (subprocess)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import time

import openpyxl
import pytest

from app.domain import reference
from app.domain.calendar import WorkingCalendar
from app.storage import KeySettings
from tests.cli.conftest import NEW_PIN, PIN, row, write_csv

PROCEDURE = next(p for p in reference.procedures() if p.processing_days >= 1)
LONG_AGO = "2024-01-10T09:00:00+07:00"  # every dossier received then is overdue by now


def _rows() -> list[dict]:
    code = PROCEDURE.code
    return [
        row(code, applicant_name="Nguyễn Thị Hương", applicant_id_number="001088012345",
            code="000.00.70.H26-251120-0901"),
        row(code, applicant_name="Trần Văn Bình", applicant_id_number="001090000002",
            status="4"),
        row("9.999999", applicant_name="Lê Văn Cường"),  # line 4: unknown procedure
        row(code, applicant_name="Phạm Thị Dung", received_at=LONG_AGO),
        row(code, applicant_name="Đỗ Văn Khánh"),  # no code, no ID number
    ]


@pytest.fixture(scope="module")
def shared(module_cli, tmp_path_factory):
    """One store for the read-only checks: `init` (--pin-stdin, --data-dir before the command)
    and an import with one bad row."""
    work = tmp_path_factory.mktemp("shared")
    data = work / "data"
    init = module_cli("--data-dir", str(data), "init", "--pin-stdin", "--ward", "00070",
                      stdin=f"{PIN}\n")
    register = write_csv(work / "register.csv", _rows())
    imported = module_cli("dossiers", "import", str(register), "--data-dir", str(data),
                          COMMUNE_PIN=PIN)
    return {"data": data, "work": work, "init": init, "import": imported, "csv": register}


def _list_json(cli, data, *args: str) -> dict:
    done = cli("dossiers", "list", "--json", *args, COMMUNE_DATA_DIR=str(data), COMMUNE_PIN=PIN)
    assert done.code == 0, done.err
    return json.loads(done.out)


def test_init_and_import_report_bad_rows_by_line(shared):
    assert shared["init"].code == 0 and "store created" in shared["init"].out
    imported = shared["import"]
    assert imported.code == 1  # a row was rejected
    assert "imported 4, skipped 0 already present, 1 rejected" in imported.out
    assert f"{shared['csv']}:4: procedure_code" in imported.err
    assert len(imported.err.strip().splitlines()) == 1


def test_reimporting_the_file_creates_no_duplicates(module_cli, shared):
    again = module_cli("dossiers", "import", str(shared["csv"]), "--data-dir", str(shared["data"]),
                       COMMUNE_PIN=PIN)
    assert "imported 0, skipped 4 already present, 1 rejected" in again.out
    assert _list_json(module_cli, shared["data"])["total"] == 4


def test_list_json_through_the_environment(module_cli, shared):
    listed = _list_json(module_cli, shared["data"])
    names = {d["applicant_name"] for d in listed["items"]}
    assert names == {"Nguyễn Thị Hương", "Trần Văn Bình", "Phạm Thị Dung", "Đỗ Văn Khánh"}
    dates = [d["appointment_date"] for d in listed["items"]]
    assert dates == sorted(dates)


def test_list_search_without_diacritics_with_pin_from_stdin(module_cli, shared):
    done = module_cli("dossiers", "list", "--search", "nguyen thi huong", "--pin-stdin",
                      "--data-dir", str(shared["data"]), stdin=f"{PIN}\n")
    assert done.code == 0, done.err
    assert "Nguyễn Thị Hương" in done.out and "Bình" not in done.out
    assert done.out.strip().endswith("1 of 1")


def test_list_search_by_id_number(module_cli, shared):
    found = _list_json(module_cli, shared["data"], "--search", "001 090 000 002")
    assert [d["applicant_name"] for d in found["items"]] == ["Trần Văn Bình"]


def test_list_search_by_the_code_s_tail(module_cli, shared):
    everything = _list_json(module_cli, shared["data"])["items"]
    code = everything[0]["code"]
    found = _list_json(module_cli, shared["data"], "--search", code[-11:].lower())
    assert code in [d["code"] for d in found["items"]]
    assert all(d["code"].endswith(code[-11:]) for d in found["items"])


def test_list_status_and_overdue_filters(module_cli, shared):
    in_process = _list_json(module_cli, shared["data"], "--status", "4")
    assert [d["applicant_name"] for d in in_process["items"]] == ["Trần Văn Bình"]
    overdue = _list_json(module_cli, shared["data"], "--overdue")
    assert "Phạm Thị Dung" in {d["applicant_name"] for d in overdue["items"]}
    assert all(d["appointment_date"] < dt.date.today().isoformat() for d in overdue["items"])


def test_export_csv_reads_back_and_reimports_as_nothing_new(module_cli, shared):
    out = shared["work"] / "register-out.csv"
    done = module_cli("dossiers", "export", "--format", "csv", "--out", str(out),
                      "--data-dir", str(shared["data"]), COMMUNE_PIN=PIN)
    assert done.code == 0 and "wrote 4 dossiers" in done.out
    with out.open(encoding="utf-8-sig", newline="") as fh:
        exported = list(csv.DictReader(fh))
    assert {r["applicant_name"] for r in exported} >= {"Nguyễn Thị Hương", "Đỗ Văn Khánh"}
    assert all(r["code"] for r in exported)  # codes issued for the rows that had none
    assert "documents" in exported[0]  # the papers go out in the cell the import reads
    again = module_cli("dossiers", "import", str(out), "--data-dir", str(shared["data"]),
                       COMMUNE_PIN=PIN)
    assert again.code == 0 and "imported 0, skipped 4" in again.out


def test_export_xlsx_opens_with_openpyxl(module_cli, shared):
    out = shared["work"] / "register.xlsx"
    done = module_cli("dossiers", "export", "--format", "xlsx", "--out", str(out),
                      "--data-dir", str(shared["data"]), COMMUNE_PIN=PIN)
    assert done.code == 0, done.err
    sheet = openpyxl.load_workbook(out).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "Mã hồ sơ" and len(rows) == 5
    assert {r[3] for r in rows[1:]} == {"Nguyễn Thị Hương", "Trần Văn Bình", "Phạm Thị Dung",
                                        "Đỗ Văn Khánh"}


def test_register_xlsx_is_form_06_for_the_days_asked(module_cli, shared):
    out = shared["work"] / "so-theo-doi.xlsx"
    done = module_cli("dossiers", "register", "--out", str(out), "--from", "2025-11-20",
                      "--to", "2025-11-20", "--data-dir", str(shared["data"]), COMMUNE_PIN=PIN)
    assert done.code == 0, done.err
    rows = list(openpyxl.load_workbook(out).active.iter_rows(values_only=True))
    assert rows[0][0] == "Mẫu số 06" and rows[1][0] == "SỔ THEO DÕI HỒ SƠ"
    assert rows[3][:3] == ("STT", "Mã hồ sơ", "Tên thủ tục hành chính")
    body = rows[4:]
    assert [r[0] for r in body] == [1, 2, 3]  # the long-ago dossier is outside the days asked
    assert {r[4] for r in body} == {"Nguyễn Thị Hương", "Trần Văn Bình", "Đỗ Văn Khánh"}
    assert all(r[7].date() == dt.date(2025, 11, 20) for r in body)
    assert "000.00.70.H26-251120-0901" in {r[1] for r in body}
    assert "wrote 3 dossiers" in done.out


def test_procedures_and_wards_lists(module_cli):
    procs = module_cli("procedures", "list", "--search", "khai sinh", "--json")
    found = json.loads(procs.out)
    assert procs.code == 0 and found
    assert all("khai sinh" in p["name"].lower() for p in found)
    wards = module_cli("wards", "list", "--province", "01", "--json")
    hanoi = json.loads(wards.out)
    assert len(hanoi) == 126 and "00070" in {w["code"] for w in hanoi}
    unknown = module_cli("wards", "list", "--province", "99")
    assert unknown.code == 2 and unknown.err.startswith("error: ")


def test_the_default_data_dir_comes_from_platformdirs(cli):
    done = cli("init", COMMUNE_PIN=PIN)
    assert done.code == 0, done.err
    default = cli.home / "xdg-data" / "commune-field"
    assert (default / "key.json").is_file() and (default / "store.db").is_file()
    assert str(default) in done.out
    assert cli("dossiers", "list", COMMUNE_PIN=PIN).out.strip() == "0 of 0"


def test_change_pin_then_wipe(cli, tmp_path):
    data = str(tmp_path / "data")
    assert cli("init", "--data-dir", data, COMMUNE_PIN=PIN).code == 0
    register = write_csv(tmp_path / "one.csv", [row(PROCEDURE.code, applicant_name="Vũ Thị Lan")])
    assert cli("dossiers", "import", str(register), "--data-dir", data, COMMUNE_PIN=PIN).code == 0
    changed = cli("change-pin", "--pin-stdin", "--data-dir", data, stdin=f"{PIN}\n{NEW_PIN}\n")
    assert changed.code == 0 and "PIN changed" in changed.out
    old = cli("dossiers", "list", "--data-dir", data, COMMUNE_PIN=PIN)
    assert old.code == 3 and "Wrong PIN" in old.err and len(old.err.splitlines()) == 1
    time.sleep(KeySettings().delay_after(1) + 0.2)  # one wrong PIN locks the store that long
    new = cli("dossiers", "list", "--search", "vu thi lan", "--data-dir", data,
              COMMUNE_PIN=NEW_PIN)
    assert new.code == 0 and "Vũ Thị Lan" in new.out
    refused = cli("wipe", "--data-dir", data)  # not a terminal, no --yes
    assert refused.code == 2 and "--yes" in refused.err
    wiped = cli("wipe", "--yes", "--data-dir", data)
    assert wiped.code == 0 and "crypto-erased" in wiped.out
    assert not (tmp_path / "data" / "key.json").exists()
    assert not (tmp_path / "data" / "store.db").exists()
    after = cli("dossiers", "list", "--data-dir", data, COMMUNE_PIN=NEW_PIN)
    assert after.code != 0 and "erased" in after.err and "wipe" in after.err


def test_init_max_attempts_destroys_the_key_after_that_many_wrong_pins(cli, tmp_path):
    data = str(tmp_path / "data")
    assert cli("init", "--max-attempts", "1", "--data-dir", data, COMMUNE_PIN=PIN).code == 0
    wrong = cli("dossiers", "list", "--data-dir", data, COMMUNE_PIN="0000")
    assert wrong.code != 0 and "erased" in wrong.err
    right = cli("dossiers", "list", "--data-dir", data, COMMUNE_PIN=PIN)
    assert right.code != 0 and "erased" in right.err
    bad = cli("init", "--max-attempts", "0", "--data-dir", str(tmp_path / "other"),
              COMMUNE_PIN=PIN)
    assert bad.code == 2 and "--max-attempts" in bad.err


def test_a_make_up_day_moves_the_appointment_of_later_dossiers(cli, tmp_path):
    data = str(tmp_path / "data")
    friday, saturday = dt.date(2025, 11, 21), dt.date(2025, 11, 22)
    assert cli("init", "--data-dir", data, COMMUNE_PIN=PIN).code == 0
    added = cli("calendar", "add-make-up-day", saturday.isoformat(), "--data-dir", data,
                COMMUNE_PIN=PIN)
    assert added.code == 0, added.err
    again = cli("calendar", "add-make-up-day", saturday.isoformat(), "--data-dir", data,
                COMMUNE_PIN=PIN)
    assert again.code == 2 and "already a working day" in again.err
    listed = cli("calendar", "list", "--json", "--data-dir", data, COMMUNE_PIN=PIN)
    assert json.loads(listed.out) == {
        "make_up_days": ["2025-11-22"], "extra_holidays": [], "server_version": 0
    }
    register = write_csv(tmp_path / "friday.csv", [
        row(PROCEDURE.code, applicant_name="Hà Văn Sơn", received_at="2025-11-21T09:00:00")])
    assert cli("dossiers", "import", str(register), "--data-dir", data, COMMUNE_PIN=PIN).code == 0
    [dossier] = _list_json(cli, data)["items"]
    worked = WorkingCalendar(make_up_days=[saturday]).add_working_days(
        friday, PROCEDURE.processing_days)
    assert dossier["appointment_date"] == worked.isoformat()
    assert worked < WorkingCalendar().add_working_days(friday, PROCEDURE.processing_days)
