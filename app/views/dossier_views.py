"""Dossier screens: list with search and filters, intake form, detail, dashboard.

Each screen renders a presenter from `dossier_models` and forwards actions to it; store work goes
through `app.io` (off the UI loop).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import TYPE_CHECKING, Any

import flet as ft

from app.domain import reference
from app.domain.calendar import WorkingCalendar
from app.domain.status import Channel, Digitisation
from app.i18n import t
from app.storage import DossierQuery
from app.views.device_files import DeviceFile, camera_photo, picked_files
from app.views.dialogs import ask, close
from app.views.dossier_models import (
    Action,
    DetailState,
    DossierDetailPresenter,
    DossierListPresenter,
    DossierRow,
    FormLink,
    ListState,
    ReceiveForm,
    UnreadableRow,
    dashboard_tiles,
    digitisation_choices,
    digitisation_text,
    register_export,
)
from app.views.format import date_text, today_local
from app.views.handover import hand_over
from app.views.import_models import RegisterFileError, RegisterImport

if TYPE_CHECKING:
    from app.views.context import AppContext

SEARCH_DEBOUNCE_S = 0.3
FIRST_PAINT_ROWS = 18  # what a 1080-pixel-high window shows; the rest follow after the frame
OVERDUE_COLOR = ft.Colors.RED_700
OVERDUE_BG = ft.Colors.RED_50


async def calendar_for(app: AppContext) -> WorkingCalendar:
    """The store's working calendar, with the commune's make-up days and extra holidays, off the
    UI loop: the first one reads the holiday tables (~0.4 s); the store keeps it after that."""
    return await app.io(app.store.calendar.calendar)


async def warm_calendar(app: AppContext) -> None:
    await calendar_for(app)


def processing_text(days: int) -> str:
    return t("receive.processing_days", n=days) if days else t("receive.same_day")


def heading(text: str) -> ft.Text:
    return ft.Text(text, size=20, weight=ft.FontWeight.BOLD)


def section(text: str) -> ft.Text:
    return ft.Text(text, size=15, weight=ft.FontWeight.W_600)


def facts_grid(
    facts: list[tuple[str, str]], *, per_row_lg: int = 3, size: int = 15, selectable: bool = True
) -> ft.ResponsiveRow:
    """Label-over-value pairs: one column on a phone, two on a tablet, `per_row_lg` on desktop."""
    return ft.ResponsiveRow(
        [
            ft.Container(
                ft.Column(
                    [
                        ft.Text(label, size=12, color=ft.Colors.ON_SURFACE_VARIANT),
                        ft.Text(value, size=size, selectable=selectable),
                    ],
                    spacing=0,
                ),
                col={"xs": 12, "sm": 6, "lg": 12 // per_row_lg},
            )
            for label, value in facts
        ],
        run_spacing=8,
    )


def status_chip(text: str, overdue: bool = False) -> ft.Control:
    color = ft.Colors.RED_50 if overdue else ft.Colors.SECONDARY_CONTAINER
    return ft.Container(
        ft.Text(text, size=12, color=OVERDUE_COLOR if overdue else None),
        bgcolor=color,
        padding=ft.Padding.symmetric(horizontal=8, vertical=3),
        border_radius=10,
    )


# ---------------------------------------------------------------------------------------------
# List


class ListScreen:
    def __init__(self, app: AppContext, route: str = "/dossiers") -> None:
        self.app = app
        self.presenter = DossierListPresenter(app.store.dossiers, app.today)
        overdue_only = "overdue=1" in route.partition("?")[2].split("&")  # the dashboard's link
        self.presenter.filters.overdue = overdue_only
        h = app.handler
        self.search = ft.TextField(
            label=t("list.search"),
            prefix_icon=ft.Icons.SEARCH,
            on_change=h(self._search_changed),
            on_submit=h(self._reload),
            expand=True,
        )
        self.status = ft.Dropdown(
            label=t("filter.status"),
            options=[
                ft.DropdownOption(key=status_key(k), text=v)
                for k, v in self.presenter.status_choices()
            ],
            value=status_key(self.presenter.filters.status),
            on_select=h(self._filters_changed),
            width=260,
            dense=True,
            enable_filter=True,
            editable=True,  # typed filtering, and a labelled text box for screen readers
            menu_height=360,
        )
        # Its ~40 options are filled after the first frame (a lighter first paint).
        self.procedure = ft.Dropdown(
            label=t("filter.procedure"),
            options=[],
            value="",
            on_select=h(self._filters_changed),
            width=300,
            dense=True,
            enable_filter=True,
            editable=True,
            menu_height=360,
        )
        self.overdue = ft.Chip(
            label=t("filter.overdue"),
            on_select=h(self._chip_changed),
            leading=None,
            selected=overdue_only,
        )
        self.due_week = ft.Chip(label=t("filter.due_week"), on_select=h(self._chip_changed))
        self.count = ft.Text("", color=ft.Colors.ON_SURFACE_VARIANT)
        self.rows = app.scrolling(ft.ListView(expand=True, spacing=2))
        self.more = ft.TextButton(t("list.more"), visible=False, on_click=h(self._more))
        self._debounce: asyncio.Task | None = None
        self._rest: list[DossierRow] = []

    async def _export_register(self, e: Any) -> None:
        """ "Xuất sổ": the register (form 06) of this store's dossiers, handed over as a file."""
        done = await self.app.io(register_export, self.app.store, today_local())
        await self.app.file_picker.save_file(
            file_name=done.file_name, src_bytes=done.data, allowed_extensions=["xlsx"]
        )
        message = t("export.done", n=done.count, name=done.file_name)
        if done.kept_aside:
            message += ". " + t("export.kept_aside", n=done.kept_aside)
        self.app.toast(message)

    async def _import_register(self, e: Any) -> None:
        """ "Nhập sổ": a CSV or XLSX register picked from the device, imported chunk by chunk
        with the progress shown between them, then what was imported and each refused line."""
        files = await picked_files(
            self.app, file_type=ft.FilePickerFileType.CUSTOM, allowed_extensions=["csv", "xlsx"]
        )
        if not files:
            return
        picked = files[0]
        try:
            job = await self.app.io(RegisterImport.from_file, picked.data, picked.name)
        except RegisterFileError as exc:
            self.app.toast(t("import.refused_file", name=picked.name, reason=str(exc)))
            return
        bar = ft.ProgressBar(value=0, width=420)
        status = ft.Text(job.progress_text() if job.total else t("import.empty"))
        errors = ft.Column(spacing=2, scroll=ft.ScrollMode.AUTO, visible=False)
        dialog: ft.AlertDialog

        async def close_dialog(e: Any) -> None:
            close(dialog)

        done = ft.Button(t("import.close"), disabled=True, on_click=self.app.handler(close_dialog))
        dialog = ft.AlertDialog(
            modal=True,
            title=ft.Text(t("import.title")),
            content=ft.Column(
                [ft.Text(picked.name, weight=ft.FontWeight.W_500), bar, status, errors],
                tight=True,
                width=460,
            ),
            actions=[done],
        )
        self.app.page.show_dialog(dialog)
        for chunk in job.chunks():
            report = await self.app.io(self.app.store.dossiers.import_rows, chunk)
            job.add(chunk, report)
            bar.value, status.value = job.fraction, job.progress_text()
            self.app.page.update()
        bar.value = 1
        status.value = job.summary()
        lines = job.error_lines()
        errors.controls = [ft.Text(line, size=12, color=ft.Colors.ERROR) for line in lines]
        errors.height = min(240, 22 * len(lines))
        errors.visible = bool(lines)
        done.disabled = False
        await self._load()  # the list behind the dialog shows the imported dossiers
        self.app.page.update()

    async def build(self) -> ft.Control:
        await self._load()
        self.app.after_paint(self._finish_first_paint)
        self.app.after_paint(lambda: warm_calendar(self.app))  # for intake and supplements
        return ft.Column(
            [
                ft.Row(
                    [
                        heading(t("list.title")),
                        self.count,
                        ft.OutlinedButton(
                            t("import.action"),
                            icon=ft.Icons.UPLOAD_FILE,
                            on_click=self.app.handler(self._import_register),
                        ),
                        ft.OutlinedButton(
                            t("export.action"),
                            icon=ft.Icons.DOWNLOAD,
                            on_click=self.app.handler(self._export_register),
                        ),
                    ],
                    wrap=True,
                    spacing=16,
                    vertical_alignment=ft.CrossAxisAlignment.END,
                ),
                ft.Row([self.search]),
                ft.Row(
                    [self.status, self.procedure, self.overdue, self.due_week],
                    wrap=True,
                    spacing=8,
                    run_spacing=8,
                ),
                self.rows,
                self.more,
            ],
            expand=True,
            spacing=8,
        )

    async def _finish_first_paint(self) -> None:
        """After the first frame: the rows below the fold and the procedure filter's options."""
        self.procedure.options = [
            ft.DropdownOption(key=k or "", text=v) for k, v in self.presenter.procedure_choices()
        ]
        self.rows.controls.extend(self._row(r) for r in self._rest)
        self._rest = []
        self.app.page.update()

    async def _load(self, more: bool = False, first_paint: bool = True) -> None:
        state: ListState = await self.app.io(self.presenter.load, more)
        self.count.value = state.summary
        shown = state.rows[:FIRST_PAINT_ROWS] if first_paint else state.rows
        self._rest = state.rows[len(shown) :]
        kept_aside = [unreadable_tile(u) for u in state.unreadable]
        self.rows.controls = [*kept_aside, *(self._row(r) for r in shown)] or [
            ft.Container(ft.Text(t("list.empty")), padding=20)
        ]
        self.more.visible = state.has_more

    def _row(self, row: DossierRow) -> ft.Control:
        """A light row (a list tile with five texts and an icon): 50 of them paint at once."""

        async def open_detail(e: Any, dossier_id: str = row.id) -> None:
            await self.app.go(f"/dossiers/{dossier_id}")

        status = f"{row.status} · {t('list.overdue_badge')}" if row.overdue else row.status
        if row.sync_state == "rejected":  # kept on this device only: the server refused it
            status = f"{status} · {t('dossier.rejected')}"
        return ft.ListTile(
            leading=ft.Icon(
                ft.Icons.WARNING_AMBER if row.overdue else ft.Icons.DESCRIPTION_OUTLINED,
                color=OVERDUE_COLOR if row.overdue else ft.Colors.PRIMARY,
            ),
            title=ft.Text(row.applicant, weight=ft.FontWeight.W_600),
            subtitle=ft.Text(f"{row.code} · {row.procedure}", size=12, max_lines=2),
            trailing=ft.Column(
                [
                    ft.Text(
                        f"{t('field.appointment')}: {row.appointment}",
                        size=12,
                        color=OVERDUE_COLOR if row.overdue else None,
                    ),
                    status_chip(status, overdue=row.overdue),
                ],
                horizontal_alignment=ft.CrossAxisAlignment.END,
                alignment=ft.MainAxisAlignment.CENTER,
                spacing=2,
                tight=True,
            ),
            on_click=self.app.handler(open_detail),
            # A tinted tile marks the overdue ones; one rounded shape, no one-sided border.
            bgcolor=OVERDUE_BG if row.overdue else ft.Colors.SURFACE_CONTAINER_LOWEST,
            shape=ft.RoundedRectangleBorder(radius=6),
        )

    async def _refresh(self, more: bool = False) -> None:
        await self._load(more, first_paint=False)
        self.app.page.update()

    async def _reload(self, e: Any) -> None:
        self.presenter.filters.search = self.search.value or ""
        await self._refresh()

    async def _search_changed(self, e: Any) -> None:
        if self._debounce and not self._debounce.done():
            self._debounce.cancel()
        self._debounce = asyncio.create_task(self._debounced())

    async def _debounced(self) -> None:
        await asyncio.sleep(SEARCH_DEBOUNCE_S)
        await self.app.handler(self._reload)(None)  # errors shown, not lost in a bare task

    async def _filters_changed(self, e: Any) -> None:
        f = self.presenter.filters
        f.status = status_value(self.status.value)
        f.procedure_code = self.procedure.value or None
        await self._refresh()

    async def _chip_changed(self, e: Any) -> None:
        f = self.presenter.filters
        f.overdue, f.due_this_week = bool(self.overdue.selected), bool(self.due_week.selected)
        await self._refresh()

    async def _more(self, e: Any) -> None:
        await self._refresh(more=True)


