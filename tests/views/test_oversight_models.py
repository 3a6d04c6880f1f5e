"""The oversight dashboard's presenter: rankings, trend, compliance grid worst first, audit
states, the list behind a ward, and the columns a width gets; and the view renders it."""

from __future__ import annotations

import datetime as dt

from app.domain import audit as A
from app.domain import oversight as O
from app.views import oversight_models as M


def _snap(code: str, weeks: list[tuple[str, int, int, int]], sections=None, state=None):
    """weeks: (monday, received, settled on time, overdue)."""
    figures = [
        O.DossierFigures(key={"week": w}, received=r, settled=ok, settled_on_time=ok, overdue=od)
        for w, r, ok, od in weeks
    ]
    audit = None
    if sections is not None:
        audit = O.WardAuditFigures(
            ward_code=code,
            audits=1,
            latest_id=f"a-{code}",
            latest_state=state,
            latest_score=min(sections.values()),
            by_section=sections,
            failing_items=["network.firewall"],
            states={state: 1},
        )
    return O.WardSnapshot(code, "2026-12-02", figures, [], audit)


SECTIONS = [s.id for s in A.template().sections]


def _board() -> M.Dashboard:
    good = dict.fromkeys(SECTIONS, 100.0)
    bad = good | {SECTIONS[2]: 20.0}
    return M.build_dashboard(
        [
            _snap("00004", [("2026-11-23", 10, 9, 1), ("2026-11-30", 4, 4, 0)], good, "approved"),
            _snap("00070", [("2026-11-23", 10, 2, 8)], bad, "submitted"),
            _snap("00073", [("2026-11-30", 5, 5, 0)]),
        ],
        "snapshots",
    )


def test_rankings_trend_and_totals() -> None:
    board = _board()
    assert [r.code for r in board.by_rate] == ["00070", "00004", "00073"]
    assert board.by_rate[0].on_time_rate == 0.2
    assert [(r.code, r.overdue) for r in board.by_overdue] == [("00070", 8), ("00004", 1)]
    assert [(w.key["week"], w.received) for w in board.trend] == [
        ("2026-11-23", 20),
        ("2026-11-30", 9),
    ]
    assert (board.whole.received, board.whole.overdue, board.wards) == (29, 9, 3)
    assert board.states == {"approved": 1, "submitted": 1}


def test_compliance_grid_puts_the_worst_ward_first() -> None:
    board = _board()
    assert [g.code for g in board.grid] == ["00070", "00004"]
    assert board.grid[0].worst == 20.0
    assert [sid for sid, _ in board.grid[0].cells] == SECTIONS


def test_ward_detail_is_the_list_behind_the_figures() -> None:
    detail = M.ward_detail(_board(), "00070")
    assert detail is not None and detail.whole.overdue == 8
    assert detail.failing == [("network.firewall", A.template().item("network.firewall").label)]
    assert M.ward_detail(_board(), "99999") is None


def test_a_wards_overdue_and_late_figures_open_the_dossiers_behind_them() -> None:
    listed = [
        O.ListedDossier("overdue", "000.00.53.H48-261103-0001", "1.001193", 4, 1,
                        "2026-11-03", "2026-11-02", "2026-11-20"),
        O.ListedDossier("late", "000.00.53.H48-261104-0002", "1.000894", 10, 2,
                        "2026-11-04", "2026-11-02", "2026-11-10", "2026-11-13"),
    ]
    values = O.snapshot_values("00070", dt.date(2026, 12, 2), [
        O.DossierFigures(key={"week": "2026-11-02"}, received=2, settled=1, late=1, overdue=1)
    ], [], None, listed)
    assert "applicant" not in str(values)
    snap = O.snapshot_from_values(values)  # as the device reads it back
    board = M.build_dashboard([snap], "snapshots")
    detail = M.ward_detail(board, "00070", dt.date(2026, 12, 2))
    assert detail is not None
    assert [(r.code, r.appointment, r.status, r.days_past) for r in detail.overdue] == [
        ("000.00.53.H48-261103-0001", "20/11/2026", 4, 12),
    ]
    assert [(r.code, r.finished, r.days_past) for r in detail.late] == [
        ("000.00.53.H48-261104-0002", "13/11/2026", 3),
    ]
    # A dossier of a week outside the snapshot's window is not listed.
    old = O.ListedDossier("overdue", "x", "1.001193", 4, 1, "2026-01-05", "2026-01-05",
                          "2026-01-20")
    kept = O.snapshot_values("00070", dt.date(2026, 12, 2), [
        O.DossierFigures(key={"week": "2026-11-02"}, received=1, overdue=1)
    ], [], None, [old, *listed])
    assert [r["code"] for r in kept["dossiers"]] == [d.code for d in listed]


def test_columns_follow_the_width() -> None:
    assert [M.columns_for(w) for w in (1920, 1280, 800)] == [3, 2, 1]


def test_local_only_user_gets_its_own_figures() -> None:
    class Store:
        class oversight:  # noqa: N801  (the store's attribute)
            @staticmethod
            def snapshots():
                return []

            @staticmethod
            def local_snapshots(today):
                return [_snap("00070", [("2026-11-30", 3, 1, 1)])]

    board = M.OversightPresenter(Store(), dt.date(2026, 12, 2)).load()
    assert board.source == "local" and board.whole.received == 3


def test_the_view_renders_the_dashboard_and_a_ward() -> None:
    from app.views.oversight_views import DashboardScreen

    screen = DashboardScreen(app=None)  # type: ignore[arg-type]
    control = screen.render(_board())
    assert control.controls[2].controls  # the cards
    assert len(control.controls[2].controls) == 5


def test_an_audit_state_opens_the_wards_behind_it() -> None:
    board = _board()
    assert [w.code for w in M.wards_in_state(board, "submitted")] == ["00070"]
    assert M.wards_in_state(board, "rejected") == []
