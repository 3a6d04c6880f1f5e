"""What the sync client calls: outbox, push results, pulled pages with field merge, conflicts."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from app.domain.hlc import Clock, Timestamp
from app.domain.mutations import Change, FieldValue, PushResult
from app.storage import DossierQuery, TamperError
from tests.storage.conftest import receive


def _push_all(store, version: int = 1) -> None:
    pending = store.sync.pending_mutations(10_000_000)
    store.sync.record_push_results(
        [PushResult(mutation_id=m.mutation_id, status="applied", version=version) for m in pending]
    )


def _server_state(mutation, version: int, **edits: FieldValue) -> Change:
    """A pulled change holding the record's whole field state, as the server sends it."""
    fields = dict(mutation.fields) | edits
    return Change(seq=version, entity=mutation.entity, entity_id=mutation.entity_id,
                  ward_code=mutation.ward_code, version=version, fields=fields)


def test_push_results_settle_the_outbox_and_record_states(store, procedure):
    a = receive(store, procedure)
    b = receive(store, procedure, applicant_name="Lê Thị Mai")
    pending = store.sync.pending_mutations(10_000_000)
    assert store.sync.summary().pending == 4 and store.sync.state_of("dossier", a.id).state == (
        "pending"
    )
    by_entity = {m.entity_id: m for m in pending}
    results = [
        PushResult(mutation_id=by_entity[a.id].mutation_id, status="applied", version=1),
        PushResult(mutation_id=by_entity[b.id].mutation_id, status="rejected",
                   reason="procedure_not_in_scope"),
    ]
    store.sync.record_push_results(results)
    assert store.sync.state_of("dossier", a.id).state == "synced"
    assert store.dossiers.get(a.id).version == 0  # the version last pulled, not the answer's
    rejected = store.sync.state_of("dossier", b.id)
    assert (rejected.state, rejected.reason) == ("rejected", "procedure_not_in_scope")
    summary = store.sync.summary()
    assert (summary.pending, summary.rejected) == (2, 1)
    store.sync.record_push_results(results)  # a retried answer changes nothing
    assert store.sync.summary().pending == 2


def test_pull_stores_new_records_searchable_and_saves_the_cursor(store, procedure):
    other = Clock("dev-b")
    stamp = other.now()
    fields = {
        "code": "000.00.70.H26-251121-0201", "procedure_code": procedure.code,
        "ward_code": "00070", "applicant_name": "Ngô Bảo Châu", "applicant_id_number": "",
        "channel": 1, "received_at": "2025-11-21T02:00:00+00:00",
        "appointment_date": "2025-11-26", "status": 2, "documents": [], "notes": "",
    }
    change = Change(seq=7, entity="dossier", entity_id="remote-1", ward_code="00070", version=3,
                    fields={k: FieldValue(value=v, hlc=stamp) for k, v in fields.items()})
    store.sync.apply_pull_page([change], next_cursor=7)
    assert store.sync.pull_cursor() == 7
    pulled = store.dossiers.get("remote-1")
    assert (pulled.applicant_name, pulled.version, pulled.sync_state) == ("Ngô Bảo Châu", 3,
                                                                          "synced")
    assert [d.id for d in store.dossiers.list(DossierQuery(search="bao chau")).items] == [
        "remote-1"
    ]
    assert store.sync.pending_mutations(10_000_000) == []  # pulled data is not pushed back


def test_pull_merge_keeps_a_local_pending_edit_of_another_field(store, procedure):
    dossier = receive(store, procedure)
    created = store.sync.pending_mutations(10_000_000)[0]
    _push_all(store)
    store.dossiers.change_status(dossier.id, 4)  # local edit, not pushed yet
    remote = Clock("dev-b")
    remote.observe(created.fields["status"].hlc)
    edit = FieldValue(value="Bổ sung bản sao sổ hộ khẩu", hlc=remote.now())
    store.sync.apply_pull_page([_server_state(created, 2, notes=edit)], next_cursor=2)
    merged = store.dossiers.get(dossier.id)
    assert merged.status == 4  # ours
    assert merged.notes == "Bổ sung bản sao sổ hộ khẩu"  # theirs
    assert merged.version == 2 and merged.sync_state == "pending"
    assert {m.entity for m in store.sync.pending_mutations(10_000_000)} == {
        "dossier", "dossier_event"
    }


def test_pull_moves_the_local_clock_past_remote_stamps(store, procedure):
    dossier = receive(store, procedure)
    created = store.sync.pending_mutations(10_000_000)[0]
    _push_all(store)
    future = str(Timestamp(Timestamp.parse(created.fields["status"].hlc).wall_ms + 3_600_000, 0,
                           "dev-b"))
    change = _server_state(created, 2, notes=FieldValue(value="từ tương lai", hlc=future))
    store.sync.apply_pull_page([change], next_cursor=2)
    store.dossiers.change_status(dossier.id, 4)
    latest = store.sync.pending_mutations(10_000_000)[0]
    assert latest.fields["status"].hlc > future


