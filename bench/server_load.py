"""Load on the central API: N simulated devices pushing and pulling at once.

For each database (SQLite file, PostgreSQL started in a temp dir) this starts the real server
(`commune api`, one uvicorn worker unless --workers), enrols N devices spread over the 126 Hanoi
ward codes, then every device runs R rounds of "push a batch of B mutations, pull what is new" (a
push without a batch id, then a pull request of its own; `--pull-on-push`: as today's client does
it, the push carries a batch id and asks for the pull page after it, which comes in the push's
answer, so its latency is the device's whole sync; since issue 13's ninth round the push's mutations
and the page both go in columns, as the client sends and asks for them) (asyncio on uvloop, one
kept-alive connection per device, request bodies built before the clock starts, a minimal HTTP/1.1
client: httpx cost the generator more CPU than the server spent). `--concurrency C` lets at most C
devices sync at once (the others wait their turn; their wait is not in the latencies, which are from
a request's send to its answer); `--window S` spreads the devices' arrival over S seconds. It
reports mutations/s, p50/p99 latency of push and pull, errors, the 1-minute load average, and, in
the same run, the raw insert rate of the same rows written straight into the same database with
SQLAlchemy Core (the ceiling the API's checks are measured against).

    uv run python bench/server_load.py                        # 500 devices, SQLite and PostgreSQL
    uv run python bench/server_load.py --devices 100 --db sqlite --rounds 2
    uv run python bench/server_load.py --db postgres --workers 4 --devices 5000 --concurrency 200
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import random
import re
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.domain import reference  # noqa: E402
from app.domain.columns import to_columns  # noqa: E402
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


def provision(api: ApiServer, devices: int, wards: list[str] = WARDS) -> list[dict]:
    """One officer per ward; each device enrols with a one-time code of its ward's officer."""
    from server.services import identity

    users = {}
    for ward in wards[: min(len(wards), devices)]:
        users[ward] = f"officer_{ward}_{uuid.uuid4().hex[:4]}"
        identity.create_user(api.engine, users[ward], "officer", [ward])
    plan = [(wards[i % len(users)], i) for i in range(devices)]
    codes = [(ward, identity.create_enrol_code(api.engine, users[ward], 60)) for ward, _ in plan]

    async def enrol_all() -> list[dict]:
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(base_url=api.url, timeout=120, limits=limits) as client:
            gate = asyncio.Semaphore(50)  # httpx's pool is slow with thousands queued

            async def one(ward: str, code: str) -> dict:
                async with gate:
                    return await enrol_one(ward, code)

            async def enrol_one(ward: str, code: str) -> dict:
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


_DOSSIERS: dict[str, dict] = {}


def _whole_dossier(ward: str) -> dict:
    """A whole dossier of the ward with a fresh code (the rest computed once per ward: the
    working calendar behind its appointment date is slow to build 150,000 times)."""
    if ward not in _DOSSIERS:
        _DOSSIERS[ward] = dossier_fields(ward, status=1)
    code = _DOSSIERS[ward]["code"]
    return {**_DOSSIERS[ward], "code": f"{code[:-4]}{random.randint(1, 9999):04d}"}


def make_batch(clock: Clock, ward: str, known: list[str], size: int) -> list[dict]:
    """Half new dossiers, half status moves of dossiers this device made earlier."""
    batch = []
    for i in range(size):
        stamp = clock.now()
        if known and i % 2:
            entity_id, fields, base = known.pop(0), {"status": 2}, 1
        else:
            entity_id = str(uuid.uuid4())
            fields = _whole_dossier(ward)  # whole: the server refuses less
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


