"""The app object without a browser: the idle auto-lock, scrolling as activity, the shell's
navigation index and the tablet/desktop switch."""

from __future__ import annotations

import asyncio
from pathlib import Path

import flet as ft

from app.i18n import t
from app.storage import create_store
from app.views import app as app_module
from app.views import shell
from app.views.app import CommuneApp
from app.views.dossier_views import ListScreen
from app.views.lock_model import IdleTimer, StorageGateway
from tests.support import aio
from tests.views.conftest import PIN, TEST_KEYS
from tests.views.fake_page import FakePage, texts

WAIT_STEPS, STEP_S = 400, 0.01  # a bounded wait for the watcher (at most 4 s)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_app(data_dir: Path, width: float = 1280) -> tuple[CommuneApp, FakePage]:
    page = FakePage(width)
    app = CommuneApp(page, StorageGateway(data_dir))  # type: ignore[arg-type]
    return app, page


async def wait_until(condition) -> bool:
    for _ in range(WAIT_STEPS):
        if condition():
            return True
        await asyncio.sleep(STEP_S)
    return condition()


def test_idle_app_locks_itself_and_activity_postpones_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(app_module, "IDLE_CHECK_S", STEP_S)
    store = create_store(tmp_path / "data", PIN, settings=TEST_KEYS)

    async def scenario() -> None:
        app, page = make_app(tmp_path / "data")
        clock = Clock()
        app.store, app.idle = store, IdleTimer(1, clock=clock)
        watcher = asyncio.get_running_loop().create_task(app._idle_watch())
        try:
            clock.now += 50
            app.touch()  # a click or a key 50 s in
            clock.now += 50  # 100 s since the start, 50 s since the activity
            await asyncio.sleep(STEP_S * 5)
            assert app.store is store and not page.views  # not locked yet

            clock.now += 10  # 60 s without activity
            assert await wait_until(lambda: bool(page.views))  # the lock screen is up
            assert app.store is None
            assert page.views and t("lock.auto") in texts(page.views[-1])
            assert t("unlock.button") in texts(page.views[-1])
        finally:
            app.closed = True
            await watcher
            app.worker.shutdown(wait=True)

    aio.run(scenario())
    assert store._closed  # the lock closed the store (its key is gone from memory)


def test_scrolling_the_list_counts_as_activity(store, tmp_path: Path) -> None:
    app, _page = make_app(tmp_path / "unused")
    clock = Clock()
    app.store, app.idle = store, IdleTimer(1, clock=clock)
    screen = ListScreen(app)
    clock.now += 59
    assert app.idle.seconds_left() == 1
    screen.rows.on_scroll(None)  # what Flet calls when the list scrolls
    assert app.idle.seconds_left() == 60
    assert screen.rows.scroll_interval == app_module.SCROLL_INTERVAL_MS
    app.worker.shutdown(wait=False)


def test_nav_index_follows_the_route_and_ignores_the_query() -> None:
    assert shell.nav_index("/dashboard") == 0
    assert shell.nav_index("/dossiers") == 1
    assert shell.nav_index("/dossiers/01abc") == 1
    assert shell.nav_index("/dossiers?overdue=1") == 1
    assert shell.nav_index("/receive") == 2
    assert shell.nav_index("/settings") == 4
    assert shell.nav_index("/dossiersX") is None and shell.nav_index("/") is None


def test_tablets_get_the_bottom_bar_desktops_the_rail(tmp_path: Path) -> None:
    assert shell.is_narrow(800) and shell.is_narrow(899)
    assert not shell.is_narrow(900) and not shell.is_narrow(1280)
    for width, bar, extended in ((800, True, None), (1024, False, False), (1280, False, True)):
        app, _page = make_app(tmp_path, width)
        view = shell.app_view(app, "/receive", ft.Text("body"), shell.is_narrow(width))
        if bar:
            assert isinstance(view.navigation_bar, ft.NavigationBar)
            assert view.navigation_bar.selected_index == 2
        else:
            assert view.navigation_bar is None
            rail = view.controls[0].controls[0]
            assert isinstance(rail, ft.NavigationRail)
            assert rail.selected_index == 2 and rail.extended is extended
        app.worker.shutdown(wait=False)


def test_the_procedure_list_names_the_query_it_answers(store, tmp_path: Path) -> None:
    """The debounced list says which query it shows (the browser tests wait on that line
    before clicking a result); a chosen procedure hides it, changing the choice shows it."""
    from app.views.dossier_views import ReceiveScreen

    async def scenario() -> None:
        app, _page = make_app(tmp_path / "unused")
        app.store = store
        screen = ReceiveScreen(app)
        screen.build()
        assert not screen.proc_answered.visible  # the unfiltered list names no query
        screen.proc_search.value = "dang ky lai khai sinh"
        await screen._proc_search(None)
        assert not screen.proc_answered.visible  # still the old list while typing
        await screen._search_task
        assert screen.proc_answered.value == "Kết quả tìm «dang ky lai khai sinh»"
        assert screen.proc_answered.visible and len(screen.proc_results.controls) == 1
        await screen._choose("1.004884")
        assert not screen.proc_answered.visible and screen.proc_chosen.visible
        app.worker.shutdown(wait=True)

    aio.run(scenario())


def test_no_screen_imports_the_app_module() -> None:
    """The app imports its screens; screens know the app only as `AppContext`."""
    import ast
    from pathlib import Path

    import app.views as views

    folder = Path(views.__file__).parent
    offenders = []
    for path in sorted(folder.glob("*.py")):
        if path.name == "app.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            if "app.views.app" in names:
                offenders.append(path.name)
    assert offenders == []
    source = (folder / "dossier_models.py").read_text(encoding="utf-8")
    assert "_Query" not in source  # the stand-in query is gone: the storage room's is used
