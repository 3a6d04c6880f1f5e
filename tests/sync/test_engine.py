"""The sync engine between real encrypted client stores and the real API process."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import time
import uuid

import pytest
from sqlalchemy import text

from app.domain.models import AuditAnswer, ReceiveDossier
from app.storage import StoreDestroyed, open_store, store_exists
from app.sync.transport import DeviceRevoked, Timeouts
from tests.support.netproxy import UP, NetProxy
from tests.sync.conftest import (
    PIN,
    PROCEDURE,
    TEMPLATE,
    audit_view,
    receive_dossiers,
    sent_mutations,
    server_audit_view,
    server_state,
)

_receive = receive_dossiers


def _shared_audit(devices, ward: str, n_devices: int = 2):
    """n auditor devices of one ward holding one synced draft audit."""
    user = devices.user("auditor", [ward])
    made = [devices.enrol(user) for _ in range(n_devices)]
    audit = made[0].store.audits.create(ward, TEMPLATE, "Trần Văn Nam")
    for d in made:
        assert d.sync().ok
    return made, audit.id


def test_push_then_pull_to_a_fresh_colleague(devices, sync_server, ward):
    officer = devices.enrol(devices.user("officer", [ward]))
    ids = _receive(officer.store, ward, 5)
    report = officer.sync()
    assert report.ok and report.pushed >= 5 and report.rejected == 0
    assert officer.store.sync.summary().pending == 0
    assert {officer.store.dossiers.get(i).sync_state for i in ids} == {"synced"}

    colleague = devices.enrol(devices.user("officer", [ward]))
    report = colleague.sync()
    assert report.ok and report.pulled >= 5
    for i in ids:
        mine, theirs = officer.store.dossiers.get(i), colleague.store.dossiers.get(i)
        assert theirs.applicant_name == mine.applicant_name
        assert theirs.code == mine.code and theirs.status == mine.status
    again = officer.sync()  # nothing new: nothing pushed, nothing lost
    assert again.ok and again.pushed == 0
    assert (
        sum(1 for v in server_state(sync_server, ward).values() if v["_entity"] == "dossier") == 5
    )


def test_status_moves_made_offline_reach_the_server(devices, sync_server, ward):
    officer = devices.enrol(devices.user("officer", [ward]))
    (dossier_id,) = _receive(officer.store, ward, 1)
    officer.store.dossiers.change_status(dossier_id, 4, note="chuyển phòng chuyên môn")
    report = officer.sync()
    assert report.ok and report.rejected == 0
    assert server_state(sync_server, ward)[dossier_id]["status"] == 4


def test_different_fields_of_one_record_both_survive(devices, sync_server, ward):
    (a, b), audit_id = _shared_audit(devices, ward)
    a.store.audits.set_fields(audit_id, notes="Phòng máy chủ chưa có điều hòa")
    b.store.audits.answer(audit_id, "premises.ups", AuditAnswer(value=True, note="UPS 2 kVA"))
    assert a.sync().ok and b.sync().ok and a.sync().ok
    for d in (a, b):
        view = audit_view(d.store, audit_id)
        assert view["notes"] == "Phòng máy chủ chưa có điều hòa"
        assert view["answers"]["premises.ups"]["note"] == "UPS 2 kVA"
    assert audit_view(a.store, audit_id) == audit_view(b.store, audit_id)
    assert server_audit_view(server_state(sync_server, ward)[audit_id]) == audit_view(
        a.store, audit_id
    )
    assert a.store.sync.open_conflicts() == [] and b.store.sync.open_conflicts() == []


def test_same_field_race_same_winner_recorded_conflict_and_resolution(devices, sync_server, ward):
    (a, b), audit_id = _shared_audit(devices, ward)
    a.store.audits.set_fields(audit_id, notes="ghi chú của A")
    b.store.audits.set_fields(audit_id, notes="ghi chú của B")
    assert a.sync().ok
    report = b.sync()
    assert report.ok and report.conflicts == 1
    assert a.sync().ok
    winner = audit_view(a.store, audit_id)["notes"]
    assert winner in ("ghi chú của A", "ghi chú của B")
    assert audit_view(b.store, audit_id)["notes"] == winner
    assert server_state(sync_server, ward)[audit_id]["notes"] == winner
    for d in (a, b):
        (conflict,) = d.store.sync.open_conflicts()
        assert conflict.field == "notes" and conflict.entity_id == audit_id
        assert {v["value"] for v in conflict.values} == {"ghi chú của A", "ghi chú của B"}

    conflict_id = a.store.sync.open_conflicts()[0].id
    a.store.sync.resolve_conflict(conflict_id, "ghi chú đã thống nhất")
    assert a.sync().ok and b.sync().ok
    for d in (a, b):
        assert audit_view(d.store, audit_id)["notes"] == "ghi chú đã thống nhất"
        assert d.store.sync.open_conflicts() == []
    assert server_state(sync_server, ward)[conflict_id]["state"] == "resolved"


def test_revoked_device_is_erased_after_the_callback(devices, sync_server, ward):
    from server.services import identity

    officer = devices.enrol(devices.user("officer", [ward]))
    first, _ = _receive(officer.store, ward, 2)
    assert officer.sync().ok
    identity.revoke_device(sync_server.engine, officer.server_device_id)
    _receive(officer.store, ward, 1)
    seen_in_callback: list[object] = []

    def on_revoked() -> None:  # the user is told while the data is still there
        seen_in_callback.append(officer.store.dossiers.get(first).applicant_name)
        seen_in_callback.append(officer.store.sync.summary().pending > 0)  # unpushed, intact

    officer.engine.on_revoked = on_revoked
    with pytest.raises(DeviceRevoked):
        officer.sync()
    assert seen_in_callback == ["Nguyễn Thị Hương 0", True]
    assert_erased(officer.data_dir)


def assert_erased(data_dir) -> None:
    """Nothing of the store can be opened again."""
    if store_exists(data_dir):
        with pytest.raises(StoreDestroyed):
            open_store(data_dir, PIN)


def test_attachment_upload_resumes_from_the_server_offset(devices, sync_server, ward):
    auditor = devices.enrol(devices.user("auditor", [ward]))
    audit = auditor.store.audits.create(ward, TEMPLATE, "Lê Thị Hoa")
    assert auditor.sync().ok
    photo = os.urandom(700_000)
    meta = auditor.store.attachments.add("audit", audit.id, ward, photo, mime="image/jpeg")
    first = auditor.store.attachments.add("audit", audit.id, ward, os.urandom(10))
    assert auditor.store.sync.pending_uploads() == [meta.sha256, first.sha256]
    auditor.engine.chunk_bytes = 128 * 1024
    with NetProxy(sync_server.port) as proxy:
        auditor.transport.retarget(proxy.url)  # the same client, through the proxy
        proxy.reset_after(300_000, direction=UP, times=1)  # cut mid-way through the photo
        report = auditor.sync()
    assert report.ok and report.uploads == 2
    outcome = next(o for o in auditor.engine.last_uploads if o.sha256 == meta.sha256)
    assert outcome.resumed_from[0] == 0 and max(outcome.resumed_from[1:]) > 0
    resumed_at = max(outcome.resumed_from[1:])
    assert len(photo) - resumed_at < len(photo)  # the retry sent only what the server lacked
    assert outcome.bytes_sent < 2 * len(photo)
    assert auditor.store.sync.pending_uploads() == []

    supervisor = devices.enrol(devices.user("supervisor", [ward]))
    assert supervisor.sync().ok
    data = supervisor.engine.fetch_attachment(meta.sha256)
    assert hashlib.sha256(data).hexdigest() == meta.sha256 and data == photo
    assert supervisor.store.attachments.read(meta.sha256) == photo


def test_upload_cut_across_runs_resumes_in_the_next_run(devices, sync_server, ward):
    auditor = devices.enrol(devices.user("auditor", [ward]))
    audit = auditor.store.audits.create(ward, TEMPLATE, "Lê Thị Hoa")
    assert auditor.sync().ok
    photo = os.urandom(600_000)
    meta = auditor.store.attachments.add("audit", audit.id, ward, photo, mime="image/jpeg")
    auditor.engine.chunk_bytes = 100_000
    with NetProxy(sync_server.port) as proxy:
        auditor.transport.retarget(proxy.url)
        # The link dies, and stays down, on whichever connection carries the 250,000th byte up
        # (the reference data may travel beside the push on a connection of its own).
        proxy.reset_after(250_000, direction=UP, times=None, then_offline=True)
        first = auditor.sync()
        assert not first.ok and first.offline
        assert auditor.store.sync.pending_uploads() == [meta.sha256]
        proxy.set_offline(False)
        proxy.reset_counters()
        second = auditor.sync()
    assert second.ok and second.uploads == 1
    (outcome,) = auditor.engine.last_uploads
    assert outcome.resumed_from[0] > 0  # the server already held the first chunks
    assert outcome.bytes_sent == len(photo) - outcome.resumed_from[0]
    assert proxy.bytes_up < len(photo)


def test_sync_converges_through_a_faulty_slow_link(devices, sync_server, ward):
    officer = devices.enrol(devices.user("officer", [ward]), timeouts=Timeouts(read=3.0))
    colleague = devices.enrol(devices.user("officer", [ward]), timeouts=Timeouts(read=3.0))
    officer.engine.push_batch_bytes = 16 * 1024  # many small batches: many chances to fail
    officer.engine.pull_page = colleague.engine.pull_page = 40
    ids: list[str] = []
    with NetProxy(sync_server.port) as proxy:
        for d in (officer, colleague):
            d.transport.retarget(proxy.url)
        proxy.set_link(up_bps=4_000_000, down_bps=4_000_000, delay_ms=10)
        faults = [
            lambda: proxy.reset_after(700, times=2),  # responses cut mid-way
            lambda: proxy.truncate_after(300, times=2),  # short bodies
            lambda: proxy.stall(4.0, times=1),  # longer than the read timeout
            lambda: proxy.reset_after(2_000, direction=UP, times=2),  # requests cut mid-way
        ]
        for i, fault in enumerate(faults):
            ids += _receive(officer.store, ward, 30, name=f"Phạm Văn Đức {i}")
            fault()
            officer.sync()  # may fail; what matters is that the next runs converge
            colleague.sync()
        proxy.clear_faults()
        final = [officer.sync(), colleague.sync()]
    assert all(r.ok for r in final), [r.errors for r in final]
    assert proxy.faults_fired >= len(faults)
    assert officer.store.sync.summary().pending == 0
    state = server_state(sync_server, ward)
    assert sorted(k for k, v in state.items() if v["_entity"] == "dossier") == sorted(ids)
    for i in ids:
        mine = officer.store.dossiers.get(i)
        assert colleague.store.dossiers.get(i).applicant_name == mine.applicant_name


def test_a_push_never_exceeds_the_servers_mutation_count(devices, sync_server, ward):
    officer = devices.enrol(devices.user("officer", [ward]))
    day0 = dt.datetime(2025, 10, 1, 2, 0, tzinfo=dt.UTC)
    requests = [  # at most 200 dossier codes per device and day: spread over days
        ReceiveDossier(
            procedure_code=PROCEDURE,
            ward_code=ward,
            applicant_name=f"Lý Văn {i}",
            received_at=day0 + dt.timedelta(days=i // 150),
        )
        for i in range(1010)
    ]
    officer.store.dossiers.receive_many(requests)  # 2,020 outbox rows, the server takes 2,000
    officer.engine.push_batch_bytes = 64 * 1024 * 1024  # bytes would allow them all at once
    report = officer.sync()
    assert report.ok and report.pushed == 2020 and report.rejected == 0
    assert officer.transport.stats.requests >= 3  # two pushes and a pull at least


def test_an_attachment_downloads_when_first_opened_and_only_then(devices, sync_server, ward):
    from app.sync.scheduler import SyncScheduler
    from app.views.sync_bridge import SyncBridge

    auditor = devices.enrol(devices.user("auditor", [ward]))
    audit = auditor.store.audits.create(ward, TEMPLATE, "Đỗ Thị Lan")
    photo = os.urandom(200_000)
    meta = auditor.store.attachments.add("audit", audit.id, ward, photo, mime="image/jpeg")
    assert auditor.sync().ok and auditor.sync().uploads == 0
    assert (
        SyncBridge(SyncScheduler(auditor.engine), auditor.transport).open_attachment(meta.sha256)
        == photo
    )  # the device that took the photo never downloads it

    supervisor = devices.enrol(devices.user("supervisor", [ward]))
    with NetProxy(sync_server.port) as proxy:
        supervisor.transport.retarget(proxy.url)
        assert supervisor.sync().ok
        assert meta.sha256 in supervisor.store.sync.missing_downloads()  # pulled: record only
        bridge = SyncBridge(SyncScheduler(supervisor.engine), supervisor.transport)
        proxy.reset_counters()
        first = bridge.open_attachment(meta.sha256)
        downloaded = proxy.bytes_down
        proxy.reset_counters()
        requests_before = supervisor.transport.stats.requests
        second = bridge.open_attachment(meta.sha256)
        assert proxy.bytes_up == 0 and proxy.bytes_down == 0  # the second open stayed local
        assert supervisor.transport.stats.requests == requests_before
    assert hashlib.sha256(first).hexdigest() == meta.sha256 and first == photo
    assert second == photo and downloaded >= len(photo)
    assert meta.sha256 not in supervisor.store.sync.missing_downloads()


def test_opening_an_absent_attachment_offline_says_so(devices, sync_server, ward):
    from app.sync.scheduler import SyncScheduler
    from app.views.sync_bridge import AttachmentUnavailable, SyncBridge

    auditor = devices.enrol(devices.user("auditor", [ward]))
    audit = auditor.store.audits.create(ward, TEMPLATE, "Đỗ Thị Lan")
    meta = auditor.store.attachments.add("audit", audit.id, ward, os.urandom(5_000))
    assert auditor.sync().ok
    supervisor = devices.enrol(devices.user("supervisor", [ward]))
    assert supervisor.sync().ok
    with NetProxy(sync_server.port) as proxy:
        supervisor.transport.retarget(proxy.url)
        proxy.set_offline(True)
        bridge = SyncBridge(SyncScheduler(supervisor.engine), supervisor.transport)
        with pytest.raises(AttachmentUnavailable) as raised:
            bridge.open_attachment(meta.sha256)
    assert raised.value.revoked is False
    assert meta.sha256 in supervisor.store.sync.missing_downloads()


def test_a_push_answer_does_not_hide_an_unpulled_edit(devices, sync_server, ward):
    """A's push is answered with a record version that includes B's edit A never pulled; A's
    next edit of that field must still count as a race against B's, not overwrite it quietly."""
    (a, b), audit_id = _shared_audit(devices, ward)
    b.store.audits.set_fields(audit_id, notes="ghi chú của B")
    assert b.engine.run_once(pull=False).ok
    a.store.audits.answer(audit_id, "premises.ups", AuditAnswer(value=True))
    assert a.engine.run_once(pull=False).ok  # A has not seen B's notes
    a.store.audits.set_fields(audit_id, notes="ghi chú của A")
    report = a.engine.run_once(pull=False)
    assert report.ok and report.conflicts == 1
    assert a.sync().ok and b.sync().ok
    (conflict,) = a.store.sync.open_conflicts()
    assert {v["value"] for v in conflict.values} == {"ghi chú của A", "ghi chú của B"}


