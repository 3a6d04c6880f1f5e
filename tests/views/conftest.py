"""View-model fixtures: the real encrypted store on disk (cheap Argon2), Vietnamese UI."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from app.i18n import set_language
from app.storage import KeySettings, create_store

PIN = "246810"
TEST_KEYS = KeySettings.for_tests(base_delay_s=0.0)
TODAY = dt.date(2026, 11, 24)  # a Tuesday


@pytest.fixture(autouse=True)
def vietnamese():
    set_language("vi")
    yield
    set_language("vi")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def store(data_dir: Path):
    s = create_store(data_dir, PIN, settings=TEST_KEYS)
    yield s
    s.close()
