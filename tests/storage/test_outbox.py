"""Every local write and its mutation share one transaction."""

from __future__ import annotations

import base64
import uuid

import pytest

from app.domain.mutations import Mutation
from app.storage import DossierQuery
from app.storage.outbox import Outbox
from tests.storage.conftest import receive


def _counts(store) -> tuple[int, int, int]:
    with store.db.read() as conn:
        records = conn.exec_driver_sql("SELECT count(*) FROM records").scalar_one()
        terms = conn.exec_driver_sql("SELECT count(*) FROM terms").scalar_one()
        outbox = conn.exec_driver_sql("SELECT count(*) FROM outbox").scalar_one()
    return records, terms, outbox


def test_each_write_queues_its_mutation(store, procedure):
    dossier = receive(store, procedure)
    store.dossiers.change_status(dossier.id, 4, note="xử lý")
    pending = store.sync.pending_mutations(10_000_000)
    assert all(isinstance(m, Mutation) for m in pending)
    assert [(m.entity, m.base_version) for m in pending] == [
        ("dossier", 0), ("dossier_event", 0), ("dossier", 0), ("dossier_event", 0)
    ]
    assert pending[0].fields["applicant_name"].value == "Nguyễn Thị Hương"
    assert len(pending[0].fields) > 10  # the new record: every field
    assert set(pending[2].fields) == {"status"} and pending[2].fields["status"].value == 4
    # Each mutation carries the values of its own write, even after a later write changed them:
    # the server must see the dossier created as received (2), then moved to 4.
    assert pending[0].fields["status"].value == 2
    assert pending[0].fields["status"].hlc < pending[2].fields["status"].hlc
    assert all(m.device_id == store.device_id for m in pending)
    assert len(store.sync.pending_mutations(1)) == 1  # size budget, at least one



def test_a_row_limit_gives_the_head_of_the_same_batch(store, procedure):
    """`max_rows` stops reading the outbox at the batch's end (the engine used to read a whole
    byte budget and cut it): the same rows, the same mutations, with `skip` too."""
    for _ in range(3):
        dossier = receive(store, procedure)
        store.dossiers.change_status(dossier.id, 4, note="xử lý")
    whole = store.sync.pending_mutations(10_000_000)
    assert len(whole) == 12
    for n in (1, 2, 5, 12, 40):
        assert store.sync.pending_mutations(10_000_000, max_rows=n) == whole[:n]
    assert len(store.sync.pending_mutations(1, max_rows=5)) == 1  # the byte budget still holds


def test_a_read_past_a_push_in_flight_passes_over_the_records_in_flight(store, procedure):
    """With `skip` (the rows in flight) the read passes over the rows of a record with a row in
    flight (its order: they wait for that answer) and takes the other records' rows behind
    them, up to the row limit: what the engine's batch sent ahead keeps."""
    for _ in range(3):
        dossier = receive(store, procedure)
        store.dossiers.change_status(dossier.id, 4, note="xử lý")
    whole = store.sync.pending_mutations(10_000_000)
    for n_flight in range(1, len(whole)):
        flight = whole[:n_flight]
        skip = {m.mutation_id for m in flight}
        records = {(m.entity, m.entity_id) for m in flight}
        for limit in (2, 6, 100):
            others = [m for m in whole[n_flight:] if (m.entity, m.entity_id) not in records]
            read = store.sync.pending_mutations(10_000_000, skip, max_rows=limit)
            assert read == others[:limit], (n_flight, limit)
    # a dossier's creation in flight: its event goes ahead, its status move waits, the other
    # dossiers' rows go too
    read = store.sync.pending_mutations(10_000_000, {whole[0].mutation_id})
    held = whole[0].entity_id
    assert read[0] == whole[1] and any(m.entity_id == held for m in whole[1:])
    assert [m for m in whole[1:] if m.entity_id != held] == read


def test_a_failure_while_queueing_leaves_neither_record_nor_mutation(
    store, procedure, monkeypatch
):
    receive(store, procedure)
    before = _counts(store)

    def broken(self, conn, mutations):
        raise OSError("disk full while queueing")

    monkeypatch.setattr(Outbox, "enqueue_many", broken)
    with pytest.raises(OSError):
        receive(store, procedure, applicant_name="Đỗ Minh Khoa")
    assert _counts(store) == before
    monkeypatch.setattr(Outbox, "enqueue_many", _REAL_ENQUEUE)
    assert store.dossiers.list(DossierQuery(search="khoa")).total == 0


_REAL_ENQUEUE = Outbox.enqueue_many


def test_a_crash_after_row_and_mutation_were_written_rolls_both_back(
    store, procedure, monkeypatch
):
    dossier = receive(store, procedure)
    before = _counts(store)
    written = []

    def queue_then_crash(self, conn, mutations):
        written.append(_REAL_ENQUEUE(self, conn, mutations))
        raise RuntimeError("crash after the row and its mutation were written")

    monkeypatch.setattr(Outbox, "enqueue_many", queue_then_crash)
    with pytest.raises(RuntimeError):
        store.dossiers.change_status(dossier.id, 4)
    monkeypatch.setattr(Outbox, "enqueue_many", _REAL_ENQUEUE)
    assert len(written) == 1 and len(written[0]) == 2  # dossier + event were queued...
    assert _counts(store) == before  # ...and rolled back with the rows
    assert store.dossiers.get(dossier.id).status == 2


