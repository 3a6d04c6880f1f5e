"""Oversight figures computed where the data is: SQL over the server's records.

The dossier figures group and count in the database (SQLite or PostgreSQL) and read only the
readable fields of a record (ward, procedure, status, channel, dates), never a sealed one. The
definitions are app/domain/oversight.py's; tests check every figure against seeded data counted
independently.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from app.domain import audit as A
from app.domain import entities as E
from app.domain.oversight import DossierFigures, WardAuditFigures, check_grouping

_SQLITE = {
    "str": "json_extract(fields, '$.\"{0}\".value')",
    "int": "json_extract(fields, '$.\"{0}\".value')",
    "vn_day": "date({0}, '+7 hours')",
    "vn_week": "date({0}, '+7 hours', 'weekday 0', '-6 days')",
}
_POSTGRES = {
    "str": "(fields #>> '{{{0},value}}')",
    "int": "CAST(fields #>> '{{{0},value}}' AS INTEGER)",
    "vn_day": "to_char(CAST({0} AS timestamptz) AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYYY-MM-DD')",
    "vn_week": "to_char(date_trunc('week', CAST({0} AS timestamptz) "
    "AT TIME ZONE 'Asia/Ho_Chi_Minh'), 'YYYY-MM-DD')",
}
_GROUP_COLUMNS = {"ward": "ward", "procedure": "procedure", "week": "week"}
FINISHED_SQL = "(9, 10)"
OUT_OF_FLOW_SQL = "(3, 7, 8, 9, 10)"  # abandoned or finished: neither within nor overdue


def _dialect(engine: Engine) -> dict[str, str]:
    return _POSTGRES if engine.dialect.name == "postgresql" else _SQLITE


def _facts_sql(d: dict[str, str]) -> str:
    """One row per dossier with its readable facts, VN day and week of receipt."""
    received = d["str"].format("received_at")
    finished = d["str"].format("finished_at")
    return f"""
        SELECT ward_code AS ward,
               {d["str"].format("procedure_code")} AS procedure,
               {d["int"].format("status")} AS status,
               {d["int"].format("channel")} AS channel,
               {d["str"].format("appointment_date")} AS appt,
               CASE WHEN {finished} IS NULL THEN NULL ELSE {d["vn_day"].format(finished)} END
                 AS fin,
               {d["vn_day"].format(received)} AS day,
               {d["vn_week"].format(received)} AS week
        FROM record WHERE entity = :entity"""


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
    where = ["(:date_from IS NULL OR day >= :date_from)", "(:date_to IS NULL OR day <= :date_to)"]
    params: dict[str, Any] = {
        "entity": E.DOSSIER,
        "today": today.isoformat(),
        "date_from": date_from.isoformat() if date_from else None,
        "date_to": date_to.isoformat() if date_to else None,
    }
    if wards is not None:
        names = [f":w{i}" for i in range(len(wards))] or ["NULL"]
        where.append(f"ward IN ({', '.join(names)})")
        params.update({f"w{i}": w for i, w in enumerate(wards)})
    select_keys = "".join(f"{c}, " for c in columns)
    group = f"GROUP BY {', '.join(columns)} ORDER BY {', '.join(columns)}" if columns else ""
    if engine.dialect.name == "postgresql":  # untyped NULL-able parameters need a type there
        where[0] = "(CAST(:date_from AS text) IS NULL OR day >= :date_from)"
        where[1] = "(CAST(:date_to AS text) IS NULL OR day <= :date_to)"
    sql = f"""
        SELECT {select_keys}
          COUNT(*) AS received,
          SUM(CASE WHEN status IN {FINISHED_SQL} THEN 1 ELSE 0 END) AS settled,
          SUM(CASE WHEN status IN {FINISHED_SQL} AND appt IS NOT NULL
                    AND COALESCE(fin, :today) <= appt THEN 1 ELSE 0 END) AS settled_on_time,
          SUM(CASE WHEN status IN {FINISHED_SQL} AND appt IS NOT NULL
                    AND COALESCE(fin, :today) > appt THEN 1 ELSE 0 END) AS late,
          SUM(CASE WHEN status NOT IN {OUT_OF_FLOW_SQL} AND appt IS NOT NULL
                    AND appt < :today THEN 1 ELSE 0 END) AS overdue,
          SUM(CASE WHEN status NOT IN {OUT_OF_FLOW_SQL} AND appt IS NOT NULL
                    AND appt >= :today THEN 1 ELSE 0 END) AS within,
          SUM(CASE WHEN channel = 2 THEN 1 ELSE 0 END) AS online
        FROM ({_facts_sql(_dialect(engine))}) AS facts
        WHERE {" AND ".join(where)}
        {group}"""
    with engine.connect() as conn:
        rows = conn.execute(text(sql), params).mappings().all()
    result = []
    for row in rows:
        if not columns and not row["received"]:
            continue
        result.append(
            DossierFigures(
                key={name: row[_GROUP_COLUMNS[name]] for name in by},
                **{
                    name: int(row[name] or 0)
                    for name in (
                        "received", "settled", "settled_on_time", "late", "overdue", "within",
                        "online",
                    )
                },
            )
        )
    return result


# ---------------------------------------------------------------------------------------------
# Audits


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


def _score_latest(conn, fig: WardAuditFigures, audit_id: str, version: str | None) -> None:
    """Score the latest audit from its answers: the answers are the auditor's testimony and may
    be sealed at rest, so only this one audit per ward is opened, never a list of them."""
    stored = conn.execute(
        text("SELECT fields FROM record WHERE entity = :e AND entity_id = :i"),
        {"e": E.AUDIT, "i": audit_id},
    ).scalar_one()
    if isinstance(stored, str):
        import json

        stored = json.loads(stored)
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
