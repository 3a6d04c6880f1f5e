"""What the dossier screens show and allow: list, intake form, detail, dashboard. Pure, no Flet.

They talk to a `DossierService` (the contract in app/storage) and the domain rules; the Flet views
only render these objects and forward the user's actions to them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from app.domain import reference
from app.domain.calendar import WorkingCalendar, counted_from, vn_date
from app.domain.forms import FormNotice, notices_of
from app.domain.models import (
    DocumentReceived,
    Dossier,
    OpenDuplicate,
    Procedure,
    ReceiveDossier,
    UnreadableRecord,
    WardDuplicate,
)
from app.domain.records import expected_appointment
from app.domain.status import Channel, Digitisation, DossierStatus, allowed_next, is_open
from app.domain.text import digits
from app.domain.timeliness import Timeliness
from app.i18n import catalogue, has, t
from app.storage import DossierQuery
from app.views.errors import error_text
from app.views.format import (
    channel_text,
    date_text,
    datetime_text,
    parse_date,
    status_text,
    timeliness_text,
)

PAGE_SIZE = 50
OPEN = "open"  # the list's default status filter: every dossier still being worked on
OPEN_STATUSES = tuple(int(s) for s in DossierStatus if is_open(s))


def procedure_name(code: str) -> str:
    try:
        return reference.procedure(code).name
    except KeyError:
        return code


# ---------------------------------------------------------------------------------------------
# List


def digitisation_choices() -> list[tuple[int, str]]:
    """The four digitisation statuses, for a paper at intake and for the result."""
    return [(int(d), t(f"digitised.{int(d)}")) for d in Digitisation]


def digitisation_text(value: int | None) -> str:
    return "" if value is None else t(f"digitised.{int(value)}")


# (procedure code, ID number) -> open dossiers the server found, or None: not checked.
WardCheck = Callable[[str, str], list[WardDuplicate] | None]


@dataclass
class ListFilters:
    search: str = ""
    status: int | str | None = OPEN  # a DossierStatus, OPEN, or None for every status
    overdue: bool = False
    due_this_week: bool = False
    procedure_code: str | None = None

    def open_statuses(self) -> tuple[int, ...] | None:
        """The statuses to ask for one by one when only open dossiers are wanted; None when one
        query does it (a single status, every status, or a chip that implies open)."""
        if self.status == OPEN and not (self.overdue or self.due_this_week):
            return OPEN_STATUSES
        return None

    def query_args(self, today: dt.date) -> dict[str, Any]:
        due_days = 6 - today.weekday() if self.due_this_week else None  # through Sunday
        return {
            "search": self.search.strip(),
            "status": self.status if isinstance(self.status, int) else None,
            "overdue": self.overdue,
            "due_within_days": due_days,
            "procedure_code": self.procedure_code,
            "today": today,
        }


@dataclass(frozen=True)
class DossierRow:
    id: str
    code: str
    applicant: str
    procedure: str
    appointment: str
    status: str
    overdue: bool
    timeliness: str
    sync_state: str


def dossier_row(d: Dossier, today: dt.date) -> DossierRow:
    kind = d.timeliness(today)
    return DossierRow(
        id=d.id,
        code=d.code,
        applicant=d.applicant_name,
        procedure=procedure_name(d.procedure_code),
        appointment=date_text(d.appointment_date),
        status=status_text(d.status),
        overdue=kind is Timeliness.OVERDUE,
        timeliness=timeliness_text(kind),
        sync_state=d.sync_state,
    )


@dataclass(frozen=True)
class UnreadableRow:
    """One line for a dossier this device cannot show (kept aside; see app.domain.readable)."""

    id: str
    title: str  # "Hồ sơ không đọc được"
    detail: str  # its code (or id) and why


def unreadable_row(record: UnreadableRecord) -> UnreadableRow:
    reason = t("unreadable.tampered") if record.reason == "tampered" else record.reason
    return UnreadableRow(
        id=record.id,
        title=t("unreadable.dossier"),
        detail=f"{record.code or record.id} · {t('unreadable.hint', reason=reason)}",
    )


@dataclass
class ListState:
    rows: list[DossierRow]
    total: int
    shown: int
    unreadable: list[UnreadableRow] = field(default_factory=list)

    @property
    def has_more(self) -> bool:
        return self.shown < self.total

    @property
    def summary(self) -> str:
        return t("list.count", shown=self.shown, total=self.total)


@dataclass
class RegisterExport:
    file_name: str
    data: bytes
    count: int  # dossiers written (a row a device cannot read is written marked, not counted)
    kept_aside: int


def register_export(store: Any, today: dt.date) -> RegisterExport:
    """The register of received dossiers (form 06) of everything in this store, as XLSX
    bytes for the app to hand over (save dialog or download)."""
    import io

    from app.reports.counter_forms import agency_name, write_register_xlsx

    rows = list(store.dossiers.everything())
    unreadable = sum(isinstance(r, UnreadableRecord) for r in rows)
    out = io.BytesIO()
    written = write_register_xlsx(rows, out, agency_name(store.settings.get("ward_code")))
    name = f"so-theo-doi-ho-so-{today:%Y%m%d}.xlsx"
    return RegisterExport(name, out.getvalue(), written - unreadable, unreadable)


class DossierListPresenter:
    def __init__(self, dossiers: Any, today: Callable[[], dt.date]) -> None:
        self.dossiers = dossiers
        self.today = today
        self.filters = ListFilters()
        self.limit = PAGE_SIZE

    def load(self, more: bool = False) -> ListState:
        """Sorted by appointment date. By default only open dossiers (the officer's work queue,
        the overdue ones first since their dates are past); finished ones through the status
        filter. The store filters one status at a time, so "open" merges one query per open
        status, each already in date order."""
        self.limit = self.limit + PAGE_SIZE if more else PAGE_SIZE
        today = self.today()
        args = self.filters.query_args(today)
        statuses = self.filters.open_statuses()
        kept_aside: dict[str, UnreadableRecord] = {}  # each query's first page brings them all
        if statuses is None:
            page = self.dossiers.list(DossierQuery(**args), offset=0, limit=self.limit)
            items, total = list(page.items), page.total
            kept_aside.update((u.id, u) for u in getattr(page, "unreadable", []))
        else:
            items, total = [], 0
            for status in statuses:
                query = DossierQuery(**{**args, "status": status})
                page = self.dossiers.list(query, offset=0, limit=self.limit)
                items.extend(page.items)
                total += page.total
                kept_aside.update((u.id, u) for u in getattr(page, "unreadable", []))
            items = sorted(items, key=lambda d: (d.appointment_date, d.id))[: self.limit]
        rows = [dossier_row(d, today) for d in items]
        unreadable = [unreadable_row(u) for u in kept_aside.values()]
        return ListState(rows=rows, total=total, shown=len(rows), unreadable=unreadable)

    @staticmethod
    def status_choices() -> list[tuple[int | str | None, str]]:
        return [(OPEN, t("filter.open")), (None, t("filter.all_statuses"))] + [
            (int(s), status_text(s)) for s in DossierStatus
        ]

    @staticmethod
    def procedure_choices() -> list[tuple[str | None, str]]:
        return [(None, t("filter.all_procedures"))] + [
            (p.code, f"{p.code} · {p.name}") for p in reference.procedures()
        ]


# ---------------------------------------------------------------------------------------------
# Intake ("Tiếp nhận hồ sơ")


@dataclass
class DocumentLine:
    name: str
    required_originals: int
    required_copies: int
    received: bool = True
    originals: int = 0
    copies: int = 0
    required: bool = True
    condition: str = ""  # when a conditional paper is needed ("nếu nộp thay ...")
    digitised: Digitisation = Digitisation.NOT_DIGITISED  # set per paper at the counter

    def hint(self) -> str:
        """Under a conditional paper's name: only when its case applies."""
        return "" if self.required else t("receive.conditional", condition=self.condition)


