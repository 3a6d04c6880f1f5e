"""Where the client's sync CPU goes: cProfile of the benchmark's pushes and pull on loopback.

    uv run python bench/sync_profile.py [--dossiers 2000] [--top 25]

Fills an officer's store (N dossiers with their intake events) and an auditor's (126 audits) as
`bench/sync_link.py` does, then profiles, on the sync thread and the push threads together,
the officer's push, the auditor's push and a fresh admin device's pull of everything, against a
real API process (SQLite) on 127.0.0.1. Prints the functions with the most cumulative time,
those with the most own time, and the total profiled seconds of each leg (cProfile's overhead
included: compare within a run).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import random
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.domain import reference  # noqa: E402
from bench import sync_link as link  # noqa: E402
from tests.support.server_proc import sqlite_url, start_api_server  # noqa: E402


def profiled(label: str, engine, top: int) -> None:
    """Runs one sync profiled: the sync thread, and each push sent from a push thread."""
    profiles: list[cProfile.Profile] = []
    push = engine.transport.push

    def push_profiled(*args):
        if threading.current_thread() is threading.main_thread():
            return push(*args)
        prof = cProfile.Profile()
        profiles.append(prof)
        return prof.runcall(push, *args)

    engine.transport.push = push_profiled
    main = cProfile.Profile()
    report = main.runcall(engine.run_once)
    engine.transport.push = push
    assert report.ok, report
    out = io.StringIO()
    stats = pstats.Stats(main, stream=out)
    for p in profiles:
        stats.add(p)
    print(f"## {label}: {report.summary()}, {stats.total_tt:.2f} s profiled")
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    print("\n".join(out.getvalue().splitlines()[6:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dossiers", type=int, default=2000, help="dossiers to push (2000)")
    parser.add_argument("--top", type=int, default=25, help="functions listed per leg (25)")
    args = parser.parse_args()
    rng = random.Random(7)
    hanoi = [w.code for w in reference.wards("01")]
    with tempfile.TemporaryDirectory(prefix="bench-prof-") as tmp_name:
        tmp = Path(tmp_name)
        server = start_api_server(sqlite_url(tmp / "api"), tmp / "api")
        try:
            officer = link._device(server, tmp / "officer", "officer", hanoi[:1], server.url)
            auditor = link._device(server, tmp / "auditor", "auditor", hanoi, server.url)
            link._fill_dossiers(officer[0], hanoi[0], args.dossiers, rng)
            link._fill_audits(auditor[0], hanoi, rng)
            profiled("push dossiers", officer[1], args.top)
            profiled("push audits", auditor[1], args.top)
            admin = link._device(server, tmp / "admin", "admin", hanoi, server.url)
            profiled("pull all", admin[1], args.top)
            for store, engine in (officer, auditor, admin):
                engine.transport.close()
                store.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
