"""A stand-in for `ft.Page` with what `CommuneApp` touches: views, dialogs, tasks, width. Lets
the app's own logic (idle lock, shell switch, screens' handlers) run without a browser."""

from __future__ import annotations

import asyncio
from typing import Any


class FakePage:
    def __init__(self, width: float = 1280) -> None:
        self.width = width
        self.route = "/"
        self.title = ""
        self.views: list[Any] = []
        self.dialogs: list[Any] = []
        self.updates = 0
        self.tasks: list[asyncio.Task] = []

    def update(self) -> None:
        self.updates += 1

    def show_dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog)

    def pop_dialog(self) -> Any:
        return self.dialogs.pop() if self.dialogs else None

    def run_task(self, fn: Any, *args: Any) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(fn(*args))
        self.tasks.append(task)
        return task

    async def push_route(self, route: str) -> None:
        self.route = route


def texts(control: Any) -> list[str]:
    """Every Text value under a control (through `controls`, `content` and a view's bars)."""
    found: list[str] = []
    stack = [control]
    while stack:
        node = stack.pop()
        if node is None:
            continue
        value = getattr(node, "value", None)
        if type(node).__name__ == "Text" and isinstance(value, str):
            found.append(value)
        for attr in ("controls", "content", "leading", "trailing", "title", "subtitle"):
            child = getattr(node, attr, None)
            if isinstance(child, list):
                stack.extend(child)
            elif child is not None and not isinstance(child, str | int | float | bool):
                stack.append(child)
    return found
