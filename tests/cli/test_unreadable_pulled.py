"""End to end: dossiers edited into shapes no device can read, straight in the real server's
database, are pulled by a device through `commune sync --once`; then `commune dossiers list`
and `commune dossiers export` succeed and name each unreadable dossier, never a traceback."""

from __future__ import annotations

import csv
import uuid
from pathlib import Path

import pytest
from openpyxl import load_workbook

from app.domain.hlc import Clock
from tests.cli.conftest import PIN, WARD, Cli
from tests.server.helpers import dossier_fields
from tests.support.postgres import postgres_server  # noqa: F401  (fixture)
from tests.support.raw_rows import edit_raw_fields
from tests.support.server_proc import ApiServer, sqlite_api_server  # noqa: F401  (fixture)

UNREADABLE = "Hồ sơ không đọc được"
GOOD_NAME = "Nguyễn Thị Hương"


def _dossier(clock: Clock, sequence: str, name: str) -> dict:
    """A whole dossier the server accepts (received now, its calendar's appointment date)."""
    fields = dossier_fields(WARD, 2, applicant_name=name, applicant_id_number="", documents=[],
                            notes="")
    fields["code"] = fields["code"][:-4] + sequence
    stamp = clock.now()
    return {
        "mutation_id": str(uuid.uuid4()), "device_id": clock.node, "entity": "dossier",
        "entity_id": str(uuid.uuid4()), "ward_code": WARD, "base_version": 0,
        "fields": {k: {"value": v, "hlc": stamp} for k, v in fields.items()},
    }


@pytest.fixture(scope="module")
def pulled(sqlite_api_server: ApiServer, tmp_path_factory):  # noqa: F811
    """A device store that pulled one good and two unreadable dossiers from the real server."""
    server = sqlite_api_server
    server.add_user("officer_unreadable", "officer", [WARD])
    tablet = server.enrol("officer_unreadable")
    clock = Clock("tab-a")
    good = _dossier(clock, "0901", GOOD_NAME)
    no_date = _dossier(clock, "0902", "Lê Văn Bình")
    bad_type = _dossier(clock, "0903", "Phạm Thu Hà")
    with server.client(tablet.token) as client:
        answer = client.post("/sync/push", json={"mutations": [good, no_date, bad_type]})
    assert {r["status"] for r in answer.json()["results"]} == {"applied"}
    # Hand edits of the stored rows: the appointment date gone, the channel a word.
    edit_raw_fields(server.engine, no_date["entity_id"],
                    lambda f: {k: v for k, v in f.items() if k != "appointment_date"})
    edit_raw_fields(server.engine, bad_type["entity_id"],
                    lambda f: f | {"channel": f["channel"] | {"value": "một"}})

    from server.services import identity

    cli = Cli(tmp_path_factory.mktemp("home"))
    data = str(tmp_path_factory.mktemp("device"))
    code = identity.create_enrol_code(server.engine, "officer_unreadable", 10)
    enrolled = cli("enrol", "--server", server.url, "--code", code, "--data-dir", data,
                   COMMUNE_PIN=PIN)
    assert enrolled.code == 0, enrolled.err
    synced = cli("sync", "--once", "--data-dir", data, COMMUNE_PIN=PIN)
    assert synced.code == 0, synced.err + synced.out
    return {"cli": cli, "data": data, "good": good, "no_date": no_date, "bad_type": bad_type}


def _codes(*mutations: dict) -> set[str]:
    return {m["fields"]["code"]["value"] for m in mutations}


def test_list_shows_the_good_dossier_and_one_line_per_unreadable(pulled):
    cli, data = pulled["cli"], pulled["data"]
    done = cli("dossiers", "list", "--status", "2", "--data-dir", data, COMMUNE_PIN=PIN)
    assert done.code == 0, done.err
    lines = done.out.splitlines()
    assert any(GOOD_NAME in line for line in lines)
    marked = [line for line in lines if UNREADABLE in line]
    assert {line.split()[0] for line in marked} == _codes(pulled["no_date"], pulled["bad_type"])
    assert any("appointment_date:missing" in line for line in marked)
    assert any("channel:choice" in line or "channel:type" in line for line in marked)
    assert "Lê Văn Bình" not in done.out  # an unreadable dossier shows no personal field
    assert lines[-1] == "1 of 1"

    as_json = cli("dossiers", "list", "--json", "--data-dir", data, COMMUNE_PIN=PIN)
    assert as_json.code == 0
    import json

    body = json.loads(as_json.out)
    assert body["total"] == 1 and len(body["items"]) == 1
    assert {u["id"] for u in body["unreadable"]} == {
        pulled["no_date"]["entity_id"], pulled["bad_type"]["entity_id"]
    }


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_export_writes_the_good_rows_and_marks_the_unreadable(pulled, tmp_path: Path, fmt):
    cli, data = pulled["cli"], pulled["data"]
    out = tmp_path / f"register.{fmt}"
    done = cli("dossiers", "export", "--format", fmt, "--out", str(out), "--data-dir", data,
               COMMUNE_PIN=PIN)
    assert done.code == 0, done.err
    assert f"wrote 1 dossiers to {out}" in done.out
    named = [line.split()[0] for line in done.out.splitlines() if UNREADABLE in line]
    assert set(named) == _codes(pulled["no_date"], pulled["bad_type"])
    if fmt == "csv":
        with out.open(encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.DictReader(fh))
    else:
        sheet = load_workbook(out).active
        values = list(sheet.iter_rows(values_only=True))
        header = ["code", "procedure_code", "ward_code", "applicant_name",
                  "applicant_id_number", "applicant_phone", "applicant_address", "channel",
                  "received_at", "appointment_date", "status", "timeliness", "notes", "documents"]
        rows = [dict(zip(header, ["" if v is None else v for v in row], strict=True))
                for row in values[1:]]
    by_code = {row["code"]: row for row in rows}
    assert set(by_code) == _codes(pulled["good"], pulled["no_date"], pulled["bad_type"])
    assert by_code[pulled["good"]["fields"]["code"]["value"]]["applicant_name"] == GOOD_NAME
    for m in (pulled["no_date"], pulled["bad_type"]):
        row = by_code[m["fields"]["code"]["value"]]
        assert row["notes"].startswith(UNREADABLE) and row["applicant_name"] == ""
