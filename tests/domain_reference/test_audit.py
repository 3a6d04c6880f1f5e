"""The audit template, its scoring rule, answer validation and the review workflow."""

from __future__ import annotations

import pytest

from app.domain import audit
from app.domain.audit import ReviewState as R

PHOTO = "a" * 64


def full_answers(tpl: audit.AuditTemplate) -> dict[str, dict]:
    """A fully compliant answer set: every item at its best, with photos everywhere."""
    answers: dict[str, dict] = {}
    for item in tpl.items():
        value = {
            "yes_no": True,
            "number": item.target or 5,
            "choice": max(item.options, key=lambda o: o.score).id if item.options else None,
            "text": "Đã kiểm tra đầy đủ",
            "photo": None,
        }[item.kind]
        answers[item.id] = {"value": value, "note": "", "photos": [PHOTO]}
    return answers


@pytest.fixture
def tpl() -> audit.AuditTemplate:
    return audit.template(audit.TEMPLATE_V1)


def test_template_shape(tpl):
    assert audit.TEMPLATE_V1 == "2025.1"
    assert audit.TEMPLATES[audit.TEMPLATE_V1] is tpl
    assert [s.id for s in tpl.sections] == [
        "premises",
        "equipment",
        "personnel",
        "network",
        "security",
        "backups",
    ]
    ids = [item.id for item in tpl.items()]
    assert len(ids) == len(set(ids))
    assert 28 <= len(ids) <= 40
    for section in tpl.sections:
        assert section.label and section.label_en and section.items
        for item in section.items:
            assert audit.ITEM_ID.match(item.id), item.id
            assert item.id.startswith(section.id + ".")
            assert item.label and item.label_en and item.weight >= 0
            if item.kind == "number":
                assert item.target and item.target > 0 and item.unit
            if item.kind == "choice":
                assert len({o.id for o in item.options}) == len(item.options) >= 2
                assert max(o.score for o in item.options) == 1.0
    targets = {i.id: i.target for i in tpl.items() if i.kind == "number"}
    assert targets["equipment.computers_per_staff"] == 1
    assert targets["network.bandwidth_mbps"] == 100


def test_unknown_version_is_a_clear_key_error():
    with pytest.raises(KeyError, match="1999.9"):
        audit.template("1999.9")


def test_full_compliant_answers_score_100(tpl):
    result = audit.score(tpl, full_answers(tpl))
    assert result.total == 100.0
    assert set(result.by_section.values()) == {100.0}
    assert result.compliant
    assert result.missing_required == [] and result.failing_items == []


def test_missing_required_items_are_listed(tpl):
    answers = full_answers(tpl)
    del answers["network.firewall"]
    del answers["network.backup_link"]  # optional: costs points, not listed
    answers["backups.frequency"] = {"value": "hourly", "note": "", "photos": []}  # invalid
    result = audit.score(tpl, answers)
    assert result.missing_required == ["network.firewall", "backups.frequency"]
    assert not result.compliant
    assert result.total < 100
    assert result.by_section["premises"] == 100.0
    assert result.by_section["network"] < 100.0


def test_number_is_proportional_to_target_and_capped(tpl):
    answers = full_answers(tpl)
    answers["network.bandwidth_mbps"]["value"] = 50
    assert audit.item_score(tpl, "network.bandwidth_mbps", answers["network.bandwidth_mbps"]) == 0.5
    answers["equipment.computers_per_staff"]["value"] = 3
    result = audit.score(tpl, answers)
    assert result.failing_items == ["network.bandwidth_mbps"]
    # network weights: bandwidth 2, backup 1, wan 2, firewall 2, wifi 1, diagram 0.5 -> 8.5
    assert result.by_section["network"] == round(100 * (8.5 - 1) / 8.5, 2)
    assert not result.compliant  # a required item below its target


def test_choice_scores_and_optional_shortfall_keeps_compliance(tpl):
    answers = full_answers(tpl)
    answers["equipment.kiosk"]["value"] = False
    answers["backups.restore_tested"]["value"] = False
    result = audit.score(tpl, answers)
    assert result.failing_items == ["equipment.kiosk", "backups.restore_tested"]
    assert result.compliant and 80 <= result.total < 100
    answers["backups.frequency"]["value"] = "weekly"
    assert audit.item_score(tpl, "backups.frequency", answers["backups.frequency"]) == 0.8
    assert not audit.score(tpl, answers).compliant