@dataclass
class ReceiveForm:
    """The one-stop counter form; `submit` turns it into a `ReceiveDossier`."""

    procedure: Procedure | None = None
    applicant_name: str = ""
    applicant_id_number: str = ""
    applicant_phone: str = ""
    applicant_address: str = ""
    channel: Channel = Channel.IN_PERSON
    notes: str = ""
    documents: list[DocumentLine] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    # Open dossiers of this procedure for this ID number, found at the last submit: the form
    # warns and saves only when the officer chooses to go on (`submit(..., go_on=True)`).
    duplicates: list[OpenDuplicate] = field(default_factory=list)
    # The same, found by the server in the officer's wards (an enrolled device, online), and
    # whether that check could not be made (then only the device's own dossiers were checked).
    ward_duplicates: list[WardDuplicate] = field(default_factory=list)
    ward_unchecked: bool = False

    @staticmethod
    def search(text: str, limit: int = 12) -> list[Procedure]:
        if not text.strip():
            return reference.procedures()[:limit]
        return reference.search_procedures(text, limit=limit)

    def choose(self, code: str) -> None:
        self.procedure = reference.procedure(code)
        # Only the papers every case needs start ticked: a conditional one is ticked by the
        # officer when its case applies, so the slip never lists a paper not handed over.
        self.documents = [
            DocumentLine(
                d.name,
                d.originals,
                d.copies,
                d.required,
                d.originals,
                d.copies,
                required=d.required,
                condition=d.condition,
            )
            for d in self.procedure.required_documents
        ]
        self.errors.pop("procedure", None)

    def fee_lines(self) -> list[str]:
        """What the counter tells the citizen to pay, as the slip prints it: the catalogue's
        amount, then its note (exemptions, amounts set by the province)."""
        if self.procedure is None:
            return []
        from app.reports.slip import fee_text

        lines = [t("receive.fee", amount=fee_text(self.procedure.fee))]
        return lines + ([self.procedure.fee_note] if self.procedure.fee_note else [])

    def appointment(
        self, received: dt.date | dt.datetime, calendar: WorkingCalendar | None = None
    ) -> dt.date:
        """The promised return date: receipt plus the procedure's working days (given the
        time, a same-day procedure after 15:00 is the next working day, as the service)."""
        if self.procedure is None:
            return vn_date(received) if isinstance(received, dt.datetime) else received
        days = self.procedure.processing_days
        if isinstance(received, dt.datetime):
            received, days = counted_from(received, days)
        return (calendar or WorkingCalendar()).add_working_days(received, days)

    def validate(self) -> bool:
        self.errors = {}
        if self.procedure is None:
            self.errors["procedure"] = t("receive.error.procedure")
        if not self.applicant_name.strip():
            self.errors["applicant_name"] = t("receive.error.name")
        id_number = self.applicant_id_number.strip()
        if id_number and not (id_number.isdigit() and len(id_number) in (9, 12)):
            self.errors["applicant_id_number"] = t("receive.error.id_number")
        phone = self.applicant_phone.strip().replace(" ", "")
        if phone and not (phone.lstrip("+").isdigit() and 9 <= len(phone) <= 15):
            self.errors["applicant_phone"] = t("receive.error.phone")
        for line in self.documents:
            if line.received and line.originals + line.copies == 0:
                self.errors["documents"] = t("receive.error.counts", name=line.name)
        return not self.errors

    def duplicate_warning(self) -> str:
        """What the counter shows: each open dossier's code and the day it was received."""
        return t("receive.duplicate", dossiers=self._duplicates_text())

    def _duplicates_text(self) -> str:
        days = {d.code: vn_date(d.received_at) for d in self.duplicates}
        for found in self.ward_duplicates:
            days.setdefault(found.code, found.received_day)
        return ", ".join(f"{code} ({date_text(day)})" for code, day in days.items())

    def ward_note(self) -> str:
        """Said whenever the ward-wide check could not be made: the officer knows that only
        the dossiers on this device were compared."""
        return t("receive.ward_unchecked") if self.ward_unchecked else ""

    def _check_ward(self, ward_check: WardCheck | None, go_on: bool) -> None:
        """Ask the server (through the sync bridge) unless the officer already chose to go on
        after a warning: the answer then is the one the warning showed."""
        if go_on or ward_check is None or not digits(self.applicant_id_number):
            self.ward_unchecked = self.ward_unchecked and go_on
            return
        assert self.procedure is not None
        found = ward_check(self.procedure.code, self.applicant_id_number)
        self.ward_unchecked = found is None
        self.ward_duplicates = list(found or [])

    def request(self, ward_code: str, actor: str, intake_note: str = "") -> ReceiveDossier:
        assert self.procedure is not None
        docs = [
            DocumentReceived(
                name=line.name,
                originals=line.originals,
                copies=line.copies,
                digitised=line.digitised,
            )
            for line in self.documents
            if line.received
        ]
        return ReceiveDossier(
            procedure_code=self.procedure.code,
            ward_code=ward_code,
            applicant_name=self.applicant_name.strip(),
            applicant_id_number=self.applicant_id_number.strip(),
            applicant_phone=self.applicant_phone.strip(),
            applicant_address=self.applicant_address.strip(),
            channel=self.channel,
            documents=docs,
            notes=self.notes.strip(),
            actor=actor,
            intake_note=intake_note,
        )

    def submit(
        self,
        dossiers: Any,
        ward_code: str,
        actor: str,
        *,
        go_on: bool = False,
        ward_check: WardCheck | None = None,
    ) -> Dossier | None:
        """Saves the dossier (code and appointment date are issued by the service). When the
        ID number already has an open dossier of this procedure, nothing is saved and
        `duplicates` says which, unless the officer chose to `go_on`: then the first history
        event records that choice (always in Vietnamese: the history is the office's record)."""
        if not self.validate():
            return None
        assert self.procedure is not None
        self.duplicates = dossiers.open_duplicates(self.procedure.code, self.applicant_id_number)
        self._check_ward(ward_check, go_on)
        if (self.duplicates or self.ward_duplicates) and not go_on:
            self.errors["duplicate"] = self.duplicate_warning()
            return None
        note = ""
        if self.duplicates or self.ward_duplicates:
            note = catalogue("vi")["history.duplicate_accepted"].format(
                dossiers=self._duplicates_text()
            )
        try:
            return dossiers.receive(self.request(ward_code, actor, note))
        except ValidationError as exc:
            self.errors["form"] = "; ".join(e["msg"] for e in exc.errors())
            return None
        except ValueError as exc:  # the record rules the server applies too (InvalidRecord)
            self.errors["form"] = error_text(exc)
            return None


