"""The Flet app: lock screen, shell, routing, idle lock, sync state. Screens live in siblings.

Every store call runs on ONE worker thread (`CommuneApp.io`): the UI loop never blocks on
SQLite, Argon2 or sealing, and the store is only ever touched from one thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import flet as ft

from app.i18n import LANGUAGES, set_language, t
from app.views import shell
from app.views.format import today_local
from app.views.lock_model import (
    DEFAULT_AUTO_LOCK_MINUTES,
    IdleTimer,
    LockPresenter,
    StorageGateway,
    StoreGateway,
)
from app.views.position import PositionProvider
from app.views.sync_bridge import SyncBridge

log = logging.getLogger(__name__)
T = TypeVar("T")
IDLE_CHECK_S = 5.0
ASSETS_DIR = Path(__file__).resolve().parents[2] / "assets"


class Camera:
    """The device camera. Desktop and web builds have none; a mobile build (or a test) gives
    one whose `capture()` returns JPEG bytes."""

    available = False

    async def capture(self) -> bytes | None:
        return None


class CommuneApp:
    def __init__(
        self,
        page: ft.Page,
        gateway: StoreGateway,
        *,
        camera: Camera | None = None,
        position: PositionProvider | None = None,
        today: Callable[[], Any] = today_local,
    ) -> None:
        self.page = page
        self.gateway = gateway
        self.lock_presenter = LockPresenter(gateway)
        self.camera = camera or Camera()
        self.position = position or PositionProvider()
        self.role: str | None = None  # the enrolled role; decides the audit destinations
        self.today = today
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self.store: Any = None
        self.sync: SyncBridge | None = None
        self.sync_status: Any = None
        self.idle = IdleTimer(0)
        self.body: ft.Control | None = None
        self.body_route = ""
        self.narrow: bool | None = None
        self.closed = False
        self.file_picker = ft.FilePicker()
        self.sync_line = shell.SyncLine(self)

    # ---- plumbing ---------------------------------------------------------------------------

    async def io(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run store (or other blocking) work off the UI loop, on the store's thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.worker, partial(fn, *args, **kwargs))

    def touch(self) -> None:
        self.idle.touch()

    def handler(self, fn: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
        """Wrap an event handler: counts as activity, and an error becomes a message, not a
        dead screen."""

        async def wrapped(e: Any) -> None:
            self.touch()
            try:
                await fn(e)
            except Exception as exc:
                log.exception("handler failed")
                self.toast(t("common.error", message=exc))

        return wrapped

    def toast(self, message: str) -> None:
        self.page.show_dialog(ft.SnackBar(content=ft.Text(message), duration=4000))

    @property
    def actor(self) -> str:
        return (self.store.settings.get("officer") or "") if self.store else ""

    # ---- start, lock, unlock ---------------------------------------------------------------

    async def start(self) -> None:
        page = self.page
        page.title = t("app.title")
        page.theme_mode = ft.ThemeMode.LIGHT
        page.theme = ft.Theme(color_scheme_seed=ft.Colors.INDIGO)
        page.services.append(self.file_picker)
        page.on_route_change = self._on_route_change
        page.on_resize = self._on_resize
        page.on_keyboard_event = lambda e: self.touch()
        page.on_close = self._on_close
        page.run_task(self._idle_watch)
        await self.show_lock()

    async def show_lock(self, message: str = "") -> None:
        from app.views import lock_view

        first_run = await self.io(lambda: self.lock_presenter.first_run)
        body = lock_view.build(self, first_run=first_run, message=message)
        self.body, self.body_route = body, "/"
        self.page.views.clear()
        self.page.views.append(shell.lock_view(body))
        self.page.update()

    async def unlocked(self, store: Any) -> None:
        self.store = store
        language = await self.io(store.settings.get, "language", "vi")
        set_language(language if language in LANGUAGES else "vi")
        minutes = await self.io(store.settings.get, "auto_lock_minutes", DEFAULT_AUTO_LOCK_MINUTES)
        self.idle = IdleTimer(int(minutes if minutes is not None else DEFAULT_AUTO_LOCK_MINUTES))
        self.page.title = t("app.title")
        self.role = await self.io(store.settings.get, "role")
        notice = partial(self.page.run_task, self.show_lock, t("unlock.destroyed"))  # pre-erase
        self.sync = await self.io(SyncBridge.start_for, store, notice)
        if self.sync:
            self.sync.add_listener(self._on_sync_status)
        await self.go("/dossiers", force=True)

    async def lock(self, auto: bool = False) -> None:
        for _ in range(5):  # no dialog may stay open over the lock screen
            if self.page.pop_dialog() is None:
                break
        store, self.store = self.store, None
        sync, self.sync = self.sync, None
        self.body = None
        if sync:
            await self.io(sync.shutdown)
        if store is not None:
            await self.io(store.close)
        await self.show_lock(t("lock.auto") if auto else "")

    async def _idle_watch(self) -> None:
        while not self.closed:
            await asyncio.sleep(IDLE_CHECK_S)
            if self.store is not None and self.idle.expired():
                await self.lock(auto=True)

    async def _on_close(self, e: Any) -> None:
        """The session ended (window closed, browser gone): close the store, no UI to update."""
        store, self.store = self.store, None
        sync, self.sync = self.sync, None
        if sync:
            await self.io(sync.shutdown)
        if store is not None:
            await self.io(store.close)
        self.closed = True
        self.worker.shutdown(wait=False)

    # ---- routing ---------------------------------------------------------------------------

    async def go(self, route: str, *, force: bool = False) -> None:
        self.touch()
        if self.page.route == route:
            if force or self.body_route != route:
                await self.render_route()
            return
        await self.page.push_route(route)

    async def _on_route_change(self, e: Any) -> None:
        self.touch()
        await self.render_route()

    async def render_route(self) -> None:
        from app.views import screens

        if self.store is None:
            await self.show_lock()
            return
        route = self.page.route or "/dossiers"
        body = await screens.build(self, route)
        self.body, self.body_route = body, route
        await self.refresh_sync(update=False)  # one paint per navigation, not two
        self._paint()

    def _paint(self) -> None:
        if self.body is None or self.store is None:
            return
        self.narrow = (self.page.width or 1280) < shell.NARROW_PX
        self.page.views.clear()
        self.page.views.append(shell.app_view(self, self.body_route, self.body, self.narrow))
        self.page.update()

    async def _on_resize(self, e: Any) -> None:
        narrow = (self.page.width or 1280) < shell.NARROW_PX
        if narrow != self.narrow and self.store is not None:
            self._paint()

    # ---- sync state ------------------------------------------------------------------------

    def _on_sync_status(self, status: Any) -> None:
        """Called on the scheduler's thread: hop to the UI loop."""
        self.sync_status = status
        if getattr(status, "revoked", False):
            self.page.run_task(self._revoked)
        else:
            self.page.run_task(self.refresh_sync)

    async def _revoked(self) -> None:
        """The server revoked this device and the sync room erased the store: back to first run."""
        store, self.store = self.store, None
        sync, self.sync = self.sync, None
        if sync:
            await self.io(sync.shutdown)
        if store is not None:
            try:
                await self.io(store.close)
            except Exception:  # already erased under us; nothing left to close cleanly
                log.info("store closed after erase", exc_info=True)
        await self.show_lock(t("unlock.destroyed"))

    async def refresh_sync(self, update: bool = True) -> None:
        if self.store is None:
            return
        summary = await self.io(self.store.sync.summary)
        self.sync_line.show(
            summary, self.sync_status, enrolled=self.sync is not None, update=update
        )

    async def sync_now(self) -> None:
        if self.sync is None:
            self.toast(t("sync.not_available"))
            return
        await self.io(self.sync.sync_now)


def run_app(
    page: ft.Page,
    data_dir: Path,
    *,
    gateway: StoreGateway | None = None,
    camera: Camera | None = None,
    position: PositionProvider | None = None,
) -> Awaitable[None]:
    app = CommuneApp(
        page, gateway or StorageGateway(data_dir), camera=camera, position=position
    )
    return app.start()


def make_main(data_dir: Path, **kwargs: Any) -> Callable[[ft.Page], Awaitable[None]]:
    async def main(page: ft.Page) -> None:
        await run_app(page, data_dir, **kwargs)

    return main
