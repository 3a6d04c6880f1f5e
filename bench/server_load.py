"""Load on the central API: N simulated devices pushing and pulling at once.

For each database (SQLite file, PostgreSQL started in a temp dir) this starts the real server
(`commune api`, one uvicorn worker unless --workers), enrols N devices spread over the 126 Hanoi
ward codes, then every device runs R rounds of "push a batch of B mutations, pull what is new",
all at once (asyncio + httpx). It reports mutations/s, p50/p99 latency of push and pull, errors,
and, in the same run, the raw insert rate of the same rows written straight into the same
database with SQLAlchemy Core (the ceiling the API's per-mutation checks are measured against).

    uv run python bench/server_load.py                        # 500 devices, SQLite and PostgreSQL
    uv run python bench/server_load.py --devices 100 --db sqlite --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.domain import reference  # noqa: E402
from app.domain.hlc import Clock  # noqa: E402
from tests.server.helpers import dossier_fields  # noqa: E402
from tests.support.postgres import PostgresServer, find_bindir  # noqa: E402
from tests.support.server_proc import ApiServer, sqlite_url  # noqa: E402

WARDS = [w.code for w in reference.hanoi_wards()]  # Hanoi's 126 units (the server checks)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def provision(api: ApiServer, devices: int) -> list[dict]:
    """One officer per ward; each device enrols with a one-time code of its ward's officer."""
    from server.services import identity

    users = {}
    for ward in WARDS[: min(len(WARDS), devices)]:
        users[ward] = f"officer_{ward}_{uuid.uuid4().hex[:4]}"
        identity.create_user(api.engine, users[ward], "officer", [ward])
    plan = [(WARDS[i % len(users)], i) for i in range(devices)]
    codes = [(ward, identity.create_enrol_code(api.engine, users[ward], 60)) for ward, _ in plan]

    async def enrol_all() -> list[dict]:
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(base_url=api.url, timeout=120, limits=limits) as client:

            async def one(ward: str, code: str) -> dict:
                for attempt in range(3):  # a connection closed under us: the code is unspent
                    try:
                        r = await client.post(
                            "/auth/enrol", json={"code": code, "device_name": "bench"}
                        )
                        break
                    except httpx.TransportError:
                        if attempt == 2:
                            raise
                r.raise_for_status()
                return {**r.json(), "ward": ward}

            return await asyncio.gather(*(one(w, c) for w, c in codes))

    return asyncio.run(enrol_all())


def make_batch(clock: Clock, ward: str, known: list[str], size: int) -> list[dict]:
    """Half new dossiers, half status moves of dossiers this device made earlier."""
    batch = []
    for i in range(size):
        stamp = clock.now()
        if known and i % 2:
            entity_id, fields, base = known.pop(0), {"status": 2}, 1
        else:
            entity_id = str(uuid.uuid4())
            fields = dossier_fields(ward, status=1)  # whole: the server refuses less
            base = 0
        batch.append(
            {
                "mutation_id": str(uuid.uuid4()),
                "device_id": clock.node,
                "entity": "dossier",
                "entity_id": entity_id,
                "ward_code": ward,
                "base_version": base,
                "fields": {k: {"value": v, "hlc": stamp} for k, v in fields.items()},
            }
        )
    return batch


async def run_device(client: httpx.AsyncClient, device: dict, rounds: int, size: int, stats):
    clock = Clock(device["device_id"][:12])
    headers = {"Authorization": f"Bearer {device['token']}"}
    known: list[str] = []
    cursor = 0
    for _ in range(rounds):
        batch = make_batch(clock, device["ward"], known, size)
        t0 = time.perf_counter()
        try:
            r = await client.post("/sync/push", json={"mutations": batch}, headers=headers)
            stats["push"].append(time.perf_counter() - t0)
            if r.status_code != 200:
                stats["errors"].append(f"push {r.status_code}")
            else:
                results = r.json()["results"]
                stats["applied"] += sum(x["status"] != "rejected" for x in results)
                stats["rejected"] += sum(x["status"] == "rejected" for x in results)
                known += [m["entity_id"] for m in batch if m["base_version"] == 0]
        except httpx.HTTPError as exc:
            stats["errors"].append(f"push {type(exc).__name__}")
        t0 = time.perf_counter()
        try:
            r = await client.get(
                "/sync/pull", params={"cursor": cursor, "limit": 500}, headers=headers
            )
            stats["pull"].append(time.perf_counter() - t0)
            if r.status_code != 200:
                stats["errors"].append(f"pull {r.status_code}")
            else:
                cursor = r.json()["next_cursor"]
        except httpx.HTTPError as exc:
            stats["errors"].append(f"pull {type(exc).__name__}")