def test_a_pull_after_a_push_does_not_bring_the_devices_own_records_back(
    devices, sync_server, ward
):
    officer = devices.enrol(devices.user("officer", [ward]))
    ids = _receive(officer.store, ward, 8)
    officer.store.dossiers.change_status(ids[0], 4, note="chuyển xử lý")
    pushed = officer.engine.run_once(pull=False)
    assert pushed.ok and pushed.pushed > 8
    cursor_before = officer.store.sync.pull_cursor()
    pulled = officer.engine.run_once(push=False)
    assert pulled.ok and pulled.pulled == 0  # it holds all of them already
    assert officer.store.sync.pull_cursor() > cursor_before  # and still moved past them

    colleague = devices.enrol(devices.user("officer", [ward]))  # a second counter tablet
    report = colleague.sync()
    on_server = server_state(sync_server, ward)
    assert report.ok and report.pulled == len(on_server)  # someone else gets every record
    assert {i for i in ids if colleague.store.dossiers.get(i)} == set(ids)

    # Someone else's change to one of them, and the server's conflict records, do come back.
    (a, b), audit_id = _shared_audit(devices, ward)
    a.store.audits.set_fields(audit_id, notes="ghi chú của A")
    b.store.audits.set_fields(audit_id, notes="ghi chú của B")
    assert a.sync().ok
    report = b.sync()
    assert report.conflicts == 1 and len(b.store.sync.open_conflicts()) == 1  # server-made
    colleague.store.dossiers.change_status(ids[1], 4, note="cán bộ khác chuyển")
    assert colleague.sync().ok
    again = officer.sync()
    assert again.ok and again.pulled == 2  # the dossier and its new history event
    assert officer.store.dossiers.get(ids[1]).status == 4


