"""Handing a document the app made (a slip, a form, a register) to the user.

Where the platform has a file system the user can see (desktop and mobile builds), the save
dialog asks where to keep it; on a desktop the notice that follows opens the saved file in the
system's viewer, whose print command prints it. The web build hands it to the browser as a
download and says so. Never a silent download: every path ends in a notice naming the file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import flet as ft

from app.i18n import t
from app.views.format import path_text

if TYPE_CHECKING:
    from app.views.context import AppContext

# Platforms whose system viewer opens a saved file from a file:// address.
OPENS_SAVED_FILES = frozenset(
    {ft.PagePlatform.WINDOWS, ft.PagePlatform.MACOS, ft.PagePlatform.LINUX}
)


def can_open_saved(page: ft.Page) -> bool:
    return not page.web and page.platform in OPENS_SAVED_FILES


def notice_after_save(saved: str | None, name: str, web: bool, opens: bool) -> tuple[str, bool]:
    """What the user reads after the hand-over, and whether it offers to open the file."""
    if web:
        return t("handover.downloaded", name=name), False
    if not saved:
        return t("handover.not_saved", name=name), False
    return t("handover.saved", path=path_text(saved)), opens


async def hand_over(app: AppContext, name: str, data: bytes, extension: str) -> None:
    page = app.page
    saved = await app.file_picker.save_file(
        file_name=name, src_bytes=data, allowed_extensions=[extension]
    )
    message, offer_open = notice_after_save(saved, name, bool(page.web), can_open_saved(page))
    if not offer_open or not saved:
        app.toast(message)
        return

    async def open_saved(e: object) -> None:
        from pathlib import Path

        await ft.UrlLauncher().launch_url(Path(saved).as_uri())

    page.show_dialog(
        ft.SnackBar(
            content=ft.Text(message),
            action=t("handover.open"),
            on_action=open_saved,
            duration=10_000,
        )
    )
