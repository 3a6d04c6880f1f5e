"""Whole records checked against the domain: one rule for the device and the server.

`validate_record(entity, after, before)` judges a record as it will be after a change (`after`,
every field's value) given what it was (`before`, None for a new record) and answers a list of
stable reason codes, empty when the record may be stored. The device runs it before it queues a
change (so it never queues what the server refuses); the server runs it on the merged record
before it stores anything. docs/security.md ("Records checked against the domain") lists the
codes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from app.domain import audit as A
from app.domain import codes, reference
from app.domain import entities as E
from app.domain import status as S
from app.domain.calendar import WorkingCalendar, counted_from, vn_date
from app.domain.catalogue import Catalogue
from app.domain.readable import read_model

# Fields a record cannot be stored without (None or blank text counts as missing).
REQUIRED: dict[str, tuple[str, ...]] = {
    E.DOSSIER: (
        "code",
        "procedure_code",
        "ward_code",
        "applicant_name",
        "received_at",
        "appointment_date",
        "status",
        "channel",
    ),
    E.DOSSIER_EVENT: ("dossier_id", "ward_code", "at", "to_status"),
    E.AUDIT: ("ward_code", "template_version", "review_state", "started_at"),
    E.AUDIT_COMMENT: ("audit_id", "ward_code", "at", "author"),
    E.ATTACHMENT: ("owner_entity", "owner_id", "ward_code", "sha256", "size", "mime"),
    E.AUDIT_ACTION: ("audit_id", "ward_code", "item_id", "owner", "due_date", "state"),
    E.CONFLICT: (),
}
# Fields fixed once a record exists: what identifies it, or what other values derive from.
FIXED: dict[str, tuple[str, ...]] = {
    E.DOSSIER: ("code", "procedure_code", "ward_code", "received_at"),
    E.DOSSIER_EVENT: ("dossier_id", "ward_code", "from_status", "to_status"),
    E.AUDIT: ("ward_code", "template_version"),
    E.AUDIT_COMMENT: ("audit_id", "ward_code"),
    E.ATTACHMENT: ("owner_entity", "owner_id", "ward_code", "sha256", "size"),
    E.AUDIT_ACTION: ("audit_id", "ward_code", "item_id"),
    E.CONFLICT: (),
}
# The model each entity is read back into on every device: a record that does not fit it would
# break every list and export of the ward.
_MODELLED = frozenset({E.DOSSIER, E.DOSSIER_EVENT, E.AUDIT, E.ATTACHMENT})
# Fields the server computes; a value sent by a device is never stored as it came.
SERVER_COMPUTED: dict[str, frozenset[str]] = {E.AUDIT: frozenset({"score"})}


@dataclass(frozen=True)
class Honoured:
    """The reference data a check honours: the catalogues and calendars in force, newest
    first, then older versions still honoured. A device passes only its own (one each); the
    server passes every version it published, so a dossier a device received under the
    catalogue and calendar it had (offline, before the new version reached it) is accepted:
    its procedure known in some version, its appointment date the one some version gives."""

    catalogues: tuple[Catalogue, ...]
    calendars: tuple[WorkingCalendar, ...]

    def knows(self, procedure_code: str) -> bool:
        return any(c.get(procedure_code) is not None for c in self.catalogues)

    def appointments(self, received_at: str, procedure_code: str) -> set[dt.date]:
        days = {
            p.processing_days
            for c in self.catalogues
            if (p := c.get(procedure_code)) is not None
        }
        received = dt.datetime.fromisoformat(received_at)
        return {
            cal.add_working_days(*counted_from(received, d)) for d in days for cal in self.calendars
        }


def honoured(
    calendar: WorkingCalendar | None = None,
    catalogues: Sequence[Catalogue] | None = None,
    calendars: Sequence[WorkingCalendar] | None = None,
) -> Honoured:
    chosen = tuple(calendars) if calendars else (calendar or WorkingCalendar(),)
    return Honoured(tuple(catalogues) if catalogues else (reference.catalogue(),), chosen)


def validate_record(
    entity: str,
    after: dict[str, Any],
    before: dict[str, Any] | None = None,
    *,
    calendar: WorkingCalendar | None = None,
    catalogues: Sequence[Catalogue] | None = None,
    calendars: Sequence[WorkingCalendar] | None = None,
    checked: Mapping[str, Any] | None = None,
) -> list[str]:
    """Reason codes why the record `after` may not be stored (see the module docstring).

    `catalogues`/`calendars` (newest first) are what the server honours (`Honoured`); without
    them the catalogue in force (`reference.catalogue()`) and `calendar` are used.

    `checked`: the change's own values, which the caller has just passed through
    `E.validate_fields` (device and server both check a change before the record it makes). A
    field of `after` that holds the very object checked there is not checked again; every
    other field is (one the merge kept from the stored record, a value the server computed),
    so the answer is the one a check of the whole record gives (`tests/domain`)."""
    if entity not in E.ENTITIES:
        return ["unknown_entity"]
    shape = E.validate_fields(entity, _unchecked(after, checked))
    if shape:
        return ["invalid_fields:" + ",".join(shape)]
    problems = [f"required:{name}" for name in REQUIRED[entity] if _blank(after.get(name))]
    if before is not None:
        problems += [
            f"field_fixed:{name}"
            for name in FIXED[entity]
            if before.get(name) is not None and after.get(name) != before.get(name)
        ]
    ward = after.get("ward_code")
    if ward is not None and not reference.is_ward_code(ward):
        problems.append("unknown_ward")
    if problems:
        return problems
    check = _CHECKS.get(entity)
    if check is not None:
        problems += check(after, before, honoured(calendar, catalogues, calendars))
    if not problems and entity in _MODELLED:
        problems += _model_problems(entity, after)
    return problems


def _unchecked(after: dict[str, Any], checked: Mapping[str, Any] | None) -> dict[str, Any]:
    """The fields of `after` not already checked: identity, not equality, decides (True == 1,
    and a value the merge kept from the stored record is another object than the change's)."""
    if not checked:
        return after
    missing = object()
    return {k: v for k, v in after.items() if checked.get(k, missing) is not v}


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


# ---------------------------------------------------------------------------------------------
# Dossiers and their history


def expected_appointment(
    received_at: str,
    procedure_code: str,
    calendar: WorkingCalendar,
    catalogue: Catalogue | None = None,
) -> dt.date:
    """The appointment date of a dossier: its procedure's processing days (in `catalogue`,
    else the one in force), in working days of `calendar`, after the day of receipt in Vietnam
    (a same-day procedure received from 15:00 on: the next working day,
    `app.domain.calendar.counted_from`)."""
    days = (catalogue or reference.catalogue()).procedure(procedure_code).processing_days
    return calendar.add_working_days(*counted_from(dt.datetime.fromisoformat(received_at), days))


def _dossier(after: dict, before: dict | None, calendar: Honoured) -> list[str]:
    if not codes.CODE_RE.match(after["code"]):
        return ["code_format"]
    # Checked when the dossier is first stored: its procedure is fixed afterwards, and one a
    # later catalogue dropped must not stop its moves to the result.
    if before is None and not calendar.knows(after["procedure_code"]):
        return ["unknown_procedure"]
    was = before.get("status") if before else None
    status_reason = S.move_problem(was, after["status"])
    if status_reason:
        moved = f"{was}->{after['status']}" if was is not None else str(after["status"])
        return [f"{status_reason}:{moved}"]
    problems = _appointment_problems(after, before, calendar)
    if after["status"] in S.FINISHED and _blank(after.get("finished_at")):
        problems.append("finished_at_required")
    if after["status"] == S.DossierStatus.RETURNED and _blank(after.get("returned_at")):
        problems.append("returned_at_required")
    if _completes(was, after["status"]) and _blank(after.get("result")):
        problems.append("result_required")
    return problems


def _completes(was: int | None, status: int) -> bool:
    """A move to completion (status 9) needs the result handed back (decision number,
    certificate...). A dossier first stored already finished (a register imported from paper,
    which never held one) is not a move, so it may lack it."""
    return was is not None and was != S.DossierStatus.COMPLETED and (
        status == S.DossierStatus.COMPLETED
    )


def _appointment_problems(after: dict, before: dict | None, calendar: Honoured) -> list:
    """A dossier is first stored with the calendar's appointment date (the device sends each
    status move as its own mutation, never folded into the creation). The date changes only
    with a move into SUPPLEMENT_REQUESTED, where the officer gives a renewed date, which must
    fall after the day of receipt."""
    date = dt.date.fromisoformat(after["appointment_date"])
    previous = before.get("appointment_date") if before else None
    if previous is None:
        expected = calendar.appointments(after["received_at"], after["procedure_code"])
        return [] if date in expected else ["appointment_date_mismatch"]
    if after["appointment_date"] == previous:
        return []
    renewal = (
        after["status"] == S.DossierStatus.SUPPLEMENT_REQUESTED
        and before.get("status") != S.DossierStatus.SUPPLEMENT_REQUESTED
    )
    if not renewal and not _rescheduled(after, before, previous):
        return ["appointment_date_fixed"]
    received = vn_date(dt.datetime.fromisoformat(after["received_at"]))
    return [] if date > received else ["appointment_date_before_receipt"]


def _rescheduled(after: dict, before: dict, previous: str) -> bool:
    """An open dossier that stays in its status may get a LATER appointment date: the
    apology of form 04 ("xin lỗi và hẹn lại ngày trả kết quả"), recorded by a history event
    that keeps the status (see `_event`)."""
    stays = after["status"] == before.get("status") and S.is_open(after["status"])
    return stays and after["appointment_date"] > previous


def _event(after: dict, before: dict | None, calendar: Honoured) -> list[str]:
    was, status = after.get("from_status"), after["to_status"]
    if was == status and S.is_open(status) and not _blank(after.get("appointment_date")):
        return []  # a new appointment date with an apology (form 04): the status stays
    reason = S.event_problem(was, status)
    if reason:
        return [f"event_{reason}:{after.get('from_status')}->{after['to_status']}"]
    return []


# ---------------------------------------------------------------------------------------------
# Audits


def answers_of(fields: dict[str, Any]) -> dict[str, Any]:
    """Item id -> answer of an audit's fields (emptied answers left out)."""
    return {
        name[len(E.ANSWER_PREFIX) :]: value
        for name, value in fields.items()
        if name.startswith(E.ANSWER_PREFIX) and value is not None
    }


def computed_score(fields: dict[str, Any]) -> float | None:
    """The audit's total score by the domain's scoring; None before any answer or without a
    known template."""
    version = fields.get("template_version")
    answers = answers_of(fields)
    if version not in A.TEMPLATES or not answers:
        return None
    return A.score(A.TEMPLATES[version], answers).total


# A draft may hold an answer whose photo is still to come, or an answer emptied or not yet
# given (a position recorded first, the last photo removed): scoring gives it 0, and an audit is
# submitted only when nothing required is missing.
_DRAFT_REASONS = frozenset({"photo_missing", "missing_value"})


def _audit(after: dict, before: dict | None, calendar: Honoured) -> list[str]:
    version = after["template_version"]
    if version not in A.TEMPLATES:
        return [f"unknown_template:{version}"]
    state = (before or {}).get("review_state") or A.ReviewState.DRAFT.value
    target = after["review_state"]
    if target != state and not A.can_review_transition(state, target):
        return [f"review_transition:{state}->{target}"]
    changed = [
        n
        for n, v in after.items()
        if n.startswith(E.ANSWER_PREFIX) and v != (before or {}).get(n)
    ]
    if changed and state not in A.EDITABLE_STATES:
        return [f"audit_not_editable:{state}"]
    tpl = A.TEMPLATES[version]
    for item_id, answer in answers_of(after).items():
        reason = A.validate_answer(tpl, item_id, answer)
        if reason and reason not in _DRAFT_REASONS:
            return [f"invalid_answer:{item_id}:{reason}"]
    return []


_CHECKS = {E.DOSSIER: _dossier, E.DOSSIER_EVENT: _event, E.AUDIT: _audit}


# ---------------------------------------------------------------------------------------------
# The models devices read records into


def _model_problems(entity: str, after: dict[str, Any]) -> list[str]:
    try:
        read_model(entity, after)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"][:2]) or "record"
        return [f"invalid_record:{where}"]
    except (TypeError, ValueError, KeyError):  # e.g. a field name colliding with an argument
        return ["invalid_record"]
    return []
