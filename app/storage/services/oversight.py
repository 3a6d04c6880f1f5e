"""Oversight figures on a device: the server's snapshots pulled by a supervisor, or, for a
local-only user, the same figures counted from the device's own dossiers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from app.domain import entities as E
from app.domain import oversight as O
from app.storage.db import Database
from app.storage.services.records import Record, RecordStore


class OversightService:
    def __init__(self, db: Database, records: RecordStore) -> None:
        self._db = db
        self._records = records

    def snapshots(self, wards: Sequence[str] | None = None) -> list[O.WardSnapshot]:
        """The latest snapshot of each ward this device pulled, by ward code."""
        with self._db.read() as conn:
            records = self._records.select(conn, "WHERE entity = ?", (O.REPORT_SNAPSHOT,))
        found = [O.snapshot_from_values(r.values()) for r in records]
        return sorted(
            (s for s in found if wards is None or s.ward_code in wards), key=lambda s: s.ward_code
        )

    def answer_times(self, audit_id: str) -> dict[str, dt.datetime]:
        return answer_times(self._records, self._db, audit_id)

    def changes_requested(self, audit_id: str) -> RequestedChanges | None:
        """The last "changes requested" on an audit: the clock stamp of that decision (to the
        millisecond, unlike the comment's displayed time) and the answers' values it recorded
        (None when the comment has none, e.g. one made by an older version)."""
        from app.domain.audit import ANSWERS_BEFORE, ReviewState
        from app.domain.hlc import Timestamp

        with self._db.read() as conn:
            comments = self._records.select(
                conn, "WHERE parent_id = ? AND entity = ?", (audit_id, E.AUDIT_COMMENT)
            )
        requests = [
            (Timestamp.parse(c.fields["decision"].hlc).wall_ms, c)
            for c in comments
            if c.value("decision") == ReviewState.CHANGES_REQUESTED.value and "decision" in c.fields
        ]
        if not requests:
            return None
        wall_ms, comment = max(requests, key=lambda r: r[0])
        before = comment.value(ANSWERS_BEFORE)
        return RequestedChanges(
            at=dt.datetime.fromtimestamp(wall_ms / 1000, dt.UTC),
            before=before if isinstance(before, dict) else None,
        )

    def assign_action(self, audit_id: str, item_id: str, owner: str, due: dt.date) -> str:
        return assign_action(self._records, self._db, audit_id, item_id, owner, due)

    def actions(self, today: dt.date, ward_code: str | None = None) -> list[ActionView]:
        return list_actions(self._records, self._db, today, ward_code)

    def local_facts(self) -> list[O.DossierFact]:
        with self._db.read() as conn:
            records = self._records.select(conn, "WHERE entity = ?", (E.DOSSIER,))
        return [fact for r in records if (fact := _fact(r)) is not None]

    def local_figures(
        self,
        today: dt.date,
        by: Sequence[str] = ("ward",),
        date_from: dt.date | None = None,
        date_to: dt.date | None = None,
    ) -> list[O.DossierFigures]:
        """The figures of this device's own dossiers, by the same definitions as the server's."""
        return O.tally(self.local_facts(), today, by, date_from, date_to)

    def local_snapshots(self, today: dt.date) -> list[O.WardSnapshot]:
        """Snapshots made on the device from its own dossiers (a local-only user)."""
        facts = self.local_facts()
        weeks = O.tally(facts, today, ("ward", "week"))
        procedures = O.tally(facts, today, ("ward", "procedure"))
        wards = sorted({f.key["ward"] for f in weeks})
        behind: dict[str, list[O.ListedDossier]] = {}
        for fact in facts:
            if (listed := O.listed_from_fact(fact, today)) is not None:
                behind.setdefault(fact.ward_code, []).append(listed)
        result = []
        for ward in wards:
            values = O.snapshot_values(
                ward,
                today,
                [_without_ward(f) for f in weeks if f.key["ward"] == ward],
                [_without_ward(f) for f in procedures if f.key["ward"] == ward],
                None,
                behind.get(ward, []),
            )
            result.append(O.snapshot_from_values(values))
        return result


def _without_ward(figures: O.DossierFigures) -> O.DossierFigures:
    figures.key = {k: v for k, v in figures.key.items() if k != "ward"}
    return figures


def _parse(value: object, kind):
    if not isinstance(value, str) or not value:
        return None
    try:
        return kind.fromisoformat(value)
    except ValueError:
        return None


def _fact(record: Record) -> O.DossierFact | None:
    received = _parse(record.value("received_at"), dt.datetime)
    status = record.value("status")
    if received is None or not isinstance(status, int):
        return None  # one bad row is set aside, never fails the figures
    return O.DossierFact(
        ward_code=record.ward_code,
        procedure_code=str(record.value("procedure_code") or ""),
        status=status,
        channel=record.value("channel"),
        received_at=received,
        appointment_date=_parse(record.value("appointment_date"), dt.date),
        finished_at=_parse(record.value("finished_at"), dt.datetime),
        code=str(record.value("code") or ""),
    )


def answer_times(store_records: RecordStore, db: Database, audit_id: str) -> dict[str, dt.datetime]:
    """When each answer of an audit last changed (its field's clock stamp), by item id."""
    from app.domain.hlc import Timestamp

    with db.read() as conn:
        record = store_records.get(conn, E.AUDIT, audit_id)
    return {
        name[len(E.ANSWER_PREFIX) :]: dt.datetime.fromtimestamp(
            Timestamp.parse(stamp.hlc).wall_ms / 1000, dt.UTC
        )
        for name, stamp in record.fields.items()
        if name.startswith(E.ANSWER_PREFIX)
    }


@dataclass(frozen=True)
class RequestedChanges:
    at: dt.datetime
    before: dict[str, object] | None  # {item id: answer value} when changes were requested


@dataclass(frozen=True)
class ActionView:
    id: str
    ward_code: str
    audit_id: str
    item_id: str
    owner: str
    due_date: dt.date
    created_at: dt.datetime
    state: str  # open | overdue | met | dropped


def assign_action(
    records: RecordStore, db: Database, audit_id: str, item_id: str, owner: str, due: dt.date
) -> str:
    """Make a failing item of an audit a task for `owner` by `due`; queued like any change."""
    from app.storage.tables import new_id

    if not owner.strip():
        raise ValueError("an action needs an owner")
    with db.write() as conn:
        audit = records.get(conn, E.AUDIT, audit_id)
        action_id = new_id()
        records.write_local(
            conn, E.AUDIT_ACTION, action_id, audit.ward_code,
            {
                "audit_id": audit_id,
                "ward_code": audit.ward_code,
                "item_id": item_id,
                "owner": owner.strip(),
                "due_date": due.isoformat(),
                "state": O.ACTION_OPEN,
                "created_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
            },
        )
    return action_id


def list_actions(
    records: RecordStore, db: Database, today: dt.date, ward_code: str | None = None
) -> list[ActionView]:
    """Actions with their state: met once a later audit of the ward scores the item in full."""
    from app.domain import audit as A
    from app.storage.services.audits import to_audit

    where, params = "WHERE entity = ?", [E.AUDIT_ACTION]
    if ward_code:
        where, params = where + " AND ward_code = ?", [*params, ward_code]
    with db.read() as conn:
        actions = records.select(conn, where, params)
        wards = sorted({a.ward_code for a in actions})
        audits = records.select(
            conn, f"WHERE entity = ? AND ward_code IN ({','.join('?' * len(wards))})",
            [E.AUDIT, *wards],
        ) if wards else []
    later: dict[str, list[tuple[dt.datetime, dict[str, float | None]]]] = {}
    for record in audits:
        audit = to_audit(record)
        if audit.submitted_at is None:
            continue
        tpl = A.template(audit.template_version)
        answers = {k: v.model_dump() for k, v in audit.answers.items()}
        scores = {i: A.item_score(tpl, i, a) for i, a in answers.items()}
        submitted = audit.submitted_at
        if submitted.tzinfo is None:
            submitted = submitted.replace(tzinfo=dt.UTC)
        later.setdefault(audit.ward_code, []).append((submitted, scores))
    views = []
    for a in actions:
        created = _parse(a.value("created_at"), dt.datetime)
        due = _parse(a.value("due_date"), dt.date)
        if created is None or due is None:
            continue  # one bad row is set aside
        item = str(a.value("item_id") or "")
        state = O.action_state(str(a.value("state") or ""), item, created, due,
                               later.get(a.ward_code, []), today)
        views.append(ActionView(a.entity_id, a.ward_code, str(a.value("audit_id") or ""), item,
                                str(a.value("owner") or ""), due, created, state))
    return sorted(views, key=lambda v: (v.state == O.ACTION_MET, v.due_date, v.ward_code))