def status_key(value: int | str | None) -> str:
    """The status dropdown's key for a filter value (None: every status)."""
    return "" if value is None else str(value)


def status_value(key: str | None) -> int | str | None:
    if not key:
        return None
    return int(key) if key.isdigit() else key


# ---------------------------------------------------------------------------------------------
# Intake


class ReceiveScreen:
    def __init__(self, app: AppContext) -> None:
        self.app = app
        self.form = ReceiveForm()
        h = app.handler
        self.proc_search = ft.TextField(
            label=t("receive.procedure_search"),
            prefix_icon=ft.Icons.SEARCH,
            expand=True,
            on_change=h(self._proc_search),
        )
        self.proc_results = ft.Column(spacing=0)
        # Names the query the list below answers: a debounced list lags the typing, so this
        # tells the officer (and the browser tests, through the accessibility tree) when the
        # list shown is the one for what was typed.
        self.proc_answered = ft.Text("", size=12, color=ft.Colors.ON_SURFACE_VARIANT, visible=False)
        self.proc_chosen = ft.Column(visible=False, spacing=4)
        self.name = ft.TextField(label=t("field.applicant_name"), capitalization=None)
        self.id_number = ft.TextField(
            label=t("field.id_number"),
            keyboard_type=ft.KeyboardType.NUMBER,
            max_length=12,
            counter="",
        )
        self.phone = ft.TextField(label=t("field.phone"), keyboard_type=ft.KeyboardType.PHONE)
        self.address = ft.TextField(label=t("field.address"))
        self.channel = ft.RadioGroup(
            ft.Row([ft.Radio(value=str(int(c)), label=t(f"channel.{int(c)}")) for c in Channel]),
            value=str(int(Channel.IN_PERSON)),
        )
        self.notes = ft.TextField(
            label=t("field.notes"), multiline=True, min_lines=1, max_lines=3, expand=True
        )
        self.documents = ft.Column(spacing=14)  # room for the count fields' floating labels
        self.message = ft.Text("", color=ft.Colors.ERROR)
        self.progress = ft.ProgressRing(width=20, height=20, visible=False)
        self.submit_button = ft.Button(
            t("receive.submit"), icon=ft.Icons.SAVE, on_click=h(self._submit)
        )
        self._search_task: asyncio.Task | None = None
        self._show_results(ReceiveForm.search(""))

    def build(self) -> ft.Control:
        fields = ft.ResponsiveRow(
            [
                ft.Container(self.name, col={"xs": 12, "md": 6}),
                ft.Container(self.id_number, col={"xs": 12, "md": 6}),
                ft.Container(self.phone, col={"xs": 12, "md": 6}),
                ft.Container(self.address, col={"xs": 12, "md": 6}),
            ],
            run_spacing=8,
        )
        return ft.Column(
            [
                heading(t("receive.title")),
                section(t("field.procedure")),
                ft.Row([self.proc_search]),
                self.proc_answered,
                self.proc_results,
                self.proc_chosen,
                section(t("field.applicant")),
                fields,
                ft.Row([ft.Text(t("field.channel")), self.channel], wrap=True),
                section(t("receive.documents")),
                self.documents,
                ft.Row([self.notes]),
                self.message,
                ft.Row([self.submit_button, self.progress]),
                ft.Container(height=24),
            ],
            scroll=ft.ScrollMode.AUTO,
            expand=True,
            spacing=10,
        )

    # procedure picker
    def _show_results(self, found: list[Any], query: str = "") -> None:
        def chooser(code: str) -> Any:
            async def choose(e: Any) -> None:
                await self._choose(code)
                self.app.page.update()

            return self.app.handler(choose)

        self.proc_results.controls = [
            ft.ListTile(
                title=ft.Text(p.name, size=14),
                subtitle=ft.Text(
                    f"{p.code} · {p.field} · {processing_text(p.processing_days)}",
                    size=12,
                ),
                dense=True,
                on_click=chooser(p.code),
            )
            for p in found
        ] or [ft.Text(t("receive.no_procedure"), italic=True)]
        self.proc_answered.value = t("receive.results_for", query=query.strip())
        self.proc_answered.visible = bool(query.strip())

    async def _proc_search(self, e: Any) -> None:
        """Debounced: one result list per pause in typing, not one per keystroke (a click on a
        result could otherwise land between two rebuilds of the list)."""
        if self._search_task and not self._search_task.done():
            self._search_task.cancel()
        self._search_task = asyncio.create_task(self._proc_search_later())

    async def _proc_search_later(self) -> None:
        await asyncio.sleep(SEARCH_DEBOUNCE_S)
        if self.proc_chosen.visible:  # chosen meanwhile: the list is hidden, leave it
            return
        query = self.proc_search.value or ""
        self._show_results(ReceiveForm.search(query), query)
        self.app.page.update()

    async def _choose(self, code: str) -> None:
        if self._search_task and not self._search_task.done():
            self._search_task.cancel()  # a rebuild of the (now hidden) result list
        self.form.choose(code)
        proc = self.form.procedure
        assert proc is not None
        calendar = await calendar_for(self.app)
        now = dt.datetime.now(dt.UTC)  # the time counts: same-day procedures after 15:00
        appointment = self.form.appointment(now, calendar)

        async def change(e: Any) -> None:
            self.proc_chosen.visible = False
            self.proc_search.visible = self.proc_results.visible = True
            self.proc_answered.visible = bool((self.proc_search.value or "").strip())
            self.app.page.update()

        self.proc_chosen.controls = [
            ft.Text(proc.name, weight=ft.FontWeight.W_600),  # under the "Thủ tục" heading
            ft.Text(f"{proc.code} · {proc.field}", size=12),
            ft.Text(processing_text(proc.processing_days)),
            *[  # the amount, then the catalogue's note in small print
                ft.Text(line, size=12, color=ft.Colors.ON_SURFACE_VARIANT) if i else ft.Text(line)
                for i, line in enumerate(self.form.fee_lines())
            ],
            ft.Text(
                t("receive.appointment_preview", date=date_text(appointment)),
                color=ft.Colors.PRIMARY,
                weight=ft.FontWeight.W_600,
            ),
            ft.TextButton(
                t("receive.change_procedure"), icon=ft.Icons.EDIT, on_click=self.app.handler(change)
            ),
        ]
        self.proc_chosen.visible = True
        self.proc_search.visible = self.proc_results.visible = self.proc_answered.visible = False
        self.documents.controls = [self._document_row(i) for i in range(len(self.form.documents))]

    def _document_row(self, index: int) -> ft.Control:
        line = self.form.documents[index]

        async def toggled(e: Any) -> None:
            line.received = bool(e.control.value)

        async def count(e: Any, attr: str) -> None:
            text = (e.control.value or "").strip()
            setattr(line, attr, int(text) if text.isdigit() else 0)

        async def digitised(e: Any) -> None:
            line.digitised = Digitisation(int(e.control.value or 0))

        def number(value: int, label: str, attr: str) -> ft.TextField:
            return ft.TextField(
                value=str(value),
                label=label,
                width=96,
                dense=True,
                keyboard_type=ft.KeyboardType.NUMBER,
                input_filter=ft.NumbersOnlyInputFilter(),
                on_change=self.app.handler(lambda e: count(e, attr)),
            )

        return ft.ResponsiveRow(
            [
                ft.Container(
                    ft.Column(
                        [
                            ft.Checkbox(
                                label=line.name,
                                value=line.received,
                                on_change=self.app.handler(toggled),
                            ),
                            ft.Text(
                                line.hint(),
                                size=12,
                                italic=True,
                                color=ft.Colors.ON_SURFACE_VARIANT,
                                visible=not line.required,
                            ),
                        ],
                        spacing=0,
                    ),
                    col={"xs": 12, "md": 8},
                ),
                ft.Container(
                    ft.Row(
                        [
                            number(line.originals, t("receive.originals"), "originals"),
                            number(line.copies, t("receive.copies"), "copies"),
                            ft.Dropdown(  # not dense: a 48 dp target on the tablet
                                label=t("receive.digitised"),
                                options=[
                                    ft.DropdownOption(key=str(k), text=v)
                                    for k, v in digitisation_choices()
                                ],
                                value=str(int(line.digitised)),
                                on_select=self.app.handler(digitised),
                                width=230,
                            ),
                        ],
                        wrap=True,
                    ),
                    col={"xs": 12, "md": 4},
                ),
            ],
            vertical_alignment=ft.CrossAxisAlignment.CENTER,
        )

    async def _submit(self, e: Any, go_on: bool = False) -> None:
        f = self.form
        f.applicant_name = self.name.value or ""
        f.applicant_id_number = self.id_number.value or ""
        f.applicant_phone = self.phone.value or ""
        f.applicant_address = self.address.value or ""
        f.notes = self.notes.value or ""
        f.channel = Channel(int(self.channel.value or 1))
        self.submit_button.disabled, self.progress.visible = True, True
        self.message.value = t("receive.saving")
        self.app.page.update()
        store = self.app.store
        ward = await self.app.io(store.settings.get, "ward_code", "") or ""
        bridge = self.app.sync  # enrolled: the server checks the officer's wards too
        dossier = await self.app.io(
            f.submit,
            store.dossiers,
            ward,
            self.app.actor,
            go_on=go_on,
            ward_check=bridge.ward_duplicates if bridge is not None else None,
        )
        self.submit_button.disabled, self.progress.visible = False, False
        self._show_errors()
        if dossier is None:
            self.app.page.update()
            if "duplicate" in f.errors:
                self._warn_duplicate(f.errors["duplicate"])
            return
        saved = t("receive.saved", code=dossier.code, date=date_text(dossier.appointment_date))
        self.app.toast(" · ".join(x for x in (saved, f.ward_note()) if x))
        await self.app.go(f"/dossiers/{dossier.id}")

    def _warn_duplicate(self, warning: str) -> None:
        """The open dossier's code and date, in a dialog the officer cannot miss; going on
        saves the dossier and the history records the choice."""
        dialog: ft.AlertDialog

        async def back(e: Any) -> None:
            close(dialog)

        async def go_on(e: Any) -> None:
            close(dialog)
            await self._submit(e, go_on=True)

        dialog = ft.AlertDialog(
            modal=True,
            icon=ft.Icon(ft.Icons.WARNING_AMBER, color=ft.Colors.TERTIARY),
            title=ft.Text(t("receive.duplicate_title")),
            content=ft.Text("\n".join(x for x in (warning, self.form.ward_note()) if x), width=460),
            actions=[
                ft.TextButton(t("receive.check_again"), on_click=self.app.handler(back)),
                ft.Button(
                    t("receive.go_on"), icon=ft.Icons.CALL_SPLIT, on_click=self.app.handler(go_on)
                ),
            ],
        )
        self.app.page.show_dialog(dialog)

    def _show_errors(self) -> None:
        errors = self.form.errors
        self.name.error = errors.get("applicant_name")
        self.id_number.error = errors.get("applicant_id_number")
        self.phone.error = errors.get("applicant_phone")
        others = [errors[k] for k in ("procedure", "documents", "form") if k in errors]
        self.message.value = "; ".join(others)


