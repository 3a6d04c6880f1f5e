"""The same sync rules with the central API on PostgreSQL (the production engine)."""

from __future__ import annotations

import pytest

from app.domain.models import AuditAnswer
from tests.sync.conftest import Devices, audit_view, server_audit_view, server_state
from tests.sync.test_engine import _receive, _shared_audit

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_devices(postgres_api_server, tmp_path):
    made = Devices(postgres_api_server, tmp_path)
    yield made
    made.close()


def test_merge_race_and_resolution_on_postgres(pg_devices, postgres_api_server, ward):
    (a, b), audit_id = _shared_audit(pg_devices, ward)
    a.store.audits.set_fields(audit_id, notes="A")
    b.store.audits.set_fields(audit_id, notes="B")
    b.store.audits.answer(audit_id, "premises.ups", AuditAnswer(value=True))
    assert a.sync().ok and b.sync().ok and a.sync().ok
    assert audit_view(a.store, audit_id) == audit_view(b.store, audit_id)
    state = server_state(postgres_api_server, ward)
    assert server_audit_view(state[audit_id]) == audit_view(a.store, audit_id)
    (conflict,) = a.store.sync.open_conflicts()
    a.store.sync.resolve_conflict(conflict.id, "đã thống nhất")
    assert a.sync().ok and b.sync().ok
    assert audit_view(b.store, audit_id)["notes"] == "đã thống nhất"
    assert b.store.sync.open_conflicts() == []


def test_push_and_pull_many_on_postgres(pg_devices, postgres_api_server, ward):
    officer = pg_devices.enrol(pg_devices.user("officer", [ward]))
    ids = _receive(officer.store, ward, 60)
    officer.engine.push_batch_bytes = 8 * 1024
    assert officer.sync().ok
    colleague = pg_devices.enrol(pg_devices.user("officer", [ward]))
    colleague.engine.pull_page = 25
    report = colleague.sync()
    assert report.ok and report.pulled == 120
    assert {colleague.store.dossiers.get(i).code for i in ids} == {
        officer.store.dossiers.get(i).code for i in ids
    }
