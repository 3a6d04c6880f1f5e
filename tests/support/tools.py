"""A test that needs a tool this machine lacks: skipped on a developer's machine, a failure in CI,
where `.ci/run` installs every tool the tests need (nothing may be skipped there for a missing
tool)."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def missing_tool(message: str) -> NoReturn:
    if in_ci():
        pytest.fail(f"{message} (CI installs it: see .ci/run)", pytrace=False)
    pytest.skip(message, allow_module_level=True)
