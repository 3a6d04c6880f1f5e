"""Review at the pace of 126 wards, as pure Python: the audits waiting for a decision with what
is missing or failing in each, several approved together, and what changed in a resubmitted
audit since changes were requested.

Decisions go through `store.audits.review` (offline, queued for the next push like any change).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from app.domain import audit as A
from app.views.oversight_models import ward_name

WAITING = (A.ReviewState.SUBMITTED.value, A.ReviewState.HAS_ISSUES.value)


NOT_KNOWN = object()  # the old value of a change when the request did not record one


@dataclass(frozen=True)
class Change:
    item_id: str
    label: str
    value: Any  # the answer's value now
    at: dt.datetime
    old: Any = NOT_KNOWN  # its value when changes were requested (None: unanswered then)
    value_text: str = ""  # both as the form shows them (an option's label, a number's unit)
    old_text: str = ""

    @property
    def old_known(self) -> bool:
        return self.old is not NOT_KNOWN


def changes_since(
    labels: dict[str, str],
    now: dict[str, Any],
    times: dict[str, dt.datetime],
    requested_at: dt.datetime,
    before: dict[str, Any] | None,
) -> list[Change]:
    """What changed in an audit since changes were requested: each answer written after the
    request, with its value then (old → new) when the request recorded the answers; an answer
    written again with the same value is not a change. Sorted by label."""
    found = []
    for item_id, at in times.items():
        if at <= requested_at or item_id not in now:
            continue
        old = before.get(item_id) if before is not None else NOT_KNOWN
        if before is not None and old == now[item_id]:
            continue
        found.append(Change(item_id, labels.get(item_id, item_id), now[item_id], at, old))
    return sorted(found, key=lambda c: c.label)


def _as_shown(change: Change, tpl: A.AuditTemplate) -> Change:
    """The change with its values as the form shows them (`audit_models.answer_text`)."""
    from app.domain.models import AuditAnswer
    from app.views.audit_models import answer_text

    item = next((i for i in tpl.items() if i.id == change.item_id), None)
    if item is None:
        return change

    def shown(value: Any) -> str:
        return answer_text(item, None if value is None else AuditAnswer(value=value))

    old_text = shown(change.old) if change.old_known else ""
    return dataclasses.replace(change, value_text=shown(change.value), old_text=old_text)


@dataclass
class Pending:
    audit_id: str
    ward_code: str
    ward: str
    auditor: str
    score: float
    compliant: bool
    failing: list[tuple[str, str]]  # (item id, label)
    missing: list[tuple[str, str]]
    requested_at: dt.datetime | None = None  # the last "changes requested", when there was one
    changes: list[Change] = field(default_factory=list)

    @property
    def resubmitted(self) -> bool:
        return self.requested_at is not None


@dataclass(frozen=True)
class BulkOutcome:
    done: list[str]
    refused: list[tuple[str, str]]  # (audit id, reason)


class BulkReviewPresenter:
    def __init__(self, store: Any, author: str, role: str) -> None:
        self.store = store
        self.author = author
        self.role = role

    def load(self) -> list[Pending]:
        """Audits waiting for a decision: resubmitted ones first (their changes are what is left
        to read), then those with the most failing items."""
        found = []
        for state in WAITING:
            for audit in self.store.audits.list(review_state=state):
                found.append(self._pending(audit))
        return sorted(
            found,
            key=lambda p: (not p.resubmitted, -len(p.failing) - len(p.missing), p.ward_code),
        )

    def _pending(self, audit: Any) -> Pending:
        tpl = A.template(audit.template_version)
        answers = {k: v.model_dump() for k, v in audit.answers.items()}
        result = A.score(tpl, answers)
        labels = {i.id: i.label for i in tpl.items()}
        pending = Pending(
            audit_id=audit.id,
            ward_code=audit.ward_code,
            ward=ward_name(audit.ward_code),
            auditor=audit.auditor,
            score=result.total,
            compliant=result.compliant,
            failing=[(i, labels.get(i, i)) for i in result.failing_items],
            missing=[(i, labels.get(i, i)) for i in result.missing_required],
        )
        requested = self.store.oversight.changes_requested(audit.id)
        if requested is not None:
            pending.requested_at = requested.at
            now = {i: a.value for i, a in audit.answers.items()}
            times = self.store.oversight.answer_times(audit.id)
            changes = changes_since(labels, now, times, requested.at, requested.before)
            pending.changes = [_as_shown(c, tpl) for c in changes]
        return pending

    def approve_many(self, audit_ids: Iterable[str], comment: str = "") -> BulkOutcome:
        """Approve each selected audit; one refused (moved on meanwhile) does not stop the rest."""
        return self.decide_many(audit_ids, A.ReviewState.APPROVED.value, comment)

    def decide_many(self, audit_ids: Iterable[str], decision: str, comment: str) -> BulkOutcome:
        done, refused = [], []
        for audit_id in audit_ids:
            try:
                self.store.audits.review(
                    audit_id, decision, comment, author=self.author, role=self.role
                )
                done.append(audit_id)
            except Exception as exc:  # noqa: BLE001  shown per audit, the others go on
                refused.append((audit_id, str(exc)))
        return BulkOutcome(done, refused)


def selection_findings(rows: list[Pending], selected: set[str]) -> list[str]:
    """What the supervisor reads before approving the selection: each failing or missing item
    of each selected audit, by ward."""
    lines = []
    for p in rows:
        if p.audit_id not in selected:
            continue
        lines += [f"{p.ward}: × {label}" for _, label in p.failing]
        lines += [f"{p.ward}: ? {label}" for _, label in p.missing]
    return lines
