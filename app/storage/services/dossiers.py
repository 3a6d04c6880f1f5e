"""Dossiers at the one-stop counter: receive, move through statuses, list, search, import."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from itertools import repeat
from typing import Any

from pydantic import ValidationError
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from app.domain import codes, reference
from app.domain import entities as E
from app.domain.calendar import VN_TZ, WorkingCalendar, counted_from, vn_today
from app.domain.models import (
    Dashboard,
    Dossier,
    DossierEvent,
    OpenDuplicate,
    Page,
    ReceiveDossier,
    UnreadableRecord,
)
from app.domain.papers import PapersError, parse_papers
from app.domain.records import validate_record
from app.domain.status import (
    FINISHED,
    DossierStatus,
    can_start_in,
    can_transition,
    implied_path,
    is_open,
)
from app.domain.text import digits
from app.domain.timeliness import Timeliness, on_time_rate
from app.storage.db import Database
from app.storage.errors import StorageError
from app.storage.services.calendar import CalendarStore
from app.storage.services.records import InvalidRecord, Record, RecordStore, unreadable
from app.storage.settings import SettingsStore
from app.storage.tables import (
    TERM_CODE,
    TERM_ID,
    TERM_IDENTITY,
    TERM_NAME,
    UNREADABLE,
    new_id,
    new_ids,
)

OPEN_STATUSES = tuple(int(s) for s in DossierStatus if is_open(s))
FINISHED_STATUSES = tuple(int(s) for s in FINISHED)
# Statuses an imported dossier may have: any the status machine reaches from intake (the
# import writes one history event per step of `app.domain.status.implied_path`).
IMPORTABLE = frozenset(s for s in DossierStatus if can_start_in(s))
DUE_SOON_WORKING_DAYS = 5
_IN_CHUNK = 500
_FREQUENCY_CAP = 2000  # enough to tell a rare search term from a common one


class InvalidTransition(StorageError):
    """The status machine (`app.domain.status`) does not allow this move."""

    def __init__(self, current: int, target: int) -> None:
        self.current, self.target = current, target
        super().__init__(current, target)

    def __str__(self) -> str:
        return (
            f"Không thể chuyển hồ sơ từ trạng thái {self.current} sang {self.target} / "
            f"A dossier cannot move from status {self.current} to {self.target}"
        )


class UnreadableDossier(StorageError):
    """The dossier is on this device but cannot be shown or changed (kept aside as unreadable:
    a pulled state that does not fit the dossier model); a fixed version from the server
    replaces it at the next pull."""

    def __init__(self, dossier_id: str, reason: str) -> None:
        self.dossier_id, self.reason = dossier_id, reason
        super().__init__(dossier_id, reason)

    def __str__(self) -> str:
        return (
            f"Hồ sơ không đọc được {self.dossier_id} ({self.reason}) / "
            f"Unreadable dossier {self.dossier_id}"
        )


class DuplicateCode(StorageError):
    """A dossier with this code was already issued, imported or received on this device."""

    def __str__(self) -> str:
        return "Mã hồ sơ đã được dùng / This dossier code is already in use"


@dataclass(frozen=True)
class DossierQuery:
    search: str = ""
    status: int | None = None
    overdue: bool = False
    due_within_days: int | None = None
    procedure_code: str | None = None
    today: dt.date | None = None


@dataclass
class ImportReport:
    imported: int = 0
    skipped_duplicates: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def iso_utc(moment: dt.datetime) -> str:
    """One text form for every stored instant, so string order is time order."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)  # the models say naive means UTC
    return moment.astimezone(dt.UTC).replace(microsecond=0).isoformat()


# The Vietnam day of a stored UTC instant, in SQL (Vietnam keeps +07:00 all year).
_FINISHED_DAY = "date(finished_at, '+7 hours')"


def to_dossier(record: Record) -> Dossier:
    values = {k: v for k, v in record.values().items() if v is not None}
    return Dossier(
        id=record.entity_id,
        **values,
        version=record.version,
        sync_state=record.sync_state,
        sync_reason=record.sync_reason,
    )


