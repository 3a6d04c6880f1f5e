"""The supervisor's screens: synced audits with a state filter and the compliance summary, and
one audit read-only with the decisions the role may make.

Each screen renders a presenter from `review_models`; store work goes through `app.io`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import flet as ft

from app.i18n import t
from app.views.audit_models import user_name, workspaces
from app.views.audit_views import REVIEWS_ROUTE, card, score_badge, state_chip
from app.views.dialogs import close
from app.views.dossier_views import facts_grid, heading, section
from app.views.review_models import (
    Compliance,
    Decision,
    ReviewDetailPresenter,
    ReviewListPresenter,
    ReviewRow,
    ReviewState,
)

if TYPE_CHECKING:
    from app.views.context import AppContext


class ReviewListScreen:
    def __init__(self, app: AppContext) -> None:
        self.app = app
        self.presenter = ReviewListPresenter(app.store)
        self.filter = ft.Row(wrap=True, spacing=6, run_spacing=6)
        self.summary = ft.Container()
        self.rows = ft.Column(spacing=2)
        self.count = ft.Text("", color=ft.Colors.ON_SURFACE_VARIANT)

    async def build(self) -> ft.Control:
        await self._load()
        return ft.Column(
            [
                ft.Row(
                    [heading(t("review.title")), self.count],
                    wrap=True,
                    spacing=16,
                    vertical_alignment=ft.CrossAxisAlignment.END,
                ),
                self.summary,
                self.filter,
                self.rows,
            ],
            scroll=ft.ScrollMode.AUTO,
            expand=True,
            spacing=8,
        )

    async def _load(self) -> None:
        rows, summary = await self.app.io(self.presenter.load)
        self.count.value = t("review.count", n=len(rows))
        self.summary.content = self._summary(summary)
        self.filter.controls = self._chips()
        self.rows.controls = [self._row(r) for r in rows] or [
            ft.Container(
                ft.Text(t("review.none_in_state") if self.presenter.state else t("review.none")),
                padding=20,
            )
        ]

    def _chips(self) -> list[ft.Control]:
        """One chip per state (and "all"); choosing one shows only that state."""

        def chooser(state: str | None) -> Any:
            async def choose(e: Any) -> None:
                self.presenter.state = state
                await self._load()
                self.app.page.update()

            return self.app.handler(choose)

        return [
            ft.Chip(
                label=ft.Text(text),
                selected=self.presenter.state == state,
                show_checkmark=False,
                on_select=chooser(state),
            )
            for state, text in ReviewListPresenter.state_choices()
        ]

    def _summary(self, c: Compliance) -> ft.Control:
        counts = ft.Row(
            [
                ft.Container(
                    ft.Column(
                        [
                            ft.Text(label, size=12, color=ft.Colors.ON_SURFACE_VARIANT),
                            ft.Text(str(n), size=22, weight=ft.FontWeight.BOLD),
                        ],
                        spacing=0,
                        tight=True,
                    ),
                    padding=ft.Padding.symmetric(horizontal=10, vertical=4),
                    bgcolor=ft.Colors.SURFACE_CONTAINER_LOW,
                    border_radius=8,
                )
                for label, n in c.counts
            ],
            wrap=True,
            spacing=8,
            run_spacing=8,
        )
        means = ft.ResponsiveRow(
            [
                ft.Container(
                    ft.Row([ft.Text(label, size=13, expand=True), ft.Text(value, size=13)]),
                    col={"xs": 12, "md": 6, "xl": 4},
                )
                for label, value in c.sections
            ],
            run_spacing=2,
        )
        return card(
            section(t("review.compliance")),
            ft.Text(t("review.compliance_line", compliant=c.compliant, wards=c.wards)),
            counts,
            ft.Text(t("review.section_means"), weight=ft.FontWeight.W_500),
            means if c.sections else ft.Text("—"),
        )

    def _row(self, row: ReviewRow) -> ft.Control:
        async def open_review(e: Any, audit_id: str = row.audit_id) -> None:
            await self.app.go(f"{REVIEWS_ROUTE}/{audit_id}")

        return ft.Container(
            ft.ListTile(
                leading=ft.Icon(ft.Icons.RATE_REVIEW_OUTLINED, color=ft.Colors.PRIMARY),
                title=ft.Text(row.ward_name, weight=ft.FontWeight.W_600),
                subtitle=ft.Text(
                    f"{row.auditor or '—'} · {t('review.submitted')}: {row.submitted}", size=12
                ),
                trailing=ft.Row(
                    [
                        ft.Text(f"{t('audit.score')}: {row.score}", size=12),
                        state_chip(row.state, row.state_label),
                    ],
                    spacing=8,
                    tight=True,
                ),
                on_click=self.app.handler(open_review),
            ),
            bgcolor=ft.Colors.SURFACE_CONTAINER_LOWEST,
            border_radius=6,
        )


class ReviewDetailScreen:
    def __init__(self, app: AppContext, audit_id: str) -> None:
        self.app = app
        self.audit_id = audit_id
        self.presenter: ReviewDetailPresenter | None = None
        self.column = ft.Column(scroll=ft.ScrollMode.AUTO, expand=True, spacing=10)

    async def build(self) -> ft.Control:
        name = await self.app.io(user_name, self.app.store)
        self.presenter = ReviewDetailPresenter(
            self.app.store, self.audit_id, workspaces(self.app.role).review_role, name
        )
        await self._load()
        return self.column

    async def _load(self) -> None:
        assert self.presenter is not None
        state = await self.app.io(self.presenter.load)
        self.column.controls = self._controls(state)

    def _controls(self, s: ReviewState) -> list[ft.Control]:
        async def back(e: Any) -> None:
            await self.app.go(REVIEWS_ROUTE)

        header = ft.Row(
            [
                ft.IconButton(
                    ft.Icons.ARROW_BACK, tooltip=t("audit.back"), on_click=self.app.handler(back)
                ),
                ft.Text(s.ward_name, size=20, weight=ft.FontWeight.BOLD),
                state_chip(s.audit.review_state, s.state_label),
            ],
            wrap=True,
            vertical_alignment=ft.CrossAxisAlignment.CENTER,
        )
        facts = facts_grid(s.facts, per_row_lg=4, size=14, selectable=False)
        overview = ft.Row(
            [
                score_badge(t("audit.total"), s.total, s.compliant),
                ft.Text(
                    t("audit.compliant") if s.compliant else t("audit.not_compliant"),
                    color=ft.Colors.GREEN_800 if s.compliant else ft.Colors.RED_700,
                ),
                ft.Text(t("review.photo_total", n=s.photo_count)),
            ],
            spacing=20,
            wrap=True,
        )
        controls: list[ft.Control] = [header, facts, overview]
        controls += [ft.Text(w, size=12, color=ft.Colors.AMBER_900) for w in s.warnings[:6]]
        controls += [section(t("review.decisions")), self._decisions(s)]
        if s.comments:
            controls.append(
                card(section(t("audit.comments")), *[ft.Text(c, size=13) for c in s.comments])
            )
        for view, lines in s.sections:
            controls.append(
                section(f"{view.label} · {view.progress} · {t('audit.score')} {view.score}")
            )
            controls.append(ft.Column([self._line(line) for line in lines], spacing=2))
        controls.append(ft.Container(height=24))
        return controls

    @staticmethod
    def _line(line: Any) -> ft.Control:
        details = [
            x
            for x in (
                t("audit.photos", n=line.photos) if line.photos else "",
                line.note,
                t("audit.item_score", score=line.score) if line.score else "",
            )
            if x
        ]
        return ft.Container(
            ft.Row(
                [
                    ft.Column(
                        [
                            ft.Text(line.label + (" *" if line.required else ""), size=13),
                            *(
                                [
                                    ft.Text(
                                        " · ".join(details),
                                        size=12,
                                        color=ft.Colors.ON_SURFACE_VARIANT,
                                    )
                                ]
                                if details
                                else []
                            ),
                        ],
                        spacing=0,
                        expand=True,
                    ),
                    ft.Text(
                        t("review.changed", old=line.was, new=line.answer)
                        if line.was is not None else line.answer,
                        size=13, weight=ft.FontWeight.W_600,
                        color=ft.Colors.BLUE_800 if line.was is not None else None,
                    ),
                ],
                vertical_alignment=ft.CrossAxisAlignment.START,
            ),
            padding=ft.Padding.symmetric(horizontal=10, vertical=6),
            bgcolor=ft.Colors.SURFACE_CONTAINER_LOWEST,
            border_radius=6,
        )

    def _decisions(self, s: ReviewState) -> ft.Control:
        """The comment box and one button per decision the role may make, on the page itself
        (no dialog: the supervisor reads the answers while writing the comment)."""
        if not s.decisions:
            return ft.Text(t("review.no_decisions"), italic=True)
        comment = ft.TextField(label=t("review.comment"), multiline=True, min_lines=2, max_lines=5)
        error = ft.Text("", color=ft.Colors.ERROR, visible=False)

        def decider(decision: Decision) -> Any:
            async def decide(e: Any) -> None:
                assert self.presenter is not None
                if self.presenter.needs_confirmation(decision.target):
                    concerns = await self.app.io(self.presenter.approval_concerns)
                    if concerns:
                        self._confirm_approval(concerns, lambda: apply(decision))
                        return
                await apply(decision)

            return self.app.handler(decide)

        async def apply(decision: Decision) -> None:
            assert self.presenter is not None
            problem = await self.app.io(self.presenter.decide, decision.target, comment.value or "")
            if problem:
                error.value, error.visible = problem, True
                self.app.page.update()
                return
            await self._load()
            await self.app.refresh_sync()
            self.app.toast(t("review.decided", state=t(f"audit.state.{decision.target}")))

        buttons = ft.Row(
            [ft.Button(d.label, on_click=decider(d)) for d in s.decisions],
            wrap=True,
            spacing=8,
            run_spacing=8,
        )
        return ft.Container(
            ft.Column(
                [comment, error, buttons],
                spacing=8,
                tight=True,
                horizontal_alignment=ft.CrossAxisAlignment.STRETCH,
            ),
            width=720,
        )

    def _confirm_approval(self, concerns: list[str], approve: Any) -> None:
        """Approving a failing audit: its missing evidence and failing items first."""

        async def confirm(e: Any) -> None:
            close(dialog)
            await approve()

        async def dismiss(e: Any) -> None:
            close(dialog)

        dialog = ft.AlertDialog(
            modal=True,
            title=ft.Text(t("review.approve_title"), size=18),
            content=ft.Column(
                [
                    ft.Text(t("review.approve_concerns")),
                    *[ft.Text(c, size=13, color=ft.Colors.AMBER_900) for c in concerns],
                ],
                tight=True,
                width=480,
                spacing=6,
            ),
            actions=[
                ft.TextButton(t("detail.cancel"), on_click=self.app.handler(dismiss)),
                ft.Button(t("review.approve_anyway"), on_click=self.app.handler(confirm)),
            ],
        )
        self.app.page.show_dialog(dialog)


async def build_route(app: AppContext, parts: list[str]) -> ft.Control:
    """`/reviews` and `/reviews/<audit id>`."""
    if len(parts) == 2:
        return await ReviewDetailScreen(app, parts[1]).build()
    return await ReviewListScreen(app).build()
