"""The harness's own bounds: a page that stops answering fails the step, never hangs the run."""

from __future__ import annotations

import time

import pytest

from tests.browser.harness import in_page, resize

BUSY_FOR_A_MINUTE = "() => { const t = Date.now(); while (Date.now() - t < 60000) {} return 1 }"


def test_a_page_that_never_answers_fails_the_step_within_its_bound(browser) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.commune_console = ["log: the last thing the page said"]
    page.set_content("<p>ready</p>")
    assert in_page(page, "(n) => n * 2", 21) == 42
    assert in_page(page, "() => ''") == ""  # a falsy answer is an answer
    started = time.monotonic()
    with pytest.raises(AssertionError, match="the last thing the page said"):
        in_page(page, BUSY_FOR_A_MINUTE, timeout_ms=2_000)
    assert time.monotonic() - started < 30  # the page itself would have held it for 60 s
    context.close()


def test_a_viewport_change_the_renderer_never_takes_fails_within_its_bound(browser) -> None:
    context = browser.new_context(viewport={"width": 800, "height": 600})
    page = context.new_page()
    page.commune_console = ["log: said before the loop"]
    page.set_content("<p>ready</p>")
    resize(page, 640, 480)
    assert in_page(page, "() => innerWidth") == 640
    page.evaluate("() => setTimeout(() => { while (true) {} }, 0)")  # the page's thread, gone
    started = time.monotonic()
    with pytest.raises(AssertionError, match="did not take the viewport 1280x800"):
        resize(page, 1280, 800, bound_s=3)
    assert time.monotonic() - started < 60  # unbounded, the call would never have returned
    context.close()
