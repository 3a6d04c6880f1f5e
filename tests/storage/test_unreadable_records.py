"""Defence in depth on the device: a pulled record the device cannot read is kept aside (stored,
sealed, marked unreadable) and shown as one "unreadable" line; lists, dashboard and history keep
working, and a later readable version from the server replaces it. A row that fails to open
(tampering) is one such line in a list, while opening it directly still reports tampering."""

from __future__ import annotations

import datetime as dt

import pytest

from app.domain.hlc import Clock
from app.domain.mutations import Change, FieldValue
from app.storage import DossierQuery, TamperError, open_store
from app.storage.services import UnreadableDossier
from tests.storage.conftest import PIN, WARD, receive

NAME = "Ngô Bảo Châu"


def _fields(procedure_code: str, **overrides) -> dict:
    fields = {
        "code": "000.00.70.H26-251121-0201", "procedure_code": procedure_code,
        "ward_code": WARD, "applicant_name": NAME, "channel": 1,
        "received_at": "2025-11-21T02:00:00+00:00", "appointment_date": "2025-11-26",
        "status": 2, "documents": [], "notes": "",
    }
    return {k: v for k, v in (fields | overrides).items() if v is not ...}


def _change(seq: int, entity_id: str, fields: dict, entity: str = "dossier") -> Change:
    stamp = Clock("server-side").now()
    return Change(seq=seq, entity=entity, entity_id=entity_id, ward_code=WARD, version=seq,
                  fields={k: FieldValue(value=v, hlc=stamp) for k, v in fields.items()})


def test_unreadable_pulled_records_are_kept_aside_and_shown(store, procedure):
    good = receive(store, procedure)
    bad = {
        "no-date": _fields(procedure.code, appointment_date=...),
        "bad-status": _fields(procedure.code, status=[4], code="000.00.70.H26-251121-0202"),
        "bad-text": _fields(procedure.code, applicant_name="Lê \ud800",
                            code="000.00.70.H26-251121-0203"),
    }
    changes = [_change(i + 1, k, v) for i, (k, v) in enumerate(bad.items())]
    changes.append(_change(9, "future-1", {"anything": 1}, entity="future_entity"))
    store.sync.apply_pull_page(changes, next_cursor=9)  # one transaction, nothing refused
    assert store.sync.pull_cursor() == 9

    states = {k: store.sync.state_of("dossier", k) for k in bad}
    assert states["no-date"].state == "unreadable"
    assert states["no-date"].reason == "appointment_date:missing"
    assert states["bad-status"].reason == "status:type"
    assert states["bad-text"].state == "unreadable"
    assert store.sync.state_of("future_entity", "future-1").reason == "entity:unknown"

    page = store.dossiers.list(DossierQuery())
    assert [d.id for d in page.items] == [good.id] and page.total == 1
    assert {u.id: u.reason for u in page.unreadable} == {
        k: states[k].reason for k in bad
    }
    assert {u.code for u in page.unreadable} >= {"000.00.70.H26-251121-0201"}
    # a filter never hides them: their fields cannot be trusted to decide
    assert len(store.dossiers.list(DossierQuery(status=9)).unreadable) == 3
    assert store.dossiers.list(DossierQuery(), offset=50).unreadable == []
    board = store.dossiers.dashboard(dt.date(2025, 11, 21))
    assert board.unreadable == 3
    assert store.sync.summary().unreadable == 4  # the unknown entity too
    with pytest.raises(UnreadableDossier) as caught:
        store.dossiers.get("no-date")
    assert "Hồ sơ không đọc được" in str(caught.value) and NAME not in str(caught.value)
    with pytest.raises(UnreadableDossier):
        store.dossiers.change_status("bad-status", 4)
    assert store.dossiers.history(good.id)  # the other screens go on

    fixed = _change(20, "no-date", _fields(procedure.code))  # the server's fixed version
    store.sync.apply_pull_page([fixed], next_cursor=20)
    assert store.sync.state_of("dossier", "no-date").state == "synced"
    assert store.dossiers.get("no-date").appointment_date == dt.date(2025, 11, 26)
    assert store.dossiers.dashboard(dt.date(2025, 11, 21)).unreadable == 2


def test_other_lists_leave_unreadable_records_out(store, procedure):
    """Audits, review comments, attachments and conflicts: the lists go on without them (the
    sync line counts them)."""
    dossier = receive(store, procedure)
    audit = store.audits.create(WARD, "2025.1", "Kiểm tra viên")
    changes = [
        _change(1, "bad-audit", {"ward_code": WARD, "template_version": "2025.1",
                                 "started_at": "yesterday"}, entity="audit"),
        _change(2, "bad-comment", {"audit_id": audit.id, "ward_code": WARD, "at": 5},
                entity="audit_comment"),
        _change(3, "bad-file", {"owner_entity": "dossier", "owner_id": dossier.id,
                                "ward_code": WARD, "sha256": "ab", "size": "big"},
                entity="attachment"),
        _change(4, "bad-conflict", {"entity": "dossier", "entity_id": dossier.id,
                                    "ward_code": WARD, "field": "notes", "values": "x",
                                    "state": "open"}, entity="conflict"),
    ]
    store.sync.apply_pull_page(changes, next_cursor=4)
    assert [a.id for a in store.audits.list()] == [audit.id]
    assert store.audits.comments(audit.id) == []
    assert store.attachments.list(dossier.id) == []
    assert store.sync.open_conflicts() == []
    assert store.sync.summary().unreadable == 4
    assert store.dossiers.get(dossier.id).sync_state == "pending"  # its own state untouched


def test_a_tampered_row_is_one_unreadable_line_in_a_list(store, data_dir, procedure):
    a = receive(store, procedure)
    b = receive(store, procedure, applicant_name="Lê Văn Bình")
    store.close()
    with store.db.connect_raw() as raw:
        (blob,) = raw.execute("SELECT sealed FROM records WHERE entity_id = ?", (a.id,)).fetchone()
        edited = bytearray(blob)
        edited[len(edited) // 2] ^= 0x01
        raw.execute("UPDATE records SET sealed = ? WHERE entity_id = ?", (bytes(edited), a.id))
    raw.close()
    with open_store(data_dir, PIN) as reopened:
        page = reopened.dossiers.list(DossierQuery())
        assert [d.id for d in page.items] == [b.id]
        assert [(u.id, u.reason) for u in page.unreadable] == [(a.id, "tampered")]
        with pytest.raises(TamperError):  # opened directly, it still reports tampering
            reopened.dossiers.get(a.id)
