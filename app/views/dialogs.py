"""Closing a dialog, the same way on every screen, and the one shape of a dialog that asks.

`page.pop_dialog()` closes the topmost open overlay, which may be a snack bar still showing, so
the dialog the user answered would stay. `close` closes the dialog it is given.

A dialog stayed on screen, no longer closable, when the app replaced its View while the dialog
was open (a tablet turned to the other layout): `CommuneApp._paint` now keeps its one View and
replaces its parts. As a second line, when Flutter has not reported the dismiss after a grace
period, the dialog is unmounted from the page's dialog stack, which no lost patch survives.
Flet 1.0 has no public call that removes one given dialog, so this module is the one place that
uses `_dialogs` and `_remove_dialog` (see docs/ARCHITECTURE.md, "Departures").
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import flet as ft

from app.i18n import t

if TYPE_CHECKING:
    from app.views.context import AppContext

DISMISS_GRACE_S = 1.5  # Flutter reports a closed dialog's dismiss well within this


def close(dialog: ft.DialogControl) -> None:
    """Close `dialog` (and only it); unmount it if the client never reports the dismiss."""
    page = dialog.page
    stack = getattr(page, "_dialogs", None)
    if stack is not None and dialog not in stack.controls:
        return  # already gone: a second press must not touch an unmounted control
    # A second press while it is still shown sends the patch again (it may have been lost).
    dialog.open = False
    dialog.update()
    if stack is None:  # not on a real page's dialog stack
        return

    async def unmount_if_left() -> None:
        await asyncio.sleep(DISMISS_GRACE_S)
        if dialog in stack.controls:  # no dismiss came back from the client
            page._remove_dialog(dialog)

    page.run_task(unmount_if_left)


def ask(
    app: AppContext,
    title: str,
    fields: list[ft.Control],
    confirm_label: str,
    confirm: Callable[[Any], Awaitable[None]],
    title_size: int | None = None,
) -> ft.AlertDialog:
    """Show a modal dialog asking for `fields`: "Huỷ" closes it, the confirm button runs
    `confirm` (which closes it with `close` once what was asked is done)."""
    dialog: ft.AlertDialog

    async def cancel(e: Any) -> None:
        close(dialog)

    dialog = ft.AlertDialog(
        modal=True,
        title=ft.Text(title, size=title_size),
        content=ft.Column(
            fields, tight=True, width=420, horizontal_alignment=ft.CrossAxisAlignment.STRETCH
        ),
        actions=[
            ft.TextButton(t("detail.cancel"), on_click=app.handler(cancel)),
            ft.Button(confirm_label, on_click=app.handler(confirm)),
        ],
    )
    app.page.show_dialog(dialog)
    return dialog
