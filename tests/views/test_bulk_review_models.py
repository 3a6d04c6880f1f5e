"""Bulk review on a real store: what each waiting audit fails, three approved together (one
moved on meanwhile is refused alone), and a resubmitted audit shows what changed since changes
were requested."""

from __future__ import annotations

import time

from app.domain import audit as A
from app.domain.models import AuditAnswer
from app.views.bulk_review_models import BulkReviewPresenter, changes_since, selection_findings

WARDS = ["00004", "00008", "00025", "00070"]


def _audit(store, ward: str, firewall: bool) -> str:
    audit = store.audits.create(ward, A.LATEST_TEMPLATE, "Kiểm tra viên Hà")
    store.audits.answer(audit.id, "premises.cooling", AuditAnswer(value=firewall))
    store.audits.submit(audit.id)
    return audit.id


def test_approve_three_together_and_see_what_fails(store) -> None:
    ids = [_audit(store, w, firewall=(i % 2 == 0)) for i, w in enumerate(WARDS)]
    presenter = BulkReviewPresenter(store, "giamsat.binh", "supervisor")
    rows = presenter.load()
    assert {r.audit_id for r in rows} == set(ids)
    by_id = {r.audit_id: r for r in rows}
    firewall = A.template().item("premises.cooling").label
    assert (("premises.cooling", firewall) in by_id[ids[1]].failing) is True
    assert ("premises.cooling", firewall) not in by_id[ids[0]].failing
    assert by_id[ids[0]].missing  # everything else unanswered: listed before any decision
    lines = selection_findings(rows, {ids[1]})
    assert any(firewall in line for line in lines)

    outcome = presenter.approve_many(ids[:3])
    assert outcome.done == ids[:3] and outcome.refused == []
    assert [store.audits.get(i).review_state for i in ids] == [
        "approved",
        "approved",
        "approved",
        "submitted",
    ]
    again = presenter.approve_many([ids[0], ids[3]])  # the first is final already
    assert again.done == [ids[3]] and [r[0] for r in again.refused] == [ids[0]]
    assert [r.audit_id for r in presenter.load()] == []


def test_resubmitted_audit_shows_what_changed_since_the_request(store) -> None:
    audit_id = store.audits.create("00070", A.LATEST_TEMPLATE, "Kiểm tra viên Hà").id
    store.audits.answer(audit_id, "premises.cooling", AuditAnswer(value=False))
    store.audits.answer(audit_id, "premises.access_control", AuditAnswer(value=True))
    licensed = A.template().item("equipment.licensed_os")
    first, second = licensed.options[0], licensed.options[1]
    store.audits.answer(audit_id, licensed.id, AuditAnswer(value=second.id))
    store.audits.submit(audit_id)
    presenter = BulkReviewPresenter(store, "giamsat.binh", "supervisor")
    store.audits.review(
        audit_id, "changes_requested", "Bổ sung tường lửa", author="giamsat.binh", role="supervisor"
    )
    time.sleep(0.01)  # the fix comes after the request (clock stamps are in milliseconds)
    store.audits.answer(audit_id, "premises.cooling", AuditAnswer(value=True))
    store.audits.answer(audit_id, "premises.access_control", AuditAnswer(value=True))  # same
    store.audits.answer(audit_id, licensed.id, AuditAnswer(value=first.id))
    store.audits.submit(audit_id)
    [row] = presenter.load()
    assert row.resubmitted
    # old → new per answer; an answer written again with the same value is no change
    changes = {c.item_id: c for c in row.changes}
    assert {i: (c.old, c.value) for i, c in changes.items()} == {
        "premises.cooling": (False, True), licensed.id: (second.id, first.id),
    }
    assert all(c.old_known for c in row.changes)
    # shown as the form shows them: the option's label, not its id
    assert (changes[licensed.id].old_text, changes[licensed.id].value_text) == (
        second.label, first.label,
    )
    assert (changes["premises.cooling"].old_text, changes["premises.cooling"].value_text) == (
        "Không", "Có",
    )


def test_review_detail_marks_answers_changed_since_the_request_with_their_old_value(
    store,
) -> None:
    from app.views.review_models import ReviewDetailPresenter

    audit_id = store.audits.create("00070", A.LATEST_TEMPLATE, "Kiểm tra viên Hà").id
    store.audits.answer(audit_id, "premises.cooling", AuditAnswer(value=False))
    store.audits.submit(audit_id)
    store.audits.review(audit_id, "changes_requested", "Bổ sung",
                        author="giamsat.binh", role="supervisor")
    detail = ReviewDetailPresenter(store, audit_id, "supervisor", "giamsat.binh")
    lines = [line for _, lines in detail.load().sections for line in lines]
    assert all(line.was is None for line in lines)  # not resubmitted yet: nothing to compare
    time.sleep(0.01)
    store.audits.answer(audit_id, "premises.cooling", AuditAnswer(value=True))
    store.audits.submit(audit_id)
    lines = [line for _, lines in detail.load().sections for line in lines]
    label = A.template().item("premises.cooling").label
    changed = [(line.label, line.was, line.answer) for line in lines if line.was is not None]
    assert [(w, a) for lbl, w, a in changed if label in lbl] == [("Không", "Có")]
    assert len(changed) == 1


def test_changes_since_the_request_pairs_old_and_new_values() -> None:
    import datetime as dt

    requested = dt.datetime(2026, 11, 20, 3, 0, tzinfo=dt.UTC)
    later, earlier = requested + dt.timedelta(minutes=5), requested - dt.timedelta(minutes=5)
    labels = {"a": "Điều hoà", "b": "Tường lửa", "c": "Sao lưu", "d": "Máy chủ"}
    now = {"a": True, "b": 3, "c": "weekly", "d": False}
    times = {"a": later, "b": later, "c": earlier, "d": later}
    before = {"a": False, "b": 3, "c": "none"}  # d was unanswered then
    changes = changes_since(labels, now, times, requested, before)
    assert [(c.item_id, c.old, c.value) for c in changes] == [
        ("d", None, False), ("a", False, True),
    ]
    assert all(c.old_known for c in changes)
    # A request that recorded no answers (an older version's): the new values only.
    unknown = changes_since(labels, now, times, requested, None)
    assert [c.item_id for c in unknown] == ["d", "b", "a"] and not unknown[0].old_known


def test_a_failing_item_becomes_an_action_tracked_until_a_later_audit_meets_it(store) -> None:
    import datetime as dt

    audit_id = _audit(store, "00070", firewall=False)  # cooling fails
    today = dt.date.today()
    action_id = store.oversight.assign_action(
        audit_id, "premises.cooling", "Trưởng phòng Văn hoá", today + dt.timedelta(days=30)
    )
    [action] = store.oversight.actions(today, "00070")
    assert (action.id, action.owner, action.state) == (action_id, "Trưởng phòng Văn hoá", "open")
    assert store.oversight.actions(today + dt.timedelta(days=31))[0].state == "overdue"
    time.sleep(0.01)
    later = store.audits.create("00070", A.LATEST_TEMPLATE, "Kiểm tra viên Hà")
    store.audits.answer(later.id, "premises.cooling", AuditAnswer(value=True))
    assert store.oversight.actions(today)[0].state == "open"  # a draft does not count
    store.audits.submit(later.id)
    assert store.oversight.actions(today + dt.timedelta(days=31))[0].state == "met"