def readable_dossier(record: Record) -> Dossier:
    """The dossier, or UnreadableDossier when it was kept aside or does not fit the model."""
    if record.sync_state == UNREADABLE:
        raise UnreadableDossier(record.entity_id, record.sync_reason or "invalid")
    try:
        return to_dossier(record)
    except (ValidationError, TypeError, ValueError) as exc:
        raise UnreadableDossier(record.entity_id, _first_problem(exc)) from None


def _first_problem(exc: Exception) -> str:
    if isinstance(exc, ValidationError) and exc.errors():
        first = exc.errors()[0]
        return f"{'.'.join(str(p) for p in first['loc'])}:{first['type']}"
    return "record:invalid"


def dossiers_or_unreadable(
    records: list[Record | UnreadableRecord],
) -> tuple[list[Dossier], list[UnreadableRecord]]:
    """Split rows of a list into dossiers and the lines of those that cannot be shown."""
    items: list[Dossier] = []
    kept_aside: list[UnreadableRecord] = []
    for record in records:
        if isinstance(record, UnreadableRecord):
            kept_aside.append(record)
            continue
        try:
            items.append(readable_dossier(record))
        except UnreadableDossier as exc:
            kept_aside.append(unreadable(record, exc.reason))
    return items, kept_aside


def to_event(record: Record) -> DossierEvent:
    values = {k: v for k, v in record.values().items() if v is not None and k != "ward_code"}
    values.setdefault("from_status", None)
    return DossierEvent(id=record.entity_id, **values)


def _event_or_none(record: Record) -> DossierEvent | None:
    """A history event, or None for one that cannot be shown (the timeline goes on)."""
    if record.sync_state == UNREADABLE:
        return None
    try:
        return to_event(record)
    except (ValidationError, TypeError, ValueError):
        return None


