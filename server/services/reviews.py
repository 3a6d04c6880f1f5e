"""Supervisor review of audits. A decision is an ordinary record change (the audit's
`review_state` and a new `audit_comment`), so it reaches the auditor's device through pull."""

from __future__ import annotations

import logging
import uuid

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import select

from app.domain import audit as A
from app.domain import entities as E
from app.domain.hlc import Clock
from app.domain.mutations import FieldValue, Mutation
from server.core.db import read_session, write_session
from server.core.sealing import SealError, open_fields
from server.models import Record, utcnow
from server.schemas import AuditSummary, ReviewResult
from server.scope import Caller
from server.services.sync import Rejected, apply_in

LIST_LIMIT = 2000
log = logging.getLogger("commune.server")


def list_audits(engine: Engine, caller: Caller, state: str | None) -> list[AuditSummary]:
    query = select(Record).where(Record.entity == E.AUDIT).order_by(Record.updated_at.desc())
    if not caller.all_wards:
        query = query.where(Record.ward_code.in_(sorted(caller.wards)))
    with read_session(engine) as session:
        records = session.exec(query.limit(LIST_LIMIT)).all()
    summaries = [s for s in map(_summary, records) if s is not None]
    return [s for s in summaries if state is None or s.review_state == state]


def _summary(record: Record) -> AuditSummary | None:
    try:
        fields = open_fields(record.entity, record.entity_id, record.fields)
    except SealError as exc:  # one damaged row is left out of the list, never fails it
        log.warning("audit left out of the review list: %s", exc)
        return None

    def value(name: str):
        return fields.get(name, {}).get("value")

    return AuditSummary(
        audit_id=record.entity_id,
        ward_code=record.ward_code,
        version=record.version,
        review_state=value("review_state"),
        template_version=value("template_version"),
        submitted_at=value("submitted_at"),
        score=value("score"),
        auditor=value("auditor"),
    )


def decide(
    engine: Engine, caller: Caller, clock: Clock, audit_id: str, decision: str, comment: str
) -> ReviewResult:
    """Move one audit to `decision` and attach the comment, in one transaction."""
    for _ in range(3):
        try:
            return _decide_once(engine, caller, clock, audit_id, decision, comment)
        except Rejected as rejected:
            return ReviewResult(audit_id=audit_id, status="rejected", reason=rejected.reason)
        except SealError:
            return ReviewResult(audit_id=audit_id, status="rejected", reason="record_unreadable")
        except (IntegrityError, OperationalError):
            continue
    return ReviewResult(audit_id=audit_id, status="rejected", reason="busy_retry")


def _decide_once(engine, caller, clock, audit_id, decision, comment) -> ReviewResult:
    if decision not in {s.value for s in A.ReviewState}:
        raise Rejected(f"unknown_decision:{decision}")
    with write_session(engine) as session:
        audit = session.exec(
            select(Record)
            .where(Record.entity == E.AUDIT, Record.entity_id == audit_id)
            .with_for_update()
        ).first()
        if audit is None or not caller.may_access(audit.ward_code, audit.family):
            raise Rejected("audit_not_found")
        previous = audit.fields.get("review_state")
        if previous:
            clock.observe(previous["hlc"])  # the decision must win the merge of that field
        stamp = clock.now()
        change = _mutation(
            caller,
            E.AUDIT,
            audit_id,
            audit.ward_code,
            audit.version,
            {"review_state": decision},
            stamp,
        )
        applied = apply_in(session, caller, change, clock)
        comment_id = str(uuid.uuid4())
        before = {}
        if decision == A.ReviewState.CHANGES_REQUESTED.value:  # old → new on resubmission
            answers = {
                name[len(E.ANSWER_PREFIX) :]: stamp.get("value")
                for name, stamp in applied.record.fields.items()
                if name.startswith(E.ANSWER_PREFIX) and isinstance(stamp, dict)
            }
            before = {A.ANSWERS_BEFORE: A.answers_before(answers)}
        note = _mutation(
            caller,
            E.AUDIT_COMMENT,
            comment_id,
            audit.ward_code,
            0,
            {
                "audit_id": audit_id,
                "ward_code": audit.ward_code,
                "at": utcnow().isoformat(),
                "author": caller.username,
                "decision": decision,
                "text": comment,
                **before,
            },
            stamp,
        )
        apply_in(session, caller, note, clock)
    return ReviewResult(
        audit_id=audit_id,
        status="applied",
        review_state=decision,
        version=applied.record.version,
        comment_id=comment_id,
    )


def _mutation(caller, entity, entity_id, ward_code, base_version, values, stamp) -> Mutation:
    return Mutation(
        mutation_id=str(uuid.uuid4()),
        device_id=caller.device_id,
        entity=entity,
        entity_id=entity_id,
        ward_code=ward_code,
        base_version=base_version,
        fields={k: FieldValue(value=v, hlc=stamp) for k, v in values.items()},
    )