def test_one_kept_alive_connection_carries_a_whole_sync(devices, sync_server, ward):
    officer = devices.enrol(devices.user("officer", [ward]))
    _receive(officer.store, ward, 30)
    officer.engine.push_batch_bytes = 8 * 1024  # several pushes
    officer.engine.pull_page = 10  # several pull pages
    officer.engine.pipeline = False  # overlapped pushes take a second connection (by design)
    with NetProxy(sync_server.port) as proxy:
        officer.transport.retarget(proxy.url)
        before = officer.transport.stats.requests
        first = officer.sync()
        _receive(officer.store, ward, 3, name="Hoàng Văn Minh")
        second = officer.sync()
        requests = officer.transport.stats.requests - before
    assert first.ok and second.ok and officer.transport.stats.retries == 0
    assert requests >= 6
    assert proxy.connections == 1  # every request of both runs on the same TCP connection


def test_record_states_rejected_with_reason_then_conflict_then_synced(devices, sync_server, ward):
    officer = devices.enrol(devices.user("officer", [ward]))
    other_ward = next(w for w in ("00004", "00008", "00010") if w != ward)
    (outside,) = _receive(officer.store, other_ward, 1)  # not the officer's ward
    (inside,) = _receive(officer.store, ward, 1)
    assert officer.store.sync.state_of("dossier", inside).state == "pending"
    report = officer.sync()
    assert report.rejected >= 1
    refused = officer.store.sync.state_of("dossier", outside)
    assert (refused.state, refused.reason) == ("rejected", "ward_out_of_scope")
    assert officer.store.sync.state_of("dossier", inside).state == "synced"
    assert officer.store.sync.summary().rejected >= 1

    (a, b), audit_id = _shared_audit(devices, ward)
    a.store.audits.set_fields(audit_id, notes="ý kiến A")
    b.store.audits.set_fields(audit_id, notes="ý kiến B")
    assert a.store.sync.state_of("audit", audit_id).state == "pending"
    assert a.sync().ok and b.sync().ok and a.sync().ok
    for d in (a, b):
        assert d.store.sync.state_of("audit", audit_id).state == "conflict"
    (conflict,) = b.store.sync.open_conflicts()
    b.store.sync.resolve_conflict(conflict.id, "ý kiến chung")
    assert b.store.sync.state_of("audit", audit_id).state == "pending"
    assert b.sync().ok and a.sync().ok
    for d in (a, b):
        assert d.store.sync.state_of("audit", audit_id).state == "synced"
        assert audit_view(d.store, audit_id)["notes"] == "ý kiến chung"