class Conn:
    """One kept-alive HTTP/1.1 connection on asyncio streams: the load generator shares the
    server's 2 cores, and httpx cost it more CPU per request than the server spent on it (it
    was the bottleneck of the earlier runs). Requests are bytes built before the clock
    starts; answers are read by Content-Length (or chunks) and decompressed (zstd, as the sync
    client asks, or gzip)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
        for attempt in range(2):  # a kept-alive connection the server closed: reconnect once
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            try:
                self.writer.write(head + body)
                return await self._answer()
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    async def _answer(self) -> tuple[int, bytes]:
        lines = (await self.reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
        status = int(lines[0].split()[1])
        headers = dict(
            (k.strip().lower(), v.strip()) for k, _, v in (x.partition(b":") for x in lines[1:])
        )
        if headers.get(b"transfer-encoding") == b"chunked":
            body = b""
            while size := int((await self.reader.readuntil(b"\r\n")).strip(), 16):
                body += (await self.reader.readexactly(size + 2))[:-2]
            await self.reader.readuntil(b"\r\n")
        else:
            body = await self.reader.readexactly(int(headers.get(b"content-length", b"0")))
        if headers.get(b"connection") == b"close":
            self.close()
        if headers.get(b"content-encoding") == b"gzip":
            body = gzip.decompress(body)
        elif headers.get(b"content-encoding") == b"zstd":
            body = zstandard.ZstdDecompressor().decompressobj().decompress(body)
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def _head(method: str, path: str, token: str, length: int | None = None) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: bench",
        f"Authorization: Bearer {token}",
        "Accept-Encoding: zstd, gzip",  # as the sync client asks (app/sync/transport.py)
    ]
    if length is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {length}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def device_bodies(device: dict, rounds: int, size: int, separate_pull: bool) -> list[bytes]:
    """Every round's push body, built before the clock starts (the answer form of today's
    clients: the summary)."""
    clock = Clock(device["device_id"][:12])
    known: list[str] = []
    bodies = []
    for _ in range(rounds):
        batch = make_batch(clock, device["ward"], known, size)
        known += [m["entity_id"] for m in batch if m["base_version"] == 0]
        if separate_pull:  # the form of the earlier runs: rows, no batch id
            body = {"mutations": batch, "answer": "summary"}
            bodies.append(json.dumps(body).encode())
        else:  # as today's client: in columns, with a batch id (its answer is kept under it)
            body = {"columns": to_columns(batch), "answer": "summary", "batch": uuid.uuid4().hex}
            bodies.append(json.dumps(body).encode())
    return bodies


_NEXT_CURSOR = re.compile(rb'"next_cursor":(\d+)')


async def run_device(
    api_port: int,
    device: dict,
    bodies: list[bytes],
    stats,
    gate: asyncio.Semaphore,
    delay: float,
    separate_pull: bool,
):
    await asyncio.sleep(delay)  # devices arrive over the window
    async with gate:  # at most --concurrency devices syncing at once
        conn = Conn("127.0.0.1", api_port)
        token, cursor = device["token"], 0
        node = device["device_id"][:12]  # the clock node its stamps carry
        try:
            for body in bodies:
                if separate_pull:
                    await _push(conn, token, body, stats, "/sync/push")
                    cursor = await _pull(conn, token, cursor, stats)
                else:  # as today's client: the pull rides on the push that empties the outbox
                    path = f"/sync/push?pull={cursor}&limit=500&held={node}&cols=1"
                    cursor = await _push(conn, token, body, stats, path, cursor)
        finally:
            conn.close()


async def _push(conn: Conn, token: str, body: bytes, stats, path: str, cursor: int = 0) -> int:
    """Sends one push; returns the cursor of the pull page its answer carried, if any."""
    t0 = time.perf_counter()
    try:
        status, answer = await conn.request(_head("POST", path, token, len(body)), body)
    except (OSError, asyncio.IncompleteReadError) as exc:
        stats["errors"].append(f"push {type(exc).__name__}")
        return cursor
    stats["push"].append(time.perf_counter() - t0)
    if status != 200:
        stats["errors"].append(f"push {status}")
        return cursor
    summary = json.loads(answer)
    if "pull" in summary:
        cursor = summary["pull"]["next_cursor"]
    applied = sum(stop - start for start, stop in summary["applied"])
    refused = [e for e in summary["exceptions"] if e["status"] == "rejected"]
    stats["applied"] += applied + len(summary["exceptions"]) - len(refused)
    stats["rejected"] += len(refused)
    return cursor


async def _pull(conn: Conn, token: str, cursor: int, stats) -> int:
    t0 = time.perf_counter()
    path = f"/sync/pull?cursor={cursor}&limit=500&clocks=one"
    try:
        status, answer = await conn.request(_head("GET", path, token))
    except (OSError, asyncio.IncompleteReadError) as exc:
        stats["errors"].append(f"pull {type(exc).__name__}")
        return cursor
    stats["pull"].append(time.perf_counter() - t0)
    if status != 200:
        stats["errors"].append(f"pull {status}")
        return cursor
    found = _NEXT_CURSOR.search(answer[-200:])
    return int(found.group(1)) if found else cursor


def load(
    api: ApiServer,
    devices: list[dict],
    rounds: int,
    size: int,
    concurrency: int,
    window: float,
    separate_pull: bool = False,
) -> dict:
    stats = {"push": [], "pull": [], "errors": [], "applied": 0, "rejected": 0}
    bodies = [device_bodies(d, rounds, size, separate_pull) for d in devices]
    port = int(api.url.rsplit(":", 1)[1])

    async def main() -> float:
        gate = asyncio.Semaphore(concurrency)
        t0 = time.perf_counter()
        step = window / max(len(devices), 1)
        await asyncio.gather(
            *(
                run_device(port, d, b, stats, gate, i * step, separate_pull)
                for i, (d, b) in enumerate(zip(devices, bodies, strict=True))
            )
        )
        return time.perf_counter() - t0

    load_before = os.getloadavg()[0]
    wall = _run_loop(main())
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
        "load_avg_1m": [round(load_before, 1), round(os.getloadavg()[0], 1)],
    }


def _run_loop(coroutine):
    try:
        import uvloop

        return uvloop.run(coroutine)
    except ImportError:
        return asyncio.run(coroutine)


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
        wards = [w.code for w in reference.wards()] if args.all_wards else WARDS
        devices = provision(api, args.devices, wards)
        result = load(
            api,
            devices,
            args.rounds,
            args.batch,
            args.concurrency,
            args.window,
            separate_pull=not args.pull_on_push,
        )
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
        "workers": args.workers,
        "wards": "all" if args.all_wards else "hanoi",
        "concurrency": args.concurrency,
        "window_s": args.window,
        "pull": "on the push" if args.pull_on_push else "separate",
        **result,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=500, help="simulated devices (500)")
    parser.add_argument("--rounds", type=int, default=3, help="push+pull rounds per device (3)")
    parser.add_argument("--batch", type=int, default=20, help="mutations per push (20)")
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers (1)")
    parser.add_argument(
        "--concurrency", type=int, default=0, help="devices syncing at once (0: all of them)"
    )
    parser.add_argument(
        "--window", type=float, default=0.0, help="seconds over which devices arrive (0)"
    )
    parser.add_argument(
        "--all-wards",
        action="store_true",
        help="spread devices over every ward of the country (3,321), not Hanoi's 126",
    )
    parser.add_argument(
        "--pull-on-push",
        action="store_true",
        help="as today's client: each push, in columns, carries a batch id and asks for the pull "
        "page after it (in columns), which comes in the push's answer (default: a push without "
        "a batch id, then a pull request of its own, as in the runs before issue 13's eighth "
        "round)",
    )
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    args.concurrency = args.concurrency or args.devices
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
