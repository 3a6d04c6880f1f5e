"""The sync screen (state, "Đồng bộ ngay", conflicts to choose) and the settings screen."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import flet as ft

from app.i18n import LANGUAGES, set_language, t
from app.views.dossier_views import facts_grid, heading, section
from app.views.lock_model import IdleTimer
from app.views.sync_models import (
    ConflictChoice,
    SettingsPresenter,
    WaitingRow,
    conflict_choices,
    waiting_rows,
)
from app.views.ward_picker import WardPicker

if TYPE_CHECKING:
    from app.views.context import AppContext


class SyncScreen:
    def __init__(self, app: AppContext) -> None:
        self.app = app
        self.column = ft.Column(scroll=ft.ScrollMode.AUTO, expand=True, spacing=10)

    async def build(self) -> ft.Control:
        await self._load()
        return self.column

    async def _load(self) -> None:
        conflicts = await self.app.io(self.app.store.sync.open_conflicts)
        summary = await self.app.io(self.app.store.sync.summary)
        choices = await self.app.io(conflict_choices, conflicts, self._describe)
        server = await self.app.io(self.app.store.settings.get, "server_url", "")
        last_error = getattr(self.app.sync_status, "last_error", None)
        waiting = await self.app.io(self.app.store.sync.waiting)
        rows = await self.app.io(waiting_rows, waiting, last_error)
        facts = [
            t("settings.enrolled") if self.app.sync else t("settings.not_enrolled"),
            f"{t('settings.server')}: {server or '—'}",
            t("sync.pending", n=summary.waiting),
            t("sync.conflicts", n=summary.conflicts),
        ]
        self.column.controls = [
            heading(t("sync.title")),
            *[ft.Text(line) for line in facts],
            ft.Button(t("sync.now"), icon=ft.Icons.SYNC, on_click=self.app.handler(self._sync)),
            section(t("sync.waiting_title", n=len(rows))),
            *([self._waiting(r) for r in rows] or [ft.Text(t("sync.waiting_none"))]),
            section(t("conflict.heading")),
            *([self._choice(c) for c in choices] or [ft.Text(t("sync.no_conflicts"))]),
        ]

    @staticmethod
    def _waiting(row: WaitingRow) -> ft.Control:
        color = ft.Colors.RED_700 if row.tone == "error" else ft.Colors.AMBER_900
        lines: list[ft.Control] = [
            ft.Row(
                [
                    ft.Text(row.kind, size=12, color=ft.Colors.ON_SURFACE_VARIANT),
                    ft.Text(row.title, weight=ft.FontWeight.W_600, expand=True),
                    ft.Text(row.state, color=color),
                ],
                spacing=8,
            )
        ]
        if row.error:
            lines.append(ft.Text(t("waiting.last_error", error=row.error), size=12, color=color))
        return ft.Container(
            ft.Column(lines, spacing=2, tight=True),
            padding=ft.Padding.symmetric(horizontal=12, vertical=8),
            bgcolor=ft.Colors.SURFACE_CONTAINER_LOWEST,
            border_radius=6,
        )

    def _describe(self, entity: str, entity_id: str) -> str:
        if entity == "dossier":
            try:
                d = self.app.store.dossiers.get(entity_id)
            except KeyError:
                return entity_id[:8]
            return f"{d.code} · {d.applicant_name}"
        return entity_id[:8]

    async def _sync(self, e: Any) -> None:
        await self.app.sync_now()
        await self.app.refresh_sync()

    def _choice(self, choice: ConflictChoice) -> ft.Control:
        def chooser(value: Any) -> Any:
            async def choose(e: Any) -> None:
                await self.app.io(self.app.store.sync.resolve_conflict, choice.conflict_id, value)
                self.app.toast(t("conflict.resolved"))
                await self._load()
                await self.app.refresh_sync()
                self.app.page.update()

            return self.app.handler(choose)

        return ft.Card(
            semantic_container=False,
            content=ft.Container(
                ft.Column(
                    [
                        ft.Text(f"{choice.title} · {choice.field}", weight=ft.FontWeight.W_600),
                        *[
                            ft.Row(
                                [
                                    ft.Text(text, expand=True),
                                    ft.OutlinedButton(
                                        t("conflict.choose"), on_click=chooser(value)
                                    ),
                                ]
                            )
                            for text, value in choice.options
                        ],
                    ],
                    spacing=6,
                ),
                padding=12,
            ),
        )


class SettingsScreen:
    """Sections name a topic (language, security, sync server); the fields inside say what they
    hold, so no heading repeats its field's label."""

    def __init__(self, app: AppContext) -> None:
        self.app = app
        self.presenter = SettingsPresenter(app.store)

    async def build(self) -> ft.Control:
        state = await self.app.io(self.presenter.load)
        h = self.app.handler
        self.server = ft.TextField(label=t("settings.server"), value=state.server_url, expand=True)
        self.language = ft.RadioGroup(
            ft.Row([ft.Radio(value=lang, label=t(f"lang.{lang}")) for lang in LANGUAGES]),
            value=state.language,
            on_change=h(self._language),
        )
        self.auto_lock = ft.Dropdown(
            label=t("settings.auto_lock"),
            options=[
                ft.DropdownOption(key=str(m), text=label)
                for m, label in SettingsPresenter.auto_lock_choices()
            ],
            value=str(state.auto_lock_minutes),
            on_select=h(self._auto_lock),
            width=220,
        )
        self.old_pin = _pin(t("settings.old_pin"))
        self.new_pin = _pin(t("settings.new_pin"))
        self.confirm_pin = _pin(t("pin.confirm"))
        self.pin_message = ft.Text("")
        device = getattr(self.app.store, "device_id", "")
        picker = await self.app.io(self.presenter.ward_picker)
        self.ward_view = picker and WardPickerView(self.app, picker, on_choose=self._save_ward)
        self.ward_section = ft.Column(
            [section(t("settings.ward")), self.ward_view.control()] if self.ward_view else []
        )
        return ft.Column(
            [
                heading(t("settings.title")),
                section(t("settings.account")),
                facts_grid(state.account),
                self.ward_section,
                section(t("settings.language")),
                self.language,
                section(t("settings.security")),
                self.auto_lock,
                ft.Text(t("settings.change_pin"), weight=ft.FontWeight.W_500),
                ft.Container(
                    ft.Column(
                        [
                            self.old_pin,
                            self.new_pin,
                            self.confirm_pin,
                            self.pin_message,
                            ft.Button(
                                t("settings.save_pin"),
                                icon=ft.Icons.PASSWORD,
                                on_click=h(self._change_pin),
                            ),
                        ],
                        spacing=8,
                    ),
                    width=420,
                ),
                section(t("backup.section")),
                *await self._backup_controls(),
                section(t("settings.sync_server")),
                *self._server_controls(state),
                ft.Text(
                    t("settings.device", id=device),
                    size=12,
                    color=ft.Colors.ON_SURFACE_VARIANT,
                    selectable=True,
                ),
            ],
            scroll=ft.ScrollMode.AUTO,
            expand=True,
            spacing=10,
        )

    async def _backup_controls(self) -> list[ft.Control]:
        """A sealed backup of this store, with progress, and the reminder when it is due."""
        from app.views.backup_model import BackupPresenter

        self.backup = BackupPresenter(self.app.store)
        reminder = await self.app.io(self.backup.reminder)
        self.backup_secret = ft.TextField(
            label=t("backup.secret"), password=True, can_reveal_password=True, width=420
        )
        self.backup_bar = ft.ProgressBar(width=420, value=0, visible=False)
        self.backup_message = ft.Text(reminder or "", color=ft.Colors.ERROR if reminder else None)
        self.backup_button = ft.Button(
            t("backup.create"), icon=ft.Icons.BACKUP, on_click=self.app.handler(self._backup)
        )
        return [self.backup_message, self.backup_secret, self.backup_button, self.backup_bar]

    async def _backup(self, e: Any) -> None:
        import asyncio

        from app.views.backup_model import progress_text

        self.backup_button.disabled, self.backup_bar.visible = True, True
        self.backup_message.value, self.backup_message.color = progress_text(0, 1), None
        self.app.page.update()
        job = asyncio.ensure_future(self.app.io(self.backup.create, self.backup_secret.value or ""))
        while not job.done():  # the bar follows the bytes written, polled off the worker
            await asyncio.wait({job}, timeout=0.2)
            self.backup_bar.value = self.backup.progress()
            self.backup_message.value = progress_text(self.backup.done, self.backup.total)
            self.app.page.update()
        done, message = job.result()
        self.backup_message.value = message
        self.backup_message.color = None if done else ft.Colors.ERROR
        self.backup_button.disabled, self.backup_bar.visible = False, False
        self.backup_secret.value = ""
        self.app.page.update()

    def _server_controls(self, state: Any) -> list[ft.Control]:
        """Enrolled: the address (saving it retargets the running sync). Local only: address
        and one-time code to enrol now, and the ward picker if the user has several."""
        h = self.app.handler
        if state.enrolled:
            controls: list[ft.Control] = [
                ft.Text(t("settings.logged_in" if state.desktop_login else "settings.enrolled")),
                ft.Row(
                    [
                        self.server,
                        ft.OutlinedButton(t("settings.save_server"), on_click=h(self._server)),
                    ]
                ),
            ]
            if state.desktop_login:
                self.logout_button = ft.OutlinedButton(
                    t("settings.logout"), icon=ft.Icons.LOGOUT, on_click=h(self._logout)
                )
                self.logout_message = ft.Text("")
                controls += [self.logout_button, self.logout_message]
            return controls
        self.code = ft.TextField(label=t("first.code"), width=260)
        self.enrol_button = ft.Button(
            t("settings.enrol"), icon=ft.Icons.LINK, on_click=h(self._enrol)
        )
        self.enrol_progress = ft.ProgressRing(width=18, height=18, visible=False)
        self.enrol_message = ft.Text("")
        self.ward_choice = ft.Column()  # the user's wards, after an enrolment with several
        self.ward_row = ft.Column(
            [
                self.ward_choice,
                ft.OutlinedButton(t("settings.save_ward"), on_click=h(self._ward)),
            ],
            visible=False,
        )
        self.scope_notice = ft.Text("", width=640)
        self.scope_row = ft.Column(
            [
                self.scope_notice,
                ft.Row(
                    [
                        ft.Button(t("settings.enrol_confirm"), on_click=h(self._confirm_enrol)),
                        ft.OutlinedButton(
                            t("settings.enrol_cancel"), on_click=h(self._cancel_enrol)
                        ),
                    ],
                    wrap=True,
                ),
            ],
            visible=False,
        )
        return [
            ft.Text(t("settings.enrol_hint"), color=ft.Colors.ON_SURFACE_VARIANT),
            ft.Row([self.server]),
            ft.Row(
                [self.code, self.enrol_button, self.enrol_progress],
                wrap=True,
                vertical_alignment=ft.CrossAxisAlignment.CENTER,
            ),
            self.enrol_message,
            self.scope_row,
            self.ward_row,
            *self._login_controls(),
        ]

    def _login_controls(self) -> list[ft.Control]:
        """A supervisor's or admin's desktop logs in with an account instead of a code."""
        self.username = ft.TextField(label=t("settings.username"), width=260)
        self.password = ft.TextField(
            label=t("settings.password"), password=True, can_reveal_password=True, width=260
        )
        self.login_button = ft.Button(
            t("settings.login"), icon=ft.Icons.LOGIN, on_click=self.app.handler(self._login)
        )
        return [
            ft.Text(t("settings.login_hint"), color=ft.Colors.ON_SURFACE_VARIANT),
            ft.Row(
                [self.username, self.password, self.login_button],
                wrap=True,
                vertical_alignment=ft.CrossAxisAlignment.CENTER,
            ),
        ]

    async def _language(self, e: Any) -> None:
        language = self.language.value or "vi"
        await self.app.io(self.presenter.set_language, language)
        set_language(language)
        self.app.page.title = t("app.title")
        self.app.sync_line = type(self.app.sync_line)(self.app)
        await self.app.render_route()

    async def _auto_lock(self, e: Any) -> None:
        minutes = int(self.auto_lock.value or 0)
        await self.app.io(self.presenter.set_auto_lock, minutes)
        self.app.idle = IdleTimer(minutes)
        self.app.toast(t("settings.saved"))

    async def _server(self, e: Any) -> None:
        problem = await self.app.io(
            self.presenter.set_server_url, self.server.value or "", self.app.sync
        )
        self.app.toast(problem or t("settings.saved"))

    async def _enrol(self, e: Any) -> None:
        call = partial(self.presenter.enrol, self.server.value or "", self.code.value or "")
        await self._join(self.enrol_button, t("settings.enrolling"), call)

    async def _login(self, e: Any) -> None:
        password, self.password.value = self.password.value or "", ""  # not left on screen
        call = partial(
            self.presenter.login, self.server.value or "", self.username.value or "", password
        )
        await self._join(self.login_button, t("settings.logging_in"), call,
                         done=t("settings.logged_in_now"))

    async def _join(
        self, button: ft.Control, working: str, call: Callable[[], Any], done: str = ""
    ) -> None:
        """Enrol or log in: the button off and the ring turning while the server answers, then
        the outcome: refused (said), held for the user's agreement, or kept."""
        button.disabled, self.enrol_progress.visible = True, True
        self.enrol_message.value, self.enrol_message.color = working, None
        self.app.page.update()
        try:
            outcome = await self.app.io(call)
        finally:
            button.disabled, self.enrol_progress.visible = False, False
        if outcome.problem:
            self.enrol_message.value, self.enrol_message.color = outcome.problem, ft.Colors.ERROR
            self.app.page.update()
            return
        if outcome.outside is not None:  # nothing saved yet: the user decides
            self.enrol_message.value = ""
            self.scope_notice.value = outcome.outside.notice
            self.scope_row.visible, button.disabled = True, True
            self.app.page.update()
            return
        await self._enrolled(outcome, done=done)

    async def _logout(self, e: Any) -> None:
        self.logout_button.disabled = True
        self.app.page.update()
        problem = await self.app.io(self.presenter.logout)
        self.logout_button.disabled = False
        if problem:
            self.logout_message.value, self.logout_message.color = problem, ft.Colors.ERROR
            self.app.page.update()
            return
        await self.app.stop_sync()
        self.app.toast(t("settings.logged_out"))
        await self.app.render_route()

    async def _confirm_enrol(self, e: Any) -> None:
        self.scope_row.visible = False
        await self._enrolled(await self.app.io(self.presenter.confirm_enrol))

    async def _cancel_enrol(self, e: Any) -> None:
        self.scope_row.visible, self.enrol_button.disabled = False, False
        self.login_button.disabled = False
        self.enrol_message.value, self.enrol_message.color = self.presenter.cancel_enrol(), None
        self.code.value = ""
        self.app.page.update()

    async def _enrolled(self, outcome: Any, done: str = "") -> None:
        """The enrolment is saved: start syncing, then ask for the ward if there are several."""
        if outcome.problem:
            self.enrol_message.value, self.enrol_message.color = outcome.problem, ft.Colors.ERROR
            self.app.page.update()
            return
        await self.app.start_sync()
        await self.app.refresh_sync(update=False)
        if outcome.wards:  # several wards: stay here until one is chosen
            picker = WardPicker(outcome.wards, chosen=outcome.ward)
            self.ward_view = WardPickerView(self.app, picker, on_choose=self._save_ward)
            self.ward_choice.controls = [self.ward_view.control()]
            self.ward_row.visible, self.ward_section.visible = True, False
            self.enrol_button.disabled = True
            self.enrol_message.value = t("first.choose_ward")
            self.app.page.update()
            return
        self.app.toast(done or t("settings.enrolled_now"))
        await self.app.render_route()

    async def _ward(self, e: Any) -> None:
        """The ward chosen after enrolling is already saved (`_save_ward`): carry on."""
        self.app.toast(t("settings.enrolled_now"))
        await self.app.render_route()

    async def _save_ward(self, code: str) -> None:
        await self.app.io(self.presenter.set_ward, code)
        self.app.toast(t("settings.saved"))

    async def _change_pin(self, e: Any) -> None:
        self.pin_message.value = t("common.working")
        self.app.page.update()
        problem = await self.app.io(
            self.presenter.change_pin,
            self.old_pin.value or "",
            self.new_pin.value or "",
            self.confirm_pin.value or "",
        )
        self.pin_message.value = problem or t("settings.pin_changed")
        self.pin_message.color = ft.Colors.ERROR if problem else ft.Colors.GREEN_700
        if not problem:
            self.old_pin.value = self.new_pin.value = self.confirm_pin.value = ""
        self.app.page.update()