def test_a_review_decision_made_from_a_device_comes_back_to_it(devices, sync_server, ward):
    """The server stamps a decision and its comment itself: the deciding device did not write
    them, so its pull must bring them even though its own request made them."""
    auditor = devices.enrol(devices.user("auditor", [ward]))
    audit = auditor.store.audits.create(ward, TEMPLATE, "Phan Thị Ngọc")
    auditor.store.audits.submit(audit.id)
    assert auditor.sync().ok
    supervisor = devices.enrol(devices.user("supervisor", [ward]))
    assert supervisor.sync().ok
    with sync_server.client(supervisor.transport.token) as client:
        answer = client.post(
            f"/reviews/{audit.id}", json={"decision": "approved", "comment": "Đạt yêu cầu"}
        )
    assert answer.status_code == 200, answer.text
    comment_id = answer.json()["comment_id"]
    report = supervisor.sync()
    assert report.ok and report.pulled == 2  # the audit's new state and the comment
    assert supervisor.store.audits.get(audit.id).review_state == "approved"
    assert comment_id in supervisor.store.sync.record_states()
    assert auditor.sync().ok and auditor.store.audits.get(audit.id).review_state == "approved"


class _StricterServerSchema:
    """The real store, except that chosen queued mutations reach the wire with a field name the
    server's schema refuses (a NUL inside it), as from a client whose schema lags the server's.
    `model_copy` skips validation, as a lagging client's own model would let it through."""

    def __init__(self, store, bad_ids: set[str]) -> None:
        self._store = store
        self.bad_ids = bad_ids

    def __getattr__(self, name):
        return getattr(self._store, name)

    def pending_mutations(self, max_bytes: int, skip=(), max_rows=None):
        return [
            _with_nul_field_name(m) if m.mutation_id in self.bad_ids else m
            for m in self._store.pending_mutations(max_bytes, skip, max_rows)
        ]


