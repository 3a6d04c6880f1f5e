"""Oversight figures on a device: the server's snapshots pulled by a supervisor, or, for a
local-only user, the same figures counted from the device's own dossiers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

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

    def changes_requested_at(self, audit_id: str) -> dt.datetime | None:
        """When changes were last requested on an audit: the clock stamp of that decision
        (to the millisecond, unlike the comment's displayed time)."""
        from app.domain.audit import ReviewState
        from app.domain.hlc import Timestamp

        with self._db.read() as conn:
            comments = self._records.select(
                conn, "WHERE parent_id = ? AND entity = ?", (audit_id, E.AUDIT_COMMENT)
            )
        stamps = [
            Timestamp.parse(c.fields["decision"].hlc).wall_ms
            for c in comments
            if c.value("decision") == ReviewState.CHANGES_REQUESTED.value and "decision" in c.fields
        ]
        return dt.datetime.fromtimestamp(max(stamps) / 1000, dt.UTC) if stamps else None

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
        result = []
        for ward in wards:
            values = O.snapshot_values(
                ward,
                today,
                [_without_ward(f) for f in weeks if f.key["ward"] == ward],
                [_without_ward(f) for f in procedures if f.key["ward"] == ward],
                None,
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
