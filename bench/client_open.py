"""Client: time from "Mở khoá" to a painted dossier list, 10,000 dossiers vs an empty store.

Both stores are real encrypted stores (production Argon2 settings) made through the storage API;
the app runs as `commune app --web` and Debian's Chromium drives it headless. Each run types the
PIN, clicks "Mở khoá" and stops the clock when the list's first row (or the empty-list line) is in
the accessibility tree, which Flutter updates after the frame that paints it. The empty store is
the baseline of the same run.

    uv run python bench/client_open.py [--sizes 0 50 10000] [--runs 5] [--warmup 1]

A 50-dossier store paints a full first page too, so "10000 over 50" is what the store's size
costs and "50 over 0" what painting a page of rows costs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from app.storage import KeySettings, create_store  # noqa: E402
from tests.browser.harness import launch, open_page, running_app, shows, type_into  # noqa: E402
from tests.views.seed import WARD, requests  # noqa: E402

PIN = "135790"
CHUNK = 2_000


def make_store(folder: Path, dossiers: int) -> float:
    started = time.perf_counter()
    # the screens under test, not the no-keystore passphrase rule (docs/security.md)
    store = create_store(folder, PIN, settings=KeySettings(offline_years=0))
    try:
        store.settings.set("ward_code", WARD)
        today = dt.date.today()
        batch = list(requests(dossiers, today=today, days_back=90))
        for i in range(0, len(batch), CHUNK):
            store.dossiers.receive_many(batch[i : i + CHUNK])
    finally:
        store.close()
    return time.perf_counter() - started


def time_unlocks(browser, url: str, dossiers: int, runs: int, warmup: int) -> list[float]:
    page = open_page(browser, url, 1280, 800)
    painted = (
        page.get_by_role("button", name=re.compile(r"Hẹn trả: ")).first
        if dossiers
        else shows(page, "Không có hồ sơ phù hợp.")
    )
    summary = f"Hiển thị {min(dossiers, 50)}/{dossiers} hồ sơ"
    times = []
    try:
        for _ in range(warmup + runs):
            expect(page.get_by_role("button", name="Mở khoá")).to_be_visible(timeout=30_000)
            type_into(page, "Mã PIN", PIN)
            started = time.perf_counter()
            page.get_by_role("button", name="Mở khoá").click()
            # wait_for checks on every animation frame; expect() backs off to 1 s between
            # checks, which rounded every reading up to ~1 s or ~2 s.
            painted.wait_for(state="visible", timeout=60_000)
            times.append(time.perf_counter() - started)
            expect(shows(page, summary)).to_be_visible()
            page.get_by_role("button", name="Khoá ngay").click()
    finally:
        page.context.close()
    return times[warmup:]  # the first opening also warms the browser's and Python's caches


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[0, 50, 10_000],
        help="store sizes; the first is the baseline (default: 0 50 10000)",
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured openings first")
    args = parser.parse_args()
    results: dict[int, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        browser = launch(pw)
        for count in args.sizes:
            folder = Path(tmp) / f"store-{count}"
            seconds = make_store(folder, count)
            print(f"store with {count} dossiers made in {seconds:.1f} s", flush=True)
            with running_app(folder) as url:
                results[count] = time_unlocks(browser, url, count, args.runs, args.warmup)
        browser.close()
    print(f"\nunlock -> painted list, {args.runs} runs each (seconds)")
    print(f"{'dossiers':>9} {'median':>7} {'min':>7} {'max':>7}")
    for count, times in results.items():
        print(f"{count:>9} {statistics.median(times):>7.2f} {min(times):>7.2f} {max(times):>7.2f}")
    base = statistics.median(results[args.sizes[0]])
    for count in args.sizes[1:]:
        extra = statistics.median(results[count]) - base
        print(f"{count} dossiers over {args.sizes[0]}: {extra:+.2f} s (median)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
