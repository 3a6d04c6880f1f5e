"""The IT auditor's screens: the wards in scope with their audit state, and the audit form.

Each screen renders a presenter from `audit_models` and forwards actions to it; store work goes
through `app.io` (off the UI loop). Photos come from the app's camera where there is one, else
from the file picker; the position from the app's position provider where there is one, else
typed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import flet as ft

from app.i18n import t
from app.views.audit_models import (
    AUDITS_ROUTE,
    OVERSIGHT_ROUTE,
    REVIEWS_ROUTE,
    AuditFormPresenter,
    AuditWardsPresenter,
    FormState,
    ItemView,
    WardRow,
    user_name,
    workspaces,
)
from app.views.device_files import DeviceFile, camera_photo, picked_files
from app.views.dialogs import ask, close
from app.views.dossier_views import heading, section
from app.views.position import PositionProvider

if TYPE_CHECKING:
    from app.views.context import AppContext

STATE_COLORS = {
    "not_started": ft.Colors.SURFACE_CONTAINER_HIGH,
    "draft": ft.Colors.BLUE_50,
    "submitted": ft.Colors.INDIGO_50,
    "has_issues": ft.Colors.AMBER_100,
    "changes_requested": ft.Colors.ORANGE_100,
    "approved": ft.Colors.GREEN_100,
    "rejected": ft.Colors.RED_100,
}
IMAGE_EXTENSIONS = ["jpg", "jpeg", "png", "heic", "webp"]


def role_destinations(role: str | None) -> tuple[tuple[str, str, Any, Any], ...]:
    """The audit and review destinations a role has (same shape as `shell.DESTINATIONS`)."""
    from app.views.shell import ROLE_DESTINATIONS

    ws = workspaces(role)
    wanted = {AUDITS_ROUTE: ws.auditor, REVIEWS_ROUTE: ws.reviewer, OVERSIGHT_ROUTE: ws.reviewer}
    return tuple(d for d in ROLE_DESTINATIONS if wanted[d[0]])


def state_chip(state: str, label: str) -> ft.Control:
    return ft.Container(
        ft.Text(label, size=12),
        bgcolor=STATE_COLORS.get(state, ft.Colors.SECONDARY_CONTAINER),
        padding=ft.Padding.symmetric(horizontal=8, vertical=3),
        border_radius=10,
    )


def score_badge(label: str, value: str, good: bool | None = None) -> ft.Control:
    color = None if good is None else (ft.Colors.GREEN_800 if good else ft.Colors.RED_700)
    return ft.Column(
        [
            ft.Text(label, size=12, color=ft.Colors.ON_SURFACE_VARIANT),
            ft.Text(value, size=26, weight=ft.FontWeight.BOLD, color=color),
        ],
        spacing=0,
        tight=True,
    )


def card(*controls: ft.Control, padding: int = 12) -> ft.Control:
    return ft.Card(
        semantic_container=False,
        content=ft.Container(
            ft.Column(
                list(controls),
                spacing=8,
                tight=True,
                horizontal_alignment=ft.CrossAxisAlignment.STRETCH,
            ),
            padding=padding,
        ),
    )


# ---------------------------------------------------------------------------------------------
# Wards


class AuditWardsScreen:
    def __init__(self, app: AppContext) -> None:
        self.app = app
        self.presenter = AuditWardsPresenter(app.store)
        self.search = ft.TextField(
            label=t("audit.search"),
            prefix_icon=ft.Icons.SEARCH,
            on_submit=app.handler(self._reload),
            on_change=app.handler(self._reload),
            expand=True,
        )
        self.rows = ft.ListView(expand=True, spacing=2)
        self.count = ft.Text("", color=ft.Colors.ON_SURFACE_VARIANT)

    async def build(self) -> ft.Control:
        await self._load()
        return ft.Column(
            [
                ft.Row(
                    [heading(t("audit.title")), self.count],
                    wrap=True,
                    spacing=16,
                    vertical_alignment=ft.CrossAxisAlignment.END,
                ),
                ft.Row([self.search]),
                self.rows,
            ],
            expand=True,
            spacing=8,
        )

    async def _load(self) -> None:
        rows = await self.app.io(self.presenter.load, self.search.value or "")
        self.count.value = t("audit.ward_count", n=len(rows))
        self.rows.controls = [self._row(r) for r in rows] or [
            ft.Container(ft.Text(t("audit.no_wards")), padding=20)
        ]

    async def _reload(self, e: Any) -> None:
        await self._load()
        self.app.page.update()

    def _row(self, row: WardRow) -> ft.Control:
        async def open_audit(e: Any, code: str = row.ward_code) -> None:
            name = await self.app.io(user_name, self.app.store)
            audit_id = await self.app.io(self.presenter.open, code, name)
            await self.app.go(f"{AUDITS_ROUTE}/{audit_id}")

        return ft.Container(
            ft.ListTile(
                leading=ft.Icon(ft.Icons.FACT_CHECK_OUTLINED, color=ft.Colors.PRIMARY),
                title=ft.Text(row.ward_name, weight=ft.FontWeight.W_600),
                subtitle=ft.Text(f"{t('audit.ward_code')}: {row.ward_code}", size=12),
                trailing=ft.Row(
                    [
                        ft.Text(f"{t('audit.score')}: {row.score}", size=12),
                        state_chip(row.state, row.state_label),
                    ],
                    spacing=8,
                    tight=True,
                ),
                on_click=self.app.handler(open_audit),
            ),
            bgcolor=ft.Colors.SURFACE_CONTAINER_LOWEST,
            border_radius=6,
        )


# ---------------------------------------------------------------------------------------------
# The audit form


class AuditFormScreen:
    def __init__(self, app: AppContext, audit_id: str) -> None:
        self.app = app
        self.presenter = AuditFormPresenter(app.store, audit_id)
        self.position: PositionProvider = getattr(app, "position", None) or PositionProvider()
        self.column = ft.Column(scroll=ft.ScrollMode.AUTO, expand=True, spacing=10)
        self.state: FormState | None = None
        self.thumbs: dict[str, bytes | None] = {}  # sha256 -> the photo, for this section

    async def build(self) -> ft.Control:
        await self._load()
        return self.column

    async def _load(self) -> None:
        self.state = await self.app.io(self.presenter.load)
        shown = [p for i in self.state.items for p in i.photo_ids]
        self.thumbs = await self.app.io(lambda: {p: self.presenter.photo(p) for p in shown})
        self.column.controls = self._controls(self.state)

    async def _refresh(self) -> None:
        await self._load()
        self.app.page.update()

    # ---- layout --------------------------------------------------------------------------

    def _controls(self, s: FormState) -> list[ft.Control]:
        async def back(e: Any) -> None:
            await self.app.go(AUDITS_ROUTE)

        header = ft.Row(
            [
                ft.IconButton(
                    ft.Icons.ARROW_BACK, tooltip=t("audit.back"), on_click=self.app.handler(back)
                ),
                ft.Text(s.ward_name, size=20, weight=ft.FontWeight.BOLD),
                state_chip(s.audit.review_state, s.state_label),
                ft.Text(
                    f"{t('audit.total')}: {s.total}",
                    size=14,
                    weight=ft.FontWeight.W_600,
                    color=ft.Colors.GREEN_800 if s.compliant else ft.Colors.RED_700,
                ),
                *self._submit_button(s),
            ],
            wrap=True,
            vertical_alignment=ft.CrossAxisAlignment.CENTER,
        )
        body = ft.Column(
            [
                self._section_picker(s),
                section(f"{s.section.label} · {s.section.progress}"),
                *[self._item(i, s.editable) for i in s.items],
                self._prev_next(s),
            ],
            spacing=8,
            horizontal_alignment=ft.CrossAxisAlignment.STRETCH,
        )
        side = ft.Column(
            [self._summary(s), self._position_card(s), self._notes_card(s)],
            spacing=8,
            horizontal_alignment=ft.CrossAxisAlignment.STRETCH,
        )
        # Items beside the score panel on a desktop; below one another on a tablet (the
        # breakpoints follow the window, so a resize needs no rebuild).
        layout = ft.ResponsiveRow(
            [
                ft.Container(body, col={"xs": 12, "lg": 8}),
                ft.Container(side, col={"xs": 12, "lg": 4}),
            ],
            vertical_alignment=ft.CrossAxisAlignment.START,
            spacing=16,
            run_spacing=12,
        )
        controls: list[ft.Control] = [header]
        if not s.editable:
            controls.append(ft.Text(t("audit.read_only"), italic=True))
        if s.comments:
            controls.append(
                card(
                    section(t("audit.comments")),
                    *[ft.Text(line, size=13) for line in s.comments],
                )
            )
        return [*controls, layout, ft.Container(height=24)]

    def _section_picker(self, s: FormState) -> ft.Control:
        def chooser(index: int) -> Any:
            async def choose(e: Any) -> None:
                self.presenter.go_section(index)
                await self._refresh()

            return self.app.handler(choose)

        buttons: list[ft.Control] = []
        for i, sec in enumerate(s.sections):
            text = f"{sec.label} · {sec.answered}/{sec.total}"
            kind = ft.FilledButton if i == s.section_index else ft.OutlinedButton
            buttons.append(kind(text, on_click=chooser(i)))
        return ft.Row(buttons, wrap=True, spacing=6, run_spacing=6)

    def _prev_next(self, s: FormState) -> ft.Control:
        def mover(step: int) -> Any:
            async def move(e: Any) -> None:
                self.presenter.go_section(s.section_index + step)
                await self._refresh()

            return self.app.handler(move)

        controls: list[ft.Control] = []
        if s.section_index > 0:
            controls.append(
                ft.OutlinedButton(t("audit.prev"), icon=ft.Icons.CHEVRON_LEFT, on_click=mover(-1))
            )
        if s.section_index < len(s.sections) - 1:
            controls.append(
                ft.OutlinedButton(t("audit.next"), icon=ft.Icons.CHEVRON_RIGHT, on_click=mover(1))
            )
        return ft.Row(controls, spacing=8)

    def _summary(self, s: FormState) -> ft.Control:
        scores = ft.Column(
            [
                ft.Row(
                    [ft.Text(sec.label, size=13, expand=True), ft.Text(sec.score, size=13)],
                )
                for sec in s.sections
            ],
            spacing=2,
        )
        parts: list[ft.Control] = [
            ft.Row(
                [
                    score_badge(t("audit.total"), s.total, s.compliant),
                    ft.Text(
                        t("audit.compliant") if s.compliant else t("audit.not_compliant"),
                        color=ft.Colors.GREEN_800 if s.compliant else ft.Colors.RED_700,
                    ),
                ],
                spacing=16,
                wrap=True,
            ),
            scores,
        ]
        if s.warnings:
            parts += [ft.Text(w, size=12, color=ft.Colors.AMBER_900) for w in s.warnings[:6]]
        if s.editable or s.blockers:
            parts += [ft.Text(b, size=12, color=ft.Colors.RED_700) for b in s.blockers]
        return card(*parts)

    def _submit_button(self, s: FormState) -> list[ft.Control]:
        """Submit sits in the header, beside the score: reachable without scrolling through
        every question. It opens the summary; the summary sends."""
        if not s.editable:
            return []
        return [
            ft.Button(
                t("audit.submit"),
                icon=ft.Icons.SEND,
                on_click=self.app.handler(self._confirm_submit),
            )
        ]

    # ---- items ---------------------------------------------------------------------------

    def _item(self, item: ItemView, editable: bool) -> ft.Control:
        title = item.label + (" *" if item.required else "")
        lines: list[ft.Control] = [ft.Text(title, weight=ft.FontWeight.W_500)]
        control = self._control(item, editable)
        if item.kind == "number" and item.target:
            target = ft.Text(
                t("audit.target", target=item.target, unit=item.unit),
                size=12,
                color=ft.Colors.ON_SURFACE_VARIANT,
            )
            control = ft.Row(
                [control, target],
                wrap=True,
                spacing=12,
                vertical_alignment=ft.CrossAxisAlignment.CENTER,
            )
        lines.append(control)
        if item.problem:
            lines.append(ft.Text(item.problem, size=12, color=ft.Colors.RED_700))
        if item.refused and editable:
            lines.append(
                ft.Row(
                    [
                        ft.TextButton(
                            t("audit.discard"),
                            icon=ft.Icons.UNDO,
                            on_click=self.app.handler(self._discarder(item)),
                        )
                    ]
                )
            )
        if item.photo_ids:
            lines.append(self._thumbnails(item, editable))
        if item.asks_position:
            lines.append(self._item_position(item, editable))
        extras: list[ft.Control] = []
        if item.takes_photos:
            extras.append(ft.Text(t("audit.photos", n=item.photos), size=12))
            if editable:
                extras += self._photo_buttons(item)
        if item.kind != "text" and (editable or item.note):
            extras.append(
                ft.TextButton(
                    item.note or t("audit.add_note"),
                    icon=ft.Icons.NOTES,
                    on_click=self.app.handler(self._note_opener(item)),
                    disabled=not editable,
                )
            )
        if item.score:
            extras.append(ft.Text(t("audit.item_score", score=item.score), size=12))
        if extras:
            lines.append(ft.Row(extras, wrap=True, spacing=8, run_spacing=4))
        return ft.Semantics(
            identifier=f"item-{item.id}",
            container=True,
            content=ft.Container(
                ft.Column(lines, spacing=4, tight=True),
                padding=ft.Padding.symmetric(horizontal=12, vertical=8),
                bgcolor=ft.Colors.SURFACE_CONTAINER_LOWEST,
                border_radius=6,
            ),
        )

    def _control(self, item: ItemView, editable: bool) -> ft.Control:
        if item.kind == "yes_no":
            options = [(True, t("audit.yes")), (False, t("audit.no"))]
            return self._choices(item, options, editable)
        if item.kind == "choice":
            return self._choices(item, list(item.options), editable)
        if item.kind == "number":
            field = ft.TextField(
                label=t("audit.value", unit=item.unit),
                value=item.value_text,
                width=220,
                keyboard_type=ft.KeyboardType.NUMBER,
                disabled=not editable,
                # A refused entry stays as typed, marked; the range is always in sight.
                error=t("audit.refused_mark") if item.refused else None,
                helper=None if item.refused else item.range,
            )
            save = self.app.handler(self._saver(item, lambda v: v))
            field.on_submit = field.on_blur = save
            return field
        if item.kind == "text":
            field = ft.TextField(
                label=t("audit.text_answer"),
                value=item.value if isinstance(item.value, str) else "",
                multiline=True,
                max_lines=4,
                disabled=not editable,
            )
            field.on_blur = self.app.handler(self._saver(item, lambda v: v))
            return field
        return ft.Container()  # a photo item: the photos are the answer

    def _saver(self, item: ItemView, convert: Any) -> Any:
        async def save(e: Any) -> None:
            raw = convert(e.control.value)
            if item.kind == "number" and raw == item.value_text:
                return  # left the field unchanged
            # The presenter keeps a refused entry on screen with its reason.
            await self.app.io(self.presenter.answer, item.id, raw)
            await self._refresh()

        return save

    def _choices(
        self, item: ItemView, options: list[tuple[Any, str]], editable: bool
    ) -> ft.Control:
        """One button per answer, the chosen one filled and ticked: a finger-sized target
        (48 dp in the tablet theme) where a radio is 40."""

        def chooser(value: Any) -> Any:
            async def choose(e: Any) -> None:
                await self.app.io(self.presenter.answer, item.id, value)
                await self._refresh()

            return self.app.handler(choose)

        buttons: list[ft.Control] = []
        for value, label in options:
            chosen = item.value is not None and item.value == value
            kind = ft.FilledTonalButton if chosen else ft.OutlinedButton
            buttons.append(
                kind(
                    label,
                    icon=ft.Icons.CHECK if chosen else None,
                    disabled=not editable,
                    on_click=chooser(value),
                )
            )
        return ft.Row(buttons, wrap=True, spacing=8, run_spacing=8)

    def _discarder(self, item: ItemView) -> Any:
        async def discard(e: Any) -> None:
            self.presenter.discard_refused(item.id)
            await self._refresh()

        return discard

    # ---- photos and the item's position ------------------------------------------------

    def _thumbnails(self, item: ItemView, editable: bool) -> ft.Control:
        tiles: list[ft.Control] = []
        for n, sha in enumerate(item.photo_ids, start=1):
            data = self.thumbs.get(sha)
            picture: ft.Control = (
                ft.Image(src=data, width=72, height=72, fit=ft.BoxFit.COVER, border_radius=6)
                if data
                else ft.Icon(ft.Icons.IMAGE_NOT_SUPPORTED_OUTLINED, size=32)
            )
            tiles.append(
                ft.Semantics(
                    label=t("audit.photo_open", n=n),
                    button=True,
                    content=ft.Container(
                        picture,
                        width=72,
                        height=72,
                        alignment=ft.Alignment.CENTER,
                        bgcolor=ft.Colors.SURFACE_CONTAINER_HIGH,
                        border_radius=6,
                        on_click=self.app.handler(self._photo_opener(item, sha, n, editable)),
                    ),
                )
            )
        return ft.Row(tiles, wrap=True, spacing=8, run_spacing=8)

    def _photo_opener(self, item: ItemView, sha: str, n: int, editable: bool) -> Any:
        async def open_photo(e: Any) -> None:
            data = self.thumbs.get(sha)
            body: ft.Control = (
                ft.Image(src=data, fit=ft.BoxFit.CONTAIN, width=560, height=420)
                if data
                else ft.Text(t("audit.photo_not_here"))
            )

            async def remove(e: Any) -> None:
                close(dialog)
                problem = await self.app.io(self.presenter.remove_photo, item.id, sha)
                await self._refresh()
                self.app.toast(problem or t("audit.photo_removed"))  # after the repaint

            async def dismiss(e: Any) -> None:
                close(dialog)

            actions: list[ft.Control] = [
                ft.TextButton(t("audit.close"), on_click=self.app.handler(dismiss))
            ]
            if editable:
                actions.insert(
                    0,
                    ft.OutlinedButton(
                        t("audit.photo_remove", n=n),
                        icon=ft.Icons.DELETE_OUTLINE,
                        on_click=self.app.handler(remove),
                    ),
                )
            dialog = ft.AlertDialog(
                modal=True,
                title=ft.Text(f"{item.label} · {t('audit.photo_open', n=n)}", size=16),
                content=body,
                actions=actions,
            )
            self.app.page.show_dialog(dialog)

        return open_photo

    def _item_position(self, item: ItemView, editable: bool) -> ft.Control:
        async def locate(e: Any) -> None:
            found = await self.position.locate()
            if found is None:
                self.app.toast(t("audit.no_fix"))
                return
            problem = await self.app.io(self.presenter.set_item_position, item.id, found)
            self.app.toast(problem or t("audit.position_saved"))
            await self._refresh()

        parts: list[ft.Control] = [
            ft.Icon(ft.Icons.PLACE_OUTLINED, size=18),
            ft.Text(f"{t('audit.item_position')}: {item.position}", size=12),
        ]
        if editable and self.position.available:
            parts.append(
                ft.OutlinedButton(
                    t("audit.item_locate"),
                    icon=ft.Icons.MY_LOCATION,
                    on_click=self.app.handler(locate),
                )
            )
        return ft.Row(parts, wrap=True, spacing=8, vertical_alignment=ft.CrossAxisAlignment.CENTER)

    def _note_opener(self, item: ItemView) -> Any:
        async def open_note(e: Any) -> None:
            note = ft.TextField(label=t("audit.note"), value=item.note, multiline=True, max_lines=4)
            error = ft.Text("", color=ft.Colors.ERROR)

            async def confirm(e: Any) -> None:
                problem = await self.app.io(self.presenter.note, item.id, note.value or "")
                if problem:
                    error.value = problem
                    self.app.page.update()
                    return
                close(dialog)
                await self._refresh()

            dialog = ask(self.app, item.label, [note, error], t("audit.save"), confirm, 16)

        return open_note

    def _photo_buttons(self, item: ItemView) -> list[ft.Control]:
        ready = item.answered or item.kind == "photo"
        buttons: list[ft.Control] = []
        if self.app.camera.available:
            buttons.append(
                ft.OutlinedButton(
                    t("audit.take_photo"),
                    icon=ft.Icons.CAMERA_ALT,
                    disabled=not ready,
                    on_click=self.app.handler(self._camera(item)),
                )
            )
        buttons.append(
            ft.OutlinedButton(
                t("audit.pick_photo"),
                icon=ft.Icons.ADD_PHOTO_ALTERNATE_OUTLINED,
                disabled=not ready,
                on_click=self.app.handler(self._picker(item)),
            )
        )
        return buttons

    def _camera(self, item: ItemView) -> Any:
        async def capture(e: Any) -> None:
            if photo := await camera_photo(self.app):
                await self._add_photo(item, photo)

        return capture

    def _picker(self, item: ItemView) -> Any:
        async def pick(e: Any) -> None:
            images = await picked_files(
                self.app,
                file_type=ft.FilePickerFileType.CUSTOM,
                allowed_extensions=IMAGE_EXTENSIONS,
            )
            for picked in images:
                await self._add_photo(item, picked)

        return pick

    async def _add_photo(self, item: ItemView, file: DeviceFile) -> None:
        problem = await self.app.io(
            self.presenter.add_photo, item.id, file.data, file.name, file.mime, file.taken_at
        )
        self.app.toast(problem or t("audit.photo_added", name=file.name))
        await self._refresh()

    # ---- position, notes, submit ---------------------------------------------------------

    def _position_card(self, s: FormState) -> ft.Control:
        current = s.audit.position or {}
        lat = ft.TextField(
            label=t("audit.lat"),
            value=f"{current['lat']:.6f}" if current else "",
            expand=True,
            disabled=not s.editable,
        )
        lon = ft.TextField(
            label=t("audit.lon"),
            value=f"{current['lon']:.6f}" if current else "",
            expand=True,
            disabled=not s.editable,
        )
        message = ft.Text("", size=12, color=ft.Colors.RED_700, visible=False)

        async def save(e: Any) -> None:
            problem = await self.app.io(
                self.presenter.set_typed_position, lat.value or "", lon.value or ""
            )
            if problem:
                message.value, message.visible = problem, True
                self.app.page.update()
                return
            self.app.toast(t("audit.position_saved"))
            await self._refresh()

        async def locate(e: Any) -> None:
            found = await self.position.locate()
            if found is None:
                message.value, message.visible = t("audit.no_fix"), True
                self.app.page.update()
                return
            await self.app.io(self.presenter.set_position, found)
            self.app.toast(t("audit.position_saved"))
            await self._refresh()

        parts: list[ft.Control] = [
            section(t("audit.position")),
            ft.Text(s.position, size=13),
        ]
        if s.editable:
            buttons: list[ft.Control] = [
                ft.OutlinedButton(t("audit.save_position"), on_click=self.app.handler(save))
            ]
            if self.position.available:
                buttons.insert(
                    0,
                    ft.Button(
                        t("audit.use_location"),
                        icon=ft.Icons.MY_LOCATION,
                        on_click=self.app.handler(locate),
                    ),
                )
            parts += [ft.Row([lat, lon], spacing=8), message, ft.Row(buttons, wrap=True)]
        return card(*parts)

    def _notes_card(self, s: FormState) -> ft.Control:
        notes = ft.TextField(
            label=t("audit.notes"),
            value=s.audit.notes,
            multiline=True,
            min_lines=2,
            max_lines=5,
            disabled=not s.editable,
        )

        async def save(e: Any) -> None:
            await self.app.io(self.presenter.set_notes, notes.value or "")
            self.app.toast(t("audit.notes_saved"))
            await self._refresh()

        parts: list[ft.Control] = [section(t("audit.notes")), notes]
        if s.editable:
            button = ft.OutlinedButton(t("audit.save_notes"), on_click=self.app.handler(save))
            parts.append(ft.Row([button]))
        return card(*parts)

    async def _confirm_submit(self, e: Any) -> None:
        """The summary of what is missing or warned, then a confirmation: one tap never
        sends an audit with warnings still showing."""
        summary = await self.app.io(self.presenter.submit_summary)
        lines: list[ft.Control] = []
        if summary.blockers:
            lines.append(ft.Text(t("audit.confirm_blocked"), weight=ft.FontWeight.W_600))
            lines += [ft.Text(b, size=13, color=ft.Colors.RED_700) for b in summary.blockers]
        if summary.warnings:
            lines.append(ft.Text(t("audit.confirm_warnings"), weight=ft.FontWeight.W_600))
            lines += [ft.Text(w, size=13, color=ft.Colors.AMBER_900) for w in summary.warnings]
        if not lines:
            lines.append(ft.Text(t("audit.confirm_clean")))

        async def send(e: Any) -> None:
            close(dialog)
            problem = await self.app.io(self.presenter.submit)
            await self._refresh()
            self.app.toast(problem or t("audit.submitted_ok"))  # after the repaint

        async def dismiss(e: Any) -> None:
            close(dialog)

        actions: list[ft.Control] = [
            ft.TextButton(t("detail.cancel"), on_click=self.app.handler(dismiss))
        ]
        if summary.can_confirm:
            label = "audit.confirm_send" if summary.warnings else "audit.confirm_send_clean"
            actions.append(ft.Button(t(label), icon=ft.Icons.SEND, on_click=self.app.handler(send)))
        dialog = ft.AlertDialog(
            modal=True,
            title=ft.Text(t("audit.confirm_title"), size=18),
            content=ft.Column(lines, tight=True, width=480, spacing=6),
            actions=actions,
        )
        self.app.page.show_dialog(dialog)


async def build_route(app: AppContext, parts: list[str]) -> ft.Control:
    """`/audits` and `/audits/<id>`."""
    if len(parts) == 2:
        return await AuditFormScreen(app, parts[1]).build()
    return await AuditWardsScreen(app).build()
