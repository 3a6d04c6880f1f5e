"""The supervisor's oversight dashboard (flet-charts) and a ward's figures behind it.

Desktop first: cards in a ResponsiveRow take three columns at 1920 px, two at 1280 px and stack
on a tablet. Every figure opens the list behind it (a ward's weeks, procedures and findings, or
the audits of a state). Renders `oversight_models`; store work goes through `app.io`.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import flet as ft
import flet_charts as fc

from app.domain import audit as A
from app.domain.calendar import vn_today
from app.i18n import t
from app.views.dossier_views import facts_grid, heading, section
from app.views.oversight_models import (
    RANK_LIMIT,
    Dashboard,
    OversightPresenter,
    WardRank,
    ward_detail,
)

if TYPE_CHECKING:
    from app.views.context import AppContext

OVERSIGHT_ROUTE = "/oversight"
CARD_COL = {"xs": 12, "lg": 6, "xxl": 4}


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _score_color(score: float | None) -> str:
    if score is None:
        return ft.Colors.GREY_300
    if score >= 80:
        return ft.Colors.GREEN_200
    return ft.Colors.AMBER_200 if score >= 50 else ft.Colors.RED_200


def _card(title: str, body: ft.Control, ident: str) -> ft.Control:
    return ft.Container(
        ft.Semantics(
            content=ft.Column([section(title), body], spacing=8, tight=True),
            identifier=ident,
            container=True,
        ),
        col=CARD_COL,
        padding=12,
        border=ft.Border.all(1, ft.Colors.OUTLINE_VARIANT),
        border_radius=8,
    )


class DashboardScreen:
    def __init__(self, app: AppContext) -> None:
        self.app = app
        self.board: Dashboard | None = None

    async def build(self) -> ft.Control:
        self.board = await self.app.io(OversightPresenter(self.app.store).load)
        return self.render(self.board)

    def _open(self, code: str):
        async def go(e: Any) -> None:
            await self.app.go(f"{OVERSIGHT_ROUTE}/ward/{code}")

        return go

    def _export(self, kind: str):
        async def export(e: Any) -> None:
            assert self.board is not None
            name, data = await self.app.io(_report_file, self.board, kind)
            await self.app.file_picker.save_file(
                file_name=name, src_bytes=data, allowed_extensions=[kind]
            )
            self.app.toast(t("oversight.exported", name=name))

        return export

    def _go(self, route: str):
        async def go(e: Any) -> None:
            await self.app.go(route)

        return go

    def _open_state(self, state: str):
        async def go(e: Any) -> None:
            await self.app.go(f"{OVERSIGHT_ROUTE}/state/{state}")

        return go

    def render(self, board: Dashboard) -> ft.Control:
        if board.source == "empty":
            return ft.Column([heading(t("oversight.title")), ft.Text(t("oversight.empty"))])
        whole = board.whole
        facts = facts_grid(
            [
                (t("oversight.wards"), str(board.wards)),
                (t("report.col.received"), str(whole.received)),
                (t("report.col.on_time_rate"), _pct(whole.on_time_rate)),
                (t("report.col.overdue"), str(whole.overdue)),
                (t("report.col.online_share"), _pct(whole.online_share)),
                (t("oversight.as_of"), board.as_of),
            ],
            per_row_lg=6,
        )
        cards = [
            _card(t("oversight.rank_rate"), self._ranking(board.by_rate, "rate"), "rank-rate"),
            _card(
                t("oversight.rank_overdue"),
                self._ranking(board.by_overdue, "overdue"),
                "rank-overdue",
            ),
            _card(t("oversight.trend"), self._trend(board), "trend"),
            _card(t("oversight.grid"), self._grid(board), "compliance-grid"),
            _card(t("oversight.states"), self._states(board), "audit-states"),
        ]
        source = t(f"oversight.source.{board.source}")
        bulk = ft.OutlinedButton(
            t("oversight.bulk"), icon=ft.Icons.DONE_ALL, on_click=self._go("/oversight/review")
        )
        xlsx = ft.OutlinedButton(
            t("oversight.export_xlsx"), icon=ft.Icons.TABLE_VIEW, on_click=self._export("xlsx")
        )
        pdf = ft.OutlinedButton(
            t("oversight.export_pdf"), icon=ft.Icons.PICTURE_AS_PDF, on_click=self._export("pdf")
        )
        return ft.Column(
            [
                ft.Row(
                    [heading(t("oversight.title")), ft.Text(source), bulk, xlsx, pdf],
                    wrap=True,
                    spacing=16,
                    vertical_alignment=ft.CrossAxisAlignment.END,
                ),
                facts,
                ft.ResponsiveRow(cards, spacing=12, run_spacing=12),
            ],
            scroll=ft.ScrollMode.AUTO,
            expand=True,
            spacing=10,
        )

    def _ranking(self, ranks: list[WardRank], kind: str) -> ft.Control:
        top = ranks[:RANK_LIMIT]
        if not top:
            return ft.Text(t("oversight.none"))
        value = (
            (lambda r: 100 * (r.on_time_rate or 0))
            if kind == "rate"
            else (lambda r: float(r.overdue))
        )
        color = ft.Colors.RED_400 if kind == "overdue" else ft.Colors.BLUE_400

        def shown(r: WardRank) -> str:
            return r.rate_text if kind == "rate" else str(r.overdue)

        chart = fc.BarChart(
            groups=[
                fc.BarChartGroup(
                    x=i,
                    rods=[
                        fc.BarChartRod(
                            to_y=value(r), width=14, color=color, tooltip=f"{r.name}: {shown(r)}"
                        )
                    ],
                )
                for i, r in enumerate(top)
            ],
            bottom_axis=fc.ChartAxis(
                labels=[
                    fc.ChartAxisLabel(value=i, label=ft.Text(r.code, size=9))
                    for i, r in enumerate(top)
                ],
                label_size=24,
            ),
            left_axis=fc.ChartAxis(label_size=36, show_max=False),
            min_y=0,
            max_y=100 if kind == "rate" else float(int(max(value(r) for r in top) * 1.2) + 2),
            height=170,
            interactive=True,
        )
        rows = [
            ft.TextButton(
                f"{i + 1}. {r.name} — {shown(r)}",
                on_click=self._open(r.code),
                key=f"ward-{kind}-{r.code}",
            )
            for i, r in enumerate(top)
        ]
        return ft.Column([chart, *rows], spacing=0, tight=True)

    def _trend(self, board: Dashboard) -> ft.Control:
        weeks = board.trend
        if not weeks:
            return ft.Text(t("oversight.none"))
        rate = [fc.LineChartDataPoint(i, 100 * (w.on_time_rate or 0)) for i, w in enumerate(weeks)]
        top = max(w.received for w in weeks) or 1
        volume = [fc.LineChartDataPoint(i, 100 * w.received / top) for i, w in enumerate(weeks)]
        chart = fc.LineChart(
            data_series=[
                fc.LineChartData(points=rate, color=ft.Colors.GREEN_600, stroke_width=3),
                fc.LineChartData(
                    points=volume, color=ft.Colors.BLUE_300, stroke_width=2, dash_pattern=[4, 4]
                ),
            ],
            bottom_axis=fc.ChartAxis(
                labels=[
                    fc.ChartAxisLabel(value=i, label=ft.Text(w.key["week"][5:], size=9))
                    for i, w in enumerate(weeks)
                    if i % 2 == 0
                ],
                label_size=22,
            ),
            left_axis=fc.ChartAxis(label_size=34, show_max=False),
            min_y=0,
            max_y=100,
            height=190,
        )
        legend = ft.Row(
            [
                ft.Text(t("oversight.trend_rate"), color=ft.Colors.GREEN_700, size=12),
                ft.Text(t("oversight.trend_volume", n=top), color=ft.Colors.BLUE_400, size=12),
            ],
            wrap=True,
        )
        return ft.Column([chart, legend], tight=True)

    def _grid(self, board: Dashboard) -> ft.Control:
        if not board.grid:
            return ft.Text(t("oversight.none"))
        short = [label.split(",")[0][:14] for _, label in board.sections]
        header = ft.Row(
            [ft.Text(t("report.col.ward"), width=120, size=11, weight=ft.FontWeight.BOLD)]
            + [
                ft.Text(s, width=62, size=10, weight=ft.FontWeight.BOLD, tooltip=label)
                for s, (_, label) in zip(short, board.sections, strict=True)
            ],
            spacing=2,
        )
        rows = [header]
        for g in board.grid[:15]:
            cells = [
                ft.Container(
                    ft.Text("—" if v is None else f"{v:.0f}", size=11),
                    width=62,
                    height=24,
                    bgcolor=_score_color(v),
                    alignment=ft.Alignment.CENTER,
                    border_radius=4,
                )
                for _, v in g.cells
            ]
            rows.append(
                ft.Container(
                    ft.Row([ft.Text(g.name, width=120, size=11, no_wrap=True)] + cells, spacing=2),
                    on_click=self._open(g.code),
                    key=f"grid-{g.code}",
                )
            )
        return ft.Row([ft.Column(rows, spacing=2, tight=True)], scroll=ft.ScrollMode.AUTO)

    def _states(self, board: Dashboard) -> ft.Control:
        if not board.states:
            return ft.Text(t("oversight.none"))
        chips = [
            ft.OutlinedButton(
                content=ft.Text(f"{t(f'audit.state.{state}')}: {n}"),
                on_click=self._open_state(state),
            )
            for state, n in sorted(board.states.items(), key=lambda x: -x[1])
        ]
        total = sum(board.states.values()) or 1
        pie = fc.PieChart(
            sections=[
                fc.PieChartSection(
                    value=n,
                    title=f"{100 * n / total:.0f}%",
                    radius=60,
                    color=_STATE_COLORS.get(s, ft.Colors.GREY_400),
                )
                for s, n in board.states.items()
            ],
            center_space_radius=30,
            height=170,
        )
        return ft.Column([pie, ft.Row(chips, wrap=True, spacing=6)], tight=True)


def _report_file(board: Dashboard, kind: str) -> tuple[str, bytes]:
    """The summary of all wards (XLSX) or the weekly progress report (PDF) from the snapshots
    the dashboard shows."""
    import datetime as dt

    from app.reports import oversight as R
    from app.views.oversight_models import ward_name

    day = dt.date.fromisoformat(board.as_of) if board.as_of else dt.date.today()
    data = R.data_from_snapshots(list(board.snapshots.values()), day, ward_name)
    if kind == "xlsx":
        return f"tong-hop-xa-phuong-{day:%Y%m%d}.xlsx", R.summary_xlsx(data)
    return f"bao-cao-tuan-{day:%Y%m%d}.pdf", R.weekly_pdf(data)


ACTION_COLORS = {
    "open": ft.Colors.BLUE_800,
    "overdue": ft.Colors.RED_700,
    "met": ft.Colors.GREEN_800,
    "dropped": ft.Colors.GREY_700,
}


def _held_audit(store: Any, audit_id: str | None) -> bool:
    """Whether this device holds the audit (a supervisor's pull brings it): actions need it."""
    if not audit_id:
        return False
    try:
        store.audits.get(audit_id)
    except KeyError:
        return False
    return True


_STATE_COLORS = {
    "draft": ft.Colors.GREY_400,
    "submitted": ft.Colors.BLUE_400,
    "has_issues": ft.Colors.AMBER_400,
    "changes_requested": ft.Colors.ORANGE_400,
    "approved": ft.Colors.GREEN_400,
    "rejected": ft.Colors.RED_400,
}


class WardScreen:
    def __init__(self, app: AppContext, code: str) -> None:
        self.app = app
        self.code = code

    async def build(self) -> ft.Control:
        board = await self.app.io(OversightPresenter(self.app.store).load)
        detail = ward_detail(board, self.code)
        back = ft.TextButton(t("oversight.back"), icon=ft.Icons.ARROW_BACK, on_click=self._back)
        if detail is None:
            return ft.Column([back, heading(self.code), ft.Text(t("oversight.none"))])
        w = detail.whole
        facts = facts_grid(
            [
                (t("report.col.received"), str(w.received)),
                (t("report.col.settled"), str(w.settled)),
                (t("report.col.on_time_rate"), _pct(w.on_time_rate)),
                (t("report.col.overdue"), str(w.overdue)),
                (t("report.col.late"), str(w.late)),
                (t("report.col.online_share"), _pct(w.online_share)),
            ],
            per_row_lg=6,
        )
        weeks = _table(
            [
                t("report.col.week"),
                t("report.col.received"),
                t("report.col.settled"),
                t("report.col.late"),
                t("report.col.overdue"),
                t("report.col.on_time_rate"),
            ],
            [
                [r.key["week"], r.received, r.settled, r.late, r.overdue, _pct(r.on_time_rate)]
                for r in detail.weeks
            ],
        )
        procedures = _table(
            [
                t("oversight.procedure"),
                t("report.col.received"),
                t("report.col.overdue"),
                t("report.col.on_time_rate"),
            ],
            [
                [r.key["procedure"], r.received, r.overdue, _pct(r.on_time_rate)]
                for r in detail.procedures
            ],
        )
        findings: list[ft.Control] = []
        a = detail.audit
        held = await self.app.io(_held_audit, self.app.store, a.latest_id if a else None)
        if a is not None and a.latest_state:
            state = t(f"audit.state.{a.latest_state}")
            score = f"{a.latest_score or 0:.1f}"
            findings.append(ft.Text(t("oversight.audit_line", state=state, score=score)))
            for item_id, label in detail.failing:
                row: list[ft.Control] = [
                    ft.Text(f"× {label}", color=ft.Colors.RED_700, expand=True)
                ]
                if held:
                    row.append(
                        ft.TextButton(
                            t("action.assign"), on_click=self._assign(a.latest_id, item_id, label)
                        )
                    )
                findings.append(ft.Row(row, wrap=False))
            amber = ft.Colors.AMBER_900
            findings += [ft.Text(f"? {label}", color=amber) for _, label in detail.missing]
            if a.latest_id and held:
                findings.append(
                    ft.TextButton(t("oversight.open_audit"), on_click=self._open_audit(a.latest_id))
                )
        else:
            findings.append(ft.Text(t("report.no_audit")))
        actions = await self.app.io(self.app.store.oversight.actions, vn_today(), self.code)
        labels = {i.id: i.label for i in A.template().items()}
        action_rows: list[ft.Control] = [
            ft.Text(
                t(
                    "action.line",
                    item=labels.get(v.item_id, v.item_id),
                    owner=v.owner,
                    due=v.due_date.strftime("%d/%m/%Y"),
                    state=t(f"action.state.{v.state}"),
                ),
                size=13,
                color=ACTION_COLORS.get(v.state),
            )
            for v in actions
        ] or [ft.Text(t("action.none"))]
        return ft.Column(
            [
                back,
                heading(detail.name),
                facts,
                ft.ResponsiveRow(
                    [
                        _card(t("oversight.weeks"), weeks, "ward-weeks"),
                        _card(t("oversight.procedures"), procedures, "ward-procedures"),
                        _card(
                            t("oversight.findings"),
                            ft.Column(findings, tight=True),
                            "ward-findings",
                        ),
                        _card(
                            t("action.title"), ft.Column(action_rows, tight=True), "ward-actions"
                        ),
                    ],
                    spacing=12,
                    run_spacing=12,
                ),
            ],
            scroll=ft.ScrollMode.AUTO,
            expand=True,
            spacing=10,
        )

    def _assign(self, audit_id: str, item_id: str, label: str):
        async def open_dialog(e: Any) -> None:
            owner = ft.TextField(label=t("action.owner"), autofocus=True)
            due = ft.TextField(
                label=t("action.due"), value=(vn_today() + dt.timedelta(days=30)).isoformat()
            )
            error = ft.Text("", color=ft.Colors.RED_700)

            async def save(e: Any) -> None:
                try:
                    day = dt.date.fromisoformat((due.value or "").strip())
                    if not (owner.value or "").strip():
                        raise ValueError
                except ValueError:
                    error.value = t("action.invalid")
                    error.update()
                    return
                await self.app.io(
                    self.app.store.oversight.assign_action,
                    audit_id,
                    item_id,
                    owner.value or "",
                    day,
                )
                self.app.page.pop_dialog()
                self.app.toast(t("action.assigned"))
                await self.app.go(f"{OVERSIGHT_ROUTE}/ward/{self.code}", force=True)

            self.app.page.show_dialog(
                ft.AlertDialog(
                    modal=True,
                    title=ft.Text(t("action.assign_title")),
                    content=ft.Column([ft.Text(label), owner, due, error], tight=True, width=480),
                    actions=[
                        ft.TextButton(
                            t("bulk.cancel"), on_click=lambda _: self.app.page.pop_dialog()
                        ),
                        ft.FilledButton(t("action.save"), on_click=save),
                    ],
                )
            )

        return open_dialog

    async def _back(self, e: Any) -> None:
        await self.app.go(OVERSIGHT_ROUTE)

    def _open_audit(self, audit_id: str):
        async def go(e: Any) -> None:
            await self.app.go(f"/reviews/{audit_id}")

        return go


class StateScreen:
    """The wards behind an audit-state figure, each opening its own figures."""

    def __init__(self, app: AppContext, state: str) -> None:
        self.app = app
        self.state = state

    async def build(self) -> ft.Control:
        from app.views.oversight_models import wards_in_state

        board = await self.app.io(OversightPresenter(self.app.store).load)
        wards = wards_in_state(board, self.state)

        def open_ward(code: str):
            async def go(e: Any) -> None:
                await self.app.go(f"{OVERSIGHT_ROUTE}/ward/{code}")

            return go

        async def back(e: Any) -> None:
            await self.app.go(OVERSIGHT_ROUTE)

        title = t("oversight.state_title", state=t(f"audit.state.{self.state}"), n=len(wards))
        return ft.Column(
            [
                ft.TextButton(t("oversight.back"), icon=ft.Icons.ARROW_BACK, on_click=back),
                heading(title),
                *[
                    ft.TextButton(
                        f"{w.name} — {w.rate_text} · {w.overdue}", on_click=open_ward(w.code)
                    )
                    for w in wards
                ],
            ],
            scroll=ft.ScrollMode.AUTO,
            expand=True,
            spacing=2,
        )


def _table(head: list[str], rows: list[list[Any]]) -> ft.Control:
    return ft.Row(
        [
            ft.DataTable(
                columns=[ft.DataColumn(ft.Text(h, size=12)) for h in head],
                rows=[
                    ft.DataRow(cells=[ft.DataCell(ft.Text(str(v), size=12)) for v in r])
                    for r in rows[:30]
                ],
                column_spacing=14,
                data_row_min_height=28,
                data_row_max_height=32,
                heading_row_height=32,
            )
        ],
        scroll=ft.ScrollMode.AUTO,
    )


async def build_route(app: AppContext, parts: list[str]) -> ft.Control:
    if len(parts) == 2 and parts[1] == "review":
        from app.views.bulk_review_views import BulkReviewScreen

        return await BulkReviewScreen(app).build()
    if len(parts) == 3 and parts[1] == "state":
        return await StateScreen(app, parts[2]).build()
    if len(parts) == 3 and parts[1] == "ward":
        return await WardScreen(app, parts[2]).build()
    return await DashboardScreen(app).build()
