"""Oversight figures: what a supervisor reads across wards, defined once for server and device.

The server computes these in SQL over its records (server/services/reports.py); a device computes
the same figures from its own store with `tally`. Both follow the same definitions:

- a dossier belongs to the week (Monday, Vietnam time) and the day it was received;
- received: dossiers received; online: of them, received through channel 2 (online);
- settled: finished (completed or result returned); settled on time: finished no later than the
  appointment date (early or on time); late: finished after it (a finished dossier without a
  finishing instant counts as finished today, as `timeliness.classify` does);
- overdue: still open and past the appointment date today; within: open and not past it;
- on-time rate (Circular 01/2018/TT-VPCP, `timeliness.on_time_rate`):
  (within + early + on time) / (within + overdue + early + on time + late); refused, withdrawn
  and stopped dossiers and dossiers without an appointment date are not counted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from app.domain.calendar import vn_date
from app.domain.status import Channel
from app.domain.timeliness import Timeliness, classify

GROUPINGS = ("ward", "procedure", "week")  # what dossier figures may be grouped by
DOSSIER_FIGURES = (
    "received",
    "settled",
    "settled_on_time",
    "late",
    "overdue",
    "within",
    "online",
)
# Audit figures per ward and section.
AUDIT_FIGURES = ("audits", "latest_state", "latest_score", "compliant", "failing_items")


def week_start(day: dt.date) -> dt.date:
    """The Monday of the week holding `day` (weeks run Monday to Sunday, as in Vietnam)."""
    return day - dt.timedelta(days=day.weekday())


def vn_week(moment: dt.datetime) -> dt.date:
    return week_start(vn_date(moment))


@dataclass(frozen=True)
class DossierFact:
    """The readable facts of one dossier that figures are made of (no personal data)."""

    ward_code: str
    procedure_code: str
    status: int
    channel: int | None
    received_at: dt.datetime
    appointment_date: dt.date | None
    finished_at: dt.datetime | None = None
    code: str = ""  # the dossier code (Circular 01/2018): names the dossier, not a person


@dataclass
class DossierFigures:
    """The figures of one group (a ward, a procedure, a week, or a combination: `key`)."""

    key: dict[str, str] = field(default_factory=dict)
    received: int = 0
    settled: int = 0
    settled_on_time: int = 0
    late: int = 0
    overdue: int = 0
    within: int = 0
    online: int = 0

    @property
    def counted(self) -> int:
        return self.within + self.overdue + self.settled_on_time + self.late

    @property
    def on_time_rate(self) -> float | None:
        """By Circular 01/2018's rule; None when nothing counts yet."""
        return (self.within + self.settled_on_time) / self.counted if self.counted else None

    @property
    def online_share(self) -> float | None:
        return self.online / self.received if self.received else None

    def as_row(self) -> dict[str, object]:
        return {
            **self.key,
            **{name: getattr(self, name) for name in DOSSIER_FIGURES},
            "on_time_rate": self.on_time_rate,
            "online_share": self.online_share,
        }


def group_key(fact: DossierFact, by: Sequence[str]) -> dict[str, str]:
    values = {
        "ward": fact.ward_code,
        "procedure": fact.procedure_code,
        "week": vn_week(fact.received_at).isoformat(),
    }
    return {name: values[name] for name in by}


def check_grouping(by: Sequence[str]) -> tuple[str, ...]:
    unknown = [name for name in by if name not in GROUPINGS]
    if unknown:
        raise ValueError(f"unknown grouping: {', '.join(unknown)}")
    return tuple(by)


def add_fact(figures: DossierFigures, fact: DossierFact, today: dt.date) -> None:
    figures.received += 1
    figures.online += fact.channel == Channel.ONLINE
    finished = vn_date(fact.finished_at) if fact.finished_at else None
    kind = classify(fact.status, fact.appointment_date, finished, today)
    if fact.status in (9, 10):
        figures.settled += 1
    if kind in (Timeliness.EARLY, Timeliness.ON_TIME):
        figures.settled_on_time += 1
    elif kind is Timeliness.LATE:
        figures.late += 1
    elif kind is Timeliness.OVERDUE:
        figures.overdue += 1
    elif kind is Timeliness.WITHIN:
        figures.within += 1


def in_period(fact: DossierFact, date_from: dt.date | None, date_to: dt.date | None) -> bool:
    day = vn_date(fact.received_at)
    return (date_from is None or day >= date_from) and (date_to is None or day <= date_to)


