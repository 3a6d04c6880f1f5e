"""Oversight figures reach a supervisor's device as report snapshots through the normal pull,
within the supervisor's ward scope, and equal both the server's SQL figures and what the
officer's own device counts from its dossiers."""

from __future__ import annotations

import datetime as dt

from app.domain.calendar import vn_today
from app.domain.models import ReceiveDossier
from app.views.oversight_models import OversightPresenter, ward_detail
from server.services import reports
from tests.sync.conftest import server_state


def _receive(officer, ward: str, days_ago: int, channel: int) -> str:
    received = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)
    req = ReceiveDossier(
        procedure_code="1.001193", ward_code=ward, applicant_name="Lê Thị Hoa",
        channel=channel, received_at=received,
    )
    return officer.store.dossiers.receive(req).id


def test_supervisor_pulls_the_figures_of_its_wards_only(devices, ward: str) -> None:
    officer = devices.enrol(devices.user("officer", [ward]))
    ids = [_receive(officer, ward, days, ch) for days, ch in ((40, 2), (30, 1), (1, 2))]
    officer.store.dossiers.change_status(ids[1], 4)
    officer.sync()
    today = vn_today()
    assert reports.publish_snapshots(devices.server.engine, today) >= 1

    supervisor = devices.enrol(devices.user("supervisor", [ward]))
    report = supervisor.sync()
    assert report.ok, report.errors
    # The ward's dossiers and their history are on the server; none reached the supervisor.
    on_server = {v["_entity"] for v in server_state(devices.server, ward).values()}
    assert {"dossier", "dossier_event"} <= on_server
    held = _entities(supervisor)
    assert held and not held & {"dossier", "dossier_event"}, held
    assert "Lê Thị Hoa" not in str(_values(supervisor))
    [snapshot] = supervisor.store.oversight.snapshots()
    assert snapshot.ward_code == ward and snapshot.as_of == today.isoformat()
    [server_whole] = reports.dossier_figures(devices.server.engine, today, by=(), wards=[ward])
    [officer_whole] = officer.store.oversight.local_figures(today, by=("ward",))
    pulled = snapshot.whole
    for figures in (server_whole, officer_whole):
        assert (pulled.received, pulled.online, pulled.overdue, pulled.within) == (
            figures.received, figures.online, figures.overdue, figures.within,
        )
    assert (pulled.received, pulled.online) == (3, 2)
    assert pulled.overdue >= 1  # received 40 days ago and still open
    # The dashboard and the list behind the ward's overdue figure, from the snapshot alone.
    board = OversightPresenter(supervisor.store).load()
    assert board.source == "snapshots"
    assert (board.whole.received, board.whole.overdue) == (3, server_whole.overdue)
    detail = ward_detail(board, ward, today)
    assert detail is not None and len(detail.overdue) == pulled.overdue
    codes = {officer.store.dossiers.get(i).code for i in ids}
    on_server = reports.listed_dossiers(devices.server.engine, today, [ward])[ward]
    assert {r.code for r in detail.overdue} == {d.code for d in on_server if d.kind == "overdue"}
    assert {r.code for r in detail.overdue} <= codes

    other = devices.enrol(devices.user("supervisor", ["99998"]))
    other.sync()
    assert other.store.oversight.snapshots() == []
    # Publishing again with nothing changed writes nothing new.
    assert reports.publish_snapshots(devices.server.engine, today) == 0


def _records(device) -> list:
    with device.store.db.read() as conn:
        return device.store.records.select(conn, "WHERE 1 = 1")


def _entities(device) -> set[str]:
    return {r.entity for r in _records(device)}


def _values(device) -> list[dict]:
    return [r.values() for r in _records(device)]


def test_an_action_reaches_the_server_and_the_wards_auditor(devices, ward: str) -> None:
    from app.domain import audit as A
    from app.domain.models import AuditAnswer
    from tests.sync.conftest import server_state

    auditor = devices.enrol(devices.user("auditor", [ward]))
    audit = auditor.store.audits.create(ward, A.TEMPLATE_V1, "Kiểm tra viên Hà")
    auditor.store.audits.answer(audit.id, "premises.cooling", AuditAnswer(value=False))
    auditor.store.audits.submit(audit.id)
    auditor.sync()
    supervisor = devices.enrol(devices.user("supervisor", [ward]))
    supervisor.sync()
    due = dt.date(2027, 1, 15)
    action_id = supervisor.store.oversight.assign_action(
        audit.id, "premises.cooling", "Chủ tịch UBND phường", due
    )
    report = supervisor.sync()
    assert supervisor.store.sync.summary().pending == 0, report
    on_server = server_state(devices.server, ward)[action_id]
    assert on_server["_entity"] == "audit_action" and on_server["due_date"] == "2027-01-15"
    auditor.sync()
    [seen] = auditor.store.oversight.actions(dt.date(2026, 12, 2), ward)
    assert (seen.id, seen.owner, seen.state) == (action_id, "Chủ tịch UBND phường", "open")