class DossierService:
    def __init__(
        self,
        db: Database,
        records: RecordStore,
        settings: SettingsStore,
        calendar: WorkingCalendar | CalendarStore | None = None,
    ) -> None:
        """`calendar`: a fixed WorkingCalendar, or the store's CalendarStore (its make-up days
        and extra holidays, followed as they change)."""
        self._db = db
        self._records = records
        self._settings = settings
        self._calendar_source = calendar or WorkingCalendar()
        self._appointments: dict[tuple[dt.date, int], str] = {}
        self._appointments_of: WorkingCalendar | None = None

    @property
    def calendar(self) -> WorkingCalendar:
        source = self._calendar_source
        current = source.calendar() if isinstance(source, CalendarStore) else source
        if current is not self._appointments_of:  # the days changed: cached dates are stale
            self._appointments.clear()
            self._appointments_of = current
        return current

    # ------------------------------------------------------------------ writes

    def receive(self, req: ReceiveDossier) -> Dossier:
        with self._db.write() as conn:
            issuer = _CodeIssuer(conn, self._settings)
            fields = self._new_fields(conn, req, issuer)
            issuer.save()
            [dossier_id] = self._write_new(conn, [(fields, req.actor, req.intake_note)])
        return Dossier(id=dossier_id, **{k: v for k, v in fields.items() if v is not None})

    def receive_many(self, reqs: Iterable[ReceiveDossier]) -> int:
        """Receive many dossiers in ONE transaction (bulk intake, benchmarks). Returns the count."""
        with self._db.write() as conn:
            issuer = _CodeIssuer(conn, self._settings)
            batch = [(self._new_fields(conn, r, issuer), r.actor, r.intake_note) for r in reqs]
            issuer.save()
            return len(self._write_new(conn, batch))

    def change_status(
        self,
        dossier_id: str,
        to_status: int,
        *,
        note: str = "",
        appointment_date: dt.date | None = None,
        result: str | None = None,
        result_digitised: int | None = None,
        actor: str = "",
    ) -> Dossier:
        with self._db.write() as conn:
            record = self._records.get(conn, E.DOSSIER, dossier_id)
            readable_dossier(record)  # an unreadable dossier cannot move
            current = int(record.value("status"))
            if not can_transition(current, int(to_status)):
                raise InvalidTransition(current, int(to_status))
            target = DossierStatus(to_status)
            now = iso_utc(utc_now())
            changes: dict[str, Any] = {"status": int(target)}
            if target == DossierStatus.COMPLETED:
                changes["finished_at"] = now
            if target == DossierStatus.RETURNED:
                changes["returned_at"] = now
                if not record.value("finished_at"):
                    changes["finished_at"] = now
            if appointment_date is not None:
                changes["appointment_date"] = appointment_date.isoformat()
            if result is not None:
                changes["result"] = result
            if result_digitised is not None:  # checked 0..3 by the record rule, as the server
                changes["result_digitised"] = int(result_digitised)
            event = self._event_fields(record.entity_id, record.ward_code, now, current,
                                       int(target), actor, note, appointment_date)
            updated, _ = self._records.write_local_many(
                conn,
                [
                    (E.DOSSIER, dossier_id, record.ward_code, changes, record),
                    (E.DOSSIER_EVENT, new_id(), record.ward_code, event, None),
                ],
                calendar=self.calendar,
            )
        return to_dossier(updated)

    def reschedule(
        self, dossier_id: str, new_date: dt.date, *, reason: str, actor: str = ""
    ) -> Dossier:
        """A late dossier gets a later appointment date with an apology (form 04): the status
        stays, a history event keeps the reason and the new date (`app.domain.records`
        accepts a later date on an open dossier that keeps its status, nothing else)."""
        with self._db.write() as conn:
            record = self._records.get(conn, E.DOSSIER, dossier_id)
            readable_dossier(record)
            current = int(record.value("status"))
            now = iso_utc(utc_now())
            event = self._event_fields(record.entity_id, record.ward_code, now, current,
                                       current, actor, reason, new_date)
            updated, _ = self._records.write_local_many(
                conn,
                [
                    (E.DOSSIER, dossier_id, record.ward_code,
                     {"appointment_date": new_date.isoformat()}, record),
                    (E.DOSSIER_EVENT, new_id(), record.ward_code, event, None),
                ],
                calendar=self.calendar,
            )
        return to_dossier(updated)

    # ------------------------------------------------------------------ reads

    def get(self, dossier_id: str) -> Dossier:
        with self._db.read() as conn:
            return readable_dossier(self._records.get(conn, E.DOSSIER, dossier_id))

    def history(self, dossier_id: str) -> list[DossierEvent]:
        with self._db.read() as conn:
            self._records.get(conn, E.DOSSIER, dossier_id)  # NotFound for an unknown dossier
            events = self._records.select_each(
                conn,
                "WHERE parent_id = ? AND entity = ? ORDER BY received_at, id",
                (dossier_id, E.DOSSIER_EVENT),
            )
        return [
            event
            for e in events
            if isinstance(e, Record) and (event := _event_or_none(e)) is not None
        ]

    def everything(self, page_size: int = 500) -> Iterator[Dossier | UnreadableRecord]:
        """Every dossier in appointment order, then the ones that cannot be shown (as
        `UnreadableRecord` lines: kept aside, or a row that failed to open); a page at a time,
        for registers and exports."""
        offset, kept_aside = 0, []
        while True:
            page = self.list(DossierQuery(), offset=offset, limit=page_size)
            yield from page.items
            kept_aside += page.unreadable
            offset += page_size  # rows read, shown or not
            if offset >= page.total:
                break
        yield from kept_aside

    def list(self, query: DossierQuery, offset: int = 0, limit: int = 50) -> Page[Dossier]:
        """A page of the dossiers the query finds, in appointment order. Dossiers kept aside as
        unreadable match no filter (their fields cannot be trusted): every one of them comes
        with the first page, in `unreadable`, as does a row of the page that fails to open."""
        with self._db.read() as conn:
            where, params = self._where(conn, query)
            where = f"{where} AND sync_state != ?"
            params = [*params, UNREADABLE]
            total = conn.exec_driver_sql(
                f"SELECT count(*) FROM records WHERE {where}", tuple(params)
            ).scalar_one()
            records = self._records.select_each(
                conn,
                f"WHERE {where} ORDER BY appointment_date, id LIMIT ? OFFSET ?",
                (*params, limit, offset),
            )
            if offset == 0:
                records += self._records.select_each(
                    conn, "WHERE entity = ? AND sync_state = ? ORDER BY id",
                    (E.DOSSIER, UNREADABLE),
                )
        items, kept_aside = dossiers_or_unreadable(records)
        return Page[Dossier](
            items=items, total=total, offset=offset, limit=limit, unreadable=kept_aside
        )

    def open_duplicates(self, procedure_code: str, id_number: str) -> list[OpenDuplicate]:
        """Open dossiers of this procedure for this ID number, oldest first: found through the
        blind ID term, then each opened to compare the digits (a 64-bit term collision would
        otherwise be a false warning). No ID number, no warning."""
        number = digits(id_number)
        if not number:
            return []
        [term] = self._records.index.digit_id_terms(number)
        marks = ", ".join("?" * len(OPEN_STATUSES))
        with self._db.read() as conn:
            records = self._records.select_each(
                conn,
                "WHERE id IN (SELECT rid FROM terms WHERE term = ? AND kind = ?) "
                f"AND entity = ? AND procedure_code = ? AND status IN ({marks}) "
                "AND sync_state != ? ORDER BY received_at, id",
                (bytes.fromhex(term), TERM_ID, E.DOSSIER, procedure_code, *OPEN_STATUSES,
                 UNREADABLE),
            )
        found, _ = dossiers_or_unreadable(records)
        return [
            OpenDuplicate(id=d.id, code=d.code, received_at=d.received_at)
            for d in found
            if digits(d.applicant_id_number) == number
        ]

    def dashboard(self, today: dt.date) -> Dashboard:
        start = iso_utc(dt.datetime.combine(today, dt.time(), VN_TZ))
        end = iso_utc(dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), VN_TZ))
        soon = self.calendar.add_working_days(today, DUE_SOON_WORKING_DAYS).isoformat()
        day = today.isoformat()
        open_marks = ", ".join("?" * len(OPEN_STATUSES))
        fin_marks = ", ".join("?" * len(FINISHED_STATUSES))
        sql = f"""
            SELECT
              sum(received_at >= ? AND received_at < ?),
              sum(status IN ({open_marks}) AND appointment_date >= ? AND appointment_date <= ?),
              sum(status IN ({open_marks}) AND appointment_date < ?),
              sum(status IN ({fin_marks}) AND {_FINISHED_DAY} < appointment_date),
              sum(status IN ({fin_marks}) AND {_FINISHED_DAY} = appointment_date),
              sum(status IN ({fin_marks}) AND {_FINISHED_DAY} > appointment_date)
            FROM records WHERE entity = 'dossier' AND sync_state != 'unreadable'"""
        params = (start, end, *OPEN_STATUSES, day, soon, *OPEN_STATUSES, day,
                  *FINISHED_STATUSES, *FINISHED_STATUSES, *FINISHED_STATUSES)
        with self._db.read() as conn:
            row = conn.exec_driver_sql(sql, params).one()
            kept_aside = conn.exec_driver_sql(
                "SELECT count(*) FROM records WHERE entity = 'dossier' AND sync_state = ?",
                (UNREADABLE,),
            ).scalar_one()
        received, due_soon, overdue, early, on_time, late = (int(v or 0) for v in row)
        within = self._count_open_within(day)
        kinds = [
            *repeat(Timeliness.WITHIN, within),
            *repeat(Timeliness.OVERDUE, overdue),
            *repeat(Timeliness.EARLY, early),
            *repeat(Timeliness.ON_TIME, on_time),
            *repeat(Timeliness.LATE, late),
        ]
        return Dashboard(
            received_today=received,
            due_soon=due_soon,
            overdue=overdue,
            on_time_rate=on_time_rate(kinds),
            unreadable=kept_aside,
        )

    def _count_open_within(self, day: str) -> int:
        marks = ", ".join("?" * len(OPEN_STATUSES))
        with self._db.read() as conn:
            return conn.exec_driver_sql(
                f"SELECT count(*) FROM records WHERE entity = 'dossier' "
                f"AND status IN ({marks}) AND appointment_date >= ? "
                f"AND sync_state != 'unreadable'",
                (*OPEN_STATUSES, day),
            ).scalar_one()

    # ------------------------------------------------------------------ import

    def import_rows(self, rows: Iterable[dict[str, Any]], *, first_line: int = 2) -> ImportReport:
        """Validate every row, then write all good, new rows in ONE transaction.

        A row's line number is `row["line_no"]` when given, else `first_line` + its position
        (line 1 being a header). Duplicates (same code, or when the code is empty the same
        identity: procedure, name, ID number, receipt time, ward) are skipped, so re-importing
        a file is a no-op.
        """
        report = ImportReport()
        good: list[tuple[int, ReceiveDossier]] = []
        for position, row in enumerate(rows):
            line = int(row.get("line_no") or first_line + position)
            req, reason = _parse_import_row(row)
            if reason:
                report.errors.append((line, reason))
            else:
                good.append((line, req))
        with self._db.write() as conn:
            fresh = self._drop_duplicates(conn, good, report)
            batch = []
            issuer = _CodeIssuer(conn, self._settings)
            for line, req in fresh:
                try:
                    batch.append((self._new_fields(conn, req, issuer), req.actor, req.intake_note))
                except codes.SequenceExhausted as exc:
                    report.errors.append((line, str(exc)))
                except InvalidRecord as exc:
                    report.errors.append((line, f"{_column_of(exc.reasons[0])}: {exc}"))
            issuer.save()
            self._write_new(conn, batch)
            report.imported = len(batch)
        report.errors.sort()
        return report

    def _drop_duplicates(
        self, conn: Connection, rows: list[tuple[int, ReceiveDossier]], report: ImportReport
    ) -> list[tuple[int, ReceiveDossier]]:
        """Rows with a code repeat a dossier of that code; rows without one repeat a dossier of
        the same identity (procedure, name, ID number, receipt time, ward), found by its blind
        term, so even a row with neither code nor ID number is imported once."""
        existing = self._existing_codes(conn, [r.code for _, r in rows if r.code])
        seen_terms: set[bytes] = set()
        fresh = []
        for line, req in rows:
            if req.code:
                duplicate = req.code in existing
                existing.add(req.code)
            else:
                term = self._identity_term(req)
                duplicate = term in seen_terms or self._identity_exists(conn, term)
                seen_terms.add(term)
            if duplicate:
                report.skipped_duplicates += 1
            else:
                fresh.append((line, req))
        return fresh

    def _identity_term(self, req: ReceiveDossier) -> bytes:
        received = iso_utc(req.received_at) if req.received_at else ""
        values = req.model_dump() | {"received_at": received}
        return self._records.identity_term(values.get)

    @staticmethod
    def _identity_exists(conn: Connection, term: bytes) -> bool:
        row = conn.exec_driver_sql(
            "SELECT 1 FROM terms WHERE term = ? AND kind = ? LIMIT 1", (term, TERM_IDENTITY)
        ).first()
        return row is not None

    def _existing_codes(self, conn: Connection, wanted: list[str]) -> set[str]:
        found: set[str] = set()
        for i in range(0, len(wanted), _IN_CHUNK):
            chunk = wanted[i : i + _IN_CHUNK]
            marks = ", ".join("?" * len(chunk))
            found.update(
                c
                for (c,) in conn.exec_driver_sql(
                    f"SELECT code FROM records WHERE entity = 'dossier' AND code IN ({marks})",
                    tuple(chunk),
                )
            )
        return found

    # ------------------------------------------------------------------ internals

    def _new_fields(
        self, conn: Connection, req: ReceiveDossier, issuer: _CodeIssuer
    ) -> dict[str, Any]:
        try:
            proc = reference.procedure(req.procedure_code)
        except KeyError as exc:
            raise ValueError(str(exc)) from None
        received = req.received_at or utc_now()
        day, days = counted_from(received, proc.processing_days)
        fields = {
            "code": req.code or issuer.issue(req.ward_code, day),
            "procedure_code": proc.code,
            "ward_code": req.ward_code,
            "applicant_name": req.applicant_name,
            "applicant_id_number": req.applicant_id_number,
            "applicant_phone": req.applicant_phone,
            "applicant_address": req.applicant_address,
            "channel": int(req.channel),
            "received_at": iso_utc(received),
            "appointment_date": self._appointment(day, days),
            "status": int(req.status),
            "documents": [d.model_dump(mode="json") for d in req.documents],
            "notes": req.notes,
            "fee": proc.fee,
            "finished_at": iso_utc(req.finished_at) if req.finished_at else None,
            "returned_at": iso_utc(req.returned_at) if req.returned_at else None,
        }
        fields = {k: E.normalise_value(v) for k, v in fields.items() if v is not None}
        problems = validate_record(E.DOSSIER, fields, calendar=self.calendar)
        if problems:  # the server's own check: what it would refuse is never queued
            raise InvalidRecord(E.DOSSIER, problems)
        return fields

    def _appointment(self, received: dt.date, processing_days: int) -> str:
        """Working-day arithmetic once per (day, processing time): a counter receives many
        dossiers a day, mostly for a handful of procedures."""
        calendar = self.calendar
        key = (received, processing_days)
        if (found := self._appointments.get(key)) is None:
            found = calendar.add_working_days(received, processing_days).isoformat()
            if len(self._appointments) > 4096:
                self._appointments.clear()
            self._appointments[key] = found
        return found

    def _register_codes(self, conn: Connection, batch: list[str]) -> None:
        try:
            conn.exec_driver_sql(
                "INSERT INTO dossier_codes (code) VALUES (?)", [(c,) for c in batch]
            )
        except IntegrityError:
            raise DuplicateCode() from None

    def _write_new(
        self, conn: Connection, batch: list[tuple[dict[str, Any], str, str]]
    ) -> list[str]:
        """New dossiers (fields, actor, note of the first event) and their first history
        event; returns the dossier ids."""
        groups, ids = [], []
        steps = [implied_path(fields["status"]) or [] for fields, _, _ in batch]
        fresh = iter(new_ids(sum(1 + len(path) for path in steps)))
        for (fields, actor, first_note), path in zip(batch, steps, strict=True):
            dossier_id = next(fresh)
            ward = fields["ward_code"]
            group = [(E.DOSSIER, dossier_id, ward, fields)]
            # A dossier first seen past intake (an imported register) gets the history its
            # status implies, one event per step, as the server's rule accepts it.
            for step, (before, status) in enumerate(zip([None, *path], path, strict=False)):
                was = int(before) if before is not None else None
                note = E.normalise_value(first_note) if step == 0 else ""
                event = self._event_fields(dossier_id, ward, fields["received_at"], was,
                                           int(status), E.normalise_value(actor), note, None)
                group.append((E.DOSSIER_EVENT, next(fresh), ward, event))
            groups.append(group)
            ids.append(dossier_id)
        if batch:
            self._register_codes(conn, [fields["code"] for fields, _, _ in batch])
        # Fields come from a validated ReceiveDossier and the catalogue (same limits as specs).
        self._records.insert_new_many(conn, groups)
        return ids

    @staticmethod
    def _event_fields(
        dossier_id: str,
        ward_code: str,
        at: str,
        from_status: int | None,
        to_status: int,
        actor: str,
        note: str,
        appointment_date: dt.date | None,
    ) -> dict[str, Any]:
        fields = {
            "dossier_id": dossier_id,
            "ward_code": ward_code,
            "at": at,
            "from_status": from_status,
            "to_status": to_status,
            "actor": actor,
            "note": note,
            "appointment_date": appointment_date.isoformat() if appointment_date else None,
        }
        return {k: v for k, v in fields.items() if v not in (None, "")}  # smaller rows

    def _where(self, conn: Connection, q: DossierQuery) -> tuple[str, list[Any]]:
        today = (q.today or vn_today()).isoformat()
        clauses, params = ["entity = 'dossier'"], []
        if q.status is not None:
            clauses.append("status = ?")
            params.append(int(q.status))
        if q.procedure_code:
            clauses.append("procedure_code = ?")
            params.append(q.procedure_code)
        open_marks = ", ".join("?" * len(OPEN_STATUSES))
        if q.overdue:
            clauses.append(f"status IN ({open_marks}) AND appointment_date < ?")
            params.extend([*OPEN_STATUSES, today])
        if q.due_within_days is not None:
            last = (dt.date.fromisoformat(today) + dt.timedelta(days=q.due_within_days))
            clauses.append(
                f"status IN ({open_marks}) AND appointment_date >= ? AND appointment_date <= ?"
            )
            params.extend([*OPEN_STATUSES, today, last.isoformat()])
        if q.search.strip():
            sub, sub_params = self._search_subquery(conn, q.search)
            clauses.append(f"id IN ({sub})")
            params.extend(sub_params)
        return " AND ".join(clauses), params

    def _search_subquery(self, conn: Connection, text: str) -> tuple[str, list[Any]]:
        """Record ids whose name holds every query word (as prefixes), whose ID number is it, or
        whose code is it or ends with it (`YYMMDD-XXXX`, `XXXX`).

        The rarest term drives (bounded counts pick it); each other term is a point lookup on
        the (term, kind, rid) key, so a common prefix like "ng" never has to be read in full
        unless it is the only word typed.
        """
        index = self._records.index
        terms = sorted(
            (bytes.fromhex(t) for t in index.query_terms(text)),
            key=lambda term: self._term_frequency(conn, term),
        )
        sql, params = "", []
        if terms:
            sql = "SELECT t0.rid FROM terms t0 WHERE t0.term = ? AND t0.kind = ?"
            params = [terms[0], TERM_NAME]
            for i, term in enumerate(terms[1:], start=1):
                sql += (
                    f" AND EXISTS (SELECT 1 FROM terms t{i} WHERE t{i}.term = ? "
                    f"AND t{i}.kind = ? AND t{i}.rid = t0.rid)"
                )
                params.extend([term, TERM_NAME])
        id_terms = index.query_id_terms(text) if len(digits(text)) >= 9 else []
        for term in id_terms:
            id_sql = "SELECT rid FROM terms WHERE term = ? AND kind = ?"
            sql = f"{sql} UNION {id_sql}" if sql else id_sql
            params.extend([bytes.fromhex(term), TERM_ID])
        for term in index.query_code_terms(text):
            code_sql = "SELECT rid FROM terms WHERE term = ? AND kind = ?"
            sql = f"{sql} UNION {code_sql}" if sql else code_sql
            params.extend([bytes.fromhex(term), TERM_CODE])
        return (sql or "SELECT NULL WHERE 0"), params

    @staticmethod
    def _term_frequency(conn: Connection, term: bytes) -> int:
        return conn.exec_driver_sql(
            "SELECT count(*) FROM (SELECT 1 FROM terms WHERE term = ? AND kind = ? LIMIT ?)",
            (term, TERM_NAME, _FREQUENCY_CAP),
        ).scalar_one()


