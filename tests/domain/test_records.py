"""Whole records against the domain (`app.domain.records`), the text rule and the JSON bounds."""

from __future__ import annotations

import datetime as dt
import unicodedata

import pytest

from app.domain import audit as A
from app.domain import entities as E
from app.domain.calendar import WorkingCalendar
from app.domain.records import computed_score, expected_appointment, validate_record
from app.domain.status import DossierStatus, event_problem, implied_path, move_problem
from app.domain.text import normalise_text, text_problem

WARD = "00070"
PROCEDURE = "1.000894"
RECEIVED = "2025-11-21T02:00:00+00:00"  # Friday 09:00 in Hanoi


def dossier(**changes) -> dict:
    fields = {
        "code": "000.00.70.H26-251121-0001",
        "procedure_code": PROCEDURE,
        "ward_code": WARD,
        "applicant_name": "Nguyễn Thị Hương",
        "received_at": RECEIVED,
        "status": 2,
        "channel": 1,
    }
    fields["appointment_date"] = expected_appointment(
        RECEIVED, PROCEDURE, WorkingCalendar()
    ).isoformat()
    return {**fields, **changes}


def audit(**changes) -> dict:
    return {
        "ward_code": WARD,
        "template_version": A.TEMPLATE_V1,
        "review_state": "draft",
        "started_at": RECEIVED,
        **changes,
    }


def test_a_whole_dossier_passes():
    assert validate_record(E.DOSSIER, dossier()) == []


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"appointment_date": None}, "required:appointment_date"),
        ({"applicant_name": "   "}, "required:applicant_name"),
        ({"code": None}, "required:code"),
        ({"appointment_date": "2099-01-01"}, "appointment_date_mismatch"),
        ({"procedure_code": "9.999999"}, "unknown_procedure"),
        ({"code": "HS-2025-1"}, "code_format"),
        ({"ward_code": "99999"}, "unknown_ward"),
        ({"status": 9}, "finished_at_required"),
        ({"status": 10, "finished_at": RECEIVED}, "returned_at_required"),
        ({"documents": [{"name": ""}]}, "invalid_record:documents.0"),
        ({"received_at": "20251121"}, "invalid_fields:received_at:format"),
        ({"notes": "a\ud800b"}, "invalid_fields:notes:lone_surrogate"),
    ],
)
def test_a_dossier_breaking_a_rule_gets_its_stable_reason(changes, reason):
    assert validate_record(E.DOSSIER, dossier(**changes))[0] == reason


def test_a_move_to_completion_needs_the_result_a_register_row_does_not():
    before = dossier(status=4)
    done = dossier(status=9, finished_at=RECEIVED)
    assert validate_record(E.DOSSIER, done, before) == ["result_required"]
    assert validate_record(E.DOSSIER, done | {"result": " "}, before) == ["result_required"]
    assert validate_record(E.DOSSIER, done | {"result": "Giấy khai sinh số 12"}, before) == []
    assert validate_record(E.DOSSIER, done) == []  # imported already completed: not a move
    returned = done | {"status": 10, "returned_at": RECEIVED}
    assert validate_record(E.DOSSIER, returned, done) == []  # the result was set on completion


def test_only_a_later_date_on_an_open_dossier_that_keeps_its_status_is_an_apology():
    before = dossier(status=4) | {"appointment_date": "2025-12-10"}
    later = before | {"appointment_date": "2025-12-31"}
    earlier = before | {"appointment_date": "2025-12-05"}
    assert validate_record(E.DOSSIER, later, before) == []
    assert validate_record(E.DOSSIER, earlier, before) == ["appointment_date_fixed"]
    moved = later | {"status": 6}
    assert validate_record(E.DOSSIER, moved, before) == ["appointment_date_fixed"]
    done = dossier(status=9, finished_at=RECEIVED, result="x")
    assert validate_record(E.DOSSIER, done | {"appointment_date": "2025-12-31"}, done) == [
        "appointment_date_fixed"
    ]
    event = {"dossier_id": "d1", "ward_code": WARD, "at": RECEIVED}
    stay = event | {"from_status": 4, "to_status": 4}
    assert validate_record(E.DOSSIER_EVENT, stay | {"appointment_date": "2025-12-31"}) == []
    assert validate_record(E.DOSSIER_EVENT, stay)[0].startswith("event_status_transition")
    closed = event | {"from_status": 9, "to_status": 9, "appointment_date": "2025-12-31"}
    assert validate_record(E.DOSSIER_EVENT, closed)[0].startswith("event_status_transition")


def test_the_appointment_date_follows_the_calendar_it_is_given():
    first = dt.date.fromisoformat(dossier()["appointment_date"])
    off = WorkingCalendar(extra_holidays=[first - dt.timedelta(days=d) for d in range(0, 3)])
    assert validate_record(E.DOSSIER, dossier(), calendar=off) == ["appointment_date_mismatch"]


