"""First run (enrol with a server, or work locally; set a PIN twice) and the unlock screen."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import flet as ft

from app.i18n import t
from app.views.audit_models import LOCAL_WORKS, OFFICER
from app.views.errors import error_text
from app.views.format import path_text
from app.views.lock_model import (
    MIN_PIN_LENGTH,
    name_label,
    pin_problem,
    search_wards,
    ward_options,
)
from app.views.sync_bridge import EnrolError, keep_enrolment, redeem

if TYPE_CHECKING:
    from app.views.context import AppContext

CARD_WIDTH = 460


def _card(controls: list[ft.Control]) -> ft.Control:
    return ft.Card(
        semantic_container=False,
        content=ft.Container(
            ft.Column(
                controls,
                spacing=14,
                tight=True,
                horizontal_alignment=ft.CrossAxisAlignment.STRETCH,
            ),
            padding=ft.Padding.all(24),
            width=CARD_WIDTH,
        ),
        elevation=2,
    )


def _pin_field(label: str, **kwargs: Any) -> ft.TextField:
    return ft.TextField(
        label=label,
        password=True,
        can_reveal_password=True,
        keyboard_type=ft.KeyboardType.NUMBER,
        max_length=64,
        counter="",
        **kwargs,
    )


def _secret_field(label: str) -> ft.TextField:
    """A PIN or a passphrase (a store without a keystore needs words): any keyboard."""
    return ft.TextField(
        label=label, password=True, can_reveal_password=True, max_length=64, counter=""
    )


def build(app: AppContext, *, first_run: bool, message: str = "") -> ft.Control:
    if first_run:
        form = FirstRun(app, message)
        app.page.run_task(form.load_wards)  # runs after this frame is sent
        return form.control()
    return Unlock(app, message).control()


class Unlock:
    def __init__(self, app: AppContext, message: str) -> None:
        self.app = app
        self.pin = _pin_field(t("pin.label"), on_submit=app.handler(self.submit))
        self.message = ft.Text(message, color=ft.Colors.ERROR if message else None)
        self.progress = ft.ProgressRing(width=20, height=20, visible=False)
        self.button = ft.Button(
            t("unlock.button"), icon=ft.Icons.LOCK_OPEN, on_click=app.handler(self.submit)
        )

    def control(self) -> ft.Control:
        return ft.Column(
            [
                ft.Container(height=40),
                _card(
                    [
                        ft.Row(
                            [
                                ft.Icon(ft.Icons.LOCK, color=ft.Colors.PRIMARY, size=32),
                                ft.Text(t("app.title"), size=22, weight=ft.FontWeight.BOLD),
                            ]
                        ),
                        ft.Text(t("unlock.title"), size=16),
                        self.pin,
                        self.message,
                        ft.Row([self.button, self.progress]),
                        ft.TextButton(
                            t("recover.forgot"),
                            icon=ft.Icons.HELP_OUTLINE,
                            on_click=self.app.handler(self._forgot),
                        ),
                    ]
                ),
            ],
            horizontal_alignment=ft.CrossAxisAlignment.CENTER,
        )

    async def submit(self, e: Any) -> None:
        self.button.disabled, self.progress.visible = True, True
        self.message.value, self.message.color = t("unlock.opening"), None
        self.app.page.update()
        result = await self.app.io(self.app.lock_presenter.unlock, self.pin.value or "")
        if result.ok:
            await self.app.unlocked(result.store)
            return
        self.pin.value = ""
        self.message.value, self.message.color = result.message, ft.Colors.ERROR
        self.progress.visible = False
        self.app.page.update()
        if result.destroyed:
            await self.app.show_lock()
            return
        if result.wait_seconds > 0:
            await self._count_down(result.message, result.wait_seconds)
        self.button.disabled = False
        self.app.page.update()

    async def _forgot(self, e: Any) -> None:
        show_recovery(self.app)

    async def _count_down(self, base: str, seconds: float) -> None:
        """Keep the button off while the store would refuse, showing the seconds left."""
        remaining = int(-(-seconds // 1))
        while remaining > 0:
            self.button.content = f"{t('unlock.button')} ({remaining})"
            self.app.page.update()
            await asyncio.sleep(1)
            remaining -= 1
        self.button.content = t("unlock.button")


class FirstRun:
    def __init__(self, app: AppContext, message: str = "") -> None:
        self.app = app
        h = app.handler
        self.mode = ft.RadioGroup(
            ft.Column(
                [
                    ft.Radio(value="local", label=t("first.local")),
                    ft.Radio(value="enrol", label=t("first.enrol")),
                ],
                spacing=0,
            ),
            value="local",
            on_change=h(self._mode_changed),
        )
        self.server = ft.TextField(label=t("first.server"), visible=False)
        self.code = ft.TextField(label=t("first.code"), visible=False)
        # The work a local-only device is for: it decides the screens (an enrolled device's
        # role comes from the server).
        self.work = ft.RadioGroup(
            ft.Column([ft.Radio(value=w, label=t(f"first.work.{w}")) for w in LOCAL_WORKS]),
            value=OFFICER,
            on_change=h(self._work_changed),
        )
        self.work_box = ft.Column([ft.Text(t("first.work"), weight=ft.FontWeight.W_500), self.work])
        # Filled after the first frame: the ward list takes ~0.35 s to load the first time.
        # Searched by typing, with or without diacritics (`search_wards`).
        self.ward_options: list[tuple[str, str]] = []
        self.ward_value: str | None = None
        self.ward_search = ft.TextField(
            label=t("first.ward_search"),
            prefix_icon=ft.Icons.SEARCH,
            on_change=h(self._ward_typed),
            disabled=True,
            width=CARD_WIDTH - 48,
        )
        self.ward_chosen_text = ft.Text("", weight=ft.FontWeight.W_500)
        self.ward_matches = ft.Column(spacing=0)
        self.ward_progress = ft.ProgressRing(width=16, height=16)
        self.ward_row = ft.Column(
            [
                ft.Row([ft.Text(t("first.ward")), self.ward_progress], spacing=8),
                self.ward_chosen_text,
                self.ward_search,
                self.ward_matches,
            ],
            spacing=4,
        )
        self.awaiting_ward: Any = None  # the enrolled store, while the user picks one of several
        self.officer = ft.TextField(label=name_label(OFFICER))
        self.pin = _pin_field(t("pin.label"))
        self.confirm = _pin_field(t("pin.confirm"), on_submit=h(self.submit))
        self.message = ft.Text(message, color=ft.Colors.ERROR)
        self.progress = ft.ProgressRing(width=20, height=20, visible=False)
        self.button = ft.Button(t("first.create"), icon=ft.Icons.CHECK, on_click=h(self.submit))

    def control(self) -> ft.Control:
        return ft.Column(
            [
                ft.Container(height=16),
                _card(
                    [
                        ft.Row(
                            [
                                ft.Icon(ft.Icons.ACCOUNT_BALANCE, color=ft.Colors.PRIMARY, size=32),
                                ft.Text(t("app.title"), size=22, weight=ft.FontWeight.BOLD),
                            ]
                        ),
                        ft.Text(t("first.title"), size=16, weight=ft.FontWeight.W_500),
                        ft.Text(t("first.intro"), color=ft.Colors.ON_SURFACE_VARIANT),
                        self.mode,
                        self.server,
                        self.code,
                        self.work_box,
                        self.ward_row,
                        self.officer,
                        ft.Divider(),
                        ft.Text(t("first.set_pin"), weight=ft.FontWeight.W_500),
                        ft.Text(
                            t("first.set_pin_hint") + " " + t("first.pin_rule", n=MIN_PIN_LENGTH),
                            size=12,
                            color=ft.Colors.ON_SURFACE_VARIANT,
                        ),
                        self.pin,
                        self.confirm,
                        self.message,
                        ft.Row([self.button, self.progress]),
                    ]
                ),
            ],
            horizontal_alignment=ft.CrossAxisAlignment.CENTER,
        )

    async def load_wards(self) -> None:
        """Run once the form is on screen (`app.show_lock` schedules it)."""
        options = await self.app.io(ward_options)
        self._offer_wards(options)
        self.app.page.update()

    def _offer_wards(self, options: list[tuple[str, str]]) -> None:
        self.ward_options = options
        self._choose_ward(options[0] if options else None)
        self.ward_search.value = ""
        self.ward_search.disabled, self.ward_progress.visible = False, False
        self._show_matches("")

    def _choose_ward(self, option: tuple[str, str] | None) -> None:
        self.ward_value = option[0] if option else None
        self.ward_chosen_text.value = t("first.ward_chosen", name=option[1]) if option else ""

    def _show_matches(self, query: str) -> None:
        def chooser(option: tuple[str, str]) -> Any:
            async def choose(e: Any) -> None:
                self._choose_ward(option)
                self.app.page.update()

            return self.app.handler(choose)

        matches = search_wards(self.ward_options, query)
        self.ward_matches.controls = [
            ft.TextButton(name, on_click=chooser((code, name))) for code, name in matches
        ] or [ft.Text(t("first.ward_none"), italic=True)]

    async def _ward_typed(self, e: Any) -> None:
        self._show_matches(self.ward_search.value or "")
        self.app.page.update()

    async def _mode_changed(self, e: Any) -> None:
        enrolling = self.mode.value == "enrol"
        self.server.visible = self.code.visible = enrolling
        self.ward_row.visible = self.work_box.visible = not enrolling
        self.officer.label = name_label(None if enrolling else self.work.value)
        self.app.page.update()

    async def _work_changed(self, e: Any) -> None:
        self.officer.label = name_label(self.work.value)
        self.app.page.update()

    def _problem(self) -> str | None:
        if self.mode.value == "enrol":
            url = (self.server.value or "").strip()
            if not url.startswith(("http://", "https://")) or not (self.code.value or "").strip():
                return t("first.error.server")
        return None

    async def submit(self, e: Any) -> None:
        if self.awaiting_ward is not None:
            await self._ward_chosen()
            return
        problem = self._problem() or pin_problem(self.pin.value or "", self.confirm.value or "")
        if problem:
            self.message.value = problem
            self.app.page.update()
            return
        answer = None
        if self.mode.value == "enrol":
            # The code first: a refused code leaves the user on this form with the reason,
            # and nothing is created on the device.
            self._busy(True, t("first.enrolling"))
            try:
                answer = await self.app.io(
                    redeem, (self.server.value or "").strip(), (self.code.value or "").strip()
                )
            except EnrolError as exc:
                self._busy(False, t("first.error.enrol", reason=error_text(exc)))
                return
        self._busy(True, t("first.creating"))
        try:
            result = await self.app.io(
                self.app.lock_presenter.create, self.pin.value or "", self.confirm.value or ""
            )
        except Exception as exc:  # e.g. the data folder is not writable: keep the form usable
            self._busy(False, t("common.error", message=error_text(exc)))
            return
        if not result.ok:
            self._busy(False, result.message)
            return
        store = result.store
        await self.app.io(self._save_settings, store)
        if answer is not None:
            url = (self.server.value or "").strip()
            await self.app.io(keep_enrolment, store, url, answer)
            wards = list(answer.get("wards") or [])
            if len(wards) > 1:
                await self._ask_ward(store, wards)
                return
        await self.app.unlocked(store)

    async def _ask_ward(self, store: Any, wards: list[str]) -> None:
        """A user with several wards: the device works for one of them; let the user pick."""
        self._offer_wards(await self.app.io(ward_options, wards))
        self.awaiting_ward = store
        for control in (self.mode, self.server, self.code, self.officer, self.pin, self.confirm):
            control.disabled = True
        self.ward_row.visible, self.work_box.visible = True, False
        self.button.content, self.button.icon = t("first.continue"), ft.Icons.ARROW_FORWARD
        self._busy(False, t("first.choose_ward"))
        self.message.color = None

    async def _ward_chosen(self) -> None:
        store, self.awaiting_ward = self.awaiting_ward, None
        if self.ward_value:
            await self.app.io(store.settings.set, "ward_code", self.ward_value)
        await self.app.unlocked(store)

    def _save_settings(self, store: Any) -> None:
        if self.officer.value:
            store.settings.set("officer", self.officer.value.strip())
        if self.mode.value == "local":
            store.settings.set("local_role", self.work.value or OFFICER)
            if self.ward_value:
                store.settings.set("ward_code", self.ward_value)

    def _busy(self, busy: bool, message: str) -> None:
        self.button.disabled, self.progress.visible = busy, busy
        self.message.value = message
        self.message.color = None if busy else ft.Colors.ERROR
        self.app.page.update()


def show_recovery(app: AppContext) -> None:
    """The "Quên mã PIN" screen in place of the unlock card."""
    from app.views import shell

    form = Recovery(app)
    app.body, app.body_route = form.control(), "/"
    app.page.views.clear()
    app.page.views.append(shell.lock_view(app.body))
    app.page.update()


class Recovery:
    """Request for the admin, then their answer and a new PIN (app.views.lock_model)."""

    def __init__(self, app: AppContext) -> None:
        from app.views.lock_model import RecoveryPresenter

        self.app = app
        self.presenter = RecoveryPresenter(app.gateway.data_dir)  # type: ignore[attr-defined]
        h = app.handler
        self.request = ft.TextField(
            label=t("recover.request"),
            multiline=True,
            read_only=True,
            min_lines=2,
            max_lines=4,
            visible=False,
        )
        self.saved = ft.Text("", size=12)
        self.answer = ft.TextField(
            label=t("recover.answer"), multiline=True, min_lines=2, max_lines=4
        )
        self.pin = _secret_field(t("settings.new_pin"))
        self.confirm = _secret_field(t("pin.confirm"))
        self.message = ft.Text("")
        self.progress = ft.ProgressRing(width=20, height=20, visible=False)
        self.ask = ft.OutlinedButton(t("recover.make_request"), on_click=h(self._ask))
        self.button = ft.Button(
            t("recover.submit"), icon=ft.Icons.LOCK_RESET, on_click=h(self.submit)
        )

    def control(self) -> ft.Control:
        return ft.Column(
            [
                ft.Container(height=40),
                _card(
                    [
                        ft.Text(t("recover.title"), size=20, weight=ft.FontWeight.BOLD),
                        ft.Text(t("recover.explain")),
                        self.ask,
                        self.request,
                        self.saved,
                        self.answer,
                        self.pin,
                        self.confirm,
                        self.message,
                        ft.Row([self.button, self.progress]),
                        ft.TextButton(t("recover.back"), on_click=self.app.handler(self._back)),
                    ]
                ),
            ],
            horizontal_alignment=ft.CrossAxisAlignment.CENTER,
        )

    async def _ask(self, e: Any) -> None:
        text, path = await asyncio.to_thread(self.presenter.request)
        self.request.value, self.request.visible = text, True
        self.saved.value = t("recover.request_saved", path=path_text(path))
        self.app.page.update()

    async def _back(self, e: Any) -> None:
        await self.app.show_lock()

    async def submit(self, e: Any) -> None:
        self.button.disabled, self.progress.visible = True, True
        self.message.value, self.message.color = "", None
        self.app.page.update()
        result = await self.app.io(
            self.presenter.finish,
            self.answer.value or "",
            self.pin.value or "",
            self.confirm.value or "",
        )
        if result.ok:
            await self.app.unlocked(result.store)
            return
        self.message.value, self.message.color = result.message, ft.Colors.ERROR
        self.button.disabled, self.progress.visible = False, False
        self.app.page.update()
