"""The province's catalogue and working calendar, end to end on a real API process (SQLite and
PostgreSQL): an admin publishes them with the CLI against the server's database, an enrolled
device receives them by sync, receives a dossier of a procedure only the import has, under the
published calendar, prints its fee on the slip, and the server accepts its push, also after a
newer calendar was published while the dossier was waiting (the window the server honours)."""

from __future__ import annotations

import datetime as dt
import io
import threading
from pathlib import Path

import pytest
from pypdf import PdfReader

from app.cli import main
from app.domain import reference
from app.domain.models import ReceiveDossier
from app.reports.slip import build_slip, context_for
from tests.support.server_proc import (  # noqa: F401  (fixtures)
    api_server,
    postgres_api_server,
    sqlite_api_server,
)
from tests.sync.conftest import Devices, server_state

NEW = "1.999001"
CATALOGUE = (
    "code,name,level,processing_days,fee,documents,forms,field\n"
    f'{NEW},Thủ tục xác nhận thử nghiệm của tỉnh,Xã,3,50.000,"Tờ khai (1 bản chính) | '
    'Văn bản ủy quyền ~ nếu nộp thay",Mẫu TK-01,Thử nghiệm\n'
)
FRIDAY_0900 = dt.datetime(2026, 12, 4, 2, 0, tzinfo=dt.UTC)  # 09:00 in Hanoi
SATURDAY = "2026-12-05"


@pytest.fixture
def devices(api_server, tmp_path):  # noqa: F811
    made = Devices(api_server, tmp_path)
    yield made
    made.close()
    reference.use_catalogue(None)  # this process's other tests use the shipped catalogue


def _admin(api_server, tmp_path: Path, *args: str) -> None:  # noqa: F811
    assert main(["--data-dir", str(tmp_path / "admin"), *args, "--db", api_server.db_url]) == 0


def _receive(store, ward: str, name: str):
    return store.dossiers.receive(
        ReceiveDossier(
            procedure_code=NEW,
            ward_code=ward,
            applicant_name=name,
            applicant_id_number="001088012345",
            received_at=FRIDAY_0900,
        )
    )


def test_published_reference_reaches_the_device_and_its_dossiers_are_accepted(
    api_server, devices, tmp_path  # noqa: F811
):
    ward = "00070"
    officer = devices.enrol(devices.user("officer", [ward]))
    assert reference.catalogue().get(NEW) is None  # a new store: the shipped catalogue
    catalogue_file = tmp_path / "danh-muc.csv"
    catalogue_file.write_text(CATALOGUE, encoding="utf-8")
    _admin(api_server, tmp_path, "procedures", "import", str(catalogue_file))
    _admin(api_server, tmp_path, "admin", "calendar", "--make-up-days", SATURDAY)

    report = officer.sync()
    assert report.ok, report.errors
    assert report.reference == ["catalogue:1", "calendar:1"]
    assert officer.store.reference.versions() == (1, 1)
    assert reference.procedure(NEW).fee == 50000
    assert officer.sync().reference == []  # held already: nothing sent again

    # Friday + 3 working days with Saturday worked: Tuesday 8 (Wednesday 9 without it)
    first = _receive(officer.store, ward, "Lê Văn Tám")
    assert first.appointment_date == dt.date(2026, 12, 8)
    pdf = build_slip(first, context_for(reference.procedure(NEW), agency_name="Phường Ba Đình"))
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "Phí, lệ phí: 50.000 đồng" in text

    # The admin drops the make-up day before the device pushes: the device gets calendar 2
    # first, its waiting dossier keeps the date it printed, and the server accepts it.
    _admin(api_server, tmp_path, "admin", "calendar", "--make-up-days", "")
    report = officer.sync()
    assert report.ok and report.rejected == 0, report.errors
    assert report.reference == ["calendar:2"]
    stored = server_state(api_server, ward)[first.id]
    assert (stored["procedure_code"], stored["appointment_date"]) == (NEW, "2026-12-08")

    second = _receive(officer.store, ward, "Lê Thị Chín")
    assert second.appointment_date == dt.date(2026, 12, 9)  # calendar 2: Saturday not worked
    report = officer.sync()
    assert report.ok and report.rejected == 0 and report.applied >= 1, report.errors
    assert server_state(api_server, ward)[second.id]["appointment_date"] == "2026-12-09"

    # Another officer's tablet of the ward receives the catalogue and both dossiers. With
    # nothing to push, the reference data is asked while the first page travels, and is in
    # force before any page is stored.
    colleague = devices.enrol(devices.user("officer", [ward]))
    pulling, in_force_at_store, asked_meanwhile = threading.Event(), [], []
    pull, ask_reference = colleague.transport.pull, colleague.transport.reference
    apply_page = colleague.store.sync.apply_pull_page

    def pull_noted(*args, **kw):
        pulling.set()
        return pull(*args, **kw)

    def reference_late(*args):  # answers once a page is on its way (5 s at most)
        asked_meanwhile.append(pulling.wait(5.0))
        return ask_reference(*args)

    def apply_noted(*args, **kw):
        in_force_at_store.append(colleague.store.reference.versions())
        return apply_page(*args, **kw)

    colleague.transport.pull, colleague.transport.reference = pull_noted, reference_late
    colleague.store.sync.apply_pull_page = apply_noted
    assert colleague.sync().ok
    assert asked_meanwhile == [True]
    assert in_force_at_store and set(in_force_at_store) == {(1, 2)}
    assert colleague.store.reference.versions() == (1, 2)
    assert colleague.store.dossiers.get(first.id).procedure_code == NEW
    assert colleague.store.dossiers.get(second.id).appointment_date == dt.date(2026, 12, 9)


def test_the_server_still_refuses_a_procedure_no_published_catalogue_has(
    api_server, tmp_path  # noqa: F811
):
    from tests.server.helpers import Device, new_dossier, push

    user = api_server.enrol(f"officer-ref-{tmp_path.name[-8:]}", "officer", ["00073"])
    with api_server.client(user.token) as client:
        bad = new_dossier(Device(), "00073", procedure_code="1.999099")
        (result,) = push(client, [bad])
    assert (result["status"], result["reason"]) == ("rejected", "unknown_procedure")
