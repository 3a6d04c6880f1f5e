"""Oversight figures computed where the data is: SQL over the server's records.

The dossier figures group and count in the database (SQLite or PostgreSQL) and read only the
readable fields of a record (ward, procedure, status, channel, dates), never a sealed one. The
definitions are app/domain/oversight.py's; tests check every figure against seeded data counted
independently.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import delete, insert, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from app.domain import audit as A
from app.domain import entities as E
from app.domain import oversight as O
from app.domain.calendar import vn_date
from app.domain.duplicates import id_term, ward_key
from app.domain.hlc import Clock
from app.domain.oversight import (
    DOSSIER_FIGURES,
    DossierFigures,
    WardAuditFigures,
    check_grouping,
    vn_week,
)
from server.core import sealing
from server.core.config import SERVER_NODE
from server.core.db import by_id_chunks, id_in, insert_rows, take_log_lock, write_session
from server.models import ChangeLog, DossierFact, Record, utcnow

log = logging.getLogger("commune.server.reports")
FINISHED_SQL = "(9, 10)"
OUT_OF_FLOW_SQL = "(3, 7, 8, 9, 10)"  # abandoned or finished: neither within nor overdue
_GROUP_COLUMNS = {"ward": "ward_code", "procedure": "procedure_code", "week": "received_week"}
FACTS = DossierFact.__table__


def _day(value: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _instant(value: Any) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def fact_values(entity_id: str, ward_code: str, fields: dict[str, Any]) -> dict[str, Any]:
    """A dossier's row of dossier_fact from its stored fields ({name: {value, ...}}); only
    readable fields are read, so a sealed personal field never reaches the projection."""
    value = {k: s.get("value") for k, s in fields.items() if isinstance(s, dict)}
    received = _instant(value.get("received_at"))
    finished = _instant(value.get("finished_at"))
    appointment = _day(value.get("appointment_date"))
    procedure = value.get("procedure_code")
    code = value.get("code")
    return {
        "entity_id": entity_id,
        "ward_code": ward_code,
        "procedure_code": procedure if isinstance(procedure, str) else None,
        "status": _int(value.get("status")),
        "channel": _int(value.get("channel")),
        "received_day": vn_date(received).isoformat() if received else None,
        "received_week": vn_week(received).isoformat() if received else None,
        "appointment_day": appointment.isoformat() if appointment else None,
        "finished_day": vn_date(finished).isoformat() if finished else None,
        "code": code[:40] if isinstance(code, str) else None,
    }


# A ward's key is the same for the same index key: made once per ward, not per dossier.
_ward_key = lru_cache(maxsize=8192)(ward_key)


def duplicate_values(ward_code: str, fields: dict[str, Any]) -> dict[str, Any]:
    """The duplicate check's column from a dossier's *opened* fields: the keyed term of its ID
    number under the ward's key (the number itself is never stored readable)."""
    entry = fields.get("applicant_id_number")
    number = entry.get("value") if isinstance(entry, dict) else None
    try:
        index_key = sealing.process_ring().sealing_key().index
    except sealing.KeyConfigError:  # a tool with no server key (the API always has one)
        index_key = None
    term = None
    if index_key is not None and isinstance(number, str):
        term = id_term(_ward_key(index_key, ward_code), number)
    return {"id_term": term}


def fact_of(record: Any) -> dict[str, Any] | None:
    """The dossier_fact row of a saved record (its fields opened), or None when it is not a
    dossier."""
    if record.entity != E.DOSSIER:
        return None
    row = fact_values(record.entity_id, record.ward_code, record.fields)
    row.update(duplicate_values(record.ward_code, record.fields))
    return row


def project_record(session: Session, record: Any) -> None:
    """Keep dossier_fact in step with one saved record (a push outside a batch)."""
    row = fact_of(record)
    if row is not None:
        write_facts(session, [row])


DELETE_FACTS = tuple(delete(FACTS).where(ids) for ids in id_in(FACTS.c.entity_id, "p_ids"))


