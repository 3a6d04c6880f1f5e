"""A push group's writes on SQLite while another thread is busy in Python.

The API process runs its push groups' writes in one thread while the event loop, other pushes'
reading and the pulls run in others. SQLite's driver lets go of the GIL for every row it steps
through and must take it back before the next; when another thread is busy in Python, taking
it back waits for that thread's switch interval (5 ms). This writes the rows of a push group of
`--mutations` mutations (record, change log, audit log, applied mutation, as `Batch.write`
does) into a fresh SQLite file, once quietly and once with one thread spinning in Python beside
it, each way:

- **baseline**: SQLAlchemy's executemany of each table's rows (what the server did before
  issue 13's tenth round), measured in the same run;
- **server**: `server.core.db.insert_rows`, what the push group runs.

It reports the best wall and thread CPU time of `--repeat` writes, and the ratio of each to the
baseline's.

    uv run python bench/write_contention.py
    uv run python bench/write_contention.py --mutations 1000 --repeat 5
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert  # noqa: E402

from server import migrate  # noqa: E402
from server.core.db import insert_rows, make_engine, write_session  # noqa: E402
from server.models import AppliedMutation, AuditLog, ChangeLog, Record  # noqa: E402

STAMP = "0000018f2b3c4d5e-0000-abcd"


def group_rows(count: int) -> list[tuple]:
    """The rows `Batch.write` inserts for `count` new dossiers, by table."""
    now = dt.datetime.now(dt.UTC)
    ids = [str(uuid.uuid4()) for _ in range(count)]
    value = {"value": "Nguyễn Văn An, thôn Đông", "hlc": STAMP, "changed_version": 1}
    fields = {f"field_{i}": value for i in range(12)}
    where = {"entity": "dossier", "ward_code": "00070", "version": 1}
    return [
        (
            Record.__table__,
            [
                {**where, "entity_id": i, "family": "dossier", "fields": fields, "updated_at": now}
                for i in ids
            ],
        ),
        (
            ChangeLog.__table__,
            [{**where, "entity_id": i, "family": "dossier", "device_id": "dev"} for i in ids],
        ),
        (
            AuditLog.__table__,
            [
                {
                    **where,
                    "entity_id": i,
                    "at": now,
                    "user_id": 1,
                    "username": "officer",
                    "device_id": "dev",
                    "action": "change",
                    "detail": {"mutation_id": i, "fields": ["status"], "values": {"status": 1}},
                }
                for i in ids
            ],
        ),
        (
            AppliedMutation.__table__,
            [
                {
                    "mutation_id": i,
                    "device_id": "dev",
                    "status": "applied",
                    "version": 1,
                    "applied_at": now,
                }
                for i in ids
            ],
        ),
    ]


def write_once(engine, rows: list[tuple], way: str) -> tuple[float, float]:
    """(wall s, thread CPU s) of one transaction writing `rows` the given way."""
    wall, cpu = time.perf_counter(), time.thread_time()
    with write_session(engine) as session:
        for table, table_rows in rows:
            if way == "baseline":
                session.execute(insert(table), table_rows)
            else:
                insert_rows(session, table, table_rows)
    return time.perf_counter() - wall, time.thread_time() - cpu


class Spinner:
    """One thread busy in Python until stopped (bounded by `limit_s` in any case)."""

    def __init__(self, limit_s: float = 600.0) -> None:
        self.stop = threading.Event()
        self.limit_s = limit_s
        self.thread = threading.Thread(target=self._spin, daemon=True)

    def _spin(self) -> None:
        end = time.monotonic() + self.limit_s
        n = 0
        while not self.stop.is_set() and time.monotonic() < end:
            n += 1

    def __enter__(self) -> Spinner:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(10)


def measure(engine, mutations: int, repeat: int, way: str, busy: bool) -> dict:
    best_wall = best_cpu = float("inf")
    for _ in range(repeat):
        rows = group_rows(mutations)
        if busy:
            with Spinner():
                wall, cpu = write_once(engine, rows, way)
        else:
            wall, cpu = write_once(engine, rows, way)
        best_wall, best_cpu = min(best_wall, wall), min(best_cpu, cpu)
    return {"wall_ms": round(1000 * best_wall, 1), "cpu_ms": round(1000 * best_cpu, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutations", type=int, default=460, help="mutations in the group (460)")
    parser.add_argument("--repeat", type=int, default=5, help="writes per case; best kept (5)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'server.db'}")
        migrate.upgrade(engine)
        result: dict = {"mutations": args.mutations, "rows": 4 * args.mutations}
        for busy in (False, True):
            side = "busy" if busy else "quiet"
            for way in ("baseline", "server"):
                result[f"{side}_{way}"] = measure(engine, args.mutations, args.repeat, way, busy)
            base, ours = result[f"{side}_baseline"], result[f"{side}_server"]
            result[f"{side}_wall_x_baseline"] = round(ours["wall_ms"] / base["wall_ms"], 3)
            result[f"{side}_cpu_x_baseline"] = round(ours["cpu_ms"] / base["cpu_ms"], 3)
        engine.dispose()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
