"""Overlapped push batches (issue 13): the next batch goes while the server applies the one
before, each row leaves the outbox only by its own batch's answer (or the answer the server
kept for it), and a cut resends at most one batch: whole batches overlap when the server keeps
each push's answer by batch id, half batches when it does not (an older server)."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from sqlalchemy import bindparam, text

from app.domain.models import ReceiveDossier
from app.sync import engine as engine_module
from app.sync.engine import FIRST_PUSH_ROWS, PIPELINE
from app.sync.transport import Offline
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


def _receive_ids(store, ward: str, n: int) -> list[str]:
    _receive(store, ward, n)
    return [m.entity_id for m in store.sync.pending_mutations(2**30) if m.entity == "dossier"]


def _sent_batches(device) -> list[list[str]]:
    """Wraps the transport's push: the outbox rows of each push as it is sent."""
    batches: list[list[str]] = []
    push = device.transport.push

    def keep(mutations, *args, **kw):
        batches.append([m.mutation_id for m in mutations])
        return push(mutations, *args, **kw)

    device.transport.push = keep
    return batches


def _most_in_flight(device) -> list[int]:
    """Wraps the transport's push: [the most pushes that were in flight at once]."""
    lock = threading.Lock()
    now, most = [0], [0]
    push = device.transport.push

    def counted(mutations, *args, **kw):
        with lock:
            now[0] += 1
            most[0] = max(most[0], now[0])
        try:
            return push(mutations, *args, **kw)
        finally:
            with lock:
                now[0] -= 1

    device.transport.push = counted
    return most


def _applied_on_server(sync_server, ids: list[str]) -> set[str]:
    if not ids:
        return set()
    with sync_server.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT mutation_id FROM applied_mutation WHERE mutation_id IN :ids").bindparams(
                bindparam("ids", expanding=True)
            ),
            {"ids": ids},
        ).all()
    return {r[0] for r in rows}


def _as_an_older_server(device) -> None:
    """The device's transport as against a server from before batch ids: its summaries never
    say "batches" and it has no POST /sync/batches (404)."""
    transport = device.transport
    learn = transport._learn_reads  # from the reference answer and from push summaries

    def older_reads(reads):
        learn([r for r in reads if r != "batches"])

    def no_route(ids):
        return transport._json("POST", "/sync/no-such-route", body={"ids": list(ids)})

    transport._learn_reads = older_reads
    transport.batches = no_route


def test_batches_overlap_and_every_row_is_applied_once(devices, sync_server, ward):
    officer = devices.enrol(devices.user("officer", [ward]))
    officer.engine.push_batch_bytes = BATCH_BYTES
    _receive(officer.store, ward, 30)
    queued = officer.store.sync.pending_count()
    one_batch = len(officer.store.sync.pending_mutations(BATCH_BYTES))  # without the overlap
    batches = _sent_batches(officer)
    most = _most_in_flight(officer)
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
    assert most == [PIPELINE] and PIPELINE >= 3  # the link kept that many busy, no more
    # The reference answer said what the server reads: whole batches overlap from the first.
    assert len(batches[0]) == one_batch
    assert all(len(b) <= one_batch for b in batches)
    assert max(len(b) for b in batches[1:]) > one_batch // PIPELINE
    assert officer.store.sync.unanswered_batches() == {}  # every answer came: none remembered
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