def test_open_conflicts_and_their_resolution(store, procedure):
    dossier = receive(store, procedure)
    _push_all(store)
    stamp = Clock("server").now()
    values = [{"value": "Ghi chú A", "hlc": stamp}, {"value": "Ghi chú B", "hlc": stamp}]
    conflict = Change(
        seq=5, entity="conflict", entity_id="c-1", ward_code="00070", version=1,
        fields={k: FieldValue(value=v, hlc=stamp) for k, v in {
            "entity": "dossier", "entity_id": dossier.id, "ward_code": "00070",
            "field": "notes", "values": values, "state": "open"}.items()},
    )
    store.sync.apply_pull_page([conflict], next_cursor=5)
    [open_one] = store.sync.open_conflicts()
    assert (open_one.entity_id, open_one.field, open_one.values) == (dossier.id, "notes", values)
    assert store.sync.state_of("dossier", dossier.id).state == "conflict"
    assert store.sync.summary().conflicts == 1
    store.sync.resolve_conflict("c-1", "Ghi chú B")
    assert store.sync.open_conflicts() == []
    assert store.dossiers.get(dossier.id).notes == "Ghi chú B"
    queued = store.sync.pending_mutations(10_000_000)
    assert [(m.entity, set(m.fields)) for m in queued] == [
        ("dossier", {"notes"}), ("conflict", {"state", "chosen"})
    ]


def test_attachments_upload_and_download_bookkeeping(store):
    meta = store.attachments.add("dossier", "d-1", "00070", b"jpeg bytes", mime="image/jpeg")
    assert store.sync.pending_uploads() == [meta.sha256]
    assert store.sync.read_attachment(meta.sha256) == b"jpeg bytes"
    store.sync.mark_uploaded(meta.sha256)
    assert store.sync.pending_uploads() == []
    data = b"remote photo"
    sha = hashlib.sha256(data).hexdigest()
    with pytest.raises(TamperError):
        store.sync.store_downloaded(sha, b"something else")
    store.sync.store_downloaded(sha, data)
    assert store.attachments.read(sha) == data and store.sync.pending_uploads() == []


def test_last_synced_is_kept(store):
    at = dt.datetime(2025, 11, 21, 3, 0, tzinfo=dt.UTC)
    store.sync.set_last_synced(at)
    assert store.sync.summary().last_synced_at == at


def test_a_pull_overwriting_a_pending_field_keeps_the_pushed_value(store, procedure):
    dossier = receive(store, procedure)
    created = store.sync.pending_mutations(10_000_000)[0]
    remote = Clock("dev-b")
    remote.observe(created.fields["notes"].hlc)
    newer = FieldValue(value="Ghi chú của máy khác", hlc=remote.now())
    store.sync.apply_pull_page([_server_state(created, 1, notes=newer)], next_cursor=1)
    assert store.dossiers.get(dossier.id).notes == "Ghi chú của máy khác"
    again = store.sync.pending_mutations(10_000_000)[0]
    assert again.fields["notes"] == created.fields["notes"]  # what this device wrote


def test_a_pulled_page_settles_each_record_and_a_record_twice_keeps_the_later(store, procedure):
    pending_one = receive(store, procedure)
    synced_one = receive(store, procedure, applicant_name="Lê Thị Mai")
    created = {m.entity_id: m for m in store.sync.pending_mutations(10_000_000)}
    _push_all(store)
    store.dossiers.change_status(pending_one.id, 4)  # a local edit still queued
    remote = Clock("dev-b")
    remote.observe(created[pending_one.id].fields["status"].hlc)
    first = FieldValue(value="lần một", hlc=remote.now())
    second = FieldValue(value="lần hai", hlc=remote.now())
    page = [
        _server_state(created[pending_one.id], 2, notes=first),
        _server_state(created[synced_one.id], 2, notes=first),
    ]
    store.sync.apply_pull_page(page, next_cursor=2)  # one batched page
    assert store.dossiers.get(pending_one.id).sync_state == "pending"
    assert store.dossiers.get(synced_one.id).sync_state == "synced"
    assert store.dossiers.get(synced_one.id).notes == "lần một"
    twice = [
        _server_state(created[synced_one.id], 3, notes=second),
        _server_state(created[synced_one.id], 3, notes=first),  # older stamp: loses the merge
    ]
    store.sync.apply_pull_page(twice, next_cursor=4)
    again = store.dossiers.get(synced_one.id)
    assert (again.notes, again.version, again.sync_state) == ("lần hai", 3, "synced")
    assert store.sync.pull_cursor() == 4


def test_the_merge_of_a_pulled_record_new_here_is_the_full_merge_into_nothing(store, procedure):
    """Issue 13, fourth round: a record the device does not hold skips the field merge; the
    record to save and the changed names are those of merging into an empty record, and a
    record it holds still goes through the merge."""
    from app.domain.merge import Stamped, merge_fields
    from app.storage.services.records import Record
    from app.storage.sync_store import _merged

    receive(store, procedure)
    (mutation, _event) = store.sync.pending_mutations(10_000_000)
    change = _server_state(mutation, 3, notes=FieldValue(value="ghi chú", hlc=Clock("s").now()))
    merged, changed = _merged(change, None)
    incoming = {n: Stamped(f.value, f.hlc) for n, f in change.fields.items()}
    full = merge_fields({}, incoming, base_version=None)
    assert merged == Record(change.entity, change.entity_id, change.ward_code, full.fields, 3, 0)
    assert changed == full.changed and set(changed) == set(change.fields)
    with store.db.read() as conn:
        local = store.records.load(conn, mutation.entity_id)
    merged_local, changed_local = _merged(change, local)
    assert merged_local.fields == merge_fields(local.fields, incoming).fields
    assert changed_local == ["notes"] and merged_local.rowid == local.rowid
