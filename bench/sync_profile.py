"""Where the client's sync CPU goes: cProfile of the benchmark's pushes and pull on loopback.

    uv run python bench/sync_profile.py [--dossiers 2000] [--top 25]
    uv run python bench/sync_profile.py --cpu 3     # CPU seconds per leg, no profiler, 3 runs
    uv run python bench/sync_profile.py --cpu 3 --no-app-gc   # without the app's GC settings

Fills an officer's store (N dossiers with their intake events) and an auditor's (126 audits) as
`bench/sync_link.py` does, then profiles, on the sync thread, the push threads and the pull
threads together (a pull page is read and parsed in a pull thread), the officer's push, the
auditor's push and a fresh admin device's pull of everything, against a real API process
(SQLite) on 127.0.0.1. Prints the functions with the most cumulative time,
those with the most own time, and the total profiled seconds of each leg (each thread's CPU
time, not wall time; cProfile's overhead included: compare within a run). With `--cpu N`
nothing is profiled: each leg's CPU seconds (the client's sync thread plus its push and pull
threads, and the server process) are printed for N fresh runs, with the median, as
bench/sync_link.py counts them. The process first takes the client's process settings as the
app does at start (`app.runtime`: the collector's), unless `--no-app-gc`.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.domain import reference  # noqa: E402
from bench import sync_link as link  # noqa: E402
from tests.support.server_proc import sqlite_url, start_api_server  # noqa: E402


def profiled(label: str, engine, top: int) -> None:
    """Runs one sync profiled: the sync thread, each push sent from a push thread and each
    pull page read in a pull thread."""
    profiles: list[cProfile.Profile] = []
    push, pull = engine.transport.push, engine.transport.pull

    def in_thread(call):
        def profiled_call(*args, **kw):
            if threading.current_thread() is threading.main_thread():
                return call(*args, **kw)
            prof = cProfile.Profile(time.thread_time)
            profiles.append(prof)
            return prof.runcall(call, *args, **kw)

        return profiled_call

    engine.transport.push, engine.transport.pull = in_thread(push), in_thread(pull)
    main = cProfile.Profile(time.thread_time)
    report = main.runcall(engine.run_once)
    engine.transport.push, engine.transport.pull = push, pull
    assert report.ok, report
    out = io.StringIO()
    stats = pstats.Stats(main, stream=out)
    for p in profiles:
        stats.add(p)
    print(f"## {label}: {report.summary()}, {stats.total_tt:.2f} s profiled")
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    print("\n".join(out.getvalue().splitlines()[6:]))


def timed(engine, server) -> tuple[float, float]:
    """Runs one sync unprofiled: (client CPU s, server CPU s); the client's is the sync
    thread's, its push threads' and its pull threads'."""
    pushers = link._count_push_threads(engine.transport)
    pullers = link._count_pull_threads(engine.transport)
    cpu0, server0 = time.thread_time(), link._cpu(server)
    report = engine.run_once()
    client = time.thread_time() - cpu0 + pushers[0] + pullers[0]
    cpu = (client, link._cpu(server) - server0)
    assert report.ok and report.rejected == 0, report
    return cpu


def filled_devices(server, tmp: Path, dossiers: int, rng: random.Random) -> tuple:
    """An officer's device with the register and an auditor's with 126 audits, not yet synced."""
    hanoi = [w.code for w in reference.wards("01")]
    officer = link._device(server, tmp / "officer", "officer", hanoi[:1], server.url)
    auditor = link._device(server, tmp / "auditor", "auditor", hanoi, server.url)
    link._fill_dossiers(officer[0], hanoi[0], dossiers, rng)
    link._fill_audits(auditor[0], hanoi, rng)
    return officer, auditor


def cpu_runs(runs: int, dossiers: int) -> None:
    legs = ("push dossiers", "push audits", "pull all")
    seen: dict[str, list[tuple[float, float]]] = {leg: [] for leg in legs}
    for n in range(runs):
        rng = random.Random(7)
        hanoi = [w.code for w in reference.wards("01")]
        with tempfile.TemporaryDirectory(prefix="bench-prof-") as tmp_name:
            tmp = Path(tmp_name)
            server = start_api_server(sqlite_url(tmp / "api"), tmp / "api")
            try:
                officer, auditor = filled_devices(server, tmp, dossiers, rng)
                seen["push dossiers"].append(timed(officer[1], server))
                seen["push audits"].append(timed(auditor[1], server))
                admin = link._device(server, tmp / "admin", "admin", hanoi, server.url)
                seen["pull all"].append(timed(admin[1], server))
                for store, engine in (officer, auditor, admin):
                    engine.transport.close()
                    store.close()
            finally:
                server.stop()
        print(f"run {n + 1}: " + ", ".join(
            f"{leg} {seen[leg][-1][0]:.2f}/{seen[leg][-1][1]:.2f}" for leg in legs
        ), flush=True)
    print("| leg | client CPU s (median) | client CPU s (runs) | server CPU s (median) |")
    print("|---|---:|---|---:|")
    for leg in legs:
        client = [c for c, _ in seen[leg]]
        server_s = [s for _, s in seen[leg]]
        print(f"| {leg} | {statistics.median(client):.2f} | "
              f"{' '.join(f'{c:.2f}' for c in client)} | {statistics.median(server_s):.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dossiers", type=int, default=2000, help="dossiers to push (2000)")
    parser.add_argument("--top", type=int, default=25, help="functions listed per leg (25)")
    parser.add_argument("--cpu", type=int, default=0, metavar="N",
                        help="no profiler: CPU seconds per leg over N fresh runs")
    parser.add_argument("--no-app-gc", action="store_true",
                        help="leave the collector as Python sets it (not the app's settings)")
    args = parser.parse_args()
    applied = False if args.no_app_gc else link.app_process_settings()
    print(f"# the app's process settings (app.runtime): {'applied' if applied else 'none'}")
    if args.cpu:
        cpu_runs(args.cpu, args.dossiers)
        return
    rng = random.Random(7)
    hanoi = [w.code for w in reference.wards("01")]
    with tempfile.TemporaryDirectory(prefix="bench-prof-") as tmp_name:
        tmp = Path(tmp_name)
        server = start_api_server(sqlite_url(tmp / "api"), tmp / "api")
        try:
            officer, auditor = filled_devices(server, tmp, args.dossiers, rng)
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