def test_pending_reads_the_whole_outbox_in_order(store, procedure):
    from tests.storage.conftest import request

    store.dossiers.receive_many(request(procedure) for _ in range(130))
    pending = store.sync.pending_mutations(100_000_000)
    assert len(pending) == 260  # more than one page of outbox rows
    assert [m.entity for m in pending[:4]] == ["dossier", "dossier_event"] * 2
    with store.db.read() as conn:
        order = [r[0] for r in conn.exec_driver_sql("SELECT mutation_id FROM outbox ORDER BY id")]
    assert [m.mutation_id for m in pending] == order


def test_a_refused_row_is_set_aside_with_its_sealed_values_kept(store, procedure):
    """A queued row that today's wire schema refuses (an older version's id) leaves the queue
    without blocking it, and what it announced stays readable, sealed as before."""
    dossier = receive(store, procedure)
    with store.db.write() as conn:  # the way an older client version queued a status change
        conn.exec_driver_sql(
            "INSERT INTO outbox (mutation_id, entity, entity_id, base_version, hlc, fields) "
            "VALUES ('legacy-3', 'dossier', ?, 0, ?, 'status')",
            (dossier.id, store.records.clock.now()),
        )
    store.dossiers.change_status(dossier.id, 4, note="xử lý")  # freezes the row's status (2)

    pending = store.sync.pending_mutations(10_000_000)

    assert [m.entity for m in pending] == ["dossier", "dossier_event", "dossier", "dossier_event"]
    (refusal,) = store.sync.take_set_aside()
    assert refusal.mutation_id == "legacy-3" and refusal.status == "rejected"
    assert refusal.reason.startswith("refused_locally:mutation_id: ")
    assert store.sync.take_set_aside() == []  # reported once
    assert store.sync.state_of("dossier", dossier.id).reason == refusal.reason
    assert store.sync.summary().pending == 4  # the refused row is no longer queued
    kept = store.sync.set_aside_rows()["legacy-3"]
    assert (kept["entity_id"], kept["fields"], kept["reason"]) == (
        dossier.id, "status", refusal.reason
    )
    sealed = base64.b64decode(kept["sealed"])
    frozen = store.records.sealer.open_json(sealed, table="outbox", row_id="legacy-3", version=0)
    assert frozen["status"][0] == 2  # the value it announced, before the move to 4
    assert len(store.sync.pending_mutations(10_000_000)) == 4 and not store.sync.take_set_aside()


def test_a_row_whose_record_is_missing_is_set_aside(store, procedure):
    receive(store, procedure)
    with store.db.write() as conn:
        conn.exec_driver_sql(
            "INSERT INTO outbox (mutation_id, entity, entity_id, base_version, hlc, fields) "
            "VALUES (?, 'dossier', 'gone', 0, ?, 'status')",
            (str(uuid.uuid4()), store.records.clock.now()),
        )
    assert len(store.sync.pending_mutations(10_000_000)) == 2
    (refusal,) = store.sync.take_set_aside()
    assert refusal.reason == "refused_locally:its record is missing"
    assert store.sync.summary().pending == 2


def test_a_queued_row_makes_the_mutation_built_field_by_field(store, procedure):
    """Issue 13, fourth round: a row's mutation is validated whole (one call) instead of built
    from a model per field; the same mutation, the same JSON on the wire, frozen rows too."""
    from app.domain.mutations import FieldValue

    dossier = receive(store, procedure)
    store.dossiers.change_status(dossier.id, 4, note="xử lý")  # freezes the creation's status
    pending = store.sync.pending_mutations(10_000_000)
    with store.db.read() as conn:
        rows = conn.exec_driver_sql("SELECT mutation_id, sealed FROM outbox ORDER BY id").all()
    assert [r[0] for r in rows] == [m.mutation_id for m in pending]
    assert rows[0][1] is not None  # the creation's row is frozen, the others are not
    for m in pending:
        by_field = Mutation(
            mutation_id=m.mutation_id, device_id=m.device_id, entity=m.entity,
            entity_id=m.entity_id, ward_code=m.ward_code, base_version=m.base_version,
            fields={n: FieldValue(value=f.value, hlc=f.hlc) for n, f in m.fields.items()},
        )
        assert m == by_field and m.model_dump_json() == by_field.model_dump_json()
        assert all(type(f) is FieldValue for f in m.fields.values())


def test_a_queued_row_carries_the_values_and_stamps_its_record_holds(store, procedure):
    """The outbox reads a record's envelope without a `Stamped` per field (issue 13): a row's
    fields are still the record's values with each field's own stamp (a later write's fields
    stamped apart from the creation's)."""
    dossier = receive(store, procedure)
    store.dossiers.change_status(dossier.id, 4, note="xử lý")
    pending = store.sync.pending_mutations(10_000_000)
    with store.db.read() as conn:
        record = store.records.get(conn, "dossier", dossier.id)
    status_move = pending[2]
    assert (status_move.entity_id, list(status_move.fields)) == (dossier.id, ["status"])
    assert len({s.hlc for s in record.fields.values()}) == 2  # two stamps in the envelope
    for name, field in status_move.fields.items():
        assert (field.value, field.hlc) == (record.fields[name].value, record.fields[name].hlc)


def test_an_edited_readable_column_fails_the_outbox_read(store, data_dir, procedure):
    """A query column that disagrees with the sealed value is tampering for a push as for a
    list: the read raises TamperError, as a tampered envelope does."""
    from app.storage import TamperError, open_store
    from tests.storage.conftest import PIN

    dossier = receive(store, procedure)
    store.close()
    with store.db.connect_raw() as raw:
        raw.execute("UPDATE records SET status = 9 WHERE entity_id = ?", (dossier.id,))
    raw.close()
    with open_store(data_dir, PIN) as reopened, pytest.raises(TamperError, match="status"):
        reopened.sync.pending_mutations(1_000_000)
