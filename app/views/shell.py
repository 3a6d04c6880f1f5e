"""The frame around every screen: navigation (bar on tablets, rail on desktops), the sync line
with "Đồng bộ ngay", and "Khoá ngay"."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import flet as ft

from app.i18n import t
from app.views.audit_models import role_routes
from app.views.sync_models import sync_indicator

if TYPE_CHECKING:
    from app.views.context import AppContext

NARROW_PX = 900
EXTENDED_RAIL_PX = 1200

DESTINATIONS = (
    ("/dashboard", "nav.dashboard", ft.Icons.INSIGHTS_OUTLINED, ft.Icons.INSIGHTS),
    ("/dossiers", "nav.dossiers", ft.Icons.FOLDER_OUTLINED, ft.Icons.FOLDER),
    ("/receive", "nav.receive", ft.Icons.POST_ADD_OUTLINED, ft.Icons.POST_ADD),
    ("/sync", "nav.sync", ft.Icons.SYNC_OUTLINED, ft.Icons.SYNC),
    ("/settings", "nav.settings", ft.Icons.SETTINGS_OUTLINED, ft.Icons.SETTINGS),
)

TONE_COLORS = {
    "ok": ft.Colors.GREEN_700,
    "busy": ft.Colors.BLUE_700,
    "warn": ft.Colors.AMBER_800,
    "error": ft.Colors.RED_700,
    "offline": ft.Colors.GREY_700,
}
TONE_ICONS = {
    "ok": ft.Icons.CLOUD_DONE_OUTLINED,
    "busy": ft.Icons.CLOUD_SYNC_OUTLINED,
    "warn": ft.Icons.CLOUD_UPLOAD_OUTLINED,
    "error": ft.Icons.ERROR_OUTLINE,
    "offline": ft.Icons.CLOUD_OFF_OUTLINED,
}


ROLE_DESTINATIONS = (
    ("/audits", "nav.audits", ft.Icons.FACT_CHECK_OUTLINED, ft.Icons.FACT_CHECK),
    ("/reviews", "nav.reviews", ft.Icons.RATE_REVIEW_OUTLINED, ft.Icons.RATE_REVIEW),
    ("/oversight", "nav.oversight", ft.Icons.LEADERBOARD_OUTLINED, ft.Icons.LEADERBOARD),
)


def destinations(app: AppContext) -> tuple[tuple[str, str, Any, Any], ...]:
    """Only the role's own destinations (`role_routes`), in its order."""
    by_route = {d[0]: d for d in DESTINATIONS + ROLE_DESTINATIONS}
    return tuple(by_route[r] for r in role_routes(getattr(app, "role", None)))


# No route animation: a screen change is one paint, not a 300 ms cross-fade.
NO_TRANSITIONS = ft.PageTransitionsTheme(
    **{
        name: ft.PageTransitionTheme.NONE
        for name in ("android", "ios", "linux", "macos", "windows")
    }
)
TOUCH_DP = 48  # the smallest touch target in the tablet layout (Material's minimum)


def theme(narrow: bool) -> ft.Theme:
    """The app's theme; on a tablet every button is at least TOUCH_DP high (a button's label
    is ~20 dp, so 14 dp above and below; an icon button 24 + 2 x 12). Flutter on the web gives
    desktop density and no padded tap targets, where buttons are 32-40 dp."""
    base = {"color_scheme_seed": ft.Colors.INDIGO, "page_transitions": NO_TRANSITIONS}
    if not narrow:
        return ft.Theme(**base)
    label_padding = ft.Padding.symmetric(horizontal=16, vertical=14)
    button = ft.ButtonStyle(padding=label_padding, visual_density=ft.VisualDensity.STANDARD)
    return ft.Theme(
        **base,
        visual_density=ft.VisualDensity.STANDARD,
        button_theme=ft.ButtonTheme(style=button),
        filled_button_theme=ft.FilledButtonTheme(style=button),
        outlined_button_theme=ft.OutlinedButtonTheme(style=button),
        text_button_theme=ft.TextButtonTheme(style=button),
        # A chip's label row is ~20 dp: 14 above and below make it a 48 dp target.
        chip_theme=ft.ChipTheme(padding=ft.Padding.symmetric(horizontal=8, vertical=14)),
        icon_button_theme=ft.IconButtonTheme(
            style=ft.ButtonStyle(
                padding=ft.Padding.all(12), visual_density=ft.VisualDensity.STANDARD
            )
        ),
    )


def is_narrow(width: float | None) -> bool:
    """Tablets (and narrow windows) get the bottom bar, wider screens the rail. 900 px: a
    tablet held upright (800) is narrow, the smallest desktop window in use (1280) is not."""
    return (width or 1280) < NARROW_PX


def nav_index(route: str, dests: tuple = DESTINATIONS) -> int | None:
    route = route.split("?", 1)[0]
    for i, (prefix, *_rest) in enumerate(dests):
        if route == prefix or route.startswith(prefix + "/"):
            return i
    return None