# ---------------------------------------------------------------------------------------------
# Detail


@dataclass(frozen=True)
class Action:
    to_status: int
    label: str
    needs_date: bool = False  # supplement request: a new appointment date
    takes_result: bool = False  # completion: the result (decision number, certificate...)
    apology: bool = False  # a late dossier: a later date with an apology (form 04), same status


@dataclass(frozen=True)
class TimelineEntry:
    at: str
    title: str
    actor: str
    note: str


@dataclass(frozen=True)
class FormLink:
    """A form of Circular 01/2018 a move of this dossier called for (02, 03, 04)."""

    notice: FormNotice
    label: str  # "Mẫu 02 · Phiếu yêu cầu bổ sung (15/12/2026)"


@dataclass
class DetailState:
    dossier: Dossier
    procedure: str
    facts: list[tuple[str, str]]
    timeline: list[TimelineEntry]
    actions: list[Action]
    overdue: bool
    timeliness: str
    rejected: str | None = None  # why the server refused it, when it did
    forms: list[FormLink] = field(default_factory=list)


def form_links(events: list[Any], first_appointment: dt.date | None = None) -> list[FormLink]:
    return [
        FormLink(n, t(f"form.{n.number}", date=date_text(vn_date(n.at))))
        for n in notices_of(events, first_appointment)
    ]


