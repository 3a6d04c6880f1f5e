"""First run (enrol with a server, or work locally; set a PIN twice) and the unlock screen."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import flet as ft

from app.domain import reference
from app.i18n import t
from app.views.lock_model import MIN_PIN_LENGTH
from app.views.sync_bridge import EnrolError, enrol

if TYPE_CHECKING:
    from app.views.app import CommuneApp

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


def build(app: CommuneApp, *, first_run: bool, message: str = "") -> ft.Control:
    if first_run:
        return FirstRun(app, message).control()
    return Unlock(app, message).control()


class Unlock:
    def __init__(self, app: CommuneApp, message: str) -> None:
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
    def __init__(self, app: CommuneApp, message: str = "") -> None:
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
        wards = reference.hanoi_wards()
        self.ward = ft.Dropdown(
            label=t("first.ward"),
            options=[ft.DropdownOption(key=w.code, text=w.name) for w in wards],
            value=wards[0].code if wards else None,
            enable_filter=True,
            editable=True,
            menu_height=320,
            width=CARD_WIDTH - 48,
        )
        self.officer = ft.TextField(label=t("first.officer"))
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
                        self.ward,
                        self.officer,
                        ft.Divider(),
                        ft.Text(t("first.set_pin"), weight=ft.FontWeight.W_500),
                        ft.Text(
                            t("first.set_pin_hint") + " " + t("pin.too_short", n=MIN_PIN_LENGTH),
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

    async def _mode_changed(self, e: Any) -> None:
        enrolling = self.mode.value == "enrol"
        self.server.visible = self.code.visible = enrolling
        self.ward.visible = not enrolling
        self.app.page.update()

    def _problem(self) -> str | None:
        if self.mode.value == "enrol":
            url = (self.server.value or "").strip()
            if not url.startswith(("http://", "https://")) or not (self.code.value or "").strip():
                return t("first.error.server")
        return None

    async def submit(self, e: Any) -> None:
        problem = self._problem()
        if problem:
            self.message.value = problem
            self.app.page.update()
            return
        self._busy(True, t("first.creating"))
        try:
            result = await self.app.io(
                self.app.lock_presenter.create, self.pin.value or "", self.confirm.value or ""
            )
        except Exception as exc:  # e.g. the data folder is not writable: keep the form usable
            self._busy(False, t("common.error", message=exc))
            return
        if not result.ok:
            self._busy(False, result.message)
            return
        store = result.store
        await self.app.io(self._save_settings, store)
        if self.mode.value == "enrol":
            self._busy(True, t("first.enrolling"))
            try:
                await self.app.io(enrol, store, self.server.value.strip(), self.code.value.strip())
            except EnrolError as exc:
                self.app.toast(t("first.error.enrol", reason=exc))
        await self.app.unlocked(store)

    def _save_settings(self, store: Any) -> None:
        if self.officer.value:
            store.settings.set("officer", self.officer.value.strip())
        if self.mode.value == "local" and self.ward.value:
            store.settings.set("ward_code", self.ward.value)

    def _busy(self, busy: bool, message: str) -> None:
        self.button.disabled, self.progress.visible = busy, busy
        self.message.value = message
        self.message.color = None if busy else ft.Colors.ERROR
        self.app.page.update()
