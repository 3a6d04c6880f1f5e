"""Server CPU per 1,000 records: applying pushes and serving a pull, against raw SQL.

In one process, on a fresh database (a SQLite file; PostgreSQL started in a temp dir by
tests/support/postgres.py), the server's own code does the work of bench/sync_link.py's
register: an officer device pushes 2,000 dossiers and their 2,000 intake events (batches of
1,000 wire mutations, one clock per record, ids left for the server to derive, as the client
sends them), an auditor device pushes 126 audits of 36 answers each (one folded mutation per
audit), then an admin device pulls every record in pages of 1,000 (`clocks=one`). The push is
measured from the request's JSON bytes (`read_push`, as the route reads it) through
`sync.push` to the summary's JSON; the pull from `sync.pull` to the page's bytes. CPU is the
process's (`time.process_time`: this process's own work plus nothing else; the database's
CPU is PostgreSQL's, not counted, on SQLite it is in-process and counted).

Baselines, in the same run and database: **raw insert**, the same records' `record` and
`change_log` rows (their stored JSON, sealed fields included) written with one executemany per
table and batch, no checks; **raw read**, the same rows read back by the pull's join in pages
of 1,000 and joined as text.

With `--http` the same work goes through a real API process (`commune api`, one worker) over
loopback, zstd bodies as the client sends them, and the server CPU is that process's user +
system time from /proc (route, JSON, middleware and auth included); the raw baselines are the
same as in-process.

    uv run python bench/server_cpu.py                      # SQLite and PostgreSQL, ~1 minute
    uv run python bench/server_cpu.py --http               # through the API process
    uv run python bench/server_cpu.py --db sqlite --profile push   # cProfile of the push
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import json
import pstats
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.domain import audit as A  # noqa: E402
from app.domain import reference  # noqa: E402
from app.domain.calendar import WorkingCalendar  # noqa: E402
from app.domain.hlc import Clock  # noqa: E402
from app.domain.mutations import (  # noqa: E402  # noqa: E402
    derived_mutation_id,
    leave_out_derived_id,
    one_clock,
    read_push,
    summarise,
)
from app.domain.records import expected_appointment  # noqa: E402
from tests.support.postgres import PostgresServer, find_bindir  # noqa: E402

BATCH = 1000
SURNAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi"]
GIVEN = ["An", "Bình", "Chi", "Dũng", "Giang", "Hà", "Khánh", "Linh", "Minh", "Thảo"]


def wire(clock: Clock, entity: str, entity_id: str, ward: str, fields: dict) -> dict:
    """A wire mutation as the client sends it to a server that reads one clock and derived
    ids: the record's one clock carried once, the id left out."""
    stamp = clock.now()
    full = {
        "mutation_id": derived_mutation_id(entity, entity_id, 0, stamp, list(fields)),
        "device_id": clock.node,
        "entity": entity,
        "entity_id": entity_id,
        "ward_code": ward,
        "base_version": 0,
        "fields": {k: {"value": v, "hlc": stamp} for k, v in fields.items()},
    }
    return leave_out_derived_id(one_clock(full))


def dossier_register(ward: str, n: int, rng: random.Random) -> list[dict]:
    """n dossiers and their intake events, in the order the client queues them."""
    clock = Clock("officer-bench")
    procedures = [p.code for p in reference.procedures()][:20]
    calendar = WorkingCalendar()
    start = dt.datetime(2025, 11, 3, 1, 30, tzinfo=dt.UTC)
    out = []
    for i in range(n):
        received = (start + dt.timedelta(minutes=17 * i)).isoformat()
        procedure = rng.choice(procedures)
        dossier_id = str(uuid.uuid4())
        fields = {
            "code": f"000.00.70.H26-{251103 + i // 500:06d}-{i % 500 + 1:04d}",
            "procedure_code": procedure,
            "ward_code": ward,
            "applicant_name": f"{rng.choice(SURNAMES)} Văn {rng.choice(GIVEN)}",
            "applicant_id_number": f"0010{rng.randint(80, 99)}{rng.randint(0, 999999):06d}",
            "applicant_phone": f"09{rng.randint(10000000, 99999999)}",
            "applicant_address": f"Số {rng.randint(1, 200)} phố Huế, Hà Nội",
            "received_at": received,
            "appointment_date": expected_appointment(received, procedure, calendar).isoformat(),
            "status": 2,
            "channel": 1,
            "notes": rng.choice(["", "Thiếu bản sao giấy khai sinh"]),
        }
        event = {
            "dossier_id": dossier_id,
            "ward_code": ward,
            "at": received,
            "to_status": 2,
            "actor": "Cán bộ một cửa",
        }
        out.append(wire(clock, "dossier", dossier_id, ward, fields))
        out.append(wire(clock, "dossier_event", str(uuid.uuid4()), ward, event))
    return out


