"""The client's process settings (`app.runtime`), applied by its entry points."""

from __future__ import annotations

import gc
import re
from pathlib import Path

import pytest

from app.runtime import GC_THRESHOLDS, tune_gc

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def restored_gc():
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_tune_gc_freezes_what_is_loaded_and_sets_the_young_threshold(restored_gc) -> None:
    loaded = object.__new__(type("Loaded", (), {}))  # a tracked object alive at start
    tune_gc()
    assert gc.get_threshold() == GC_THRESHOLDS
    assert gc.get_freeze_count() > 0
    assert gc.is_tracked(loaded)
    assert not any(o is loaded for o in gc.get_objects())  # out of the collector's passes


def test_cycles_made_after_start_are_still_collected(restored_gc) -> None:
    tune_gc()

    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a
    del a, b
    assert gc.collect() >= 2


@pytest.mark.parametrize("path", ["main.py", "app/cli/app_cmds.py", "app/cli/sync_cmds.py"])
def test_each_client_entry_point_applies_them(path: str) -> None:
    source = (REPO / path).read_text(encoding="utf-8")
    assert re.search(r"^\s+tune_gc\(\)", source, re.MULTILINE), path
