"""What the auditor's screens show and allow: the wards in scope with their audit state, and the
audit form (section by section, each item by its kind, validation and score from the domain
rules, photos, position, notes, submit). Pure, no Flet.

Everything goes through the store's `AuditService` and `AttachmentService`, so every answer is a
local change queued in the outbox: the form works offline and sync carries it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any

from app.domain import audit as A
from app.domain import reference
from app.domain.models import Audit, AuditAnswer
from app.i18n import language, t
from app.storage import StorageError
from app.views.format import datetime_text
from app.views.position import Position

NOT_STARTED = "not_started"
LISTED_IN_DIALOG = 8  # lines a confirmation lists before "… and N more"
# Where an auditor may write answers; a new audit is started when the last one was rejected.
MISSING_SHOWN = 5  # submit blockers named one by one, the rest counted


# ---------------------------------------------------------------------------------------------
# Roles: which workspaces a user has


@dataclass(frozen=True)
class Workspaces:
    auditor: bool
    reviewer: bool
    review_role: str  # the role a review decision is made as (who_may)


OFFICER = "officer"
# The work a local-only device is for, asked at first run (an enrolled device has its role).
LOCAL_WORKS = (OFFICER, A.AUDITOR, A.SUPERVISOR)


def role_of(settings: Any) -> str | None:
    """The enrolled role; else the work a local-only device was set up for; else None (a
    local store from before the question: the officer's work)."""
    return settings.get("role") or settings.get("local_role") or None


def workspaces(role: str | None) -> Workspaces:
    """Each role has its own workspaces and nothing else: an auditor fills audits, a
    supervisor or admin reviews them, an officer (and a local store set up before the first
    run asked) works on dossiers."""
    if role == A.AUDITOR:
        return Workspaces(auditor=True, reviewer=False, review_role="")
    if role in (A.SUPERVISOR, A.ADMIN):
        return Workspaces(auditor=False, reviewer=True, review_role=role)
    return Workspaces(auditor=False, reviewer=False, review_role="")


AUDITS_ROUTE, REVIEWS_ROUTE, DOSSIERS_ROUTE = "/audits", "/reviews", "/dossiers"
DASHBOARD_ROUTE, RECEIVE_ROUTE, OVERSIGHT_ROUTE = "/dashboard", "/receive", "/oversight"
COMMON_ROUTES = ("/sync", "/settings")


def role_routes(role: str | None) -> tuple[str, ...]:
    """The destinations a role sees, in navigation order; every other route leads home. A
    supervisor gets the figures across wards (oversight), not the counter's own dashboard and
    dossier screens."""
    if role == A.AUDITOR:
        own: tuple[str, ...] = (AUDITS_ROUTE,)
    elif role in (A.SUPERVISOR, A.ADMIN):
        own = (REVIEWS_ROUTE, OVERSIGHT_ROUTE)
    else:
        own = (DASHBOARD_ROUTE, DOSSIERS_ROUTE, RECEIVE_ROUTE)
    return own + COMMON_ROUTES


def route_allowed(role: str | None, route: str) -> bool:
    head = "/" + route.split("?", 1)[0].strip("/").split("/")[0]
    return head in role_routes(role)


def home_route(role: str | None) -> str:
    """Where a session starts after unlock: each role on its own work."""
    return role_routes(role)[0] if role in (A.AUDITOR, A.SUPERVISOR, A.ADMIN) else DOSSIERS_ROUTE


def user_name(store: Any) -> str:
    """The enrolled user name is what the server checks a comment's author against; a
    local-only store uses the name typed at first run. (The role is `CommuneApp.role`.)"""
    settings = store.settings
    return settings.get("user") or settings.get("officer") or ""


# ---------------------------------------------------------------------------------------------
# Small formatting


def state_text(state: str) -> str:
    return t(f"audit.state.{state}")


def score_text(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}".replace(".", ",")


def number_text(value: float | int | None) -> str:
    if value is None:
        return ""
    if float(value).is_integer():
        return str(int(value))
    return f"{value}".replace(".", ",")


def parse_number(text: str) -> float | int | None:
    """A number as typed, with a decimal comma or point; None when it is not one."""
    text = text.strip().replace(" ", "").replace(",", ".")
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value.is_integer() else value


def capped(lines: list[str], limit: int = LISTED_IN_DIALOG) -> list[str]:
    """The first `limit` lines and a count of the rest: a dialog that fits the screen."""
    if len(lines) <= limit:
        return lines
    return [*lines[:limit], t("audit.more_lines", n=len(lines) - limit)]


def label_of(thing: Any) -> str:
    """A template label (section, item, option) in the UI language."""
    return thing.label_en if language() == "en" else thing.label


def ward_name(code: str) -> str:
    try:
        return reference.ward(code).name
    except KeyError:
        return code


def reason_text(reason: str) -> str:
    return t(f"audit.reason.{reason}")


def position_text(position: dict[str, float] | None) -> str:
    if not position:
        return t("audit.no_position")
    text = f"{position['lat']:.6f}, {position['lon']:.6f}"
    if position.get("accuracy_m") is not None:
        text += " " + t("audit.accuracy", m=round(position["accuracy_m"]))
    return text


def parse_position(lat_text: str, lon_text: str) -> tuple[Position | None, str | None]:
    """Typed coordinates in decimal degrees; (position, None) or (None, message). The range
    is the domain's (`position_reason`), the one the server checks."""
    lat, lon = parse_number(lat_text), parse_number(lon_text)
    if lat is None or lon is None:
        return None, t("audit.position.not_number")
    if A.position_reason(lat, lon):
        return None, t("audit.position.out_of_range")
    return Position(float(lat), float(lon)), None


def entry_text(raw: Any) -> str:
    """An entry as the auditor gave it, to show it back."""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return number_text(raw)
    return str(raw)


def range_text(item: A.Item) -> str:
    """The range a number item takes, as the form shows it ("0 - 100 %")."""
    if item.kind != "number":
        return ""
    return t("audit.range", range=range_span(item))


def range_span(item: A.Item) -> str:
    """ "0 - 100 %", or "từ 0 Mbps" when there is no maximum."""
    unit = f" {item.unit}" if item.unit else ""
    if item.maximum is None:
        return t("audit.span_from", low=number_text(item.minimum), unit=unit)
    return t("audit.span", low=number_text(item.minimum), high=number_text(item.maximum), unit=unit)


def refusal_text(item: A.Item, reason: str) -> str:
    """A refused answer's message; a number out of range names the template's range."""
    if reason == "out_of_range" and item.kind == "number":
        return t("audit.reason.outside", range=range_span(item))
    return reason_text(reason)


def latest_by_ward(audits: list[Audit]) -> dict[str, Audit]:
    """The most recently started audit of each ward."""
    latest: dict[str, Audit] = {}
    for a in audits:
        if a.ward_code not in latest or a.started_at > latest[a.ward_code].started_at:
            latest[a.ward_code] = a
    return latest


# ---------------------------------------------------------------------------------------------
# Wards in scope


@dataclass(frozen=True)
class WardRow:
    ward_code: str
    ward_name: str
    audit_id: str | None
    state: str
    state_label: str
    score: str
    sync_state: str


def scope_wards(settings: Any) -> list[str]:
    """The enrolled ward scope; else the store's own ward; else Hanoi's 126 units (a local
    store has no scope to keep to)."""
    wards = list(settings.get("wards") or [])
    if not wards and settings.get("ward_code"):
        wards = [settings.get("ward_code")]
    return wards or [w.code for w in reference.hanoi_wards()]


class AuditWardsPresenter:
    def __init__(self, store: Any) -> None:
        self.store = store

    def load(self, search: str = "") -> list[WardRow]:
        latest = latest_by_ward(self.store.audits.list())
        codes = list(dict.fromkeys(scope_wards(self.store.settings) + sorted(latest)))
        rows = [self._row(code, latest.get(code)) for code in codes]
        if search.strip():
            from app.domain.text import fold

            needle = fold(search)
            rows = [r for r in rows if needle in fold(r.ward_name) or needle in r.ward_code]
        return rows

    @staticmethod
    def _row(code: str, audit: Audit | None) -> WardRow:
        state = audit.review_state if audit else NOT_STARTED
        return WardRow(
            ward_code=code,
            ward_name=ward_name(code),
            audit_id=audit.id if audit else None,
            state=state,
            state_label=state_text(state),
            score=score_text(audit.score if audit else None),
            sync_state=audit.sync_state if audit else "",
        )

    def open(self, ward_code: str, auditor: str) -> str:
        """The ward's audit to show: the latest one, or a new one when there is none or the
        last was rejected."""
        latest = latest_by_ward(self.store.audits.list(ward_code=ward_code)).get(ward_code)
        if latest is not None and latest.review_state not in A.RESTART_STATES:
            return latest.id
        return self.store.audits.create(ward_code, A.LATEST_TEMPLATE, auditor).id


# ---------------------------------------------------------------------------------------------
# The audit form


@dataclass(frozen=True)
class Refused:
    """An entry the form refused: kept on screen, as typed, with the reason, until it is
    corrected or discarded (the saved answer is not touched meanwhile)."""

    text: str
    message: str


@dataclass(frozen=True)
class ItemView:
    id: str
    label: str
    kind: str
    required: bool
    value: Any
    value_text: str  # the answer as text (read-only views, the number field)
    note: str
    photos: int
    photo_required: bool
    unit: str
    target: str
    options: list[tuple[str, str]]
    problem: str  # a validation message, "" when the answer is fine or absent
    score: str  # "0,6" of 1, "" when not scored or unanswered
    refused: bool = False  # value_text is a refused entry, not the saved answer
    photo_ids: tuple[str, ...] = ()  # sha256 of each photo, in the order taken
    range: str = ""  # a number's allowed range
    asks_position: bool = False
    position: str = ""  # the item's own position, where the template asks for one

    @property
    def answered(self) -> bool:
        return self.value is not None or (self.kind == "photo" and self.photos > 0)

    @property
    def takes_photos(self) -> bool:
        return self.kind == "photo" or self.photo_required


@dataclass(frozen=True)
class SectionView:
    id: str
    label: str
    answered: int
    total: int
    score: str

    @property
    def progress(self) -> str:
        return t("audit.progress", answered=self.answered, total=self.total)


@dataclass(frozen=True)
class SubmitSummary:
    """What Submit asks the auditor to confirm: blockers stop it (required items missing,
    refused entries still on screen), warnings are confirmed knowingly."""

    blockers: list[str]
    warnings: list[str]

    @property
    def can_confirm(self) -> bool:
        return not self.blockers


@dataclass
class FormState:
    audit: Audit
    ward_name: str
    state_label: str
    editable: bool
    sections: list[SectionView]
    section_index: int
    items: list[ItemView]
    total: str
    compliant: bool
    can_submit: bool
    blockers: list[str]
    warnings: list[str]
    position: str
    photo_count: int
    comments: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # entries on screen that were not saved

    @property
    def section(self) -> SectionView:
        return self.sections[self.section_index]


def answer_text(item: A.Item, answer: AuditAnswer | None) -> str:
    if answer is None:
        return "—" if item.kind != "photo" else t("audit.photos", n=0)
    value = answer.value
    if item.kind == "photo":
        return t("audit.photos", n=len(answer.photos))
    if value is None:
        return "—"
    if item.kind == "yes_no":
        return t("audit.yes") if value else t("audit.no")
    if item.kind == "number":
        return f"{number_text(value)} {item.unit or ''}".strip()
    if item.kind == "choice":
        option = item.option(value)
        return label_of(option) if option else str(value)
    return str(value)


def item_view(
    tpl: A.AuditTemplate,
    item: A.Item,
    answer: AuditAnswer | None,
    refused: Refused | None = None,
) -> ItemView:
    body = answer.model_dump() if answer else None
    reason = A.validate_answer(tpl, item.id, body) if body else None
    s = A.item_score(tpl, item.id, body) if body else None
    view = ItemView(
        id=item.id,
        label=label_of(item),
        kind=item.kind,
        required=item.required,
        value=answer.value if answer else None,
        value_text=number_text(answer.value if answer else None)
        if item.kind == "number"
        else answer_text(item, answer),
        note=answer.note if answer else "",
        photos=len(answer.photos) if answer else 0,
        photo_required=item.photo_required,
        unit=item.unit or "",
        target=number_text(item.target) if item.target else "",
        options=[(o.id, label_of(o)) for o in item.options],
        problem=refusal_text(item, reason) if reason else "",
        score=score_text(s) if s is not None and item.scored else "",
        photo_ids=tuple(answer.photos) if answer else (),
        range=range_text(item),
        asks_position=item.asks_position,
        position=position_text(answer.position if answer else None) if item.asks_position else "",
    )
    if refused is None:
        return view
    return replace(view, value_text=refused.text, problem=refused.message, refused=True)


def section_views(tpl: A.AuditTemplate, audit: Audit, result: A.AuditScore) -> list[SectionView]:
    views = []
    for section in tpl.sections:
        items = [item_view(tpl, i, audit.answers.get(i.id)) for i in section.items]
        views.append(
            SectionView(
                id=section.id,
                label=label_of(section),
                answered=sum(1 for i in items if i.answered),
                total=len(items),
                score=score_text(result.by_section.get(section.id)),
            )
        )
    return views


def comment_line(comment: dict[str, Any]) -> str:
    at = comment.get("at")
    moment = dt.datetime.fromisoformat(at) if isinstance(at, str) else at
    decision = comment.get("decision")
    head = " · ".join(
        x
        for x in (
            datetime_text(moment),
            comment.get("author") or "",
            state_text(decision) if decision else "",
        )
        if x
    )
    return f"{head}: {comment.get('text') or '—'}"


class AuditFormPresenter:
    def __init__(self, store: Any, audit_id: str) -> None:
        self.store = store
        self.audit_id = audit_id
        self.section_index = 0
        self.refused: dict[str, Refused] = {}  # item id -> the entry refused, kept on screen

    def load(self) -> FormState:
        audit = self.store.audits.get(self.audit_id)
        tpl = A.template(audit.template_version)
        answers = {k: v.model_dump() for k, v in audit.answers.items()}
        result = A.score(tpl, answers)
        self.section_index = max(0, min(self.section_index, len(tpl.sections) - 1))
        section = tpl.sections[self.section_index]
        editable = audit.review_state in {s.value for s in A.EDITABLE_STATES}
        blockers = self._blockers(tpl, audit, result)
        refused = [
            t("audit.refused_line", item=label_of(tpl.item(i)), text=r.text)
            for i, r in self.refused.items()
        ]
        return FormState(
            audit=audit,
            ward_name=ward_name(audit.ward_code),
            state_label=state_text(audit.review_state),
            editable=editable,
            sections=section_views(tpl, audit, result),
            section_index=self.section_index,
            items=[
                item_view(tpl, i, audit.answers.get(i.id), self.refused.get(i.id))
                for i in section.items
            ],
            total=score_text(result.total),
            compliant=result.compliant,
            can_submit=not blockers,
            blockers=blockers,
            warnings=self.warnings(tpl, answers, result),
            position=position_text(audit.position),
            photo_count=sum(len(a.photos) for a in audit.answers.values()),
            comments=[comment_line(c) for c in self.store.audits.comments(audit.id)],
            refused=refused,
        )

    @staticmethod
    def _blockers(tpl: A.AuditTemplate, audit: Audit, result: A.AuditScore) -> list[str]:
        """Why Submit is refused: the review rule, then each required item not answered."""
        if not A.can_review_transition(audit.review_state, A.ReviewState.SUBMITTED):
            return [t("audit.not_submittable", state=state_text(audit.review_state))]
        missing = [label_of(tpl.item(i)) for i in result.missing_required]
        lines = [t("audit.missing", item=name) for name in missing[:MISSING_SHOWN]]
        if len(missing) > MISSING_SHOWN:
            lines.append(t("audit.missing_more", n=len(missing) - MISSING_SHOWN))
        return lines

    @staticmethod
    def warnings(tpl: A.AuditTemplate, answers: dict, result: A.AuditScore) -> list[str]:
        """Why an answered audit is not compliant: evidence missing, then required items
        below their target (the domain's `failing_items`)."""
        photo = [
            t("audit.needs_photo", item=label_of(tpl.item(i)))
            for i in result.failing_items
            if A.validate_answer(tpl, i, answers.get(i)) == "photo_missing"
        ]
        below = [
            t("audit.below_target", item=label_of(tpl.item(i)))
            for i in result.failing_items
            if tpl.item(i).required and A.validate_answer(tpl, i, answers.get(i)) != "photo_missing"
        ]
        return photo + below

    def go_section(self, index: int) -> None:
        self.section_index = index

    def _current(self, item_id: str) -> AuditAnswer:
        audit = self.store.audits.get(self.audit_id)
        return audit.answers.get(item_id) or AuditAnswer()

    def answer(self, item_id: str, raw: Any) -> str | None:
        """Save an item's value as the control gave it (bool, option id, typed text); None when
        saved, else the domain's reason as a message. A refused entry is kept as typed, with
        its message, until it is corrected or discarded; the saved answer stays as it was."""
        audit = self.store.audits.get(self.audit_id)
        item = A.template(audit.template_version).item(item_id)
        current = audit.answers.get(item_id) or AuditAnswer()
        if item.kind == "number" and isinstance(raw, str):
            text = raw.strip()
            if not text and current.value is None:
                self.refused.pop(item_id, None)  # left empty, nothing was there: no change
                return None
            value = parse_number(text) if text else None
            problem = (
                reason_text("missing_value")
                if not text
                else reason_text("wrong_type")
                if value is None
                else None
            )
            if problem:
                self.refused[item_id] = Refused(raw, problem)
                return problem
            raw = value
        problem = self._save(item_id, current.model_copy(update={"value": raw}))
        if problem:
            self.refused[item_id] = Refused(entry_text(raw), problem)
        else:
            self.refused.pop(item_id, None)
        return problem

    def discard_refused(self, item_id: str) -> None:
        """Give up a refused entry: the saved answer shows again."""
        self.refused.pop(item_id, None)

    def note(self, item_id: str, text: str) -> str | None:
        current = self._current(item_id)
        if not A.annotation_allowed(self._item(item_id), current):
            return t("audit.answer_first")
        return self._save(item_id, current.model_copy(update={"note": text.strip()}))

    def add_photo(
        self, item_id: str, data: bytes, filename: str, mime: str, taken_at: dt.datetime | None
    ) -> str | None:
        """Seal and queue the photo (the attachment service), then name it in the answer."""
        audit = self.store.audits.get(self.audit_id)
        current = audit.answers.get(item_id) or AuditAnswer()
        if not A.annotation_allowed(self._item(item_id), current):
            return t("audit.answer_first")
        meta = self.store.attachments.add(
            "audit",
            audit.id,
            audit.ward_code,
            data,
            mime=mime,
            filename=filename,
            taken_at=taken_at,
            position=audit.position,
        )
        photos = [*current.photos, meta.sha256] if meta.sha256 not in current.photos else None
        if photos is None:
            return None
        return self._save(item_id, current.model_copy(update={"photos": photos}))

    def photo(self, sha256: str) -> bytes | None:
        """A photo's bytes for its thumbnail; None when the file is not on this device (a
        pulled audit whose photos were not downloaded)."""
        if not self.store.attachments.has(sha256):
            return None
        return self.store.attachments.read(sha256)

    def remove_photo(self, item_id: str, sha256: str) -> str | None:
        """Take a photo off the answer (the sealed file stays: it may be on its way out)."""
        current = self._current(item_id)
        photos = [p for p in current.photos if p != sha256]
        return self._save(item_id, current.model_copy(update={"photos": photos}))

    def set_item_position(self, item_id: str, position: Position) -> str | None:
        """Where this item was observed, on items whose template asks for it."""
        if not self._item(item_id).asks_position:
            return t("audit.no_item_position")
        current = self._current(item_id)
        return self._save(item_id, current.model_copy(update={"position": position.as_field()}))

    def _item(self, item_id: str) -> A.Item:
        audit = self.store.audits.get(self.audit_id)
        return A.template(audit.template_version).item(item_id)

    def _save(self, item_id: str, answer: AuditAnswer) -> str | None:
        try:
            self.store.audits.answer(self.audit_id, item_id, answer)
        except StorageError as exc:
            reason = getattr(exc, "reason", None)
            return refusal_text(self._item(item_id), reason) if reason else str(exc)
        return None

    def set_position(self, position: Position) -> None:
        self.store.audits.set_fields(self.audit_id, position=position.as_field())

    def set_typed_position(self, lat_text: str, lon_text: str) -> str | None:
        position, problem = parse_position(lat_text, lon_text)
        if position is None:
            return problem
        self.set_position(position)
        return None

    def set_notes(self, text: str) -> None:
        self.store.audits.set_fields(self.audit_id, notes=text.strip())

    def submit_summary(self) -> SubmitSummary:
        """What Submit shows before it asks to confirm."""
        state = self.load()
        return SubmitSummary(
            blockers=capped(state.refused + state.blockers), warnings=capped(state.warnings)
        )

    def submit(self) -> str | None:
        """Submit when the domain allows and no refused entry is left on screen; else the
        first reason why not."""
        summary = self.submit_summary()
        if not summary.can_confirm:
            return summary.blockers[0]
        try:
            self.store.audits.submit(self.audit_id)
        except StorageError as exc:
            return str(exc)
        return None