def test_rows_behind_a_record_in_flight_go_ahead_and_its_own_rows_wait(
    devices, sync_server, ward, monkeypatch
):
    """A batch cut by the row limit in the middle of one record's rows: the batch sent ahead
    carries the rows of other records behind it, and that record's later rows go only after
    the first batch's answer, in their order."""
    monkeypatch.setattr(engine_module, "MAX_BATCH_ROWS", 7)
    officer = devices.enrol(devices.user("officer", [ward]))
    first, *_ = _receive_ids(officer.store, ward, 3)  # rows: 3 dossiers and their intake events
    for status in (4, 5, 4):  # then first's moves: its row and a new event record each
        officer.store.dossiers.change_status(first, status, note="chuyển bước")
    rows = officer.store.sync.pending_mutations(2**30)
    first_rows = [m.mutation_id for m in rows if m.entity_id == first]
    timeline: list[tuple[list[str], float, float]] = []
    push = officer.transport.push

    def timed(mutations, *args, **kw):
        began = time.monotonic()
        try:
            return push(mutations, *args, **kw)
        finally:
            timeline.append(([m.mutation_id for m in mutations], began, time.monotonic()))

    officer.transport.push = timed
    with NetProxy(sync_server.port) as proxy:
        officer.transport.retarget(proxy.url)
        proxy.set_link(up_bps=200_000, down_bps=200_000, delay_ms=50.0)
        report = officer.sync()
    assert report.ok and report.applied == len(rows), report
    timeline.sort(key=lambda t: t[1])
    (head, _, head_answered), (ahead, ahead_sent, _) = timeline[0], timeline[1]
    assert head == [m.mutation_id for m in rows[:7]]
    assert first_rows[1] in head and first_rows[2] not in head  # cut inside first's rows
    assert ahead_sent < head_answered  # sent while the head was in flight ...
    # ... with every other record's row behind the cut, and none of first's
    assert ahead == [m.mutation_id for m in rows[7:] if m.entity_id != first]
    assert len(ahead) >= 2
    for later in first_rows[2:]:  # first's later rows: sent after the head's answer, in order
        (sent_in,) = [t for t in timeline if later in t[0]]
        assert sent_in[1] >= head_answered
    order = [i for ids, _, _ in timeline for i in ids if i in first_rows]
    assert order == first_rows
    assert len(server_state(sync_server, ward)) == len({m.entity_id for m in rows})


@pytest.mark.parametrize("server", ["current", "older"])
@pytest.mark.parametrize(("direction", "cut_after"), [("up", 2000), ("up", 600), ("down", 150)])
def test_a_cut_mid_push_resends_at_most_one_batch(
    devices, sync_server, ward, server, direction, cut_after
):
    officer = devices.enrol(devices.user("officer", [ward]))
    officer.engine.push_batch_bytes = BATCH_BYTES
    _receive(officer.store, ward, 60)
    total = officer.store.sync.pending_count()
    one_batch = len(officer.store.sync.pending_mutations(BATCH_BYTES))  # without the overlap
    if server == "older":
        _as_an_older_server(officer)
    batches = _sent_batches(officer)
    with NetProxy(sync_server.port) as proxy:
        officer.transport.retarget(proxy.url)
        proxy.set_link(up_bps=200_000, down_bps=200_000, delay_ms=50.0)
        # Pushes flow for a while, then the link dies mid-push and stays down. Up: the fifth
        # push cut on its way in; down: the answer of the push before it cut on its way back.
        push = officer.transport.push

        def cut_at_the_fourth(mutations, *args, **kw):
            if len(batches) == 4:
                proxy.reset_after(cut_after, direction=direction, times=1, then_offline=True)
            return push(mutations, *args, **kw)

        officer.transport.push = cut_at_the_fourth
        cut = officer.sync()
        officer.transport.push = push
        assert proxy.faults_fired == 1
        assert cut.offline and not cut.ok, cut
        proxy.set_offline(False)
        proxy.clear_faults()
        queued = officer.store.sync.pending_count()
        overlapped = len(batches) > 2  # pushes went two at a time before the cut
        before = [len(b) for b in batches[1:]]
        queued_ids = [m.mutation_id for m in officer.store.sync.pending_mutations(2**30)]
        applied_before = _applied_on_server(sync_server, queued_ids)
        batches.clear()
        resumed = officer.sync()
    assert resumed.ok and officer.store.sync.pending_count() == 0, resumed
    assert 0 < queued < total
    assert overlapped
    if server == "older":  # a share of a batch each: those in flight hold one batch's rows
        windows = [before[i : i + PIPELINE] for i in range(len(before))]
        assert all(sum(w) <= one_batch for w in windows)
    else:
        assert max(before) > one_batch // PIPELINE  # whole batches overlapped
    resent = [m for b in batches for m in b if m in applied_before]  # applied, sent again
    assert len(resent) <= one_batch
    if server == "current":  # a committed batch is settled by its kept answer, never resent
        assert resent == []
    assert len(server_state(sync_server, ward)) == total  # each record once
    assert officer.store.sync.unanswered_batches() == {}