def _with_nul_field_name(mutation):
    fields = {f"{name[:2]}\x00{name[2:]}": fv for name, fv in mutation.fields.items()}
    return mutation.model_copy(update={"fields": fields})


def _queued(store, entity: str, entity_id: str) -> list[str]:
    return [
        m.mutation_id
        for m in store.sync.pending_mutations(64 * 1024 * 1024)
        if (m.entity, m.entity_id) == (entity, entity_id)
    ]


def test_a_push_the_server_refuses_whole_is_split_to_the_bad_row(devices, sync_server, ward):
    officer = devices.enrol(devices.user("officer", [ward]))
    ids = _receive(officer.store, ward, 6)
    queued = len(officer.store.sync.pending_mutations(64 * 1024 * 1024))
    (bad,) = _queued(officer.store, "dossier", ids[2])  # the dossier's creation
    real_store = officer.engine.store
    officer.engine.store = _StricterServerSchema(real_store, {bad})
    before = officer.transport.stats.requests
    report = officer.sync()
    requests = officer.transport.stats.requests - before

    assert report.ok and report.rejected == 1 and report.applied == queued - 1
    refused = officer.store.sync.state_of("dossier", ids[2])
    assert refused.state == "rejected"
    assert refused.reason.startswith("validation_error:fields.")
    assert "NUL" in refused.reason and "\x00" not in refused.reason
    assert {officer.store.sync.state_of("dossier", i).state for i in ids if i != ids[2]} == {
        "synced"
    }
    on_server = server_state(sync_server, ward)
    assert set(ids) - set(on_server) == {ids[2]}
    assert officer.store.sync.summary().pending == 0
    # Without the bad row: the reference data's check, one push and one pull. The server named
    # the row: one push more.
    assert requests <= 3 + 1

    officer.engine.store = real_store
    later = _receive(officer.store, ward, 2, name="Đặng Văn Khoa")
    again = officer.sync()
    assert again.ok and again.pushed == 4 and again.rejected == 0
    assert {officer.store.sync.state_of("dossier", i).state for i in later} == {"synced"}