def test_later_changes_keep_identity_and_renew_the_date_only_with_a_supplement_or_apology():
    before = dossier()
    later = "2026-01-15"
    assert validate_record(E.DOSSIER, {**before, "code": "000.00.70.H26-251121-0002"}, before) == [
        "field_fixed:code"
    ]
    earlier = dt.date.fromisoformat(before["appointment_date"]) - dt.timedelta(days=1)
    assert validate_record(
        E.DOSSIER, {**before, "appointment_date": earlier.isoformat()}, before
    ) == ["appointment_date_fixed"]
    # a later date, status kept: the apology of form 04 (see the test above)
    assert validate_record(E.DOSSIER, {**before, "appointment_date": later}, before) == []
    renewal = {**before, "status": 5, "appointment_date": later}
    assert validate_record(E.DOSSIER, renewal, before) == []
    early = {**before, "status": 5, "appointment_date": "2025-11-01"}
    assert validate_record(E.DOSSIER, early, before) == ["appointment_date_before_receipt"]
    assert validate_record(E.DOSSIER, {**before, "status": 10}, before) == [
        "status_transition:2->10"
    ]


def test_one_status_rule_for_first_statuses_moves_and_history():
    assert implied_path(4) == [DossierStatus.RECEIVED, DossierStatus.IN_PROCESS]
    assert implied_path(3) == [DossierStatus.NEW, DossierStatus.REFUSED]
    assert implied_path(11) is None
    assert all(implied_path(s) for s in DossierStatus)
    assert move_problem(None, 4) is None and move_problem(None, None) == "status_required"
    assert move_problem(2, 4) is None and move_problem(4, 2) == "status_transition"
    assert event_problem(None, 2) is None and event_problem(None, 4) == "status_initial"
    assert event_problem(2, 4) is None and event_problem(2, 10) == "status_transition"
    event = {"dossier_id": "d", "ward_code": WARD, "at": RECEIVED, "to_status": 4}
    assert validate_record(E.DOSSIER_EVENT, event) == ["event_status_initial:None->4"]
    assert validate_record(E.DOSSIER_EVENT, {**event, "from_status": 2}) == []
    assert validate_record(E.DOSSIER, dossier(status=4)) == []


@pytest.mark.parametrize(
    ("item", "value", "reason"),
    [
        ("equipment.digital_signature_pct", 150, "out_of_range"),
        ("equipment.digital_signature_pct", -1, "out_of_range"),
        ("network.bandwidth_mbps", 10**9, "out_of_range"),
        ("equipment.licensed_os", "some-other", "unknown_option"),
        ("premises.ups", "yes", "wrong_type"),
    ],
)
def test_audit_answers_are_checked_against_the_template(item, value, reason):
    record = audit(**{f"answers.{item}": {"value": value}})
    assert validate_record(E.AUDIT, record) == [f"invalid_answer:{item}:{reason}"]
    fine = audit(**{"answers.equipment.digital_signature_pct": {"value": 100}})
    assert validate_record(E.AUDIT, fine) == []


def test_audit_rules_on_template_state_and_editing():
    assert validate_record(E.AUDIT, audit(template_version="1999.9")) == ["unknown_template:1999.9"]
    assert validate_record(E.AUDIT, audit(review_state="approved")) == [
        "review_transition:draft->approved"
    ]
    submitted = audit(review_state="submitted")
    edited = {**submitted, "answers.premises.ups": {"value": True, "photos": []}}
    assert validate_record(E.AUDIT, edited, submitted) == ["audit_not_editable:submitted"]
    assert validate_record(E.AUDIT, audit(position={"lat": "x"})) == ["invalid_record:position.lat"]


def test_the_score_is_the_domains_scoring_of_the_answers():
    assert computed_score(audit()) is None
    answers = {"answers.personnel.it_officer": {"value": True}}
    expected = A.score(A.template(), {"personnel.it_officer": {"value": True}}).total
    assert computed_score(audit(**answers)) == expected > 0


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("a\x00b", "nul_char"),
        ("a\ud800", "lone_surrogate"),
        ("\udfffz", "lone_surrogate"),
        ("bell\x07", "control_char"),
        ("cr\r", "control_char"),
        ("c1\x85", "control_char"),
        ("del\x7f", "control_char"),
        ("tab\tand\nnewline, Tiếng Việt 😀", None),
    ],
)
def test_the_text_rule(text, reason):
    assert text_problem(text) == reason


def test_text_is_stored_nfc_with_newline_line_ends():
    decomposed = unicodedata.normalize("NFD", "Nguyễn Thị Hương")
    assert decomposed != "Nguyễn Thị Hương"
    assert normalise_text(decomposed) == "Nguyễn Thị Hương"
    assert normalise_text("a\r\nb\rc") == "a\nb\nc"
    nested = E.normalise_value({decomposed: [decomposed, 1, None]})
    assert nested == {"Nguyễn Thị Hương": ["Nguyễn Thị Hương", 1, None]}
    assert E.json_problem(E.normalise_value({"e\u0301": 1, "\u00e9": 2})) == "type"