def _parse_import_row(row: dict[str, Any]) -> tuple[ReceiveDossier | None, str]:
    """A validated request, or a reason naming the first bad column."""
    procedure_code = str(row.get("procedure_code") or "").strip()
    ward_code = str(row.get("ward_code") or "").strip()
    if not procedure_code:
        return None, "procedure_code: thiếu mã thủ tục / missing"
    try:
        reference.procedure(procedure_code)
    except KeyError:
        return None, f"procedure_code: không có thủ tục {procedure_code} / unknown procedure"
    if not reference.is_ward_code(ward_code):
        return None, f"ward_code: không có đơn vị {ward_code!r} / unknown ward"
    channel = _as_int(row.get("channel", 1))
    if channel not in (1, 2, 3):
        return None, "channel: phải là 1, 2 hoặc 3 / must be 1, 2 or 3"
    status = _as_int(row.get("status", int(DossierStatus.RECEIVED)))
    if status is None or not 1 <= status <= 10:
        return None, "status: phải từ 1 đến 10 / must be 1..10"
    if status not in IMPORTABLE:
        return None, f"status: không được nhập hồ sơ ở trạng thái {status} / not importable"
    received_text = str(row.get("received_at") or "").strip()
    try:
        received = dt.datetime.fromisoformat(received_text)
    except ValueError:
        return None, "received_at: không đúng ISO 8601 / not an ISO 8601 date-time"
    if received.tzinfo is None:  # a register typed at the counter: Vietnam time, not UTC
        received = received.replace(tzinfo=VN_TZ)
    ends: dict[str, dt.datetime | None] = {}
    for column in ("finished_at", "returned_at"):
        text = str(row.get(column) or "").strip()
        try:
            moment = dt.datetime.fromisoformat(text) if text else None
        except ValueError:
            return None, f"{column}: không đúng ISO 8601 / not an ISO 8601 date-time"
        if moment is not None and moment.tzinfo is None:
            moment = moment.replace(tzinfo=VN_TZ)
        ends[column] = moment
    if not str(row.get("applicant_name") or "").strip():
        return None, "applicant_name: thiếu họ tên / empty"
    try:  # optional: the papers handed over, as the export writes them
        papers = parse_papers(str(row.get("documents") or ""))
    except PapersError as exc:
        return None, f"documents: {exc}"
    try:
        req = ReceiveDossier(
            procedure_code=procedure_code,
            ward_code=ward_code,
            applicant_name=str(row["applicant_name"]),
            applicant_id_number=str(row.get("applicant_id_number") or ""),
            applicant_phone=str(row.get("applicant_phone") or ""),
            applicant_address=str(row.get("applicant_address") or ""),
            channel=channel,
            notes=str(row.get("notes") or ""),
            documents=papers,
            received_at=received,
            code=str(row.get("code") or "").strip() or None,
            status=status,
            actor=str(row.get("actor") or ""),
            **ends,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        return None, f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    if req.code:
        try:
            codes.parse_code(req.code)
        except ValueError:
            return None, "code: không đúng mẫu mã hồ sơ / not a dossier code"
    return req, ""


def _column_of(reason: str) -> str:
    """The register column a reason code of `app.domain.records` is about."""
    if reason.startswith(("required:", "invalid_fields:")):
        return reason.split(":")[1]
    if reason.endswith("_required"):
        return reason.removesuffix("_required")
    return {"code_format": "code", "unknown_procedure": "procedure_code",
            "unknown_ward": "ward_code"}.get(reason, reason.split(":")[0])


def _as_int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _code_taken(conn: Connection, code: str) -> bool:
    row = conn.exec_driver_sql(
        "SELECT 1 FROM dossier_codes WHERE code = ? UNION ALL "
        "SELECT 1 FROM records WHERE entity = 'dossier' AND code = ? LIMIT 1",
        (code, code),
    ).first()
    return row is not None


class _CodeIssuer:
    """Dossier codes for one write transaction: the next free code of this device's numbers for
    a day, its slot's block or the local range when not enrolled (`app.domain.codes`). A number
    whose code is already here (imported from a file, pulled from another device) is skipped,
    never reissued. The device's agency, slot and local offset are read once and each day's
    counter is kept here until `save()`, instead of a sealed settings read and write per
    dossier of a bulk intake."""

    def __init__(self, conn: Connection, settings: SettingsStore) -> None:
        self._conn, self._settings = conn, settings
        self._loaded = False
        self._counters: dict[str, int] = {}

    def _load(self) -> None:
        get = partial(self._settings.get_in, self._conn)
        self._agency_code, self._own_ward = get("agency_code"), get("ward_code")
        self._slot = get("code_slot")
        self._offset = 0 if self._slot is not None else self._local_offset()
        self._loaded = True

    def _local_offset(self) -> int:
        """Where an un-enrolled device starts in the local range: drawn once, kept sealed."""
        offset = self._settings.get_in(self._conn, "local_code_offset")
        if offset is None:
            offset = secrets.randbelow(len(codes.LOCAL_SEQUENCES))
            self._settings.set_in(self._conn, "local_code_offset", offset)
        return int(offset)

    def issue(self, ward_code: str, day: dt.date) -> str:
        if not self._loaded:
            self._load()
        agency = self._agency_code or codes.default_agency_code(self._own_ward or ward_code)
        slot = self._slot
        key = f"code_counter:{agency}:{day:%y%m%d}:{'local' if slot is None else slot}"
        used = self._counters.get(key)
        if used is None:
            used = int(self._settings.get_in(self._conn, key, 0))
        while True:
            code = codes.format_code(agency, day, codes.next_sequence(slot, used, self._offset))
            used += 1
            if not _code_taken(self._conn, code):
                break
        self._counters[key] = used
        return code

    def save(self) -> None:
        for key, used in self._counters.items():
            self._settings.set_in(self._conn, key, used)