def audit_register(wards: list[str], rng: random.Random) -> list[dict]:
    """One audit per ward, every non-photo item answered, each answer under its own clock
    (folded into one mutation per audit, as the client's coalescing sends them)."""
    clock = Clock("auditor-bench")
    template = A.TEMPLATES["2025.1"]
    out = []
    for ward in wards:
        audit_id = str(uuid.uuid4())
        stamp = clock.now()
        fields = {
            name: {"value": value, "hlc": stamp}
            for name, value in {
                "ward_code": ward,
                "template_version": "2025.1",
                "review_state": "draft",
                "started_at": "2025-11-03T02:00:00+00:00",
                "auditor": f"{rng.choice(GIVEN)} {rng.choice(GIVEN)}",
            }.items()
        }
        for section in template.sections:
            for item in section.items:
                value = _answer(item, rng)
                if value is not None:
                    fields[f"answers.{item.id}"] = {"value": {"value": value}, "hlc": clock.now()}
        out.append(
            {
                "mutation_id": str(uuid.uuid4()),
                "device_id": clock.node,
                "entity": "audit",
                "entity_id": audit_id,
                "ward_code": ward,
                "base_version": 0,
                "fields": fields,
            }
        )
    return out


def _answer(item, rng: random.Random):
    if item.kind == "yes_no":
        return rng.random() < 0.6
    if item.kind == "number":
        low = int(item.minimum)
        high = int(item.maximum) if item.maximum is not None else low + 100
        return rng.randint(low, high)
    if item.kind == "choice":
        options = getattr(item, "options", None) or getattr(item, "choices", None) or []
        first = options[rng.randrange(len(options))] if options else None
        return getattr(first, "id", getattr(first, "value", first))
    if item.kind == "text":
        return "Sao lưu hằng tuần ra ổ cứng ngoài, chưa kiểm tra khôi phục"
    return None


class Profiled:
    """CPU seconds of this process inside `with`, optionally under cProfile."""

    def __init__(self, profile: bool) -> None:
        self.profiler = cProfile.Profile() if profile else None
        self.cpu = 0.0

    def __enter__(self) -> Profiled:
        self._t0 = time.process_time()
        if self.profiler:
            self.profiler.enable()
        return self

    def __exit__(self, *exc) -> None:
        if self.profiler:
            self.profiler.disable()
        self.cpu += time.process_time() - self._t0

    def report(self, title: str, lines: int = 35) -> None:
        if not self.profiler:
            return
        out = io.StringIO()
        pstats.Stats(self.profiler, stream=out).sort_stats("cumulative").print_stats(lines)
        print(f"--- {title}: cumulative ---\n{out.getvalue()}", file=sys.stderr)
        out = io.StringIO()
        pstats.Stats(self.profiler, stream=out).sort_stats("tottime").print_stats(lines)
        print(f"--- {title}: own time ---\n{out.getvalue()}", file=sys.stderr)


def callers(engine) -> dict:
    """An officer, an auditor and an admin device, enrolled through the identity service."""
    from server.services import identity

    wards = [w.code for w in reference.hanoi_wards()]
    out = {}
    for role, scope in (("officer", [wards[0]]), ("auditor", wards), ("admin", ["*"])):
        name = f"bench_{role}_{uuid.uuid4().hex[:6]}"
        identity.create_user(engine, name, role, scope)
        code = identity.create_enrol_code(engine, name, 10)
        token = identity.enrol(engine, code, f"bench-{role}").token
        out[role] = identity.authenticate(engine, token)
    return out


def push_all(engine, caller, mutations: list[dict], clock: Clock, meter: Profiled) -> int:
    """Push in batches as the route does; answers how many were applied."""
    from server.services import sync

    applied = 0
    for start in range(0, len(mutations), BATCH):
        body = json.dumps(
            {"mutations": mutations[start : start + BATCH], "answer": "summary"},
            ensure_ascii=False,
        ).encode()
        with meter:
            request = read_push(body)  # as the route reads it
            results = sync.push(engine, caller, request.mutations, clock)
            answer = summarise(results).model_dump_json()
        applied += sum(stop - begin for begin, stop in json.loads(answer)["applied"])
        problems = [r.reason for r in results if r.status == "rejected"]
        if problems:
            raise SystemExit(f"the server refused the bench's mutations: {problems[:3]}")
    return applied