def deep(depth: int):
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (deep(E.MAX_JSON_DEPTH - 1), None),  # MAX_JSON_DEPTH arrays, one in another
        (deep(E.MAX_JSON_DEPTH), "too_deep"),
        (list(range(E.MAX_JSON_ITEMS + 1)), "too_many_items"),
        (["x" * 4000] * 17, "too_large"),
        ("x" * (E.MAX_JSON_STRING + 1), "too_long"),
        ({"k" * (E.MAX_JSON_KEY + 1): 1}, "too_long"),
        ({"a\ud800": 1}, "lone_surrogate"),
        ([2**53], "out_of_range"),
        ([2**53 - 1, -(2**53 - 1)], None),
        ([1e16], "out_of_range"),
        ([float("nan")], "not_finite"),
        ([0.1, -3.5, True, None, "ok"], None),
        ({1: "x"}, "type"),
    ],
)
def test_json_values_are_bounded(value, reason):
    assert E.json_problem(value) == reason


def test_number_fields_are_bounded():
    assert E.validate_fields(E.DOSSIER, {"fee": 2**63}) == ["fee:out_of_range"]
    assert E.validate_fields(E.AUDIT, {"score": 1e300}) == ["score:out_of_range"]
    assert E.validate_fields(E.DOSSIER, {"fee": 2**53 - 1}) == []


def test_digitisation_status_is_0_to_3_on_each_paper_and_on_the_result() -> None:
    from app.domain.models import DocumentReceived
    from app.domain.status import Digitisation

    assert DocumentReceived(name="Tờ khai").digitised is Digitisation.NOT_DIGITISED  # old rows
    assert [DocumentReceived(name="x", digitised=v).digitised for v in (0, 1, 2, 3)] == list(
        Digitisation
    )
    base = _digitised_dossier()
    assert validate_record(E.DOSSIER, base) == []
    for bad in (4, -1, True, "1", 1.5):
        docs = [{"name": "Tờ khai", "originals": 1, "copies": 0, "digitised": bad}]
        assert validate_record(E.DOSSIER, {**base, "documents": docs}), bad
        assert validate_record(E.DOSSIER, {**base, "result_digitised": bad}), bad
    assert validate_record(E.DOSSIER, {**base, "result_digitised": 3}) == []


def _digitised_dossier() -> dict:
    import datetime as dt

    from app.domain import codes
    from app.domain.calendar import WorkingCalendar
    from app.domain.records import expected_appointment

    received = dt.datetime(2026, 12, 7, 2, 0, tzinfo=dt.UTC).isoformat()
    return {
        "code": f"{codes.default_agency_code('00070')}-261207-0001",
        "procedure_code": "1.000894",
        "ward_code": "00070",
        "applicant_name": "Nguyễn Văn An",
        "received_at": received,
        "status": 2,
        "channel": 1,
        "appointment_date": expected_appointment(
            received, "1.000894", WorkingCalendar()
        ).isoformat(),
        "documents": [{"name": "Tờ khai", "originals": 1, "copies": 0, "digitised": 2}],
    }


# `checked`: the change's values the caller already passed through `E.validate_fields`; only
# the very objects checked there are skipped, so the answer is always the whole check's.


def test_checked_values_give_the_answer_of_the_whole_check():
    changes = {"status": 4, "notes": "Đã nhận đủ"}
    before = dossier()
    after = {**before, **changes}
    assert E.validate_fields(E.DOSSIER, changes) == []
    assert validate_record(E.DOSSIER, after, before, checked=changes) == (
        validate_record(E.DOSSIER, after, before)
    )
    # Individually valid values whose merged record breaks a rule: still refused, alike.
    before = dossier(status=4)
    done = {"status": 9, "finished_at": RECEIVED}
    assert E.validate_fields(E.DOSSIER, done) == []
    after = {**before, **done}
    assert validate_record(E.DOSSIER, after, before, checked=done) == ["result_required"]
    assert validate_record(E.DOSSIER, after, before) == ["result_required"]


def test_a_stored_bad_value_is_refused_with_its_reason_though_the_change_was_checked():
    before = dossier() | {"notes": "a\ud800b", "fee": True}  # a hostile stored record
    changes = {"status": 4}
    after = {**before, **changes}
    expected = validate_record(E.DOSSIER, after, before)
    assert expected == ["invalid_fields:notes:lone_surrogate,fee:type"]
    assert validate_record(E.DOSSIER, after, before, checked=changes) == expected


def test_an_equal_value_that_is_not_the_checked_object_is_checked_again():
    # True == 1, but True is no int here: the merge kept the stored True, the change sent 1.
    checked = {"fee": 1}
    after = dossier() | {"fee": True}
    assert validate_record(E.DOSSIER, after, checked=checked) == ["invalid_fields:fee:type"]
    # A value the change did not carry at all (a server-computed one) is checked too.
    assert validate_record(E.AUDIT, audit(score=float("nan")), checked={}) == [
        "invalid_fields:score:not_finite"
    ]
    assert validate_record(E.AUDIT, audit(score=float("nan")), checked={"ward_code": WARD}) == [
        "invalid_fields:score:not_finite"
    ]
