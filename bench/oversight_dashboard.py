"""Client: time from a click on "Giám sát" to the painted oversight dashboard of 126 wards'
snapshots, against a light screen (settings) in the same run as the baseline.

A real encrypted store holds the report snapshots of Hanoi's 126 wards (ten weeks each, audit
sections) as a supervisor's device has them after a pull; the app runs in web mode and Debian's
Chromium drives it headless. The clock stops when the ranking's first ward is in the
accessibility tree, which Flutter updates after the frame that paints it.

    uv run python bench/oversight_dashboard.py [--runs 5]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from app.storage import create_store  # noqa: E402
from tests.browser.harness import launch, nav, open_page, running_app, type_into  # noqa: E402
from tests.browser.test_oversight import load_snapshots  # noqa: E402

PIN = "246813"
SETTINGS = re.compile("/settings$")


def make_store(folder: Path) -> None:
    store = create_store(folder, PIN)
    try:
        store.settings.set("user", "giamsat.binh")
        store.settings.set("role", "supervisor")
        store.settings.set("wards", ["*"])
        load_snapshots(store)
    finally:
        store.close()


def timed(page, label: str, ready) -> float:
    started = time.perf_counter()
    nav(page, label).click()
    ready()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "store"
        make_store(folder)
        with running_app(folder) as url, sync_playwright() as p:
            browser = launch(p)
            page = open_page(browser, url, 1920, 1080)
            type_into(page, "Mã PIN", PIN)
            page.get_by_role("button", name="Mở khoá").click()
            expect(page).to_have_url(re.compile(r"/reviews$"))
            first = page.get_by_role("button", name=re.compile(r"^1\. Phường Hoàn Kiếm"))
            board, light = [], []
            for _ in range(args.runs + 1):  # the first of each is a warm-up
                board.append(timed(page, "Giám sát", lambda: expect(first.first).to_be_attached()))
                # the app renders a screen, then records its route: the URL marks the paint
                light.append(timed(page, "Cài đặt", lambda: page.wait_for_url(SETTINGS)))
            browser.close()
    median = statistics.median
    print(f"oversight dashboard (126 wards): median {median(board[1:]):.2f} s, "
          f"max {max(board[1:]):.2f} s over {args.runs} runs")
    print(f"baseline, settings screen:       median {median(light[1:]):.2f} s, "
          f"max {max(light[1:]):.2f} s")


if __name__ == "__main__":
    main()
