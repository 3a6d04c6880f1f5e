"""The client never acknowledges a mutation the server did not answer: a push answer that
leaves mutations out keeps their outbox rows queued (and sends them again); an answer naming
ids that were not sent acknowledges nothing more."""

from __future__ import annotations

import datetime as dt
import json

from app.domain.models import ReceiveDossier
from app.sync import coalesce
from tests.support.netproxy import NetProxy
from tests.sync.conftest import sent_mutations, server_state

PROCEDURE = "1.000894"


def _receive(store, ward: str, n: int) -> None:
    requests = [
        ReceiveDossier(
            procedure_code=PROCEDURE,
            ward_code=ward,
            applicant_name=f"Đỗ Thị Ánh {i}",
            received_at=dt.datetime(2025, 11, 21, 2, 0, tzinfo=dt.UTC),
        )
        for i in range(n)
    ]
    store.dossiers.receive_many(requests)


def _partial_answer(store, answered_groups: int) -> tuple[bytes, set[str]]:
    """A push answer for the first wire mutations only, and the outbox ids it covers."""
    groups = coalesce.fold(store.sync.pending_mutations())[:answered_groups]
    results = [
        {"mutation_id": g.mutation.mutation_id, "status": "applied", "reason": None, "version": 1}
        for g in groups
    ]
    covered = {m for g in groups for m in (g.members or [g.mutation.mutation_id])}
    return json.dumps({"results": results}).encode(), covered


def test_unanswered_mutations_stay_queued_and_are_sent_again(devices, sync_server, ward):
    officer = devices.enrol(devices.user("officer", [ward]))
    _receive(officer.store, ward, 5)
    queued = officer.store.sync.pending_count()
    body, covered = _partial_answer(officer.store, 2)
    assert 0 < len(covered) < queued
    with NetProxy(sync_server.port) as proxy:
        officer.transport.retarget(proxy.url)
        # Every push is answered for the first two mutations only, never by the server.
        proxy.answer(b"POST /sync/push", 200, body, times=None)
        report = officer.sync()
        assert not report.ok  # the second answer names ids this push did not send
        # Only what the answer named left the outbox; nothing reached the server.
        assert officer.store.sync.pending_count() == queued - len(covered)
        remaining = {m.mutation_id for m in officer.store.sync.pending_mutations()}
        assert not remaining & covered
        assert server_state(sync_server, ward) == {}

        proxy.clear_faults()  # the server answers again: the rest goes, once
        report = officer.sync()
    assert report.ok and report.rejected == 0
    assert officer.store.sync.pending_count() == 0
    assert len(server_state(sync_server, ward)) == queued - len(covered)
    # That server answered a summary: later pushes carry a shared clock once per record.
    assert officer.transport.server_reads_one_clock


def test_a_summary_that_leaves_positions_out_keeps_them_queued(devices, sync_server, ward):
    officer = devices.enrol(devices.user("officer", [ward]))
    _receive(officer.store, ward, 5)
    queued = officer.store.sync.pending_count()
    _, covered = _partial_answer(officer.store, 2)
    summary = json.dumps({"applied": [[0, 2]], "exceptions": []}).encode()
    with NetProxy(sync_server.port) as proxy:
        officer.transport.retarget(proxy.url)
        proxy.answer(b"POST /sync/push", 200, summary, times=1)  # then the server answers
        report = officer.sync()
    assert report.ok and report.rejected == 0
    assert officer.store.sync.pending_count() == 0
    # The two positions the summary answered were acknowledged without reaching the server;
    # every other row was kept, sent again and applied once.
    assert len(server_state(sync_server, ward)) == queued - len(covered)


def test_ids_the_server_derives_are_left_out_and_a_lost_answer_applies_once(
    devices, sync_server, ward
):
    officer = devices.enrol(devices.user("officer", [ward]))
    _receive(officer.store, ward, 2)
    assert officer.sync().ok  # the first push carries every id; its summary says what it reads
    assert officer.transport.server_reads_derived_ids
    _receive(officer.store, ward, 4)
    queued = {m.mutation_id for m in officer.store.sync.pending_mutations()}
    bodies: list[dict] = []
    send = officer.transport._json

    def keep(method, path, *, body=None, **kw):
        if path == "/sync/push":
            bodies.append(body)
        return send(method, path, body=body, **kw)

    officer.transport._json = keep
    retries = officer.transport.stats.retries
    with NetProxy(sync_server.port) as proxy:
        officer.transport.retarget(proxy.url)
        proxy.reset_after(0, times=1)  # the push reaches the server, its answer is lost
        report = officer.sync()
    assert report.ok and report.rejected == 0, report
    assert officer.transport.stats.retries > retries  # the push went again after the cut
    [wire] = [sent_mutations(b) for b in bodies]
    assert len(wire) == len(queued) == 8 and all("mutation_id" not in m for m in wire)
    assert officer.store.sync.pending_count() == 0
    assert len(server_state(sync_server, ward)) == 12  # 6 dossiers and 6 events, once each