def test_positive_claim_without_required_photo_scores_zero(tpl):
    answers = full_answers(tpl)
    answers["network.firewall"]["photos"] = []
    assert audit.validate_answer(tpl, "network.firewall", answers["network.firewall"]) == (
        "photo_missing"
    )
    result = audit.score(tpl, answers)
    assert "network.firewall" in result.failing_items
    assert "network.firewall" not in result.missing_required
    # A "no" needs no evidence.
    assert audit.validate_answer(tpl, "network.firewall", {"value": False, "photos": []}) is None


def test_score_is_deterministic(tpl):
    answers = full_answers(tpl)
    answers["security.antimalware_pct"]["value"] = 73
    assert audit.score(tpl, answers) == audit.score(tpl, dict(reversed(answers.items())))


@pytest.mark.parametrize(
    ("item_id", "answer", "reason"),
    [
        ("nope.item", {"value": True}, "unknown_item"),
        ("network.backup_link", "yes", "not_an_answer"),
        ("network.backup_link", {"value": None}, "missing_value"),
        ("network.backup_link", {"value": "yes"}, "wrong_type"),
        ("network.bandwidth_mbps", {"value": True}, "wrong_type"),
        ("network.bandwidth_mbps", {"value": -1}, "out_of_range"),
        ("network.bandwidth_mbps", {"value": float("nan")}, "out_of_range"),
        ("backups.frequency", {"value": "hourly"}, "unknown_option"),
        ("backups.notes", {"value": "   "}, "missing_value"),
        ("backups.notes", {"value": "ok", "note": 3}, "bad_note"),
        ("premises.building_photo", {"value": None, "photos": []}, "missing_value"),
        ("premises.building_photo", {"photos": ["not-a-hash"]}, "bad_photos"),
        ("network.bandwidth_mbps", {"value": 120.5, "note": "đo bằng speedtest"}, None),
        ("premises.building_photo", {"photos": [PHOTO]}, None),
    ],
)
def test_validate_answer(tpl, item_id, answer, reason):
    assert audit.validate_answer(tpl, item_id, answer) == reason


AUDITOR_EDGES = [(R.DRAFT, R.SUBMITTED), (R.CHANGES_REQUESTED, R.SUBMITTED)]
SUPERVISOR_EDGES = [
    (R.SUBMITTED, R.HAS_ISSUES),
    (R.SUBMITTED, R.CHANGES_REQUESTED),
    (R.SUBMITTED, R.APPROVED),
    (R.SUBMITTED, R.REJECTED),
    (R.HAS_ISSUES, R.CHANGES_REQUESTED),
    (R.HAS_ISSUES, R.APPROVED),
    (R.HAS_ISSUES, R.REJECTED),
]


def test_review_states_values():
    assert [s.value for s in R] == [
        "draft",
        "submitted",
        "has_issues",
        "changes_requested",
        "approved",
        "rejected",
    ]


def test_review_transitions_allowed_exactly():
    allowed = {(a, b) for a in R for b in R if audit.can_review_transition(a, b)}
    assert allowed == set(AUDITOR_EDGES + SUPERVISOR_EDGES)
    assert audit.can_review_transition("draft", "submitted")  # plain strings work


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("draft", "approved"),
        ("approved", "draft"),
        ("approved", "changes_requested"),
        ("rejected", "submitted"),
        ("changes_requested", "approved"),
        ("has_issues", "submitted"),
        ("submitted", "draft"),
        ("draft", "draft"),
        ("draft", "bogus"),
    ],
)
def test_review_transitions_refused(a, b):
    assert not audit.can_review_transition(a, b)
    assert audit.who_may(a, b) == set()


def test_who_may():
    for a, b in AUDITOR_EDGES:
        assert audit.who_may(a, b) == {"auditor"}
    for a, b in SUPERVISOR_EDGES:
        assert audit.who_may(a.value, b.value) == {"supervisor", "admin"}
    assert audit.allowed_review_next("submitted", "auditor") == []
    assert audit.allowed_review_next("has_issues", "supervisor") == [
        R.CHANGES_REQUESTED,
        R.APPROVED,
        R.REJECTED,
    ]


def test_answers_may_be_the_shared_pydantic_model(tpl):
    from app.domain.models import AuditAnswer

    answers = {k: AuditAnswer(**v) for k, v in full_answers(tpl).items()}
    assert audit.score(tpl, answers).total == 100.0
    assert audit.validate_answer(tpl, "network.firewall", AuditAnswer(value=True)) == (
        "photo_missing"
    )
