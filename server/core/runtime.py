"""Process settings of an API server process (not of tests that build an app in-process)."""

from __future__ import annotations

import gc

# Young collections every 20,000 allocations instead of 700: a push of 1,000 mutations makes
# hundreds of thousands of short-lived objects, and the collector's passes over them were a
# fifth of the push's CPU (bench/server_cpu.py). Reference cycles are still collected.
GC_THRESHOLDS = (20_000, 20, 20)


def tune_gc() -> None:
    """Once the app is built: what was loaded at start is moved out of the collector's sight
    (it lives as long as the process) and young collections run less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