def write_facts(session: Session, rows: list[dict[str, Any]]) -> None:
    """Replace the facts of these dossiers, set-based: one DELETE per 500 ids and one
    executemany INSERT (a push batch's dossiers at its end, in its transaction)."""
    if not rows:
        return
    ids = sorted({row["entity_id"] for row in rows})
    for statement, chunk in by_id_chunks(session, DELETE_FACTS, ids):
        session.execute(statement, {"p_ids": chunk})
    insert_rows(session, FACTS, rows)


def rebuild_facts(engine: Engine) -> int:
    """Project every dossier record again (after a bulk load or a restore); returns the count."""
    with engine.begin() as conn:
        rows = conn.execute(
            text("SELECT entity_id, ward_code, fields FROM record WHERE entity = :e"),
            {"e": E.DOSSIER},
        ).all()
        conn.execute(delete(FACTS))
        values = [fact_row(i, w, f) for i, w, f in rows]
        for start in range(0, len(values), 5000):
            conn.execute(insert(FACTS), values[start : start + 5000])
    return len(rows)


def fact_row(entity_id: str, ward_code: str, stored: Any) -> dict[str, Any]:
    """A stored record's full fact row (its sealed fields opened for the duplicate columns)."""
    stored = json.loads(stored) if isinstance(stored, str) else stored
    row = fact_values(entity_id, ward_code, stored)
    try:
        row.update(duplicate_values(ward_code, sealing.open_legacy(E.DOSSIER, entity_id, stored)))
    except (sealing.SealError, sealing.KeyConfigError, TypeError, ValueError, AttributeError):
        # unreadable here: counted in figures, never found as a duplicate
        row.update(id_term=None)
    return row


def dossier_figures(
    engine: Engine,
    today: dt.date,
    by: Sequence[str] = ("ward",),
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    wards: Sequence[str] | None = None,
) -> list[DossierFigures]:
    """Figures per group of `by` (ward, procedure, week), received within [from, to]."""
    by = check_grouping(by)
    columns = [_GROUP_COLUMNS[name] for name in by]
    where = ["1 = 1"]
    params: dict[str, Any] = {"today": today.isoformat()}
    if date_from:
        where.append("received_day >= :date_from")
        params["date_from"] = date_from.isoformat()
    if date_to:
        where.append("received_day <= :date_to")
        params["date_to"] = date_to.isoformat()
    if wards is not None:
        names = [f":w{i}" for i in range(len(wards))] or ["NULL"]
        where.append(f"ward_code IN ({', '.join(names)})")
        params.update({f"w{i}": w for i, w in enumerate(wards)})
    select_keys = "".join(f"{c}, " for c in columns)
    group = f"GROUP BY {', '.join(columns)} ORDER BY {', '.join(columns)}" if columns else ""
    sql = f"""
        SELECT {select_keys}
          COUNT(*) AS received,
          SUM(CASE WHEN status IN {FINISHED_SQL} THEN 1 ELSE 0 END) AS settled,
          SUM(CASE WHEN status IN {FINISHED_SQL} AND appointment_day IS NOT NULL
                    AND COALESCE(finished_day, :today) <= appointment_day
                   THEN 1 ELSE 0 END) AS settled_on_time,
          SUM(CASE WHEN status IN {FINISHED_SQL} AND appointment_day IS NOT NULL
                    AND COALESCE(finished_day, :today) > appointment_day
                   THEN 1 ELSE 0 END) AS late,
          SUM(CASE WHEN status NOT IN {OUT_OF_FLOW_SQL} AND appointment_day IS NOT NULL
                    AND appointment_day < :today THEN 1 ELSE 0 END) AS overdue,
          SUM(CASE WHEN status NOT IN {OUT_OF_FLOW_SQL} AND appointment_day IS NOT NULL
                    AND appointment_day >= :today THEN 1 ELSE 0 END) AS within,
          SUM(CASE WHEN channel = 2 THEN 1 ELSE 0 END) AS online
        FROM dossier_fact
        WHERE {" AND ".join(where)}
        {group}"""
    with engine.connect() as conn:
        rows = conn.execute(text(sql), params).mappings().all()
    return [
        DossierFigures(
            key={name: row[_GROUP_COLUMNS[name]] for name in by},
            **{name: int(row[name] or 0) for name in DOSSIER_FIGURES},
        )
        for row in rows
        if columns or row["received"]
    ]