def pull_all(engine, caller, meter: Profiled) -> int:
    from server.services import sync

    cursor, served = 0, 0
    for _ in range(10_000):
        with meter:
            page = sync.pull(engine, caller, cursor, BATCH, one_clock=True)
        served += page.served
        if page.next_cursor == cursor or b'"has_more":false' in page.body[-40:]:
            break
        cursor = page.next_cursor
    return served


class ProcessCpu:
    """CPU seconds (user + system) an API process spends inside `with`, from /proc."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.cpu = 0.0

    def _now(self) -> float:
        import os

        with open(f"/proc/{self.pid}/stat") as stat:
            parts = stat.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")

    def __enter__(self) -> ProcessCpu:
        self._t0 = self._now()
        return self

    def __exit__(self, *exc) -> None:
        self.cpu += self._now() - self._t0

    def report(self, title: str) -> None:
        pass


def http_push_all(api, token: str, mutations: list[dict], meter: ProcessCpu) -> int:
    import httpx
    import zstandard

    applied = 0
    headers = {"Authorization": f"Bearer {token}", "Content-Encoding": "zstd"}
    headers["Content-Type"] = "application/json"
    with httpx.Client(base_url=api.url, timeout=300) as client:
        for start in range(0, len(mutations), BATCH):
            body = json.dumps(
                {"mutations": mutations[start : start + BATCH], "answer": "summary"},
                ensure_ascii=False,
            ).encode()
            packed = zstandard.ZstdCompressor(level=15).compress(body)
            with meter:
                response = client.post("/sync/push", content=packed, headers=headers)
            response.raise_for_status()
            answer = response.json()
            if answer["exceptions"]:
                raise SystemExit(f"the server refused: {answer['exceptions'][:3]}")
            applied += sum(stop - begin for begin, stop in answer["applied"])
    return applied


def http_pull_all(api, token: str, meter: ProcessCpu) -> int:
    import httpx

    cursor, served = 0, 0
    headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "gzip"}
    with httpx.Client(base_url=api.url, timeout=300, headers=headers) as client:
        for _ in range(10_000):
            params = {"cursor": cursor, "limit": BATCH, "clocks": "one"}
            with meter:
                response = client.get("/sync/pull", params=params)
            response.raise_for_status()
            page = response.json()
            served += len(page["changes"])
            if not page["has_more"]:
                break
            cursor = page["next_cursor"]
    return served


def run_http(kind: str, url: str, tmp: Path, args) -> dict:
    from tests.support.server_proc import ApiServer

    api = ApiServer(url, tmp / f"api-{kind}").start()
    try:
        wards = [w.code for w in reference.hanoi_wards()]
        officer = api.enrol(f"o_{uuid.uuid4().hex[:6]}", "officer", [wards[0]])
        auditor = api.enrol(f"a_{uuid.uuid4().hex[:6]}", "auditor", wards)
        admin = api.enrol(f"x_{uuid.uuid4().hex[:6]}", "admin", ["*"])
        rng = random.Random(13)
        dossiers = dossier_register(wards[0], args.dossiers, rng)
        audits = audit_register(wards, rng)
        push_d, push_a = ProcessCpu(api.process.pid), ProcessCpu(api.process.pid)
        pull = ProcessCpu(api.process.pid)
        n_d = http_push_all(api, officer.token, dossiers, push_d)
        n_a = http_push_all(api, auditor.token, audits, push_a)
        served = http_pull_all(api, admin.token, pull)
    finally:
        api.stop()
    return _figures(kind + " http", url, n_d, n_a, served, push_d, push_a, pull)


def raw_rows(engine) -> tuple[list[dict], list[dict]]:
    """The stored record and change-log rows, to insert again as the raw baseline."""
    from sqlalchemy import select

    from server.models import ChangeLog, Record

    with engine.connect() as conn:
        records = [dict(r) for r in conn.execute(select(Record.__table__)).mappings()]
        changes = [dict(r) for r in conn.execute(select(ChangeLog.__table__)).mappings()]
    for r in records:
        r.pop("id")
        r["entity_id"] = "raw-" + r["entity_id"]
    for c in changes:
        c.pop("seq")
        c["entity_id"] = "raw-" + c["entity_id"]
    return records, changes


def raw_insert(engine, records: list[dict], changes: list[dict]) -> float:
    from sqlalchemy import insert

    from server.models import ChangeLog, Record

    t0 = time.process_time()
    for start in range(0, len(records), BATCH):
        with engine.begin() as conn:
            conn.execute(insert(Record.__table__), records[start : start + BATCH])
            conn.execute(insert(ChangeLog.__table__), changes[start : start + BATCH])
    return time.process_time() - t0


def raw_read(engine, caller) -> tuple[float, int]:
    """CPU seconds to read every change with its record by the pull's join, and the rows."""
    from server.services import sync

    t0 = time.process_time()
    cursor, count = 0, 0
    for _ in range(10_000):
        rows = sync._pull_rows(engine, caller, cursor, BATCH)
        b",".join(str(r[-1]).encode() for r in rows[:BATCH])
        count += len(rows[:BATCH])
        if len(rows) <= BATCH:
            break
        cursor = rows[BATCH - 1][0]
    return time.process_time() - t0, count


