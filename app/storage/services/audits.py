"""Infrastructure audits filled on site: one record, one field per answered item.

Each answer is its own field (`answers.<item_id>`) with its own clock stamp, so two auditors
filling different sections of one audit offline both keep their work after sync.
"""

from __future__ import annotations

from typing import Any

from app.domain import audit as A
from app.domain import entities as E
from app.domain.models import Audit, AuditAnswer
from app.domain.records import computed_score
from app.storage.db import Database
from app.storage.errors import StorageError
from app.storage.services.dossiers import iso_utc, utc_now
from app.storage.services.records import Record, RecordStore, readable_only
from app.storage.tables import new_id

EDITABLE_FIELDS = frozenset({"notes", "position", "auditor"})


class AuditNotEditable(StorageError):
    def __init__(self, state: str) -> None:
        self.state = state
        super().__init__(state)

    def __str__(self) -> str:
        return (
            f"Phiếu khảo sát ở trạng thái {self.state}, không sửa được / "
            f"The audit is {self.state} and cannot be edited"
        )


class InvalidAnswer(StorageError, ValueError):
    def __init__(self, item_id: str, reason: str) -> None:
        self.item_id, self.reason = item_id, reason
        super().__init__(item_id, reason)

    def __str__(self) -> str:
        return f"Câu trả lời không hợp lệ ({self.item_id}: {self.reason}) / Invalid answer"


class ReviewRefused(StorageError, ValueError):
    def __init__(self, state: str, decision: str) -> None:
        self.state, self.decision = state, decision
        super().__init__(state, decision)

    def __str__(self) -> str:
        return (
            f"Không chuyển được phiếu khảo sát từ {self.state} sang {self.decision} / "
            f"The audit cannot move from {self.state} to {self.decision}"
        )


def to_audit(record: Record) -> Audit:
    values: dict[str, Any] = {}
    answers: dict[str, AuditAnswer] = {}
    for name, value in record.values().items():
        if name.startswith(E.ANSWER_PREFIX):
            if value is not None:
                answers[name[len(E.ANSWER_PREFIX) :]] = AuditAnswer.model_validate(value)
        elif value is not None:
            values[name] = value
    # The score shown is the domain's scoring of the answers held here, the same computation
    # the server stores (`app.domain.records.computed_score`), so it is right before a sync.
    values["score"] = computed_score(record.values())
    return Audit(
        id=record.entity_id,
        **values,
        answers=answers,
        version=record.version,
        sync_state=record.sync_state,
        sync_reason=record.sync_reason,
    )


def _answers(record: Record) -> dict[str, dict]:
    return {
        name[len(E.ANSWER_PREFIX) :]: value
        for name, value in record.values().items()
        if name.startswith(E.ANSWER_PREFIX) and value is not None
    }