def test_a_lost_answer_of_a_committed_batch_is_settled_without_sending_it(
    devices, sync_server, ward
):
    officer = devices.enrol(devices.user("officer", [ward]))
    officer.engine.push_batch_bytes = BATCH_BYTES
    officer.engine.pipeline = False  # one push at a time: the lost answer is the last push's
    _receive(officer.store, ward, 12)
    total = officer.store.sync.pending_count()
    batches = _sent_batches(officer)
    answered: list[int] = []
    push = officer.transport.push

    def lose_the_second_answer(mutations, *args, **kw):
        results = push(mutations, *args, **kw)  # the server applied and answered the push...
        answered.append(len(results))
        if len(answered) == 2:  # ...and the answer is lost on the way back
            raise Offline("the link died before the answer came")
        return results

    officer.transport.push = lose_the_second_answer
    cut = officer.sync()
    assert not cut.ok
    first, lost = batches[0], batches[1]
    assert cut.offline and officer.store.sync.pending_count() == total - len(first)  # lost: queued
    assert set(lost) <= _applied_on_server(sync_server, lost)  # but the server has them
    assert len(officer.store.sync.unanswered_batches()) == 1
    officer.transport.push = push
    batches = _sent_batches(officer)
    resumed = officer.sync()
    assert resumed.ok and officer.store.sync.pending_count() == 0, resumed
    assert resumed.applied == total - len(first)  # the lost batch's rows counted as applied
    sent_again = {m for b in batches for m in b}
    assert not sent_again & set(lost)  # settled by the answer the server kept
    assert officer.store.sync.unanswered_batches() == {}
    assert len(server_state(sync_server, ward)) == total


def test_the_first_push_is_short_only_until_the_server_says_what_it_reads(
    devices, sync_server, ward
):
    officer = devices.enrol(devices.user("officer", [ward]))
    _receive(officer.store, ward, 100)
    queued = officer.store.sync.pending_count()
    batches = _sent_batches(officer)
    # A push-only run asks for no reference data: every id and stamp goes in full until a
    # push's answer says what the server reads, so few rows do.
    report = officer.engine.run_once(pull=False)
    assert report.ok and report.applied == queued, report
    assert len(batches[0]) == FIRST_PUSH_ROWS < len(batches[1])
    assert officer.transport.server_reads_derived_ids
    assert sum(map(len, batches)) == queued
    # A full run on a new transport learns the forms from the reference answer it asks for
    # first: its first push is already a whole batch in the compact forms.
    fresh = devices.enrol(devices.user("officer", [ward]))
    _receive(fresh.store, ward, 100)
    batches = _sent_batches(fresh)
    report = fresh.sync()
    assert report.ok and report.applied == queued, report
    assert fresh.transport.server_reads_derived_ids and fresh.transport.server_keeps_batches
    assert len(batches[0]) > FIRST_PUSH_ROWS


def test_a_lost_answer_keeps_its_refusals(devices, sync_server, ward):
    """The answer the server kept for a lost push says what the push's own answer said: rows it
    refused end refused on the device, with the server's reason, never acknowledged."""
    username = devices.user("officer", [ward])
    officer = devices.enrol(username)
    officer.engine.push_batch_bytes = BATCH_BYTES
    officer.engine.pipeline = False
    _receive(officer.store, ward, 12)
    batches = _sent_batches(officer)
    push = officer.transport.push

    def narrowed_then_lost(mutations, *args, **kw):
        if len(batches) == 1:  # the officer leaves the ward: the next push is refused by row
            with sync_server.engine.begin() as conn:
                conn.execute(
                    text("UPDATE app_user SET wards = :w WHERE username = :u"),
                    {"w": '["99999"]', "u": username},
                )
                conn.execute(
                    text("UPDATE device SET wards = :w WHERE id = :d"),
                    {"w": '["99999"]', "d": officer.server_device_id},
                )
        results = push(mutations, *args, **kw)
        if len(batches) == 2:
            raise Offline("the link died before the answer came")
        return results

    officer.transport.push = narrowed_then_lost
    assert officer.sync().offline
    lost = batches[1]
    assert officer.store.sync.pending_count() >= len(lost)  # the refused rows: still queued
    officer.transport.push = push
    batches = _sent_batches(officer)
    resumed = officer.sync()
    assert not {m for b in batches for m in b} & set(lost)  # settled by the kept answer
    assert resumed.rejected >= len(lost) and resumed.applied == 0, resumed
    assert officer.store.sync.pending_count() == 0
    refused = [w for w in officer.store.sync.waiting() if w.state == "rejected"]
    assert refused and all("ward_out_of_scope" in (w.reason or "") for w in refused)