def load(api: ApiServer, devices: list[dict], rounds: int, size: int) -> dict:
    stats = {"push": [], "pull": [], "errors": [], "applied": 0, "rejected": 0}

    async def main() -> float:
        limits = httpx.Limits(max_connections=len(devices), max_keepalive_connections=len(devices))
        async with httpx.AsyncClient(base_url=api.url, timeout=600, limits=limits) as client:
            t0 = time.perf_counter()
            await asyncio.gather(*(run_device(client, d, rounds, size, stats) for d in devices))
            return time.perf_counter() - t0

    wall = asyncio.run(main())
    return {
        "wall_s": round(wall, 2),
        "mutations_per_s": round(stats["applied"] / wall, 1),
        "applied": stats["applied"],
        "rejected": stats["rejected"],
        "errors": len(stats["errors"]),
        "error_kinds": dict(Counter(stats["errors"])),
        "push_p50_ms": round(1000 * percentile(stats["push"], 0.50), 1),
        "push_p99_ms": round(1000 * percentile(stats["push"], 0.99), 1),
        "pull_p50_ms": round(1000 * percentile(stats["pull"], 0.50), 1),
        "pull_p99_ms": round(1000 * percentile(stats["pull"], 0.99), 1),
    }


def raw_insert_rate(db_url: str, rows: int, size: int) -> float:
    """Rows/s of the same record + change-log rows inserted directly, one commit per batch."""
    from sqlalchemy import insert

    from server.core.db import make_engine
    from server.models import ChangeLog, Record, utcnow

    engine = make_engine(db_url)
    clock = Clock("raw")
    t0 = time.perf_counter()
    for start in range(0, rows, size):
        n = min(size, rows - start)
        ids = [str(uuid.uuid4()) for _ in range(n)]
        stamp = clock.now()
        fields = {"status": {"value": 1, "hlc": stamp, "changed_version": 1}}
        with engine.begin() as conn:
            conn.execute(
                insert(Record.__table__),
                [
                    {
                        "entity": "dossier",
                        "entity_id": i,
                        "ward_code": "99999",
                        "family": "dossier",
                        "version": 1,
                        "fields": fields,
                        "updated_at": utcnow(),
                    }
                    for i in ids
                ],
            )
            conn.execute(
                insert(ChangeLog.__table__),
                [
                    {
                        "entity": "dossier",
                        "entity_id": i,
                        "ward_code": "99999",
                        "family": "dossier",
                        "version": 1,
                    }
                    for i in ids
                ],
            )
    rate = rows / (time.perf_counter() - t0)
    engine.dispose()
    return round(rate, 1)


def bench_one(kind: str, args: argparse.Namespace, tmp: Path, pg: PostgresServer | None) -> dict:
    url = sqlite_url(tmp / kind) if kind == "sqlite" else pg.create_database()
    api = ApiServer(url, tmp / kind, workers=args.workers).start()
    try:
        devices = provision(api, args.devices)
        result = load(api, devices, args.rounds, args.batch)
        result["raw_insert_rows_per_s"] = raw_insert_rate(
            url, result["applied"] or 1000, args.batch
        )
    finally:
        api.stop()
    return {
        "db": kind,
        "devices": args.devices,
        "rounds": args.rounds,
        "batch": args.batch,
        **result,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=500, help="simulated devices (500)")
    parser.add_argument("--rounds", type=int, default=3, help="push+pull rounds per device (3)")
    parser.add_argument("--batch", type=int, default=20, help="mutations per push (20)")
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers (1)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    results = []
    with tempfile.TemporaryDirectory(prefix="commune-bench-") as tmp:
        pg = PostgresServer(find_bindir()).start() if "postgres" in kinds else None
        try:
            for kind in kinds:
                results.append(bench_one(kind, args, Path(tmp), pg))
                print(json.dumps(results[-1]), flush=True)
        finally:
            if pg:
                pg.stop()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
