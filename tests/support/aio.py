"""Run a coroutine to completion from a test, whatever else the session started.

Playwright's sync API (the browser tests' session-scoped fixture) leaves an event loop running
in the main thread, where `asyncio.run` then refuses to start; a worker thread has no loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

TIMEOUT_S = 120  # a scenario that hangs fails instead of stalling the suite


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-loop") as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout=TIMEOUT_S)