def apology_action(status: int) -> Action:
    return Action(to_status=int(status), label=t("action.apology"), needs_date=True, apology=True)


def rejection_text(reason: str | None) -> str:
    """The server's refusal reason (`ward_out_of_scope`, ...) as the officer reads it."""
    reason = reason or "rejected"
    return t(f"reject.{reason}") if has(f"reject.{reason}") else t("reject.other", reason=reason)


def actions_for(status: int) -> list[Action]:
    """Only the transitions the status machine allows from here."""
    return [
        Action(
            to_status=int(nxt),
            label=t(f"action.{int(nxt)}"),
            needs_date=nxt is DossierStatus.SUPPLEMENT_REQUESTED,
            takes_result=nxt is DossierStatus.COMPLETED,
        )
        for nxt in allowed_next(status)
    ]


def finish_facts(d: Dossier, kind: Timeliness | None) -> list[tuple[str, str]]:
    """When the result was ready and when it was handed back, with whether that was in time
    (`app.domain.timeliness`: early, on time or late against the appointment date)."""
    facts = []
    if d.finished_at:
        facts.append((t("field.finished_at"), datetime_text(d.finished_at)))
    if d.returned_at:
        returned = datetime_text(d.returned_at)
        facts.append((t("field.returned_at"), f"{returned} · {timeliness_text(kind)}"))
    return facts