def run(kind: str, url: str, args) -> dict:
    from server.core import sealing
    from server.core.db import make_engine
    from server.migrate import upgrade

    sealing.install(sealing.Keyring.of([sealing.new_key()]))
    try:  # as an API process runs (`commune api`), where the server has it
        from server.core.runtime import tune_gc

        tune_gc()
    except ImportError:
        pass
    engine = make_engine(url)
    upgrade(engine)
    who = callers(engine)
    rng = random.Random(13)
    wards = [w.code for w in reference.hanoi_wards()]
    dossiers = dossier_register(wards[0], args.dossiers, rng)
    audits = audit_register(wards, rng)
    clock = Clock("server")
    push_d = Profiled(args.profile == "push")
    push_a = Profiled(args.profile == "push")
    pull = Profiled(args.profile == "pull")
    n_d = push_all(engine, who["officer"], dossiers, clock, push_d)
    n_a = push_all(engine, who["auditor"], audits, clock, push_a)
    served = pull_all(engine, who["admin"], pull)
    engine.dispose()
    push_d.report(f"{kind} push dossiers")
    push_a.report(f"{kind} push audits")
    pull.report(f"{kind} pull")
    return _figures(kind, url, n_d, n_a, served, push_d, push_a, pull)


def _figures(kind: str, url: str, n_d, n_a, served, push_d, push_a, pull) -> dict:
    """The run's figures, with the raw baselines measured now on the same database."""
    from server.core.db import make_engine
    from server.scope import Caller

    engine = make_engine(url)
    admin = Caller(0, "raw", "admin", frozenset({"*"}), "raw")
    records, changes = raw_rows(engine)
    insert_s = raw_insert(engine, records, changes)
    read_s, read_n = raw_read(engine, admin)
    engine.dispose()
    n = len(records) or 1
    per_k = lambda s, k: round(1000 * s / k, 3)  # noqa: E731
    return {
        "db": kind,
        "load_avg_1m": _load(),
        "dossier_records": n_d,
        "audit_records": n_a,
        "pulled": served,
        "push_dossiers_cpu_s": round(push_d.cpu, 2),
        "push_audits_cpu_s": round(push_a.cpu, 2),
        "pull_cpu_s": round(pull.cpu, 2),
        "push_cpu_per_1000": per_k(push_d.cpu + push_a.cpu, n_d + n_a),
        "pull_cpu_per_1000": per_k(pull.cpu, served),
        "raw_insert_cpu_per_1000": per_k(insert_s, n),
        "raw_read_cpu_per_1000": per_k(read_s, read_n),
        "push_x_raw_insert": round(
            (push_d.cpu + push_a.cpu) / (n_d + n_a) / max(insert_s / n, 1e-9), 1
        ),
        "pull_x_raw_read": round(pull.cpu / served / max(read_s / read_n, 1e-9), 1),
    }


def _load() -> float:
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--dossiers", type=int, default=2000, help="dossiers (2000)")
    parser.add_argument("--profile", choices=("push", "pull"), help="cProfile one phase")
    parser.add_argument("--http", action="store_true", help="through a real API process")
    args = parser.parse_args(argv)
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    with tempfile.TemporaryDirectory(prefix="commune-cpu-") as tmp:
        pg = PostgresServer(find_bindir()).start() if "postgres" in kinds else None
        try:
            for kind in kinds:
                url = f"sqlite:///{tmp}/server.db" if kind == "sqlite" else pg.create_database()
                http = args.http
                result = run_http(kind, url, Path(tmp), args) if http else run(kind, url, args)
                print(json.dumps(result), flush=True)
        finally:
            if pg:
                pg.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
