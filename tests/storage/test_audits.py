"""Audits: answers per item, submit, and two auditors' sections merging after sync."""

from __future__ import annotations

import pytest

from app.domain import audit as A
from app.domain.hlc import Clock
from app.domain.models import AuditAnswer
from app.domain.mutations import Change, FieldValue
from app.storage import AuditNotEditable, InvalidAnswer, ReviewRefused


def test_answer_score_submit_and_lock(store):
    audit = store.audits.create("00070", A.TEMPLATE_V1, "Kiểm tra viên Hà")
    assert audit.review_state == "draft" and audit.auditor == "Kiểm tra viên Hà"
    store.audits.answer(audit.id, "equipment.computers_per_staff", AuditAnswer(value=1))
    with pytest.raises(InvalidAnswer):
        store.audits.answer(audit.id, "equipment.computers_per_staff", AuditAnswer(value="nhiều"))
    store.audits.set_fields(audit.id, notes="Phòng máy chật", position={"lat": 21.03,
                                                                       "lon": 105.85})
    submitted = store.audits.submit(audit.id)
    assert submitted.review_state == "submitted" and submitted.submitted_at is not None
    assert submitted.answers["equipment.computers_per_staff"].value == 1
    assert 0 < submitted.score < 100
    assert submitted.notes == "Phòng máy chật" and submitted.position["lat"] == 21.03
    with pytest.raises(AuditNotEditable):
        store.audits.answer(audit.id, "network.firewall", AuditAnswer(value=False))
    assert [a.id for a in store.audits.list(review_state="submitted")] == [audit.id]
    assert store.audits.list(ward_code="00004") == []


def test_two_auditors_sections_both_survive_a_pull(store):
    audit = store.audits.create("00070", A.TEMPLATE_V1, "An")
    store.audits.answer(audit.id, "network.firewall", AuditAnswer(value=False))
    mine = store.sync.pending_mutations(10_000_000)
    state = {}
    for m in mine:
        state |= m.fields
    colleague = Clock("dev-b")
    colleague.observe(max(f.hlc for f in state.values()))
    theirs = FieldValue(value={"value": True, "note": "", "photos": []}, hlc=colleague.now())
    change = Change(seq=1, entity="audit", entity_id=audit.id, ward_code="00070", version=2,
                    fields={k: v for k, v in state.items() if k != "answers.network.firewall"}
                    | {"answers.backups.offsite": theirs})
    store.sync.apply_pull_page([change], next_cursor=1)
    merged = store.audits.get(audit.id)
    assert set(merged.answers) == {"network.firewall", "backups.offsite"}
    assert merged.answers["backups.offsite"].value is True


def test_review_decision_is_queued_with_its_comment(store):
    audit = store.audits.create("00070", A.TEMPLATE_V1, "An")
    with pytest.raises(ReviewRefused):  # a draft is not the supervisor's to decide
        store.audits.review(audit.id, "approved", "", author="gs.binh", role="supervisor")
    store.audits.submit(audit.id)
    with pytest.raises(ReviewRefused):  # an auditor never decides
        store.audits.review(audit.id, "approved", "", author="an", role="auditor")
    store.sync.pending_mutations(10_000_000)  # the draft's own mutations, already queued
    decided = store.audits.review(
        audit.id, "changes_requested", "Thiếu ảnh phòng máy", author="gs.binh", role="supervisor"
    )
    assert decided.review_state == "changes_requested"
    [comment] = store.audits.comments(audit.id)
    assert comment["decision"] == "changes_requested" and comment["author"] == "gs.binh"
    assert comment["text"] == "Thiếu ảnh phòng máy"
    queued = store.sync.pending_mutations(10_000_000)
    by_entity = {m.entity: m for m in queued}
    assert by_entity["audit"].fields["review_state"].value == "changes_requested"
    assert by_entity["audit_comment"].fields["audit_id"].value == audit.id
    # Back to the auditor: editable again, and may resubmit.
    store.audits.answer(audit.id, "network.firewall", AuditAnswer(value=False))
    assert store.audits.submit(audit.id).review_state == "submitted"
