"""What the supervisor's screens show and allow: the synced audits with a state filter, one
audit read-only with only the decisions `allowed_review_next` gives the role, and a compliance
summary across wards. Pure, no Flet.

A decision goes through `AuditService.review` (the audit's state and a comment, queued in the
outbox), so it is made offline and reaches the server by the ordinary push.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.domain import audit as A
from app.domain.models import Audit
from app.i18n import t
from app.storage import StorageError
from app.views.audit_models import (
    AuditFormPresenter,
    answer_text,
    capped,
    comment_line,
    label_of,
    latest_by_ward,
    position_text,
    score_text,
    section_views,
    state_text,
    ward_name,
)
from app.views.format import datetime_text

# A draft is the auditor's own until submitted: the review list leaves drafts out.
REVIEWABLE_STATES = tuple(s.value for s in A.ReviewState if s is not A.ReviewState.DRAFT)
# Decisions that ask the auditor (or the record) for a reason.
COMMENT_REQUIRED = frozenset(
    {A.ReviewState.CHANGES_REQUESTED, A.ReviewState.HAS_ISSUES, A.ReviewState.REJECTED}
)


@dataclass(frozen=True)
class ReviewRow:
    audit_id: str
    ward_code: str
    ward_name: str
    state: str
    state_label: str
    score: str
    submitted: str
    auditor: str
    sync_state: str


def review_row(a: Audit) -> ReviewRow:
    return ReviewRow(
        audit_id=a.id,
        ward_code=a.ward_code,
        ward_name=ward_name(a.ward_code),
        state=a.review_state,
        state_label=state_text(a.review_state),
        score=score_text(a.score),
        submitted=datetime_text(a.submitted_at),
        auditor=a.auditor,
        sync_state=a.sync_state,
    )


@dataclass(frozen=True)
class Compliance:
    counts: list[tuple[str, int]]  # (state label, number of wards), every reviewable state
    sections: list[tuple[str, str]]  # (section label, mean score across wards)
    wards: int
    compliant: int


def compliance(audits: list[Audit]) -> Compliance:
    """Over the latest reviewable audit of each ward: wards per state, the mean score of each
    section (by the domain's scoring), and how many are compliant."""
    latest = latest_by_ward([a for a in audits if a.review_state in REVIEWABLE_STATES])
    counts = {state: 0 for state in REVIEWABLE_STATES}
    sums: dict[str, float] = {}
    labels: dict[str, str] = {}
    compliant = 0
    for a in latest.values():
        counts[a.review_state] += 1
        tpl = A.template(a.template_version)
        result = A.score(tpl, {k: v.model_dump() for k, v in a.answers.items()})
        compliant += result.compliant
        for section in tpl.sections:
            labels.setdefault(section.id, label_of(section))
            sums[section.id] = sums.get(section.id, 0.0) + result.by_section[section.id]
    n = len(latest)
    return Compliance(
        counts=[(state_text(s), c) for s, c in counts.items()],
        sections=[(labels[sid], score_text(total / n)) for sid, total in sums.items()],
        wards=n,
        compliant=compliant,
    )


class ReviewListPresenter:
    def __init__(self, store: Any) -> None:
        self.store = store
        self.state: str | None = None  # None: every reviewable state

    @staticmethod
    def state_choices() -> list[tuple[str | None, str]]:
        return [(None, t("review.filter_all"))] + [(s, state_text(s)) for s in REVIEWABLE_STATES]

    def load(self) -> tuple[list[ReviewRow], Compliance]:
        audits = [a for a in self.store.audits.list() if a.review_state in REVIEWABLE_STATES]
        shown = [a for a in audits if self.state is None or a.review_state == self.state]
        shown.sort(key=lambda a: (a.submitted_at is None, a.submitted_at), reverse=True)
        return [review_row(a) for a in shown], compliance(audits)


@dataclass(frozen=True)
class Decision:
    target: str
    label: str
    needs_comment: bool


@dataclass(frozen=True)
class AnswerLine:
    label: str
    answer: str
    note: str
    photos: int
    score: str
    required: bool
    was: str | None = None  # changed since changes were requested: the answer then (old → new)


@dataclass
class ReviewState:
    audit: Audit
    ward_name: str
    state_label: str
    total: str
    compliant: bool
    sections: list[tuple[Any, list[AnswerLine]]]  # (SectionView, lines)
    position: str
    photo_count: int
    facts: list[tuple[str, str]]
    decisions: list[Decision]
    comments: list[str]
    warnings: list[str]  # why the audit is not compliant (evidence, items below target)


class ReviewDetailPresenter:
    def __init__(self, store: Any, audit_id: str, role: str, author: str) -> None:
        self.store = store
        self.audit_id = audit_id
        self.role = role
        self.author = author

    def load(self) -> ReviewState:
        audit = self.store.audits.get(self.audit_id)
        tpl = A.template(audit.template_version)
        answers = {k: v.model_dump() for k, v in audit.answers.items()}
        result = A.score(tpl, answers)
        was = self._was(tpl, audit)
        sections = []
        for view, section in zip(section_views(tpl, audit, result), tpl.sections, strict=True):
            lines = [self._line(tpl, item, audit, was.get(item.id)) for item in section.items]
            sections.append((view, lines))
        return ReviewState(
            audit=audit,
            ward_name=ward_name(audit.ward_code),
            state_label=state_text(audit.review_state),
            total=score_text(result.total),
            compliant=result.compliant,
            sections=sections,
            position=position_text(audit.position),
            photo_count=sum(len(a.photos) for a in audit.answers.values()),
            facts=[
                (t("review.auditor"), audit.auditor or "—"),
                (t("review.submitted"), datetime_text(audit.submitted_at)),
                (t("audit.position"), position_text(audit.position)),
                (t("audit.notes"), audit.notes or "—"),
            ],
            decisions=self.decisions(audit.review_state),
            comments=[comment_line(c) for c in self.store.audits.comments(audit.id)],
            warnings=AuditFormPresenter.warnings(tpl, answers, result),
        )

    def _was(self, tpl: A.AuditTemplate, audit: Audit) -> dict[str, str]:
        """Per item changed since the last change request, its answer then, as text."""
        oversight = getattr(self.store, "oversight", None)
        requested = oversight.changes_requested(audit.id) if oversight else None
        if requested is None or audit.review_state == A.ReviewState.CHANGES_REQUESTED.value:
            return {}  # nothing resubmitted yet
        from app.domain.models import AuditAnswer
        from app.views.bulk_review_models import changes_since

        now = {i: a.value for i, a in audit.answers.items()}
        times = oversight.answer_times(audit.id)
        items = {i.id: i for i in tpl.items()}
        shown = {}
        for change in changes_since({}, now, times, requested.at, requested.before):
            item = items.get(change.item_id)
            if item is None or not change.old_known:
                continue
            old = None if change.old is None else AuditAnswer(value=change.old)
            shown[change.item_id] = answer_text(item, old)
        return shown

    @staticmethod
    def _line(
        tpl: A.AuditTemplate, item: A.Item, audit: Audit, was: str | None = None
    ) -> AnswerLine:
        answer = audit.answers.get(item.id)
        s = A.item_score(tpl, item.id, answer) if answer else None
        return AnswerLine(
            label=label_of(item),
            answer=answer_text(item, answer),
            note=answer.note if answer else "",
            photos=len(answer.photos) if answer else 0,
            score=score_text(s) if s is not None and item.scored else "",
            required=item.required,
            was=was,
        )

    def decisions(self, state: str) -> list[Decision]:
        if not self.role:
            return []
        return [
            Decision(
                target=s.value,
                label=t(f"review.decide.{s.value}"),
                needs_comment=s in COMMENT_REQUIRED,
            )
            for s in A.allowed_review_next(state, self.role)
        ]

    def approval_concerns(self) -> list[str]:
        """What an approval would pass over: required items unanswered, missing evidence,
        required items below target. Shown before "Duyệt" is confirmed; empty when the
        audit is compliant."""
        audit = self.store.audits.get(self.audit_id)
        tpl = A.template(audit.template_version)
        answers = {k: v.model_dump() for k, v in audit.answers.items()}
        result = A.score(tpl, answers)
        missing = [t("audit.missing", item=label_of(tpl.item(i))) for i in result.missing_required]
        concerns = missing + AuditFormPresenter.warnings(tpl, answers, result)
        if not concerns and not result.compliant:
            concerns.append(t("review.below_threshold", total=score_text(result.total)))
        return capped(concerns)

    @staticmethod
    def needs_confirmation(target: str) -> bool:
        return target == A.ReviewState.APPROVED.value

    def decide(self, target: str, comment: str) -> str | None:
        """Write the decision (queued for sync); None when done, else why not."""
        audit = self.store.audits.get(self.audit_id)
        allowed = {d.target: d for d in self.decisions(audit.review_state)}
        if target not in allowed:
            return t("review.not_allowed")
        if allowed[target].needs_comment and not comment.strip():
            return t("review.comment_required")
        try:
            self.store.audits.review(
                self.audit_id, target, comment.strip(), author=self.author, role=self.role
            )
        except StorageError as exc:
            return str(exc)
        return None
