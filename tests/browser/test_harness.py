"""The harness's own bounds: a page that stops answering fails the step, never hangs the run."""

from __future__ import annotations

import time

import pytest

from tests.browser.harness import in_page

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