def test_a_bad_row_inside_a_folded_record_is_found_by_halving(devices, sync_server, ward):
    """Rows of one record fold into one wire mutation, so the server's answer names the group:
    the engine halves the group's rows until the one bad row is left."""
    auditor = devices.enrol(devices.user("auditor", [ward]))
    audit = auditor.store.audits.create(ward, TEMPLATE, "Vũ Thị Lan")
    for i in range(1, 8):
        auditor.store.audits.set_fields(audit.id, notes=f"ghi chú {i}")
    rows = _queued(auditor.store, "audit", audit.id)
    assert len(rows) == 8
    auditor.engine.store = _StricterServerSchema(auditor.engine.store, {rows[-1]})
    before = auditor.transport.stats.requests
    report = auditor.engine.run_once(pull=False)
    pushes = auditor.transport.stats.requests - before

    assert report.ok and report.rejected == 1 and report.applied == 7
    assert auditor.store.sync.state_of("audit", audit.id).state == "rejected"
    assert "NUL" in auditor.store.sync.state_of("audit", audit.id).reason
    assert server_state(sync_server, ward)[audit.id]["notes"] == "ghi chú 6"  # the good rows
    assert auditor.store.sync.summary().pending == 0
    assert pushes <= 1 + math.ceil(math.log2(len(rows)))  # the refused push, then halves


def _write_old_outbox_row(store, mutation_id: str, entity_id: str, base_version: int = 0) -> None:
    """A queued status change written straight into the store's outbox table, the way an
    older client version (or a damaged write) left it: nothing of today's code checked it."""
    with store.db.write() as conn:
        conn.exec_driver_sql(
            "INSERT INTO outbox (mutation_id, entity, entity_id, base_version, hlc, fields) "
            "VALUES (?, 'dossier', ?, ?, ?, 'status')",
            (mutation_id, entity_id, base_version, store.records.clock.now()),
        )