def unreadable_tile(row: UnreadableRow) -> ft.Control:
    """A dossier this device cannot show: one marked line, never a broken screen."""
    return ft.ListTile(
        leading=ft.Icon(ft.Icons.ERROR_OUTLINE, color=ft.Colors.ERROR),
        title=ft.Text(row.title, weight=ft.FontWeight.W_600, color=ft.Colors.ERROR),
        subtitle=ft.Text(row.detail, size=12, max_lines=3, selectable=True),
        bgcolor=ft.Colors.SURFACE_CONTAINER_LOWEST,
        shape=ft.RoundedRectangleBorder(radius=6),
    )


# ---------------------------------------------------------------------------------------------
# Detail


class DetailScreen:
    def __init__(self, app: AppContext, dossier_id: str) -> None:
        self.app = app
        self.presenter = DossierDetailPresenter(
            app.store.dossiers, dossier_id, app.today, getattr(app.store, "sync", None)
        )
        self.column = ft.Column(scroll=ft.ScrollMode.AUTO, expand=True, spacing=10)
        self.state: DetailState | None = None
        self.slip_button = ft.OutlinedButton(
            t("detail.slip"), icon=ft.Icons.PICTURE_AS_PDF, on_click=app.handler(self._slip)
        )
        self.slip_progress = ft.ProgressRing(width=18, height=18, visible=False)
        self.attach_progress = ft.ProgressRing(width=18, height=18, visible=False)
        self.attach_buttons: list[ft.Control] = []

    async def build(self) -> ft.Control:
        await self._load()
        return self.column

    async def _load(self) -> None:
        loaded = await self.app.io(self.presenter.load_any)
        if isinstance(loaded, UnreadableRow):  # kept aside: one line, and the way back
            self.state = None

            async def back(e: Any) -> None:
                await self.app.go("/dossiers")

            back_button = ft.IconButton(
                ft.Icons.ARROW_BACK, tooltip=t("detail.back"), on_click=self.app.handler(back)
            )
            self.column.controls = [back_button, unreadable_tile(loaded)]
            return
        self.state = loaded
        attachments = await self.app.io(self._attachments)
        self.column.controls = self._controls(self.state, attachments)

    def _attachments(self) -> list[Any]:
        service = getattr(self.app.store, "attachments", None)
        return list(service.list(self.presenter.dossier_id)) if service else []

    def _controls(self, s: DetailState, attachments: list[Any]) -> list[ft.Control]:
        h = self.app.handler
        d = s.dossier

        async def back(e: Any) -> None:
            await self.app.go("/dossiers")

        header = ft.Row(
            [
                ft.IconButton(ft.Icons.ARROW_BACK, tooltip=t("detail.back"), on_click=h(back)),
                ft.Text(d.code, size=20, weight=ft.FontWeight.BOLD, selectable=True),
                status_chip(s.facts[8][1]),
            ]
            + ([status_chip(t("list.overdue_badge"), overdue=True)] if s.overdue else []),
            wrap=True,
            vertical_alignment=ft.CrossAxisAlignment.CENTER,
        )
        facts = facts_grid(s.facts)
        docs = ft.Column(
            [
                ft.Text(
                    f"• {doc.name} — {t('receive.originals')}: {doc.originals}, "
                    f"{t('receive.copies')}: {doc.copies} · {digitisation_text(doc.digitised)}"
                )
                for doc in d.documents
            ],
            spacing=2,
        )
        controls: list[ft.Control] = [
            header,
            *([ft.Text(s.rejected, color=ft.Colors.ERROR)] if s.rejected else []),
            ft.Text(s.procedure, size=15, weight=ft.FontWeight.W_500),
            facts,
            section(t("field.documents")),
            docs,
            ft.Row([self.slip_button, self.slip_progress], wrap=True),
            *self._forms(s),
            section(t("detail.actions")),
            self._actions(s),
            section(t("detail.attachments")),
            self._attachment_list(attachments),
            section(t("detail.timeline")),
            self._timeline(s),
            ft.Container(height=24),
        ]
        return controls

    def _forms(self, s: DetailState) -> list[ft.Control]:
        """The forms (02, 03, 04) the dossier's moves called for, each opened as a PDF."""
        if not s.forms:
            return []

        def opener(link: FormLink) -> Any:
            async def open_form(e: Any) -> None:
                await self._open_form(link)

            return self.app.handler(open_form)

        buttons: list[ft.Control] = [
            ft.OutlinedButton(link.label, icon=ft.Icons.PICTURE_AS_PDF, on_click=opener(link))
            for link in s.forms
        ]
        return [section(t("detail.forms")), ft.Row(buttons, wrap=True, spacing=8, run_spacing=8)]

    async def _open_form(self, link: FormLink) -> None:
        name, data = await self.app.io(self._make_form, link)
        await hand_over(self.app, name, data, "pdf")

    def _make_form(self, link: FormLink) -> tuple[str, bytes]:
        from app.reports.counter_forms import build_form, form_file_name

        assert self.state is not None
        d = self.state.dossier
        return (
            form_file_name(link.notice.number, d, link.notice),
            build_form(link.notice.number, d, link.notice, self._slip_context()),
        )

    def _actions(self, s: DetailState) -> ft.Control:
        if s.dossier.sync_state == "conflict":
            return ft.Text(t("detail.conflict"), color=ft.Colors.ERROR)
        if not s.actions:
            return ft.Text(t("detail.no_actions"), italic=True)

        def opener(action: Action) -> Any:
            async def open_dialog(e: Any) -> None:
                await self._ask(action)

            return self.app.handler(open_dialog)

        return ft.Row(
            [ft.Button(a.label, on_click=opener(a)) for a in s.actions],
            wrap=True,
            spacing=8,
            run_spacing=8,
        )

    async def _ask(self, action: Action) -> None:
        note_label = t("detail.reason") if action.apology else t("detail.note")  # form 04
        note = ft.TextField(label=note_label, multiline=True, max_lines=3)
        calendar = await calendar_for(self.app)
        suggested = calendar.add_working_days(self.app.today(), 5)
        new_date = ft.TextField(
            label=t("detail.new_date"), value=date_text(suggested), visible=action.needs_date
        )
        result = ft.TextField(label=t("detail.result"), visible=action.takes_result)
        result_digitised = ft.Dropdown(
            label=t("detail.result_digitised"),
            options=[ft.DropdownOption(key=str(k), text=v) for k, v in digitisation_choices()],
            value="0",
            visible=action.takes_result,
        )
        error = ft.Text("", color=ft.Colors.ERROR)

        async def confirm(e: Any) -> None:
            problem = await self.app.io(
                self.presenter.apply,
                action,
                note=note.value or "",
                new_date=new_date.value or "",
                result=result.value or "",
                result_digitised=int(result_digitised.value or 0),
                actor=self.app.actor,
            )
            if problem:
                error.value = problem
                self.app.page.update()
                return
            close(dialog)
            done = t("timeline.apology") if action.apology else t(f"status.{action.to_status}")
            self.app.toast(t("detail.changed", status=done))
            known = {link.notice.event_id for link in (self.state.forms if self.state else [])}
            await self._load()
            self.app.page.update()
            fresh = [
                f
                for f in (self.state.forms if self.state else [])
                if f.notice.event_id not in known
            ]
            if fresh:  # the move calls for a form (02, 03): hand it over at once
                await self._open_form(fresh[-1])

        fields = [note, new_date, result, result_digitised, error]
        dialog = ask(self.app, action.label, fields, t("detail.confirm"), confirm)

    def _attachment_list(self, attachments: list[Any]) -> ft.Control:
        h = self.app.handler
        buttons: list[ft.Control] = [
            ft.OutlinedButton(
                t("detail.attach_file"), icon=ft.Icons.ATTACH_FILE, on_click=h(self._attach_file)
            )
        ]
        if self.app.camera.available:
            buttons.append(
                ft.OutlinedButton(
                    t("detail.attach_camera"),
                    icon=ft.Icons.CAMERA_ALT,
                    on_click=h(self._attach_photo),
                )
            )
        self.attach_buttons = buttons
        items: list[ft.Control] = [self._attachment_row(a) for a in attachments] or [
            ft.Text(t("detail.no_attachments"), italic=True)
        ]
        return ft.Column([*items, ft.Row([*buttons, self.attach_progress], wrap=True)], spacing=4)

    def _attachment_row(self, meta: Any) -> ft.Control:
        name = meta.filename or meta.sha256[:12]

        async def open_file(e: Any) -> None:
            await self._open_attachment(meta, name)

        return ft.Row(
            [
                ft.Icon(ft.Icons.INSERT_DRIVE_FILE_OUTLINED, size=18),
                ft.Text(f"{name} ({meta.size:,} B)".replace(",", "."), expand=True),
                ft.TextButton(
                    t("detail.open"),
                    icon=ft.Icons.OPEN_IN_NEW,
                    on_click=self.app.handler(open_file),
                    tooltip=f"{t('detail.open')} {name}",
                ),
            ],
            vertical_alignment=ft.CrossAxisAlignment.CENTER,
        )

    async def _open_attachment(self, meta: Any, name: str) -> None:
        """Hand the plaintext to the platform (a download in the browser, a save dialog on the
        desktop); a file another device attached is downloaded by the sync room first."""
        try:
            data = await self.app.io(read_attachment, self.app.store, self.app.sync, meta.sha256)
        except FileNotFoundError:
            self.app.toast(t("detail.not_on_device"))
            return
        await self.app.file_picker.save_file(file_name=name, src_bytes=data)
        self.app.toast(t("detail.opened", name=name))

    def _timeline(self, s: DetailState) -> ft.Control:
        return ft.Column(
            [
                ft.Row(
                    [
                        ft.Icon(ft.Icons.CIRCLE, size=10, color=ft.Colors.PRIMARY),
                        ft.Column(
                            [
                                ft.Text(entry.title, weight=ft.FontWeight.W_500),
                                ft.Text(
                                    " · ".join(x for x in (entry.at, entry.actor, entry.note) if x),
                                    size=12,
                                    color=ft.Colors.ON_SURFACE_VARIANT,
                                ),
                            ],
                            spacing=0,
                            expand=True,
                        ),
                    ],
                    vertical_alignment=ft.CrossAxisAlignment.START,
                )
                for entry in s.timeline
            ],
            spacing=8,
        )

    async def _slip(self, e: Any) -> None:
        assert self.state is not None
        self._busy([self.slip_button], self.slip_progress, True)
        try:
            name, data = await self.app.io(self._make_slip)  # ~1 s the first time (fonts)
        finally:
            self._busy([self.slip_button], self.slip_progress, False)
        await hand_over(self.app, name, data, "pdf")

    def _busy(self, buttons: list[ft.Control], ring: ft.ProgressRing, busy: bool) -> None:
        """Long work: the button is off (no second click) and a ring turns while it runs."""
        for button in buttons:
            button.disabled = busy
        ring.visible = busy
        self.app.page.update()

    def _make_slip(self) -> tuple[str, bytes]:
        from app.reports.slip import build_slip, slip_file_name

        assert self.state is not None
        return slip_file_name(self.state.dossier), build_slip(
            self.state.dossier, self._slip_context()
        )

    def _slip_context(self) -> Any:
        from dataclasses import replace

        from app.reports.slip import context_for

        assert self.state is not None
        d = self.state.dossier
        proc = reference.catalogue().get(d.procedure_code)
        try:
            agency = reference.ward(d.ward_code).name
        except KeyError:
            agency = d.ward_code
        context = context_for(
            proc, agency_name=agency, officer=self.app.actor, place=t("slip.place")
        )
        return replace(context, procedure_name=self.state.procedure)

    async def _attach_file(self, e: Any) -> None:
        for picked in await picked_files(self.app):
            await self._add_attachment(picked)

    async def _attach_photo(self, e: Any) -> None:
        if photo := await camera_photo(self.app):
            await self._add_attachment(photo, taken_at=photo.taken_at)

    async def _add_attachment(self, file: DeviceFile, **extra: Any) -> None:
        assert self.state is not None
        d = self.state.dossier
        self._busy(self.attach_buttons, self.attach_progress, True)
        try:
            await self.app.io(
                self.app.store.attachments.add,
                "dossier",
                d.id,
                d.ward_code,
                file.data,
                mime=file.mime,
                filename=file.name,
                **extra,
            )
        finally:
            self._busy(self.attach_buttons, self.attach_progress, False)
        self.app.toast(t("detail.attached", name=file.name))
        await self._load()
        self.app.page.update()


