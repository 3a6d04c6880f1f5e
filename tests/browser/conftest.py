"""Browser fixtures: one Chromium per session, the app as a subprocess per test module."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.harness import CHROMIUM, launch, running_app
from tests.support.tools import missing_tool

expect.set_options(timeout=15_000)  # a 2-core machine paints slowly under load
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
# A journey's own waits (30 s a step, 15 s an expectation) must fail it before pytest-timeout
# does: the timeout's signal lands inside Playwright's dispatch and leaves the connection
# waiting forever (seen as a run hung in `context.close()`). So a journey gets a wide bound,
# and the thread method: past it the run stops with every thread's stack, never hangs.
JOURNEY_TIMEOUT_S = 1200


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.timeout(JOURNEY_TIMEOUT_S, method="thread"))


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        missing_tool(f"no Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = launch(pw)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("commune-data")


@pytest.fixture(scope="module")
def app_url(app_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    log = tmp_path_factory.mktemp("logs") / "app.log"
    with running_app(app_dir, log) as url:
        yield url


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """docs/screenshots with COMMUNE_SCREENSHOTS=1 (to refresh the docs), else a temp folder, so
    an ordinary test run leaves the work tree clean."""
    if os.environ.get("COMMUNE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return SCREENSHOTS
    return tmp_path_factory.mktemp("screenshots")