def listed_dossiers(
    engine: Engine, today: dt.date, wards: Sequence[str] | None = None
) -> dict[str, list[O.ListedDossier]]:
    """Per ward, the overdue and late dossiers a snapshot lists: the same conditions as
    `dossier_figures`' overdue and late, received in the snapshot's last weeks
    (`oversight.listing_since`), ranked in SQL as `oversight.list_behind` orders them and cut at
    its bound per ward and kind, with the dossier's code (readable, it names no one), all from
    `dossier_fact` (migration 0008 added the code)."""
    sql = f"""
        WITH listed AS (
          SELECT f.entity_id, f.ward_code, f.procedure_code, f.status, f.channel,
                 f.received_day, f.received_week, f.appointment_day, f.finished_day, f.code,
                 CASE WHEN f.status IN {FINISHED_SQL} THEN 'late' ELSE 'overdue' END AS kind
          FROM dossier_fact f
          WHERE f.appointment_day IS NOT NULL AND f.received_week >= :since AND (
            (f.status NOT IN {OUT_OF_FLOW_SQL} AND f.appointment_day < :today)
            OR (f.status IN {FINISHED_SQL}
                AND COALESCE(f.finished_day, :today) > f.appointment_day))),
        ranked AS (
          SELECT listed.*, ROW_NUMBER() OVER (
                   PARTITION BY ward_code, kind
                   ORDER BY CASE WHEN kind = 'overdue' THEN appointment_day END,
                            CASE WHEN kind = 'late' THEN COALESCE(finished_day, '') END DESC,
                            entity_id) AS place
          FROM listed)
        SELECT * FROM ranked WHERE place <= :limit"""
    params = {
        "today": today.isoformat(),
        "since": O.listing_since(today).isoformat(),
        "limit": O.LIST_LIMIT,
    }
    found: dict[str, list[O.ListedDossier]] = {}
    with engine.connect() as conn:
        for row in conn.execute(text(sql), params).mappings():
            if wards is not None and row["ward_code"] not in wards:
                continue
            found.setdefault(row["ward_code"], []).append(
                O.ListedDossier(
                    kind=row["kind"],
                    code=row["code"] or "",
                    procedure_code=row["procedure_code"] or "",
                    status=int(row["status"]),
                    channel=row["channel"],
                    received_day=row["received_day"],
                    week=row["received_week"],
                    appointment_day=row["appointment_day"],
                    finished_day=row["finished_day"],
                )
            )
    return found


# ---------------------------------------------------------------------------------------------
# Audits


_JSON_TEXT = {  # a readable field's value as text, per dialect (audits are few: no projection)
    "sqlite": {"str": "json_extract(fields, '$.\"{0}\".value')"},
    "postgresql": {"str": "(fields #>> '{{{0},value}}')"},
}


def _dialect(engine: Engine) -> dict[str, str]:
    return _JSON_TEXT["postgresql" if engine.dialect.name == "postgresql" else "sqlite"]


def _audit_rows_sql(d: dict[str, str]) -> str:
    return f"""
        SELECT entity_id, ward_code,
               {d["str"].format("review_state")} AS state,
               {d["str"].format("template_version")} AS template_version,
               COALESCE({d["str"].format("submitted_at")},
                        {d["str"].format("started_at")}, '') AS at
        FROM record WHERE entity = :entity"""