def test_a_queued_row_the_clients_own_schema_refuses_is_set_aside(devices, sync_server, ward):
    officer = devices.enrol(devices.user("officer", [ward]))
    first = _receive(officer.store, ward, 3)
    assert officer.sync().ok
    _write_old_outbox_row(officer.store, "17", first[0])  # an older version's numbered id
    _write_old_outbox_row(officer.store, str(uuid.uuid4()), first[1], base_version=-1)
    later = _receive(officer.store, ward, 2, name="Đặng Văn Khoa")  # queued behind them

    report = officer.sync()

    assert report.ok, report.errors
    assert report.rejected == 2 and report.applied == 4  # two dossiers with their events
    old_id = officer.store.sync.state_of("dossier", first[0])
    assert old_id.state == "rejected" and old_id.reason.startswith("refused_locally:mutation_id")
    damaged = officer.store.sync.state_of("dossier", first[1])
    assert damaged.state == "rejected" and damaged.reason.startswith(
        "refused_locally:base_version"
    )
    assert {officer.store.sync.state_of("dossier", i).state for i in later} == {"synced"}
    assert set(later) <= set(server_state(sync_server, ward))
    kept = officer.store.sync.set_aside_rows()  # not deleted: kept for a person to look at
    assert kept["17"]["entity_id"] == first[0] and kept["17"]["fields"] == "status"
    assert kept["17"]["reason"] == old_id.reason
    assert {row["entity_id"] for row in kept.values()} == {first[0], first[1]}
    assert officer.store.sync.summary().pending == 0
    assert officer.store.sync.summary().rejected == 2

    again = officer.sync()
    assert again.ok and again.pushed == 0 and again.rejected == 0


def test_a_422_that_is_not_the_servers_answer_rejects_no_row(devices, sync_server, ward):
    """Something on the way (a proxy, a filter) answers every push 422 with an empty body: it
    names no row and says nothing about any, so no row may be rejected for it. The push is
    reported refused, the queue waits, and it all goes once the way is clear."""
    officer = devices.enrol(devices.user("officer", [ward]))
    ids = _receive(officer.store, ward, 4)
    queued = officer.store.sync.summary().pending
    with NetProxy(sync_server.port) as proxy:
        officer.transport.retarget(proxy.url)
        proxy.answer(b"POST /sync/push", 422, times=None)
        refused = officer.sync()

        assert refused.rejected == 0 and refused.pushed == 0
        assert any(e.startswith("push refused: HTTP 422 http_422") for e in refused.errors)
        assert proxy.faults_fired == 1  # one push refused, not one per halving step
        assert officer.store.sync.summary().pending == queued
        assert {officer.store.sync.state_of("dossier", i).state for i in ids} == {"pending"}

        proxy.clear_faults()
        again = officer.sync()
    assert again.ok and again.applied == queued and again.rejected == 0
    assert set(ids) <= set(server_state(sync_server, ward))


def test_a_mutation_whose_id_another_device_used_shows_rejected_not_synced(
    devices, sync_server, ward
):
    """Issue 8: the server once answered another device's result for a taken id, and the
    client dropped a change never stored as applied. Now the server refuses it
    (`mutation_id_taken`) and the record stays on the device marked rejected, with a reason the
    officer can read."""
    from sqlalchemy import text

    from app.views.dossier_models import rejection_text

    first = devices.enrol(devices.user("officer", [ward]))
    second = devices.enrol(devices.user("officer", [ward]))
    _receive(first.store, ward, 3)
    assert first.sync().ok
    with sync_server.engine.connect() as conn:
        taken = conn.execute(
            text("SELECT mutation_id FROM applied_mutation WHERE device_id = :d"),
            {"d": first.server_device_id},
        ).scalars().all()
    (dossier_id,) = _receive(second.store, ward, 1, name="Vũ Văn Khánh")
    with second.store.sync._db.write() as conn:  # a device whose ids collide with another's
        rows = conn.exec_driver_sql("SELECT id FROM outbox ORDER BY id").scalars().all()
        assert 0 < len(rows) <= len(taken)
        for row_id, mutation_id in zip(rows, taken, strict=False):
            conn.exec_driver_sql(
                "UPDATE outbox SET mutation_id = ? WHERE id = ?", (mutation_id, row_id)
            )
    report = second.sync()
    assert report.rejected >= 1 and report.applied == 0
    state = second.store.sync.state_of("dossier", dossier_id)
    assert (state.state, state.reason) == ("rejected", "mutation_id_taken")
    assert second.store.dossiers.get(dossier_id).applicant_name == "Vũ Văn Khánh 0"
    assert dossier_id not in server_state(sync_server, ward)
    assert "thiết bị khác" in rejection_text(state.reason)