def chronological(events: list[Any]) -> list[Any]:
    """Oldest first. Stored times have whole seconds, so two moves in one second tie: within a
    tie the status chain decides (each move starts from the status the previous one reached)."""
    remaining = sorted(events, key=lambda e: e.at)
    ordered: list[Any] = []
    current = None
    while remaining:
        same = [e for e in remaining if e.at == remaining[0].at]
        pick = next((e for e in same if e.from_status == current), same[0])
        ordered.append(pick)
        remaining.remove(pick)
        current = pick.to_status
    return ordered


def timeline_entry(event: Any) -> TimelineEntry:
    if event.from_status is None:
        title = status_text(event.to_status)
    elif event.from_status == event.to_status:  # a later date with an apology (form 04)
        title = t("timeline.apology")
    else:
        title = f"{status_text(event.from_status)} » {status_text(event.to_status)}"
    note = event.note or ""
    if event.appointment_date:
        extra = t("detail.new_appointment", date=date_text(event.appointment_date))
        note = f"{note} · {extra}" if note else extra
    officer = t("detail.by", name=event.actor) if event.actor else t("detail.by_unknown")
    return TimelineEntry(datetime_text(event.at), title, officer, note)


class DossierDetailPresenter:
    def __init__(
        self,
        dossiers: Any,
        dossier_id: str,
        today: Callable[[], dt.date],
        sync: Any = None,
    ) -> None:
        """`sync` is the store's sync side (`store.sync`): it knows why a push was refused."""
        self.dossiers = dossiers
        self.dossier_id = dossier_id
        self.today = today
        self.sync = sync

    def load_any(self) -> DetailState | UnreadableRow:
        """The detail, or the one "unreadable" line of a dossier this device cannot show."""
        from app.storage.services import UnreadableDossier

        try:
            return self.load()
        except UnreadableDossier as exc:
            return unreadable_row(
                UnreadableRecord(entity="dossier", id=self.dossier_id, reason=exc.reason)
            )

    def load(self) -> DetailState:
        d = self.dossiers.get(self.dossier_id)
        kind = d.timeliness(self.today())
        facts = [
            (t("field.code"), d.code),
            (t("field.applicant"), d.applicant_name),
            (t("field.id_number"), d.applicant_id_number or "—"),
            (t("field.phone"), d.applicant_phone or "—"),
            (t("field.address"), d.applicant_address or "—"),
            (t("field.channel"), channel_text(d.channel)),
            (t("field.received_at"), datetime_text(d.received_at)),
            (t("field.appointment"), date_text(d.appointment_date)),
            (t("field.status"), status_text(d.status)),
        ]
        if d.result:
            facts.append((t("field.result"), d.result))
        if d.result_digitised is not None:
            facts.append((t("field.result_digitised"), digitisation_text(d.result_digitised)))
        facts += finish_facts(d, kind)
        events = self.dossiers.history(self.dossier_id)
        history = chronological(events)[::-1]  # newest first
        actions = actions_for(d.status) if not _in_conflict(d) else []
        if actions and kind is Timeliness.OVERDUE:  # late: apologise and give a new date
            actions.append(apology_action(d.status))
        return DetailState(
            forms=form_links(events, self._first_appointment(d)),
            dossier=d,
            procedure=procedure_name(d.procedure_code),
            facts=facts,
            timeline=[timeline_entry(e) for e in history],
            actions=actions,
            overdue=kind is Timeliness.OVERDUE and is_open(d.status),
            timeliness=timeliness_text(kind),
            rejected=self._rejection(d),
        )

    def _first_appointment(self, d: Dossier) -> dt.date | None:
        """The date promised at intake (the record rule made it exactly this)."""
        calendar = getattr(self.dossiers, "calendar", None) or WorkingCalendar()
        try:
            return expected_appointment(d.received_at.isoformat(), d.procedure_code, calendar)
        except (KeyError, ValueError, TypeError):
            return None

    def _rejection(self, d: Dossier) -> str | None:
        if d.sync_state != "rejected":
            return None
        reason = self.sync.state_of("dossier", d.id).reason if self.sync is not None else None
        return t("detail.rejected", reason=rejection_text(reason))

    def apply(
        self,
        action: Action,
        *,
        note: str = "",
        new_date: str = "",
        result: str = "",
        result_digitised: int | None = None,
        actor: str = "",
    ) -> str | None:
        """Performs the action; returns an error message for the user, or None."""
        appointment = None
        if action.apology and not note.strip():
            return t("detail.error.reason")  # form 04 tells the citizen why it is late
        if action.takes_result and not result.strip():
            return t("detail.error.result")  # the record rule refuses it too (result_required)
        if action.needs_date:
            appointment = parse_date(new_date)
            if appointment is None:
                return t("detail.error.date")
            if appointment <= self.today():
                return t("detail.error.date_past")
        from app.storage import errors as storage_errors

        invalid = getattr(storage_errors, "InvalidTransition", ValueError)
        try:
            if action.apology:
                assert appointment is not None
                self.dossiers.reschedule(
                    self.dossier_id, appointment, reason=note.strip(), actor=actor
                )
                return None
            self.dossiers.change_status(
                self.dossier_id,
                action.to_status,
                note=note.strip(),
                appointment_date=appointment,
                result=result.strip() or None,
                result_digitised=result_digitised if action.takes_result else None,
                actor=actor,
            )
        except (invalid, ValueError) as exc:
            return error_text(exc)
        return None


def _in_conflict(d: Dossier) -> bool:
    return d.sync_state == "conflict"


# ---------------------------------------------------------------------------------------------
# Dashboard


@dataclass(frozen=True)
class Tile:
    key: str
    label: str
    value: str
    alert: bool = False


def dashboard_tiles(dashboard: Any) -> list[Tile]:
    from app.views.format import percent_text

    return [
        Tile("received_today", t("dash.received_today"), str(dashboard.received_today)),
        Tile("due_soon", t("dash.due_soon"), str(dashboard.due_soon)),
        Tile("overdue", t("dash.overdue"), str(dashboard.overdue), alert=dashboard.overdue > 0),
        Tile("on_time_rate", t("dash.on_time_rate"), percent_text(dashboard.on_time_rate)),
    ] + (
        [Tile("unreadable", t("dash.unreadable"), str(kept_aside), alert=True)]
        if (kept_aside := getattr(dashboard, "unreadable", 0))
        else []
    )