class SyncLine:
    """The sync indicator: icon, one line of text, and the "Đồng bộ ngay" button."""

    def __init__(self, app: AppContext) -> None:
        self.app = app
        self.icon = ft.Icon(ft.Icons.CLOUD_OFF_OUTLINED, size=18, color=TONE_COLORS["offline"])
        self.text = ft.Text("", size=13, color=TONE_COLORS["offline"])
        self.button = ft.TextButton(
            t("sync.now"), icon=ft.Icons.SYNC, on_click=app.handler(self._sync_now)
        )

    async def _sync_now(self, e: Any) -> None:
        await self.app.sync_now()
        await self.app.refresh_sync()

    async def _open_list(self, e: Any) -> None:
        """The line opens the sync screen: what waits to be sent, each with its state."""
        await self.app.go("/sync")

    def control(self) -> ft.Control:
        self.button.content = t("sync.now")
        line = ft.Container(
            self.text,
            expand=True,
            height=TOUCH_DP,  # a touch target: it opens what waits to be sent
            alignment=ft.Alignment.CENTER_LEFT,
            on_click=self.app.handler(self._open_list),
            tooltip=t("sync.open_waiting"),
        )
        return ft.Row(
            [self.icon, line, self.button],
            spacing=6,
            vertical_alignment=ft.CrossAxisAlignment.CENTER,
        )

    def show(self, summary: Any, status: Any, *, enrolled: bool, update: bool = True) -> None:
        view = sync_indicator(summary, status, enrolled=enrolled)
        color = TONE_COLORS[view.tone]
        self.text.value, self.text.color = view.text, color
        self.icon.icon, self.icon.color = TONE_ICONS[view.tone], color
        self.button.disabled = not view.can_sync_now
        if update and self.app.page is not None:
            self.app.page.update()


def lock_view(body: ft.Control) -> ft.View:
    return ft.View(
        route="/",
        controls=[ft.Container(body, alignment=ft.Alignment.TOP_CENTER, expand=True)],
        scroll=ft.ScrollMode.AUTO,
        padding=ft.Padding.all(16),
        bgcolor=ft.Colors.SURFACE_CONTAINER_LOWEST,
    )


def _lock_button(app: AppContext, compact: bool) -> ft.Control:
    async def lock_now(e: Any) -> None:
        await app.lock()

    if compact:
        return ft.IconButton(
            ft.Icons.LOCK_OUTLINE, tooltip=t("lock.now"), on_click=app.handler(lock_now)
        )
    return ft.OutlinedButton(
        t("lock.now"), icon=ft.Icons.LOCK_OUTLINE, on_click=app.handler(lock_now)
    )


def _navigate(app: AppContext, dests: tuple = DESTINATIONS) -> Any:
    async def on_change(e: Any) -> None:
        index = int(e.control.selected_index)
        await app.go(dests[index][0])

    return app.handler(on_change)


def app_view(app: AppContext, route: str, body: ft.Control, narrow: bool) -> ft.View:
    dests = destinations(app)
    selected = nav_index(route, dests)
    sync_row = ft.Container(
        app.sync_line.control(),
        padding=ft.Padding.symmetric(horizontal=12, vertical=2),
        bgcolor=ft.Colors.SURFACE_CONTAINER_LOW,
        border_radius=8,
    )
    content = ft.Container(body, expand=True, padding=ft.Padding.only(top=4))
    if narrow:
        return ft.View(
            route=route,
            appbar=ft.AppBar(
                title=ft.Text(t("app.title")),
                actions=[_lock_button(app, compact=True)],
                bgcolor=ft.Colors.SURFACE_CONTAINER,
            ),
            navigation_bar=ft.NavigationBar(
                destinations=[
                    ft.NavigationBarDestination(icon=icon, selected_icon=sel, label=t(key))
                    for _, key, icon, sel in dests
                ],
                selected_index=selected if selected is not None else 1,
                on_change=_navigate(app, dests),
            ),
            controls=[sync_row, content],
            padding=ft.Padding.all(8),
            spacing=6,
        )
    extended = (app.page.width or 1280) >= EXTENDED_RAIL_PX
    rail = ft.NavigationRail(
        destinations=[
            ft.NavigationRailDestination(icon=icon, selected_icon=sel, label=t(key))
            for _, key, icon, sel in dests
        ],
        selected_index=selected,
        extended=extended,
        label_type=None if extended else ft.NavigationRailLabelType.ALL,
        min_extended_width=220,
        leading=ft.Container(
            ft.Column(
                [
                    ft.Text(t("app.title"), weight=ft.FontWeight.BOLD, size=16),
                    ft.Text(t("app.subtitle"), size=11, color=ft.Colors.ON_SURFACE_VARIANT),
                ],
                spacing=2,
                tight=True,
            )
            if extended
            else ft.Icon(ft.Icons.ACCOUNT_BALANCE, color=ft.Colors.PRIMARY),
            padding=ft.Padding.symmetric(vertical=12, horizontal=8),
        ),
        trailing=ft.Container(_lock_button(app, compact=not extended), padding=12),
        on_change=_navigate(app, dests),
        bgcolor=ft.Colors.SURFACE_CONTAINER_LOW,
    )
    main = ft.Container(
        ft.Column([sync_row, content], expand=True, spacing=6),
        expand=True,
        padding=ft.Padding.only(left=12, right=16, top=8, bottom=4),
    )
    return ft.View(
        route=route,
        controls=[ft.Row([rail, ft.VerticalDivider(width=1), main], expand=True)],
        padding=ft.Padding.all(0),
    )
