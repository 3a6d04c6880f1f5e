"""dossier_fact follows records pushed through the real API (SQLite and PostgreSQL), and
migration 0007 projects the dossiers a database already holds."""

from __future__ import annotations

import datetime as dt
import random

from sqlalchemy import text

from app.domain.calendar import WorkingCalendar
from app.domain.records import expected_appointment
from server import migrate
from server.core.db import make_engine
from server.services import reports
from tests.oversight.seed import TODAY, insert_records, seed_dossiers
from tests.server.helpers import Device, new_dossier, new_ward, pull_all, push


def _received(at: str, procedure: str) -> dict:
    """Receipt time, procedure and the appointment date the server computes for them."""
    due = expected_appointment(at, procedure, WorkingCalendar())
    return {"received_at": at, "procedure_code": procedure, "appointment_date": due.isoformat()}


def test_pushed_dossiers_are_counted_and_follow_their_status(api_server):
    ward = new_ward()
    token = api_server.enrol(f"off_{ward}", "officer", [ward]).token
    device = Device()
    late = new_dossier(
        device, ward, status=2, **_received("2026-11-02T01:00:00+00:00", "1.004222"), channel=2,
        applicant_name="Trần Thị Bích",
    )
    soon = new_dossier(  # received 23:59 in Hanoi; 25 working days to go
        device, ward, status=2, **_received("2026-11-30T16:59:00+00:00", "1.001699"), channel=1,
    )
    with api_server.client(token) as client:
        assert [r["status"] for r in push(client, [late, soon])] == ["applied", "applied"]
        rows = reports.dossier_figures(api_server.engine, TODAY, by=("ward", "week"), wards=[ward])
        assert [(r.key["week"], r.received, r.overdue, r.within, r.online) for r in rows] == [
            ("2026-11-02", 1, 1, 0, 1),
            ("2026-11-30", 1, 0, 1, 0),
        ]
        # The late one is settled: one field changes, the projection follows.
        fields = {"status": 4}
        push(client, [device.mutation("dossier", late["entity_id"], ward, fields, 1)])
        fields = {"status": 9, "finished_at": "2026-11-12T03:00:00+00:00", "result": "Đã cấp"}
        push(client, [device.mutation("dossier", late["entity_id"], ward, fields, 2)])
    (whole,) = reports.dossier_figures(api_server.engine, TODAY, by=(), wards=[ward])
    assert (whole.received, whole.settled, whole.late, whole.overdue, whole.within) == (
        2, 1, 1, 0, 1,
    )
    with api_server.engine.connect() as conn:
        columns = conn.execute(text("SELECT * FROM dossier_fact LIMIT 1")).keys()
    assert not any("applicant" in c or "name" in c for c in columns)


def test_migration_0007_projects_existing_dossiers(tmp_path, monkeypatch):
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    migrate.upgrade(engine, "0006")
    dossiers = seed_dossiers(50, random.Random(3))
    with monkeypatch.context() as patch:  # at 0006 there is no table to project into
        patch.setattr(reports, "rebuild_facts", lambda engine: 0)
        insert_records(engine, "dossier", "dossier", dossiers)
    migrate.upgrade(engine)
    (whole,) = reports.dossier_figures(engine, TODAY, by=())
    assert whole.received == 50
    first = dossiers[0]
    with engine.connect() as conn:
        day = conn.execute(
            text("SELECT received_day FROM dossier_fact WHERE entity_id = :i"), {"i": first["id"]}
        ).scalar_one()
    received = dt.datetime.fromisoformat(first["received_at"]) + dt.timedelta(hours=7)
    assert day == received.date().isoformat()
    engine.dispose()