def audit_figures(
    engine: Engine, wards: Sequence[str] | None = None
) -> dict[str, WardAuditFigures]:
    """Per ward: its audits, how many in each review state, and its latest audit's score per
    section with the failing and missing items (scored by app/domain/audit from the answers)."""
    with engine.connect() as conn:
        rows = (
            conn.execute(text(_audit_rows_sql(_dialect(engine))), {"entity": E.AUDIT})
            .mappings()
            .all()
        )
        figures: dict[str, WardAuditFigures] = {}
        latest: dict[str, tuple[str, str, str | None]] = {}
        for row in rows:
            ward = row["ward_code"]
            if wards is not None and ward not in wards:
                continue
            fig = figures.setdefault(ward, WardAuditFigures(ward_code=ward))
            fig.audits += 1
            state = row["state"] or A.ReviewState.DRAFT.value
            fig.states[state] = fig.states.get(state, 0) + 1
            candidate = (row["at"], row["entity_id"], row["template_version"])
            if ward not in latest or candidate[:2] > latest[ward][:2]:
                latest[ward] = candidate
                fig.latest_id, fig.latest_state = row["entity_id"], state
        for ward, (_, audit_id, version) in latest.items():
            _score_latest(conn, figures[ward], audit_id, version)
    return dict(sorted(figures.items()))


def opened_fields(entity: str, entity_id: str, stored: dict[str, Any]) -> dict[str, Any]:
    """The audit's fields with its sealed answers opened by the server data key (answers are
    sealed at rest, server/core/sealing.py); SealError when this process holds no key that
    opens them. Only figures leave this module, never an answer."""
    return sealing.open_legacy(entity, entity_id, stored)


def _score_latest(conn, fig: WardAuditFigures, audit_id: str, version: str | None) -> None:
    """Score the latest audit from its answers: the answers are the auditor's testimony and may
    be sealed at rest, so only this one audit per ward is opened, never a list of them."""
    stored = conn.execute(
        text("SELECT fields FROM record WHERE entity = :e AND entity_id = :i"),
        {"e": E.AUDIT, "i": audit_id},
    ).scalar_one()
    if isinstance(stored, str):
        stored = json.loads(stored)
    stored = opened_fields(E.AUDIT, audit_id, stored)
    answers = {
        name[len(E.ANSWER_PREFIX) :]: stamp.get("value")
        for name, stamp in stored.items()
        if name.startswith(E.ANSWER_PREFIX) and isinstance(stamp.get("value"), dict)
    }
    tpl = A.template(version or A.LATEST_TEMPLATE)
    result = A.score(tpl, answers)
    fig.latest_score = result.total
    fig.compliant = result.compliant
    fig.by_section = dict(result.by_section)
    fig.failing_items = list(result.failing_items)
    fig.missing_items = list(result.missing_required)


# ---------------------------------------------------------------------------------------------
# Snapshots: the figures reach supervisors through the normal pull, one record per ward


def publish_snapshots(engine: Engine, today: dt.date) -> int:
    """Write each ward's figures as a `report_snapshot` record (family `report`) with a change
    log row, so supervisors' devices pull them; a ward whose figures did not change is left
    alone. Returns how many snapshots were written."""
    weeks = _by_ward(dossier_figures(engine, today, ("ward", "week")))
    procedures = _by_ward(dossier_figures(engine, today, ("ward", "procedure")))
    behind = listed_dossiers(engine, today)
    audits = audit_figures(engine)
    wards = sorted(set(weeks) | set(procedures) | set(audits))
    clock = Clock(SERVER_NODE)
    written = 0
    with write_session(engine) as session:
        take_log_lock(session)
        existing = {
            r.entity_id: r
            for r in session.exec(select(Record).where(Record.entity == O.REPORT_SNAPSHOT))
        }
        for stored in existing.values():
            for stamp in stored.fields.values():
                clock.observe(stamp["hlc"])
        for ward in wards:
            values = O.snapshot_values(
                ward, today, weeks.get(ward, []), procedures.get(ward, []), audits.get(ward),
                behind.get(ward, []),
            )
            written += _write_snapshot(session, existing.get(ward), ward, values, clock)
    return written


