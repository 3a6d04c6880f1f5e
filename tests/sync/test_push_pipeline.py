"""Overlapped push batches (issue 13): the next batch goes while the server applies the one
before, each row leaves the outbox only by its own batch's answer, and a cut resends at most one
batch: overlapped batches are half batches."""

from __future__ import annotations

import datetime as dt

from app.domain.models import ReceiveDossier
from app.sync.engine import FIRST_PUSH_ROWS, PIPELINE
from tests.support.netproxy import NetProxy
from tests.sync.conftest import server_state

BATCH_BYTES = 8 * 1024  # a few dossiers per push: many batches from a small outbox


def _receive(store, ward: str, n: int) -> None:
    store.dossiers.receive_many(
        ReceiveDossier(
            procedure_code="1.000894",
            ward_code=ward,
            applicant_name=f"Vũ Thị Hằng {i}",
            received_at=dt.datetime(2025, 11, 21, 2, 0, tzinfo=dt.UTC),
        )
        for i in range(n)
    )


def _sent_batches(device) -> list[list[str]]:
    """Wraps the transport's push: the outbox rows of each push as it is sent."""
    batches: list[list[str]] = []
    push = device.transport.push

    def keep(mutations, incarnation=""):
        batches.append([m.mutation_id for m in mutations])
        return push(mutations, incarnation)

    device.transport.push = keep
    return batches


def test_batches_overlap_and_every_row_is_applied_once(devices, sync_server, ward):
    officer = devices.enrol(devices.user("officer", [ward]))
    officer.engine.push_batch_bytes = BATCH_BYTES
    _receive(officer.store, ward, 30)
    queued = officer.store.sync.pending_count()
    one_batch = len(officer.store.sync.pending_mutations(BATCH_BYTES))  # without the overlap
    batches = _sent_batches(officer)
    with NetProxy(sync_server.port) as proxy:
        officer.transport.retarget(proxy.url)
        proxy.set_link(up_bps=200_000, down_bps=200_000, delay_ms=50.0)
        report = officer.sync()
        connections = proxy.connections
    assert report.ok and report.applied == queued, report
    assert len(batches) >= 4
    sent = [m for b in batches for m in b]
    assert len(sent) == len(set(sent))  # no row went twice
    assert 2 <= connections <= PIPELINE  # a second push went while the first was in flight
    # The first push goes alone (and short); the overlapped ones hold one batch's rows together.
    assert len(batches[0]) == min(one_batch, FIRST_PUSH_ROWS)
    assert all(len(a) + len(b) <= one_batch for a, b in zip(batches[1:], batches[2:], strict=False))
    assert officer.store.sync.pending_count() == 0
    assert len(server_state(sync_server, ward)) == queued  # each record once


def test_a_record_in_flight_holds_its_later_rows_back(devices, sync_server, ward):
    officer = devices.enrol(devices.user("officer", [ward]))
    officer.engine.push_batch_bytes = BATCH_BYTES
    _receive(officer.store, ward, 3)
    rows = officer.store.sync.pending_mutations(64 * 1024 * 1024)
    dossier = next(m for m in rows if m.entity == "dossier")
    batches = _sent_batches(officer)
    with NetProxy(sync_server.port) as proxy:
        officer.transport.retarget(proxy.url)
        report = officer.sync()
    assert report.ok, report
    assert officer.store.sync.pending_count() == 0
    held = [b for b in batches if dossier.mutation_id in b]
    assert len(held) == 1


def test_a_cut_mid_push_resends_at_most_one_batch(devices, sync_server, ward):
    officer = devices.enrol(devices.user("officer", [ward]))
    officer.engine.push_batch_bytes = BATCH_BYTES
    _receive(officer.store, ward, 60)
    total = officer.store.sync.pending_count()
    one_batch = len(officer.store.sync.pending_mutations(BATCH_BYTES))  # without the overlap
    batches = _sent_batches(officer)
    with NetProxy(sync_server.port) as proxy:
        officer.transport.retarget(proxy.url)
        proxy.set_link(up_bps=200_000, down_bps=200_000, delay_ms=50.0)
        # Pushes flow for a while, then the link dies mid-push and stays down.
        proxy.reset_after(2000, direction="up", times=1, then_offline=True)
        cut = officer.sync()
        assert proxy.faults_fired == 1
        assert cut.offline and not cut.ok, cut
        proxy.set_offline(False)
        proxy.clear_faults()
        queued = officer.store.sync.pending_count()
        on_server = len(server_state(sync_server, ward))
        overlapped = len(batches) > 2  # pushes went two at a time before the cut
        batches.clear()
        resumed = officer.sync()
    assert resumed.ok and officer.store.sync.pending_count() == 0, resumed
    assert 0 < queued < total
    resent = queued - (total - on_server)  # rows the server had applied, sent again
    assert overlapped
    assert 0 <= resent <= one_batch
    assert len(server_state(sync_server, ward)) == total  # each record once


def test_the_first_push_is_short_and_the_next_carry_the_compact_forms(devices, sync_server, ward):
    officer = devices.enrol(devices.user("officer", [ward]))
    _receive(officer.store, ward, 100)
    queued = officer.store.sync.pending_count()
    batches = _sent_batches(officer)
    report = officer.sync()
    assert report.ok and report.applied == queued, report
    # Every id and stamp goes in full until the server says what it reads: few rows do.
    assert len(batches[0]) == FIRST_PUSH_ROWS < len(batches[1])
    assert officer.transport.server_reads_derived_ids
    assert sum(map(len, batches)) == queued
