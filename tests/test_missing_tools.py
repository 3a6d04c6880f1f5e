"""In CI a missing tool fails the run; on a developer's machine it skips the test."""

import pytest

from tests.support.tools import missing_tool


def test_a_missing_tool_fails_in_ci(monkeypatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI installs it"):
        missing_tool("no Chromium at /nowhere")


def test_a_missing_tool_skips_elsewhere(monkeypatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        missing_tool("no Chromium at /nowhere")
