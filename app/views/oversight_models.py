"""The supervisor's oversight dashboard, as pure Python: rankings, weekly trend, the compliance
grid (sections by wards, worst first), audit states, and the list behind each figure.

Reads the report snapshots the device pulled (`store.oversight`), or for a local-only user the
figures of its own dossiers; never an applicant's data.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from app.domain import audit as A
from app.domain import oversight as O
from app.domain import reference

RANK_LIMIT = 10  # wards shown in each ranking (the whole list is one click away)
TREND_WEEKS = 12
GRID_WARDS = 15  # wards in the compliance grid: the worst ones


def ward_name(code: str) -> str:
    try:
        return reference.ward(code).name
    except KeyError:
        return code


def columns_for(width: float | None) -> int:
    """Desktop first: three columns at 1920 px, two at 1280, one on a tablet held upright."""
    if width is None or width >= 1600:
        return 3
    return 2 if width >= 1000 else 1


@dataclass(frozen=True)
class WardRank:
    code: str
    name: str
    received: int
    overdue: int
    on_time_rate: float | None

    @property
    def rate_text(self) -> str:
        return "—" if self.on_time_rate is None else f"{100 * self.on_time_rate:.0f}%"


@dataclass(frozen=True)
class GridRow:
    code: str
    name: str
    cells: list[tuple[str, float | None]]  # (section id, score) in template order
    worst: float


@dataclass
class Dashboard:
    source: str  # snapshots | local | empty
    as_of: str
    whole: O.DossierFigures
    by_rate: list[WardRank]
    by_overdue: list[WardRank]
    trend: list[O.DossierFigures]
    sections: list[tuple[str, str]]  # (id, label)
    grid: list[GridRow]
    states: dict[str, int]
    wards: int
    snapshots: dict[str, O.WardSnapshot] = field(default_factory=dict)


def _rank(s: O.WardSnapshot) -> WardRank:
    w = s.whole
    return WardRank(s.ward_code, ward_name(s.ward_code), w.received, w.overdue, w.on_time_rate)


def build_dashboard(snapshots: list[O.WardSnapshot], source: str) -> Dashboard:
    ranks = [_rank(s) for s in snapshots]
    counted = [r for r in ranks if r.on_time_rate is not None]
    by_rate = sorted(counted, key=lambda r: (r.on_time_rate, -r.overdue, r.code))
    by_overdue = sorted((r for r in ranks if r.overdue), key=lambda r: (-r.overdue, r.code))
    weekly: dict[str, O.DossierFigures] = {}
    for s in snapshots:
        for w in s.weeks:
            into = weekly.setdefault(w.key["week"], O.DossierFigures(key={"week": w.key["week"]}))
            for name in O.DOSSIER_FIGURES:
                setattr(into, name, getattr(into, name) + getattr(w, name))
    tpl = A.template()
    sections = [(sec.id, sec.label) for sec in tpl.sections]
    grid = []
    states: dict[str, int] = {}
    for s in snapshots:
        if s.audit is None:
            continue
        for state, n in s.audit.states.items():
            states[state] = states.get(state, 0) + n
        if not s.audit.by_section:
            continue
        cells = [(sid, s.audit.by_section.get(sid)) for sid, _ in sections]
        worst = min((v for _, v in cells if v is not None), default=100.0)
        grid.append(GridRow(s.ward_code, ward_name(s.ward_code), cells, worst))
    grid.sort(key=lambda g: (g.worst, g.code))
    return Dashboard(
        source=source if snapshots else "empty",
        as_of=max((s.as_of for s in snapshots), default=""),
        whole=O.total(s.whole for s in snapshots),
        by_rate=by_rate,
        by_overdue=by_overdue,
        trend=[weekly[k] for k in sorted(weekly)][-TREND_WEEKS:],
        sections=sections,
        grid=grid,
        states=states,
        wards=len(snapshots),
        snapshots={s.ward_code: s for s in snapshots},
    )


class OversightPresenter:
    """Loads the dashboard from the store (call through `app.io`: it reads the database)."""

    def __init__(self, store: Any, today: dt.date | None = None) -> None:
        self.store = store
        self.today = today

    def load(self) -> Dashboard:
        from app.domain.calendar import vn_today

        snapshots = self.store.oversight.snapshots()
        if snapshots:
            return build_dashboard(snapshots, "snapshots")
        local = self.store.oversight.local_snapshots(self.today or vn_today())
        return build_dashboard(local, "local")


@dataclass(frozen=True)
class WardDetail:
    code: str
    name: str
    whole: O.DossierFigures
    weeks: list[O.DossierFigures]
    procedures: list[O.DossierFigures]
    audit: O.WardAuditFigures | None
    failing: list[tuple[str, str]]  # (item id, label)
    missing: list[tuple[str, str]]
    overdue: list[ListedRow] = field(default_factory=list)  # the dossiers behind `overdue`
    late: list[ListedRow] = field(default_factory=list)  # and behind `late`


@dataclass(frozen=True)
class ListedRow:
    """One dossier behind a figure, as the snapshot carries it: code, procedure, dates and
    status; no applicant (a supervisor's device never holds one)."""

    code: str
    procedure: str
    received: str  # dd/mm/yyyy
    appointment: str
    finished: str
    status: int
    days_past: int  # overdue: days past the appointment today; late: days finished after it


def _day_text(iso: str | None) -> str:
    try:
        return dt.date.fromisoformat(iso).strftime("%d/%m/%Y") if iso else "—"
    except ValueError:
        return iso or "—"


def _days_between(start: str, end: str | None, today: dt.date) -> int:
    try:
        last = dt.date.fromisoformat(end) if end else today
        return (last - dt.date.fromisoformat(start)).days
    except ValueError:
        return 0


def listed_rows(snap: O.WardSnapshot, kind: str, today: dt.date) -> list[ListedRow]:
    """The dossiers behind the ward's `kind` figure (overdue or late), in the snapshot's order."""
    return [
        ListedRow(
            code=d.code,
            procedure=d.procedure_code,
            received=_day_text(d.received_day),
            appointment=_day_text(d.appointment_day),
            finished=_day_text(d.finished_day),
            status=d.status,
            days_past=_days_between(d.appointment_day, d.finished_day, today),
        )
        for d in snap.dossiers
        if d.kind == kind
    ]


def ward_detail(
    board: Dashboard, code: str, today: dt.date | None = None
) -> WardDetail | None:
    """The list behind a ward's figures: its weeks, procedures, the dossiers behind its overdue
    and late figures, and its audit findings; all from the ward's snapshot."""
    snap = board.snapshots.get(code)
    if snap is None:
        return None
    if today is None:
        from app.domain.calendar import vn_today

        today = vn_today()
    labels = {i.id: i.label for i in A.template().items()}
    audit = snap.audit
    return WardDetail(
        code=code,
        name=ward_name(code),
        whole=snap.whole,
        weeks=list(reversed(snap.weeks)),
        procedures=sorted(snap.procedures, key=lambda p: -p.received),
        audit=audit,
        failing=[(i, labels.get(i, i)) for i in (audit.failing_items if audit else [])],
        missing=[(i, labels.get(i, i)) for i in (audit.missing_items if audit else [])],
        overdue=listed_rows(snap, O.OVERDUE, today),
        late=listed_rows(snap, O.LATE, today),
    )


def wards_in_state(board: Dashboard, state: str) -> list[WardRank]:
    """The list behind an audit-state figure: wards whose latest audit is in `state`."""
    found = [
        _rank(s) for s in board.snapshots.values() if s.audit and s.audit.latest_state == state
    ]
    return sorted(found, key=lambda r: r.code)