def test_an_audit_comes_back_with_the_servers_fields_only_and_merges_whole(
    devices, sync_server, ward
):
    auditor = devices.enrol(devices.user("auditor", [ward]))
    audit = auditor.store.audits.create(ward, TEMPLATE, "Phạm Văn Đức")
    for item, value in (("premises.one_stop_area", True), ("premises.ups", False)):
        auditor.store.audits.answer(audit.id, item, AuditAnswer(value=value))
    pages = []
    pull = auditor.transport.pull

    def keep(cursor, limit=500, node="", *, own=False, **kw):
        pages.append(page := pull(cursor, limit, node, own=own, **kw))
        return page

    push = auditor.transport.push

    def keep_push(*args, **kw):  # the page that came with the push's answer
        answers = push(*args, **kw)
        if (asked := kw.get("receipt")) is not None and asked.page is not None:
            pages.append(asked.page)
        return answers

    auditor.transport.pull, auditor.transport.push = keep, keep_push
    assert auditor.sync().ok
    on_server = server_state(sync_server, ward)[audit.id]
    came = [c for p in pages for c in p.changes if c.entity_id == audit.id]
    mine = auditor.store.sync.device_id  # the clock node of its stamps
    # The fields this device stamped stay home; what the server wrote (the score) comes.
    assert len(came) == 1 and "score" in came[0].fields
    assert all(not f.hlc.endswith(mine) for f in came[0].fields.values())
    assert "answers.premises.ups" not in came[0].fields and "auditor" not in came[0].fields
    assert audit_view(auditor.store, audit.id) == server_audit_view(on_server)
    # A client that does not ask (older) still gets the record whole.
    whole = auditor.transport._json("GET", "/sync/pull", params={"cursor": 0, "limit": 100})
    sent = [c for c in whole["changes"] if c["entity_id"] == audit.id]
    assert len(sent) == 1 and "answers.premises.ups" in sent[0]["fields"]


def test_an_audits_several_clocks_go_as_a_table_and_every_stamp_lands_as_it_was(
    devices, sync_server, ward
):
    """Answers given at different instants: once the server has said it reads clock tables,
    the push writes each clock once (`clock_table`), and the server stores every field with
    the stamp the device gave it; a fresh device pulls them back the same way."""
    auditor = devices.enrol(devices.user("auditor", [ward]))
    audit = auditor.store.audits.create(ward, TEMPLATE, "Phạm Văn Đức")
    assert auditor.sync().ok  # the first push's answer says which forms the server reads
    assert auditor.transport.server_reads_clock_table
    for item, value in (("premises.one_stop_area", True), ("premises.ups", False)):
        time.sleep(0.01)  # each answer its own instant
        auditor.store.audits.answer(audit.id, item, AuditAnswer(value=value))
    given = {
        name: f.hlc
        for m in auditor.store.sync.pending_mutations(10**9) if m.entity_id == audit.id
        for name, f in m.fields.items()
    }
    assert len(set(given.values())) >= 2
    bodies = []
    send = auditor.transport._json

    def spy(method, path, **kw):
        if path == "/sync/push":
            bodies.append(kw["body"])
        return send(method, path, **kw)

    auditor.transport._json = spy
    assert auditor.sync().ok
    sent = [m for b in bodies for m in sent_mutations(b) if m["entity_id"] == audit.id]
    assert sent and all("clocks" in m for m in sent)
    assert all("hlc" not in f for m in sent for f in m["fields"].values())
    with sync_server.engine.connect() as conn:
        stored = conn.execute(
            text("SELECT fields FROM record WHERE entity_id = :i"), {"i": audit.id}
        ).scalar_one()
    stored = json.loads(stored) if isinstance(stored, str) else stored
    assert {name: stored[name]["hlc"] for name in given} == given
    reviewer = devices.enrol(devices.user("supervisor", [ward]))
    assert reviewer.sync().ok
    assert audit_view(reviewer.store, audit.id) == audit_view(auditor.store, audit.id)
