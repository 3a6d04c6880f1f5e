"""Process settings of the client (the app, `commune app`, `commune sync`): not of tests.

The collector's full passes over everything the process loaded at start (modules, pydantic's
schemas, the reference data) were about a third of the client's CPU in a sync (issue 13, sixth
round: three or four passes a leg, 0.1 s each, collecting nothing): a push or a pull keeps a
batch's mutations or a page's records alive across young collections, and that many objects
reaching the oldest generation starts a full pass. The API process does the same
(`server.core.runtime`).
"""

from __future__ import annotations

import gc

# Young collections every 20,000 allocations instead of 700 (the API process's setting): a
# batch of 1,000 mutations or a pull page is hundreds of thousands of short-lived objects.
# Reference cycles are still collected.
GC_THRESHOLDS = (20_000, 20, 20)


def tune_gc() -> None:
    """Once the process has loaded what it runs with: what is loaded now moved out of the
    collector's sight (it lives as long as the process), and young collections less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
