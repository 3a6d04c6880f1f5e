"""What a screen may use of the app that shows it. Screens type their `app` as `AppContext`, so
no screen imports `app.views.app` (which imports the screens): the dependency runs one way,
from the app to its screens. `CommuneApp` is the implementation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class AppContext(Protocol):
    page: Any  # ft.Page
    store: Any  # the unlocked LocalStore, None while locked
    role: str | None
    sync: Any  # the SyncBridge of an enrolled store, else None
    sync_status: Any
    sync_line: Any
    camera: Any
    position: Any
    file_picker: Any
    lock_presenter: Any
    idle: Any
    today: Callable[[], Any]

    async def io(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...

    def handler(self, fn: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]: ...

    def after_paint(self, fn: Callable[[], Awaitable[None]]) -> None: ...

    def toast(self, message: str) -> None: ...

    @property
    def actor(self) -> str: ...

    async def go(self, route: str, *, force: bool = False) -> None: ...

    async def render_route(self, route: str | None = None) -> None: ...

    async def refresh_sync(self, update: bool = True) -> None: ...

    async def sync_now(self) -> None: ...

    async def start_sync(self) -> None: ...

    async def stop_sync(self) -> None: ...

    async def show_lock(self, message: str = "") -> None: ...

    async def unlocked(self, store: Any) -> None: ...

    async def lock(self, auto: bool = False) -> None: ...