class AuditService:
    def __init__(self, db: Database, records: RecordStore) -> None:
        self._db = db
        self._records = records

    def create(self, ward_code: str, template_version: str, auditor: str) -> Audit:
        A.template(template_version)  # KeyError for an unknown template
        fields = {
            "ward_code": ward_code,
            "template_version": template_version,
            "review_state": A.ReviewState.DRAFT.value,
            "auditor": auditor,
            "started_at": iso_utc(utc_now()),
        }
        with self._db.write() as conn:
            record = self._records.write_local(conn, E.AUDIT, new_id(), ward_code, fields)
        return to_audit(record)

    def answer(self, audit_id: str, item_id: str, answer: AuditAnswer) -> Audit:
        with self._db.write() as conn:
            record = self._editable(conn, audit_id)
            tpl = A.template(record.value("template_version"))
            body = answer.model_dump()
            reason = A.validate_answer(tpl, item_id, body)
            # Evidence may be attached later; a photo item may lose its last photo (or get its
            # position first): scoring counts it unanswered, as the server's draft check does.
            emptied_photo_item = reason == "missing_value" and tpl.item(item_id).kind == "photo"
            if reason and reason != "photo_missing" and not emptied_photo_item:
                raise InvalidAnswer(item_id, reason)
            # No score: the server computes it from the merged answers (a device's is never
            # trusted); `to_audit` shows the domain's score of the answers held here.
            changes = {f"{E.ANSWER_PREFIX}{item_id}": body}
            record = self._records.write_local(
                conn, E.AUDIT, audit_id, record.ward_code, changes, record
            )
        return to_audit(record)

    def set_fields(self, audit_id: str, **fields: Any) -> Audit:
        unknown = set(fields) - EDITABLE_FIELDS
        if unknown:
            raise ValueError(f"audit fields not editable here: {sorted(unknown)}")
        with self._db.write() as conn:
            record = self._editable(conn, audit_id)
            record = self._records.write_local(
                conn, E.AUDIT, audit_id, record.ward_code, fields, record
            )
        return to_audit(record)

    def submit(self, audit_id: str) -> Audit:
        with self._db.write() as conn:
            record = self._records.get(conn, E.AUDIT, audit_id)
            state = record.value("review_state")
            if not A.can_review_transition(state, A.ReviewState.SUBMITTED):
                raise AuditNotEditable(state)
            changes = {
                "review_state": A.ReviewState.SUBMITTED.value,
                "submitted_at": iso_utc(utc_now()),
            }
            record = self._records.write_local(
                conn, E.AUDIT, audit_id, record.ward_code, changes, record
            )
        return to_audit(record)

    def review(
        self, audit_id: str, decision: str, comment: str, *, author: str, role: str
    ) -> Audit:
        """A supervisor's decision, written offline like any change: the audit's
        `review_state` and a new `audit_comment` (author, decision, text), in one transaction,
        both queued. The server's push check applies the same rule (`who_may`) and accepts a
        comment only from its own author, so `author` must be the enrolled user name."""
        with self._db.write() as conn:
            record = self._records.get(conn, E.AUDIT, audit_id)
            state = record.value("review_state") or A.ReviewState.DRAFT.value
            if decision not in A.allowed_review_next(state, role):
                raise ReviewRefused(state, decision)
            comment_values = {
                "audit_id": audit_id,
                "ward_code": record.ward_code,
                "at": iso_utc(utc_now()),
                "author": author,
                "decision": decision,
                "text": comment,
            }
            if decision == A.ReviewState.CHANGES_REQUESTED.value:
                comment_values[A.ANSWERS_BEFORE] = A.answers_before(_answers(record))
            self._records.write_local_many(
                conn,
                [
                    (E.AUDIT, audit_id, record.ward_code, {"review_state": decision}, record),
                    (
                        E.AUDIT_COMMENT,
                        new_id(),
                        record.ward_code,
                        comment_values,
                        None,
                    ),
                ],
            )
            record = self._records.get(conn, E.AUDIT, audit_id)
        return to_audit(record)

    def comments(self, audit_id: str) -> list[dict[str, Any]]:
        """The review comments on an audit, oldest first (decision, author, at, text)."""
        with self._db.read() as conn:
            records = self._records.select_each(
                conn,
                "WHERE parent_id = ? AND entity = ? ORDER BY received_at, id",
                (audit_id, E.AUDIT_COMMENT),
            )
        return readable_only(records, Record.values)

    def get(self, audit_id: str) -> Audit:
        with self._db.read() as conn:
            return to_audit(self._records.get(conn, E.AUDIT, audit_id))

    def list(self, ward_code: str | None = None, review_state: str | None = None) -> list[Audit]:
        where, params = ["entity = ?"], [E.AUDIT]
        if ward_code:
            where.append("ward_code = ?")
            params.append(ward_code)
        if review_state:
            where.append("state = ?")
            params.append(str(review_state))
        with self._db.read() as conn:
            records = self._records.select_each(
                conn, f"WHERE {' AND '.join(where)} ORDER BY received_at DESC, id", params
            )
        return readable_only(records, to_audit)

    def _editable(self, conn, audit_id: str) -> Record:
        record = self._records.get(conn, E.AUDIT, audit_id)
        state = record.value("review_state")
        if state not in {s.value for s in A.EDITABLE_STATES}:
            raise AuditNotEditable(state)
        return record


def _answers(record: Record) -> dict[str, Any]:
    """An audit record's answers by item id (their stored dicts)."""
    return {
        name[len(E.ANSWER_PREFIX) :]: record.value(name)
        for name in record.fields
        if name.startswith(E.ANSWER_PREFIX)
    }