def read_attachment(store: Any, bridge: Any, sha256: str) -> bytes:
    """An attachment's bytes: the sealed local copy, else (an enrolled store) the sync bridge's
    `open_attachment`, which downloads it on this first open and keeps it. Blocking: run it
    through `app.io`. FileNotFoundError when neither has it (a local-only store has no bridge)."""
    if store.attachments.has(sha256):
        return store.attachments.read(sha256)
    download = getattr(bridge, "open_attachment", None)
    if download is None:
        raise FileNotFoundError(sha256)
    return download(sha256)


# ---------------------------------------------------------------------------------------------
# Dashboard


async def dashboard_screen(app: AppContext) -> ft.Control:
    today = app.today()
    dossiers = app.store.dossiers
    board = await app.io(dossiers.dashboard, today)
    overdue_page = await app.io(
        dossiers.list, DossierQuery(overdue=True, today=today), offset=0, limit=5
    )
    tiles = ft.ResponsiveRow(
        [
            ft.Container(
                ft.Card(
                    semantic_container=False,
                    content=ft.Container(
                        ft.Column(
                            [
                                ft.Text(tile.label, color=ft.Colors.ON_SURFACE_VARIANT),
                                ft.Text(
                                    tile.value,
                                    size=32,
                                    weight=ft.FontWeight.BOLD,
                                    color=OVERDUE_COLOR if tile.alert else None,
                                ),
                            ],
                            spacing=4,
                        ),
                        padding=16,
                    ),
                ),
                col={"xs": 6, "md": 3},
            )
            for tile in dashboard_tiles(board)
        ]
    )

    def opener(dossier_id: str) -> Any:
        async def open_detail(e: Any) -> None:
            await app.go(f"/dossiers/{dossier_id}")

        return app.handler(open_detail)

    overdue = [
        ft.ListTile(
            leading=ft.Icon(ft.Icons.WARNING_AMBER, color=OVERDUE_COLOR),
            title=ft.Text(d.applicant_name),
            subtitle=ft.Text(
                f"{d.code} · {t('field.appointment')}: {date_text(d.appointment_date)}"
            ),
            on_click=opener(d.id),
        )
        for d in overdue_page.items
    ]

    async def see_all(e: Any) -> None:
        await app.go("/dossiers?overdue=1")

    if overdue_page.total:
        overdue.append(
            ft.TextButton(
                t("dash.see_all_overdue", n=overdue_page.total),
                icon=ft.Icons.ARROW_FORWARD,
                on_click=app.handler(see_all),
            )
        )
    return ft.Column(
        [
            heading(t("dash.title") + f" · {date_text(today)}"),
            tiles,
            section(t("dash.overdue")),
            *(overdue or [ft.Text(t("dash.no_overdue"), italic=True)]),
        ],
        scroll=ft.ScrollMode.AUTO,
        expand=True,
    )
