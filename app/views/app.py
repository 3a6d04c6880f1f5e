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
from app.views.audit_models import home_route, role_of
from app.views.device import Camera, device_capabilities
from app.views.errors import error_text
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
SCROLL_INTERVAL_MS = 1000  # scroll events count as activity; one a second is plenty
SYNC_TICK_S = 5.0  # the sync line refreshes this often during a run
SYNC_TICKS_MAX = 720  # an hour of ticks at most per run
ASSETS_DIR = Path(__file__).resolve().parents[2] / "assets"


# What app_view sets on a View; _paint moves them onto the View already shown.
VIEW_PARTS = ("route", "appbar", "navigation_bar", "controls", "padding", "spacing")

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
        # The build's own camera and position where it has them (a mobile `flet build`);
        # tests pass stand-ins.
        found_camera, found_position = device_capabilities(page)
        self.camera = camera or found_camera
        self.position = position or found_position
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
        self._app_view: ft.View | None = None  # the one View of the unlocked app
        self.closed = False
        self.file_picker = ft.FilePicker()
        self._after_paint: list[Callable[[], Awaitable[None]]] = []
        self.sync_line = shell.SyncLine(self)
        self._ticking = False
        self._was_running = False

    # ---- plumbing ---------------------------------------------------------------------------

    async def io(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run store (or other blocking) work off the UI loop, on the store's thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.worker, partial(fn, *args, **kwargs))

    def touch(self, e: Any = None) -> None:
        """User activity (a key, a click, a scroll): postpones the idle lock."""
        self.idle.touch()

    def scrolling(self, control: T) -> T:
        """Make scrolling in this list or column count as activity."""
        control.on_scroll = self.touch  # type: ignore[attr-defined]
        control.scroll_interval = SCROLL_INTERVAL_MS  # type: ignore[attr-defined]
        return control

    def handler(self, fn: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
        """Wrap an event handler: counts as activity, and an error becomes a message, not a
        dead screen."""

        async def wrapped(e: Any) -> None:
            self.touch()
            try:
                await fn(e)
            except Exception as exc:
                log.exception("handler failed")
                self.toast(t("common.error", message=error_text(exc)))

        return wrapped

    def after_paint(self, fn: Callable[[], Awaitable[None]]) -> None:
        """Run `fn` once the screen being built has been sent to the client (work that need not
        hold up the first frame)."""
        self._after_paint.append(fn)

    def _run_after_paint(self) -> None:
        pending, self._after_paint = self._after_paint, []
        for fn in pending:
            self.page.run_task(self.handler(lambda e, fn=fn: fn()), None)

    def toast(self, message: str) -> None:
        self.page.show_dialog(ft.SnackBar(content=ft.Text(message), duration=4000))

    @property
    def actor(self) -> str:
        """Who the history names: the officer's name typed at first run, else the enrolled
        user name."""
        if not self.store:
            return ""
        return self.store.settings.get("officer") or self.store.settings.get("user") or ""

    # ---- start, lock, unlock ---------------------------------------------------------------

    async def start(self) -> None:
        page = self.page
        page.title = t("app.title")
        page.theme_mode = ft.ThemeMode.LIGHT
        # One touch theme for every layout: swapping themes on a resize rebuilt the app under an
        # open dialog, which then never closed on the client (tablets rotate with dialogs open).
        page.theme = shell.theme(narrow=True)
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
        if not first_run:
            self.page.run_task(self._revoked_while_locked)

    async def _revoked_while_locked(self) -> None:
        """A revoked tablet erases itself at its next contact, even before anyone unlocks it
        (its own thread: a slow network never holds up an unlock)."""
        check = getattr(self.gateway, "check_revoked", None)
        if check is None or self.store is not None:
            return
        if await asyncio.to_thread(check) and self.store is None:  # still locked: show it
            await self.show_lock(t("unlock.destroyed"))

    async def unlocked(self, store: Any) -> None:
        self.store = store
        language = await self.io(store.settings.get, "language", "vi")
        set_language(language if language in LANGUAGES else "vi")
        minutes = await self.io(store.settings.get, "auto_lock_minutes", DEFAULT_AUTO_LOCK_MINUTES)
        self.idle = IdleTimer(int(minutes if minutes is not None else DEFAULT_AUTO_LOCK_MINUTES))
        self.page.title = t("app.title")
        await self.start_sync()
        await self.go(home_route(self.role), force=True)

    async def start_sync(self) -> None:
        """Start the background sync for an enrolled store (after unlock, or after enrolling
        from the settings screen). A revoked device is told before its store is erased."""
        if self.sync is not None or self.store is None:
            return
        self.role = await self.io(role_of, self.store.settings)  # enrolment or first run
        notice = partial(self.page.run_task, self.show_lock, t("unlock.destroyed"))  # pre-erase
        self.sync = await self.io(SyncBridge.start_for, self.store, notice)
        if self.sync:
            self.sync.add_listener(self._on_sync_status)

    async def stop_sync(self) -> None:
        """Stop the background sync (after a desktop logout); the store stays open."""
        sync, self.sync = self.sync, None
        if sync:
            await self.io(sync.shutdown)
        await self.refresh_sync(update=False)

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
        """Render the screen at once, then record the route in the browser's history; the
        route-change event that follows finds the screen already there and does nothing. (Waiting
        for that event before rendering costs a round trip to the client per navigation.)"""
        self.touch()
        if force or self.body_route != route:
            await self.render_route(route)
        if self.page.route != route:
            await self.page.push_route(route)

    async def _on_route_change(self, e: Any) -> None:
        """The browser's back/forward buttons or a typed address; our own `go` is already
        rendered."""
        self.touch()
        if self.page.route != self.body_route:
            await self.render_route()

    async def render_route(self, route: str | None = None) -> None:
        from app.views import screens

        if self.store is None:
            await self.show_lock()
            return
        route = route or self.page.route or "/dossiers"
        self._after_paint = []  # left by a screen that is being replaced
        body = await screens.build(self, route)
        self.body, self.body_route = body, route
        await self.refresh_sync(update=False)  # one paint per navigation, not two
        self._paint()

    def _paint(self) -> None:
        if self.body is None or self.store is None:
            return
        self.narrow = shell.is_narrow(self.page.width)
        fresh = shell.app_view(self, self.body_route, self.body, self.narrow)
        views = self.page.views
        if len(views) == 1 and views[0] is self._app_view:
            # The same View, its parts replaced: a View swapped for another under an open
            # dialog (a tablet turned, a move that navigates as its dialog closes) left the
            # dialog on the client, no longer closable.
            for name in VIEW_PARTS:
                setattr(self._app_view, name, getattr(fresh, name))
        else:
            views.clear()
            views.append(fresh)
            self._app_view = fresh
        self.page.update()
        self._run_after_paint()

    async def _on_resize(self, e: Any) -> None:
        narrow = shell.is_narrow(self.page.width)
        if narrow != self.narrow and self.store is not None:
            self._paint()

    # ---- sync state ------------------------------------------------------------------------

    def _on_sync_status(self, status: Any) -> None:
        """Called on the scheduler's thread: hop to the UI loop."""
        self.sync_status = status
        if getattr(status, "revoked", False):
            self.page.run_task(self._revoked)
        else:
            self.page.run_task(self._sync_changed)

    async def _sync_changed(self) -> None:
        await self.refresh_sync()
        if getattr(self.sync_status, "running", False) and not self._ticking:
            self._ticking = True
            self.page.run_task(self._tick_while_running)
        await self._refresh_sync_screen()

    async def _tick_while_running(self) -> None:
        """Refresh the sync line while a run goes on, so a server that stops answering is
        named within seconds, not when the run ends (bounded: the run is cut after a stall)."""
        try:
            for _ in range(SYNC_TICKS_MAX):
                await asyncio.sleep(SYNC_TICK_S)
                if self.store is None or not getattr(self.sync_status, "running", False):
                    return
                await self.refresh_sync()
        finally:
            self._ticking = False

    async def _refresh_sync_screen(self) -> None:
        """Counts and the waiting list refresh when a run ends, on the sync screen too."""
        running = bool(getattr(self.sync_status, "running", False))
        ended, self._was_running = self._was_running and not running, running
        if ended and self.body_route == "/sync":
            await self.render_route("/sync")

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
    app = CommuneApp(page, gateway or StorageGateway(data_dir), camera=camera, position=position)
    return app.start()


def make_main(data_dir: Path, **kwargs: Any) -> Callable[[ft.Page], Awaitable[None]]:
    async def main(page: ft.Page) -> None:
        await run_app(page, data_dir, **kwargs)

    return main
