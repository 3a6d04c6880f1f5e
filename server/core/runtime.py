"""Process settings of an API server process (not of tests that build an app in-process)."""

from __future__ import annotations

import gc

# Young collections every 20,000 allocations instead of 700: a push of 1,000 mutations makes
# hundreds of thousands of short-lived objects, and the collector's passes over them were a
# fifth of the push's CPU (bench/server_cpu.py). Reference cycles are still collected.
GC_THRESHOLDS = (20_000, 20, 20)


def tune_gc() -> None:
    """Once the app is built: the tables every push reads loaded (`warm`), then what was
    loaded at start moved out of the collector's sight (it lives as long as the process) and
    young collections run less often."""
    warm()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def warm() -> None:
    """Load what the checks of a push load on first use: the ward list, the shipped procedure
    catalogue and the public holidays of last year, this year and the next (the `holidays`
    package builds them lazily, compiling code and reading translations). Left to the first
    push of each worker, that cost about 0.45 s of its CPU (issue 13, bench/server_cpu.py
    --http); loaded here it is also frozen out of the collector's passes with the rest."""
    from app.domain import reference
    from app.domain.calendar import WorkingCalendar, vn_today

    reference.is_ward_code("00000")
    reference.shipped_catalogue()
    calendar, year = WorkingCalendar(), vn_today().year
    for offset in (-1, 0, 1):
        calendar.is_holiday(vn_today().replace(year=year + offset, month=1, day=1))