class WardPickerView:
    """A search field, the chosen ward, and the matches as buttons (48 dp in the tablet theme).
    `on_choose(code)` runs after a match is tapped."""

    def __init__(
        self,
        app: AppContext,
        picker: WardPicker,
        on_choose: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.app, self.picker, self.on_choose = app, picker, on_choose
        self.search = ft.TextField(
            label=t("first.ward_search"),
            prefix_icon=ft.Icons.SEARCH,
            on_change=app.handler(self._typed),
            width=420,
        )
        self.chosen = ft.Text(picker.chosen_text, weight=ft.FontWeight.W_500)
        self.matches = ft.Column(spacing=0)
        self._show()

    def control(self) -> ft.Control:
        return ft.Column([self.chosen, self.search, self.matches], spacing=8)

    def _show(self) -> None:
        self.matches.controls = [
            ft.TextButton(name, on_click=self._chooser(code))
            for code, name in self.picker.matches()
        ] or [ft.Text(t("first.ward_none"), italic=True)]

    def _chooser(self, code: str) -> Any:
        async def choose(e: Any) -> None:
            self.picker.choose(code)
            self.chosen.value = self.picker.chosen_text
            if self.on_choose is not None:
                await self.on_choose(code)
            self.app.page.update()

        return self.app.handler(choose)

    async def _typed(self, e: Any) -> None:
        self.picker.type(self.search.value or "")
        self._show()
        self.app.page.update()


def _pin(label: str) -> ft.TextField:
    return ft.TextField(label=label, password=True, can_reveal_password=True)