def _by_ward(rows: list[DossierFigures]) -> dict[str, list[DossierFigures]]:
    grouped: dict[str, list[DossierFigures]] = {}
    for row in rows:
        grouped.setdefault(row.key.pop("ward"), []).append(row)
    return grouped


def _write_snapshot(
    session: Session, stored: Record | None, ward: str, values: dict[str, Any], clock: Clock
) -> int:
    old = {k: s["value"] for k, s in stored.fields.items()} if stored else {}
    if {k: v for k, v in old.items() if k != "as_of"} == {
        k: v for k, v in values.items() if k != "as_of"
    }:
        return 0
    version = (stored.version if stored else 0) + 1
    stamp = clock.now()
    fields = {k: {"value": v, "hlc": stamp, "changed_version": version} for k, v in values.items()}
    if stored is None:
        stored = Record(
            entity=O.REPORT_SNAPSHOT, entity_id=ward, ward_code=ward, family=O.REPORT_FAMILY
        )
    stored.fields, stored.version, stored.updated_at = fields, version, utcnow()
    session.add(stored)
    session.add(
        ChangeLog(
            entity=O.REPORT_SNAPSHOT,
            entity_id=ward,
            ward_code=ward,
            family=O.REPORT_FAMILY,
            version=version,
        )
    )
    session.flush()
    return 1


class ScheduledPublish:
    """The API process's own publisher of snapshots (APScheduler, server/main.py): a run
    publishes when a dossier or audit changed since the last run, or the day turned (overdue
    figures move with the date), and otherwise only reads the change log's last number."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.seen: tuple[dt.date, int] | None = None

    def run_once(self) -> int:
        from app.domain.calendar import vn_today

        mark = (vn_today(), self._last_change())
        if mark == self.seen:
            return 0
        try:
            written = publish_snapshots(self.engine, mark[0])
        except Exception:  # noqa: BLE001  logged; the next run tries again
            log.exception("publishing report snapshots failed")
            return 0
        self.seen = mark
        return written

    def _last_change(self) -> int:
        sql = "SELECT MAX(seq) FROM change_log WHERE family IN ('dossier', 'audit')"
        with self.engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar() or 0)

    def start(self, every_seconds: int):
        """The job in a background scheduler, first run now; returns the scheduler. With
        several workers each runs it: publishing takes the change-log lock and rewrites only
        wards whose figures changed, so a second run finds nothing to write."""
        from apscheduler.schedulers.background import BackgroundScheduler

        scheduler = BackgroundScheduler(timezone="UTC")
        scheduler.add_job(
            self.run_once, "interval", seconds=every_seconds, id="report_snapshots",
            next_run_time=dt.datetime.now(dt.UTC), max_instances=1, coalesce=True,
        )
        scheduler.start()
        return scheduler


PHOTO_LIMIT = 60  # thumbnails in one ward report (a bound on its size)


def audit_photos(engine: Engine, audit_id: str) -> list[tuple[str, str]]:
    """(item label, photo sha256) of an audit's answers, in template order."""
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT fields FROM record WHERE entity = :e AND entity_id = :i"),
            {"e": E.AUDIT, "i": audit_id},
        ).scalar_one_or_none()
    if stored is None:
        return []
    stored = json.loads(stored) if isinstance(stored, str) else stored
    stored = opened_fields(E.AUDIT, audit_id, stored)
    version = (stored.get("template_version") or {}).get("value") or A.LATEST_TEMPLATE
    tpl = A.template(version)
    found = []
    for item in tpl.items():
        answer = (stored.get(E.ANSWER_PREFIX + item.id) or {}).get("value")
        if isinstance(answer, dict):
            found += [(item.label, p) for p in answer.get("photos") or [] if isinstance(p, str)]
    return found[:PHOTO_LIMIT]
