"""The API process's CPU per sync request, one request at a time.

Starts the real server (`commune api`, one worker, SQLite file), enrols one officer device, then
sends `--requests` requests of each kind one after the other on one kept-alive connection, and
reads the server process's CPU (user + system, from /proc) around each kind:

- **health**: `GET /health` (the route reads `SELECT 1`): the HTTP stack's own cost, the
  baseline of the same run;
- **pull**: `GET /sync/pull` from the log's head, as a device asks when nothing is new
  (authenticated, the caller's scope read, an empty page);
- **push**: `POST /sync/push` of one new dossier, answered as a summary.

Reports microseconds of server CPU per request and each sync kind's ratio to health. Issue 13's
tenth round measured the thread-pool hops of FastAPI's plain `def` dependencies with it.

    uv run python bench/request_cpu.py
    uv run python bench/request_cpu.py --requests 2000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.domain.hlc import Clock  # noqa: E402
from tests.server.helpers import dossier_fields  # noqa: E402
from tests.support.server_proc import ApiServer, sqlite_url  # noqa: E402

WARD = "00070"


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of the process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def enrol(api: ApiServer) -> str:
    from server.services import identity

    username = f"officer_{uuid.uuid4().hex[:6]}"
    identity.create_user(api.engine, username, "officer", [WARD])
    code = identity.create_enrol_code(api.engine, username, 60)
    answer = httpx.post(f"{api.url}/auth/enrol", json={"code": code, "device_name": "bench"})
    answer.raise_for_status()
    return answer.json()["token"]


def push_body(clock: Clock) -> dict:
    stamp = clock.now()
    fields = {**dossier_fields(WARD, status=1), "code": f"B-{uuid.uuid4().hex[:10]}"}
    mutation = {
        "mutation_id": str(uuid.uuid4()),
        "device_id": clock.node,
        "entity": "dossier",
        "entity_id": str(uuid.uuid4()),
        "ward_code": WARD,
        "base_version": 0,
        "fields": {k: {"value": v, "hlc": stamp} for k, v in fields.items()},
    }
    return {"mutations": [mutation], "answer": "summary"}


def per_request_us(pid: int, send, count: int) -> float:
    before = process_cpu(pid)
    for _ in range(count):
        send()
    return round(1e6 * (process_cpu(pid) - before) / count, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests of each kind (1000)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        api = ApiServer(sqlite_url(Path(tmp) / "db"), Path(tmp) / "db").start()
        try:
            token = enrol(api)
            pid = api.process.pid
            headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "zstd, gzip"}
            with httpx.Client(base_url=api.url, headers=headers, timeout=60) as client:
                clock = Clock(str(uuid.uuid4()))
                bodies = [push_body(clock) for _ in range(args.requests + 1)]
                head = client.get("/sync/pull", params={"cursor": 0}).json()["next_cursor"]

                def health() -> None:
                    client.get("/health").raise_for_status()

                def pull() -> None:
                    client.get("/sync/pull", params={"cursor": head}).raise_for_status()

                def push() -> None:
                    client.post("/sync/push", json=bodies.pop()).raise_for_status()

                for warm in (health, pull, push):  # first use loads what it loads
                    warm()
                time.sleep(0.5)
                result = {"requests": args.requests, "load_avg_1m": round(os.getloadavg()[0], 1)}
                for name, send in (("health", health), ("pull", pull), ("push", push)):
                    result[f"{name}_cpu_us"] = per_request_us(pid, send, args.requests)
                for name in ("pull", "push"):
                    result[f"{name}_x_health"] = round(
                        result[f"{name}_cpu_us"] / result["health_cpu_us"], 2
                    )
        finally:
            api.stop()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
