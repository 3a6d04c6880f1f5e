"""Bulk review: the audits waiting for a decision, each with what fails or is missing and, when
resubmitted, what changed since changes were requested; select several and approve together
after reading what the selection fails.

Renders `bulk_review_models`; store work goes through `app.io`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import flet as ft

from app.domain.calendar import VN_TZ
from app.i18n import t
from app.views.audit_models import user_name, workspaces
from app.views.bulk_review_models import (
    BulkReviewPresenter,
    Change,
    Pending,
    selection_findings,
)
from app.views.dialogs import close
from app.views.dossier_views import heading

if TYPE_CHECKING:
    from app.views.context import AppContext

BULK_ROUTE = "/oversight/review"


class BulkReviewScreen:
    def __init__(self, app: AppContext) -> None:
        self.app = app
        self.rows: list[Pending] = []
        self.selected: set[str] = set()
        # desktop first: two or three audits side by side on a wide screen, stacked on a tablet
        self.list = ft.ResponsiveRow(spacing=8, run_spacing=8)
        self.approve = ft.FilledButton(t("bulk.approve", n=0), disabled=True,
                                       on_click=self._confirm, key="bulk-approve")
        self.note = ft.Text("", color=ft.Colors.GREEN_800)
        self.presenter: BulkReviewPresenter | None = None
        self._dialog: ft.AlertDialog | None = None

    async def build(self) -> ft.Control:
        name = await self.app.io(user_name, self.app.store)
        role = workspaces(self.app.role).review_role or "supervisor"
        self.presenter = BulkReviewPresenter(self.app.store, name, role)
        await self._load()
        return ft.Column(
            [
                ft.Row([heading(t("bulk.title")), self.approve, self.note], wrap=True,
                       spacing=16, vertical_alignment=ft.CrossAxisAlignment.CENTER),
                ft.Text(t("bulk.hint"), color=ft.Colors.ON_SURFACE_VARIANT),
                self.list,
            ],
            scroll=ft.ScrollMode.AUTO, expand=True, spacing=10,
        )

    async def _load(self) -> None:
        assert self.presenter is not None
        self.rows = await self.app.io(self.presenter.load)
        self.selected &= {p.audit_id for p in self.rows}
        self.list.controls = [self._row(p) for p in self.rows] or [ft.Text(t("bulk.none"))]
        self._count()

    def _count(self) -> None:
        self.approve.content = t("bulk.approve", n=len(self.selected))
        self.approve.disabled = not self.selected

    def _row(self, p: Pending) -> ft.Control:
        async def toggle(e: Any) -> None:
            (self.selected.add if e.control.value else self.selected.discard)(p.audit_id)
            self._count()
            self.approve.update()

        async def open_audit(e: Any) -> None:
            await self.app.go(f"/reviews/{p.audit_id}")

        findings = [ft.Text(f"× {label}", color=ft.Colors.RED_700, size=13)
                    for _, label in p.failing[:6]]
        findings += [ft.Text(f"? {label}", color=ft.Colors.AMBER_900, size=13)
                     for _, label in p.missing[:6]]
        if len(p.failing) + len(p.missing) > 12:
            findings.append(ft.Text(t("bulk.more", n=len(p.failing) + len(p.missing) - 12)))
        body: list[ft.Control] = [
            ft.Row(
                [
                    ft.Checkbox(label=f"{p.ward} · {p.auditor}", value=p.audit_id in self.selected,
                                on_change=toggle, key=f"pick-{p.ward_code}"),
                    ft.Text(t("bulk.score", score=f"{p.score:.1f}"),
                            weight=ft.FontWeight.BOLD),
                    ft.Text(t("report.yes") if p.compliant else t("report.no"),
                            color=ft.Colors.GREEN_800 if p.compliant else ft.Colors.RED_700),
                    ft.TextButton(t("oversight.open_audit"), on_click=open_audit),
                ],
                wrap=True, spacing=12,
            ),
            *findings,
        ]
        if p.resubmitted:
            body.append(ft.Text(
                t("bulk.changed_since",
                  day=p.requested_at.astimezone(VN_TZ).strftime("%d/%m/%Y %H:%M")
                  if p.requested_at else "", n=len(p.changes)),
                weight=ft.FontWeight.W_600, color=ft.Colors.BLUE_800))
            body += [ft.Text(f"• {c.label}: {_change_text(c)}", size=13,
                             key=f"change-{p.ward_code}-{c.item_id}")
                     for c in p.changes[:12]]
        return ft.Container(
            ft.Semantics(content=ft.Column(body, spacing=2, tight=True),
                         identifier=f"pending-{p.ward_code}", container=True),
            padding=10, border=ft.Border.all(1, ft.Colors.OUTLINE_VARIANT), border_radius=8,
            col={"xs": 12, "xl": 6, "xxl": 4},
        )

    async def _confirm(self, e: Any) -> None:
        lines = selection_findings(self.rows, self.selected)
        dialog = ft.AlertDialog(
            modal=True,
            title=ft.Text(t("bulk.confirm_title", n=len(self.selected))),
            content=ft.Column(
                [ft.Text(t("bulk.confirm_findings") if lines else t("bulk.confirm_clean"))]
                + [ft.Text(line, size=13) for line in lines[:40]],
                tight=True, scroll=ft.ScrollMode.AUTO, height=320, width=560,
            ),
            actions=[
                ft.TextButton(t("bulk.cancel"), on_click=lambda _: close(dialog)),
                ft.FilledButton(t("bulk.approve", n=len(self.selected)), on_click=self._approve,
                                key="bulk-confirm"),
            ],
        )
        self._dialog = dialog
        self.app.page.show_dialog(dialog)

    async def _approve(self, e: Any) -> None:
        assert self.presenter is not None
        if self._dialog is not None:
            close(self._dialog)
        chosen = sorted(self.selected)
        outcome = await self.app.io(self.presenter.approve_many, chosen)
        self.selected.clear()
        self.note.value = t("bulk.done", n=len(outcome.done), refused=len(outcome.refused))
        await self._load()
        self.app.page.update()


def _shown(value: Any) -> str:
    if value is True:
        return t("bulk.yes")
    if value is False:
        return t("bulk.no")
    return "—" if value is None else str(value)


def _change_text(change: Change) -> str:
    """old and new ("trước …, nay …": the web client's font has no arrow), or only the new
    value when the request did not record the old one."""
    new = change.value_text or _shown(change.value)
    if not change.old_known:
        return new
    return t("review.changed", old=change.old_text or _shown(change.old), new=new)