def test_devices_cannot_write_snapshots_and_officers_do_not_pull_them(api_server):
    ward = new_ward()
    officer = api_server.enrol(f"off2_{ward}", "officer", [ward]).token
    device = Device()
    forged = device.mutation("report_snapshot", ward, ward, {"ward_code": ward, "weeks": []})
    with api_server.client(officer) as client:
        [result] = push(client, [forged])
        assert result["status"] == "rejected"
        [pushed] = push(client, [new_dossier(
            device, ward, status=2, **_received("2026-11-02T01:00:00+00:00", "1.004222")
        )])
        assert pushed["status"] == "applied"
    reports.publish_snapshots(api_server.engine, TODAY)
    with api_server.client(officer) as client:
        changes, _ = pull_all(client)
    assert not [c for c in changes if c["entity"] == "report_snapshot"]
    supervisor = api_server.enrol(f"sup_{ward}", "supervisor", [ward]).token
    with api_server.client(supervisor) as client:
        changes, _ = pull_all(client)
    [snap] = [c for c in changes if c["entity"] == "report_snapshot"]
    assert snap["ward_code"] == ward
    assert "applicant_name" not in str(snap["fields"])


def test_a_push_batch_writes_its_facts_set_based(api_server):
    """A batch of dossiers (some created and moved in the same batch) projects its facts with
    one DELETE and one executemany INSERT at its end, and the facts are the last state."""
    from sqlalchemy import event

    from app.domain.hlc import Clock
    from app.domain.mutations import Mutation
    from server.core import sealing
    from server.scope import Caller
    from server.services import sync

    ward = new_ward()
    officer = api_server.enrol(f"off3_{ward}", "officer", [ward])
    device = Device()
    created = [
        new_dossier(device, ward, status=2, **_received("2026-11-02T01:00:00+00:00", "1.004222"))
        for _ in range(30)
    ]
    moved = [
        device.mutation("dossier", m["entity_id"], ward, {"status": 4}, 1) for m in created[:10]
    ]
    # This process applies the batch itself, as the server would, with the server's data key.
    sealing.install(sealing.load_keyring(api_server.data_dir / "keys" / "server.key"))
    caller = Caller(0, officer.user, "officer", frozenset({ward}), device_id=officer.device_id)
    statements: list[tuple[str, int]] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        # What reaches the driver, statements SQLAlchemy compiled and those given as SQL alike
        # (SQLite's batch rows go straight to the driver, an INSERT's as rows of one VALUES:
        # `server.core.db.insert_rows`).
        rows = len(parameters) if executemany else statement.count("), (") + 1
        statements.append((statement, rows))

    engine = api_server.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        answers = sync.push(
            engine, caller, [Mutation.model_validate(m) for m in created + moved], Clock("t")
        )
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert {a.status for a in answers} == {"applied"}
    on_facts = [(s.split()[0], n) for s, n in statements if "dossier_fact" in s]
    assert [verb for verb, _ in on_facts] == ["DELETE", "INSERT"]
    # One statement for all: SQLite's rows of one VALUES, or PostgreSQL's one recordset.
    assert on_facts[1][1] == (len(created) if engine.dialect.name == "sqlite" else 1)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT entity_id, status FROM dossier_fact WHERE ward_code = :w"), {"w": ward}
        ).all()
    expected = {m["entity_id"]: 2 for m in created} | {m["entity_id"]: 4 for m in moved}
    assert dict(rows) == expected


def test_migration_0008_gives_existing_facts_their_dossier_code(tmp_path, monkeypatch):
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    migrate.upgrade(engine, "0006")
    dossiers = seed_dossiers(40, random.Random(4))
    with monkeypatch.context() as patch:  # projected by 0007 below, without a code column
        patch.setattr(reports, "rebuild_facts", lambda engine: 0)
        insert_records(engine, "dossier", "dossier", dossiers)
    migrate.upgrade(engine, "0007")
    migrate.upgrade(engine)
    with engine.connect() as conn:
        codes = dict(conn.execute(text("SELECT entity_id, code FROM dossier_fact")).all())
    assert codes == {d["id"]: d["code"] for d in dossiers}
    engine.dispose()