def tally(
    facts: Iterable[DossierFact],
    today: dt.date,
    by: Sequence[str] = ("ward",),
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> list[DossierFigures]:
    """Figures per group from facts in memory (a device's own store), sorted by key."""
    by = check_grouping(by)
    groups: dict[tuple[str, ...], DossierFigures] = {}
    for fact in facts:
        if not in_period(fact, date_from, date_to):
            continue
        key = group_key(fact, by)
        figures = groups.setdefault(tuple(key.values()), DossierFigures(key=key))
        add_fact(figures, fact, today)
    return [groups[k] for k in sorted(groups)]


def total(rows: Iterable[DossierFigures]) -> DossierFigures:
    """The sum of several groups' figures (the whole city, or a ward over its weeks)."""
    whole = DossierFigures(key={})
    for row in rows:
        for name in DOSSIER_FIGURES:
            setattr(whole, name, getattr(whole, name) + getattr(row, name))
    return whole


def worst_first(rows: Iterable[DossierFigures]) -> list[DossierFigures]:
    """Ranking by on-time rate, lowest first; groups where nothing counts go last."""
    return sorted(rows, key=lambda r: (r.on_time_rate is None, r.on_time_rate or 0.0, -r.overdue))


# ---------------------------------------------------------------------------------------------
# The dossiers behind a ward's overdue and late figures (codes and dates, no applicant)

OVERDUE, LATE = "overdue", "late"
LISTED_KINDS = (OVERDUE, LATE)
LIST_LIMIT = 100  # dossiers of each kind a ward's snapshot lists (a bound on its size)


@dataclass(frozen=True)
class ListedDossier:
    """One dossier behind an overdue or late figure, as a snapshot carries it."""

    kind: str  # overdue | late
    code: str
    procedure_code: str
    status: int
    channel: int | None
    received_day: str  # Vietnam days, ISO
    week: str
    appointment_day: str
    finished_day: str | None = None

    def as_row(self) -> dict[str, object]:
        from dataclasses import asdict

        return asdict(self)


def listed_kind(fact: DossierFact, today: dt.date) -> str | None:
    """overdue or late by the figures' own rule (`timeliness.classify`), else None."""
    finished = vn_date(fact.finished_at) if fact.finished_at else None
    kind = classify(fact.status, fact.appointment_date, finished, today)
    return {Timeliness.OVERDUE: OVERDUE, Timeliness.LATE: LATE}.get(kind)


def listed_from_fact(fact: DossierFact, today: dt.date) -> ListedDossier | None:
    kind = listed_kind(fact, today)
    if kind is None or fact.appointment_date is None:
        return None
    return ListedDossier(
        kind=kind,
        code=fact.code,
        procedure_code=fact.procedure_code,
        status=fact.status,
        channel=fact.channel,
        received_day=vn_date(fact.received_at).isoformat(),
        week=vn_week(fact.received_at).isoformat(),
        appointment_day=fact.appointment_date.isoformat(),
        finished_day=vn_date(fact.finished_at).isoformat() if fact.finished_at else None,
    )


def listing_since(today: dt.date) -> dt.date:
    """The first week whose dossiers a snapshot lists: the last SNAPSHOT_WEEKS weeks by the
    calendar (always among the weeks the snapshot's figures carry)."""
    return week_start(today) - dt.timedelta(weeks=SNAPSHOT_WEEKS - 1)


def list_behind(
    rows: Iterable[ListedDossier], weeks: Iterable[str], today: dt.date
) -> list[ListedDossier]:
    """What a snapshot lists: the dossiers of its weeks since `listing_since`, overdue ones
    longest past their appointment first, then late ones latest finished first; at most
    LIST_LIMIT of each."""
    since = listing_since(today).isoformat()
    kept = {w for w in weeks if w >= since}
    chosen = [r for r in rows if r.week in kept]
    overdue = sorted((r for r in chosen if r.kind == OVERDUE),
                     key=lambda r: (r.appointment_day, r.code))
    late = sorted((r for r in chosen if r.kind == LATE),
                  key=lambda r: (r.finished_day or "", r.code), reverse=True)
    return overdue[:LIST_LIMIT] + late[:LIST_LIMIT]


def listed_from_row(row: dict[str, object]) -> ListedDossier | None:
    """A snapshot's row back; None for a row that does not read (set aside)."""
    try:
        channel = row.get("channel")
        finished = row.get("finished_day")
        return ListedDossier(
            kind=str(row["kind"]),
            code=str(row.get("code") or ""),
            procedure_code=str(row.get("procedure_code") or ""),
            status=int(str(row["status"])),
            channel=int(str(channel)) if channel is not None else None,
            received_day=str(row["received_day"]),
            week=str(row["week"]),
            appointment_day=str(row["appointment_day"]),
            finished_day=str(finished) if finished else None,
        )
    except (KeyError, TypeError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------
# Audits


@dataclass
class WardAuditFigures:
    """A ward's audits: how many, the latest one's state and score, its sections and failures."""

    ward_code: str
    audits: int = 0
    latest_id: str | None = None
    latest_state: str | None = None
    latest_score: float | None = None
    compliant: bool | None = None
    by_section: dict[str, float] = field(default_factory=dict)
    failing_items: list[str] = field(default_factory=list)
    missing_items: list[str] = field(default_factory=list)
    states: dict[str, int] = field(default_factory=dict)


def section_ranking(wards: Iterable[WardAuditFigures]) -> list[tuple[str, str, float]]:
    """(ward, section, score) cells of the compliance grid, worst first."""
    cells = [(w.ward_code, s, v) for w in wards for s, v in w.by_section.items()]
    return sorted(cells, key=lambda c: (c[2], c[0], c[1]))


# ---------------------------------------------------------------------------------------------
# Report snapshots: what a supervisor's device pulls instead of anyone's dossiers

REPORT_SNAPSHOT = "report_snapshot"  # entity: one per ward, written by the server only
REPORT_FAMILY = "report"  # the family supervisors and admins pull
SNAPSHOT_WEEKS = 26  # weeks of figures a snapshot carries (a bound on its size)


@dataclass
class WardSnapshot:
    """One ward's figures as the server last published them (readable facts only)."""

    ward_code: str
    as_of: str
    weeks: list[DossierFigures]
    procedures: list[DossierFigures]
    audit: WardAuditFigures | None
    dossiers: list[ListedDossier] = field(default_factory=list)  # behind overdue and late

    @property
    def whole(self) -> DossierFigures:
        whole = total(self.weeks)
        whole.key = {"ward": self.ward_code}
        return whole


def figures_from_row(row: dict[str, object], keys: Sequence[str]) -> DossierFigures:
    return DossierFigures(
        key={k: str(row[k]) for k in keys if k in row},
        **{name: int(str(row.get(name) or 0)) for name in DOSSIER_FIGURES},
    )


def snapshot_values(
    ward_code: str,
    as_of: dt.date,
    weeks: list[DossierFigures],
    procedures: list[DossierFigures],
    audit: WardAuditFigures | None,
    dossiers: Iterable[ListedDossier] = (),
) -> dict[str, object]:
    """The fields of a ward's snapshot record (JSON values). `dossiers`: the ward's overdue
    and late dossiers; the snapshot lists those of its weeks (`list_behind`)."""
    from dataclasses import asdict

    def rows(items: list[DossierFigures], key: str) -> list[dict[str, object]]:
        return [{key: r.key[key], **{n: getattr(r, n) for n in DOSSIER_FIGURES}} for r in items]

    kept = sorted(weeks, key=lambda r: r.key["week"])[-SNAPSHOT_WEEKS:]
    listed = list_behind(dossiers, (r.key["week"] for r in kept), as_of)
    return {
        "ward_code": ward_code,
        "as_of": as_of.isoformat(),
        "weeks": rows(kept, "week"),
        "procedures": rows(procedures, "procedure"),
        "audit": asdict(audit) if audit else None,
        "dossiers": [d.as_row() for d in listed],
    }


def _rows(value: object) -> list[dict[str, object]]:
    return [r for r in value if isinstance(r, dict)] if isinstance(value, list) else []


def snapshot_from_values(values: dict[str, object]) -> WardSnapshot:
    audit = values.get("audit")
    return WardSnapshot(
        ward_code=str(values.get("ward_code", "")),
        as_of=str(values.get("as_of", "")),
        weeks=[figures_from_row(r, ("week",)) for r in _rows(values.get("weeks"))],
        procedures=[figures_from_row(r, ("procedure",)) for r in _rows(values.get("procedures"))],
        audit=WardAuditFigures(**audit) if isinstance(audit, dict) else None,
        dossiers=[d for r in _rows(values.get("dossiers")) if (d := listed_from_row(r))],
    )


# ---------------------------------------------------------------------------------------------
# Actions: a failing item made a task with an owner and a due date


ACTION_OPEN, ACTION_MET, ACTION_OVERDUE, ACTION_DROPPED = "open", "met", "overdue", "dropped"


def action_state(
    stored_state: str,
    item_id: str,
    created_at: dt.datetime,
    due: dt.date,
    later_audits: Iterable[tuple[dt.datetime, dict[str, float | None]]],
    today: dt.date,
) -> str:
    """Met once an audit of the ward submitted after the action was made scores the item in
    full; else overdue past its due date; dropped when a supervisor dropped it."""
    if stored_state == ACTION_DROPPED:
        return ACTION_DROPPED
    for submitted_at, scores in later_audits:
        # submission times are kept to the second: one in the action's second counts as later
        if submitted_at >= created_at.replace(microsecond=0) and (scores.get(item_id) or 0) >= 1:
            return ACTION_MET
    return ACTION_OVERDUE if today > due else ACTION_OPEN
