"""Sync over slow links: batched zstd sync vs the gzip floor vs one request per record.

    uv run python bench/sync_link.py [--dossiers 2000] [--profiles 2g 3g] [--sample 25]
                                     [--sequential] [--batches whole half] [--no-app-gc]

For each link profile, on a fresh central API (real process, SQLite) behind the user-space link
emulator (`tests/support/netproxy.py`: bandwidth each way, one-way delay, bytes metered):
1. an officer tablet pushes N dossiers (each with its intake history event) and an auditor's
   tablet pushes 126 audits (one per Hanoi ward, every non-photo item answered one at a time,
   as a person fills the form);
2. a fresh device pulls all of it: an admin's, since supervisors no longer pull dossiers (they
   see them as report snapshots); the leg keeps its name, "pull all (supervisor)".
It reports wall time, CPU seconds of the client (the thread that runs the sync) and of the
server process, and bytes on the wire against
- the content floor: gzip-6 size of the records' values as JSON (what users typed and chose: no
  clock stamps, no record ids or ward codes, no field naming another record of the batch, which
  the server can derive from nesting) divided by the bandwidth of that direction, plus 2 round
  trips;
- the stamped floor: the same with each field's clock stamp and the ids (what a per-field merge
  carries today);
- one request per record (OpenRosa style: one uncompressed POST per record and its answer, on a
  kept-alive connection; for the pull, pages of one record), measured in the same run on a
  sample of `--sample` records and extrapolated linearly to all records (stated as such).
Prints a markdown table. The process that plays the devices takes the client's process
settings as the app does at start (`app.runtime`: the collector's), unless `--no-app-gc`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import random
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.domain import audit as A  # noqa: E402
from app.domain import reference  # noqa: E402
from app.domain.models import AuditAnswer, ReceiveDossier  # noqa: E402
from app.storage import KeySettings, create_store  # noqa: E402
from app.sync.engine import SyncEngine  # noqa: E402
from app.sync.enrolment import save_enrolment  # noqa: E402
from app.sync.transport import Transport  # noqa: E402
from tests.support.netproxy import NetProxy  # noqa: E402
from tests.support.server_proc import sqlite_url, start_api_server  # noqa: E402

PROFILES = {
    "2g": ("2G", 200_000, 300.0),
    "3g": ("poor 3G", 1_000_000, 100.0),
    "lan": ("loopback, no emulation", None, 0.0),  # what is left: client and server work
}
PIN = "2468"
SEQUENTIAL = [False]  # --sequential: every device pushes one batch at a time
WHOLE = [True]  # --batches half: overlapped pushes as half batches, as against an older server
KEYS = KeySettings.for_tests()
SURNAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Phan", "Vũ", "Đặng", "Bùi", "Đỗ", "Ngô"]
MIDDLE = ["Thị", "Văn", "Đức", "Minh", "Ngọc", "Thanh", "Hữu", "Quang"]
GIVEN = ["Hương", "Lan", "Hùng", "Dũng", "Mai", "Tuấn", "Hà", "Linh", "Nam", "Phương", "Thảo"]
STREETS = ["phố Huế", "Hàng Bài", "Kim Mã", "Láng Hạ", "Giải Phóng", "Nguyễn Trãi", "Cầu Giấy"]


@dataclass
class Leg:
    name: str
    seconds: float
    carried_bytes: int  # bytes on the wire in the direction the data travels
    other_bytes: int  # the other direction (answers, the echo pull after a push)
    floor_bytes: int  # gzip-6 of the records with their field clocks and ids (stamped floor)
    plain_floor_bytes: int  # gzip-6 of the records' values alone (the content floor)
    floor_seconds: float  # the content floor over the link, plus two round trips
    client_cpu: float  # CPU seconds of the thread running the sync
    server_cpu: float  # CPU seconds of the server process during the leg
    per_record_seconds: float
    per_record_bytes: float
    records: int


def app_process_settings() -> bool:
    """The client process's settings as the app applies them at start (`app.runtime`: the
    collector), in this process that plays the devices; False for code that has none (a copy
    of a branch from before issue 13's sixth round)."""
    try:
        from app.runtime import tune_gc
    except ImportError:
        return False
    tune_gc()
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dossiers", type=int, default=2000, help="dossiers to push (2000)")
    parser.add_argument("--profiles", nargs="+", default=["2g", "3g"], choices=list(PROFILES))
    parser.add_argument("--sample", type=int, default=25, help="records in the per-record sample")
    parser.add_argument("--seed", type=int, default=7, help="random seed for the data")
    parser.add_argument(
        "--sequential", action="store_true", help="one push at a time (no overlapped batches)"
    )
    parser.add_argument(
        "--never-synced", action="store_true",
        help="the pushing devices' very first sync is measured (by default they synced once "
        "after enrolment, before their intake, and the measured run starts as the app "
        "started again: a new transport on the store's settings)",
    )
    parser.add_argument(
        "--no-app-gc", action="store_true",
        help="leave the collector as Python sets it (not the app's process settings)",
    )
    parser.add_argument(
        "--batches",
        nargs="+",
        default=["whole"],
        choices=["whole", "half"],
        help="overlapped pushes as whole batches (the server keeps answers by batch id) or as "
        "half batches (what an older server gets); several: each in turn, per profile",
    )
    args = parser.parse_args()
    if not args.no_app_gc:
        app_process_settings()
    SEQUENTIAL[0] = args.sequential
    rows = []
    for key in args.profiles:
        for batches in args.batches:
            WHOLE[0] = batches == "whole"
            label, bps, delay_ms = PROFILES[key]
            if len(args.batches) > 1:
                label = f"{label}, {batches} batches"
            rate = f"{bps // 1000} kbit/s" if bps else "unlimited"
            print(f"# {label}: {rate} each way, {delay_ms:.0f} ms one-way", flush=True)
            rows.append((label, run_profile(bps, delay_ms, args)))
    print()
    print_table(rows, args)


def run_profile(bps: int, delay_ms: float, args) -> list[Leg]:
    rng = random.Random(args.seed)
    hanoi = [w.code for w in reference.wards("01")]
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp_name:
        tmp = Path(tmp_name)
        server = start_api_server(sqlite_url(tmp / "api"), tmp / "api")
        try:
            with NetProxy(server.port) as proxy:
                proxy.set_link(up_bps=bps, down_bps=bps, delay_ms=delay_ms)
                rtt = 2 * delay_ms / 1000
                officer = _device(server, tmp / "officer", "officer", hanoi[:1], proxy.url)
                auditor = _device(server, tmp / "auditor", "auditor", hanoi, proxy.url)
                if not args.never_synced:
                    for device in (officer, auditor):
                        _synced_once(device, proxy.url)
                _fill_dossiers(officer[0], hanoi[0], args.dossiers, rng)
                _fill_audits(auditor[0], hanoi, rng)
                legs = []
                for name, (_store, engine) in (
                    ("push dossiers", officer),
                    ("push audits", auditor),
                ):
                    proxy.reset_counters()
                    pushers = _count_push_threads(engine.transport)
                    began, cpu0, server0 = time.monotonic(), time.thread_time(), _cpu(server)
                    report = engine.run_once()
                    seconds = time.monotonic() - began
                    cpu = (time.thread_time() - cpu0 + pushers[0], _cpu(server) - server0)
                    assert report.ok and report.rejected == 0, report
                    up, down = proxy.bytes_up, proxy.bytes_down
                    records = _records(server, _entities_of(name))
                    per_s, per_b = _per_record_push(proxy, records[: args.sample], engine)
                    legs.append(
                        _leg(name, seconds, up, down, records, per_s, per_b, rtt, bps, cpu)
                    )
                    print(f"  {name}: {report.summary()} in {seconds:.1f} s", flush=True)
                supervisor = _device(server, tmp / "supervisor", "admin", hanoi, proxy.url)
                proxy.reset_counters()
                pullers = _count_pull_threads(supervisor[1].transport)
                began, cpu0, server0 = time.monotonic(), time.thread_time(), _cpu(server)
                report = supervisor[1].run_once()
                seconds = time.monotonic() - began
                cpu = (time.thread_time() - cpu0 + pullers[0], _cpu(server) - server0)
                records = _records(server, None)
                assert report.ok and report.pulled == len(records), report
                up, down = proxy.bytes_up, proxy.bytes_down
                per_s, per_b = _per_record_pull(proxy, supervisor[1].transport, args.sample)
                legs.append(
                    _leg(
                        "pull all (supervisor)", seconds, down, up, records, per_s, per_b, rtt,
                        bps, cpu,
                    )
                )
                print(f"  pull: {report.summary()} in {seconds:.1f} s", flush=True)
                for store, engine in (officer, auditor, supervisor):
                    engine.transport.close()
                    store.close()
        finally:
            server.stop()
    return legs


def _count_push_threads(transport: Transport) -> list[float]:
    """CPU seconds of pushes sent from the engine's push threads (overlapped batches: encoded,
    compressed and sent off the sync thread), added to the client's CPU; [seconds]."""
    spent = [0.0]
    push = transport.push

    def counted(mutations, *args, **kw):
        if threading.current_thread() is threading.main_thread():
            return push(mutations, *args, **kw)  # the sync thread's own time is counted already
        began = time.thread_time()
        try:
            return push(mutations, *args, **kw)
        finally:
            spent[0] += time.thread_time() - began

    transport.push = counted
    return spent


def _count_pull_threads(transport: Transport) -> list[float]:
    """CPU seconds of pull pages read in the engine's pull threads (each page is asked, read,
    decompressed and parsed there while the sync thread stores the one before), added to the
    client's CPU; [seconds]."""
    spent = [0.0]
    pull = transport.pull
    lock = threading.Lock()

    def counted(*args, **kw):
        if threading.current_thread() is threading.main_thread():
            return pull(*args, **kw)
        began = time.thread_time()
        try:
            return pull(*args, **kw)
        finally:
            with lock:
                spent[0] += time.thread_time() - began

    transport.pull = counted
    return spent


def _entities_of(leg_name: str) -> set[str]:
    return {"dossier", "dossier_event"} if "dossier" in leg_name else {"audit"}


def _device(server, folder: Path, role: str, wards: list[str], url: str):
    from dataclasses import asdict

    from server.services import identity

    username = f"bench-{role}"
    server.add_user(username, role, wards)
    code = identity.create_enrol_code(server.engine, username, 10)
    store = create_store(folder, PIN, settings=KEYS)
    save_enrolment(store.settings, server.url, asdict(identity.enrol(server.engine, code, role)))
    transport = Transport.from_settings(store.settings, server_url=url)
    engine = SyncEngine(
        store.sync, transport, pipeline=not SEQUENTIAL[0], whole_batches=WHOLE[0]
    )
    return store, engine


def _synced_once(device, url: str) -> None:
    """A device in use: it synced once after enrolment (nothing to push yet), and its next
    run is made as a restarted app makes it, a new transport on the store's settings."""
    store, engine = device
    assert engine.run_once().ok
    engine.transport.close()
    engine.transport = Transport.from_settings(store.settings, server_url=url)


def _fill_dossiers(store, ward: str, n: int, rng: random.Random) -> None:
    procedures = [p.code for p in reference.procedures()][:20]
    start = dt.datetime(2025, 11, 3, 1, 30, tzinfo=dt.UTC)

    def one(i: int) -> ReceiveDossier:
        name = f"{rng.choice(SURNAMES)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"
        return ReceiveDossier(
            procedure_code=rng.choice(procedures),
            ward_code=ward,
            applicant_name=name,
            applicant_id_number=f"0010{rng.randint(80, 99)}{rng.randint(0, 999999):06d}",
            applicant_phone=f"09{rng.randint(10000000, 99999999)}",
            applicant_address=f"Số {rng.randint(1, 200)} {rng.choice(STREETS)}, Hà Nội",
            notes=rng.choice(["", "", "Thiếu bản sao giấy khai sinh", "Hẹn bổ sung"]),
            received_at=start + dt.timedelta(minutes=17 * i),
        )

    store.dossiers.receive_many(one(i) for i in range(n))


def _fill_audits(store, wards: list[str], rng: random.Random) -> None:
    tpl = A.TEMPLATES["2025.1"]
    for ward in wards:
        audit = store.audits.create(ward, "2025.1", rng.choice(GIVEN) + " " + rng.choice(GIVEN))
        for section in tpl.sections:
            for item in section.items:
                value = _answer_value(item, rng)
                if value is None:
                    continue
                store.audits.answer(audit.id, item.id, AuditAnswer(value=value))


def _answer_value(item, rng: random.Random):
    kind = item.kind
    if kind == "yes_no":
        return rng.random() < 0.6
    if kind == "number":  # within the item's range (a template range the form enforces)
        low = int(item.minimum)
        high = int(item.maximum) if item.maximum is not None else low + 100
        return rng.randint(low, high)
    if kind == "choice":
        options = getattr(item, "options", None) or getattr(item, "choices", None) or []
        first = options[rng.randrange(len(options))] if options else None
        return getattr(first, "id", getattr(first, "value", first))
    if kind == "text":
        return "Sao lưu hằng tuần ra ổ cứng ngoài, chưa kiểm tra khôi phục"
    return None  # photos need a file


def _records(server, entities: set[str] | None) -> list[dict]:
    """The records as the server holds them: {entity, id, ward, fields: {name: {value, hlc}}}."""
    from sqlalchemy import text

    from server.core import sealing

    # Personal fields are sealed at rest: opened with the server's key (in its data folder).
    sealing.install(sealing.load_keyring(server.data_dir / "keys" / "server.key"))
    with server.engine.connect() as conn:
        rows = conn.execute(text("SELECT entity, entity_id, ward_code, fields FROM record")).all()
    out = []
    for entity, entity_id, ward, fields in rows:
        if entities is not None and entity not in entities:
            continue
        if isinstance(fields, str):
            fields = json.loads(fields)
        fields = sealing.open_fields(entity, entity_id, fields)
        out.append({"entity": entity, "id": entity_id, "ward": ward, "fields": fields})
    return out


def _cpu(server) -> float:
    """CPU seconds (user + system) the server process has used so far, from /proc."""
    import os

    with open(f"/proc/{server.process.pid}/stat") as stat:
        parts = stat.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def _content_json(records: list[dict]) -> bytes:
    """The records' content as JSON: per entity, each record's field values, without clock
    stamps, record ids, ward codes or fields naming another record (the server can derive
    those: its own ids, the device's ward, nesting)."""
    by_entity: dict[str, list[dict]] = {}
    for r in records:
        values = {
            k: v["value"]
            for k, v in r["fields"].items()
            if k != "ward_code" and not k.endswith("_id")
        }
        by_entity.setdefault(r["entity"], []).append(values)
    return json.dumps(by_entity, ensure_ascii=False, separators=(",", ":")).encode()


def _leg(name, seconds, carried, other, records, per_s, per_b, rtt, bps, cpu) -> Leg:
    plain = len(gzip.compress(_content_json(records), compresslevel=6))
    stamped = len(gzip.compress(_stamped_json(records), compresslevel=6))
    floor_seconds = (plain * 8 / bps if bps else 0.0) + 2 * rtt
    n = len(records)
    return Leg(
        name, seconds, carried, other, stamped, plain, floor_seconds, *cpu,
        per_s * n, per_b * n, n,
    )


def _stamped_json(records: list[dict]) -> bytes:
    """The records with each field's value and clock stamp: the least a field merge carries."""
    stamped = [
        {**r, "fields": {k: [v["value"], v["hlc"]] for k, v in r["fields"].items()}}
        for r in records
    ]
    return json.dumps(stamped, ensure_ascii=False, separators=(",", ":")).encode()


def _per_record_push(proxy: NetProxy, sample: list[dict], engine) -> tuple[float, float]:
    """Seconds and wire bytes per record: one uncompressed POST per record with all its fields
    (the same stamps the server holds, so the server's state does not change)."""
    import httpx

    token = engine.transport.token
    with httpx.Client(
        base_url=proxy.url, timeout=120, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        client.get("/health")  # connection set up outside the sample
        proxy.reset_counters()
        began = time.monotonic()
        for r in sample:
            fields = {k: {"value": v["value"], "hlc": v["hlc"]} for k, v in r["fields"].items()}
            mutation = {
                "mutation_id": str(uuid.uuid4()),
                "device_id": engine.store.device_id,
                "entity": r["entity"],
                "entity_id": r["id"],
                "ward_code": r["ward"],
                "base_version": 0,
                "fields": fields,
            }
            client.post("/sync/push", json={"mutations": [mutation]}).raise_for_status()
        seconds = time.monotonic() - began
    return seconds / len(sample), (proxy.bytes_up + proxy.bytes_down) / len(sample)


def _per_record_pull(proxy: NetProxy, transport: Transport, sample: int) -> tuple[float, float]:
    import httpx

    with httpx.Client(
        base_url=proxy.url,
        timeout=120,
        headers={"Authorization": f"Bearer {transport.token}", "Accept-Encoding": "identity"},
    ) as client:
        client.get("/health")
        proxy.reset_counters()
        began = time.monotonic()
        cursor = 0
        for _ in range(sample):
            resp = client.get("/sync/pull", params={"cursor": cursor, "limit": 1})
            resp.raise_for_status()
            cursor = resp.json()["next_cursor"]
        seconds = time.monotonic() - began
    return seconds / sample, (proxy.bytes_up + proxy.bytes_down) / sample


def print_table(rows, args) -> None:
    print(
        f"{args.dossiers} dossiers with their intake events, and 126 audits. Per-record: "
        f"measured on {args.sample} records per leg, extrapolated to all records."
    )
    print()
    print(
        "| link | leg | records | wall s | client CPU s | server CPU s | content floor s | "
        "wall / floor | data KB | other KB | content floor KB | (data + other) / floor | "
        "stamped floor KB | per-record s | faster than per-record |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, legs in rows:
        total = Leg("total", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        for leg in legs:
            total.seconds += leg.seconds
            total.carried_bytes += leg.carried_bytes
            total.other_bytes += leg.other_bytes
            total.floor_bytes += leg.floor_bytes
            total.plain_floor_bytes += leg.plain_floor_bytes
            total.floor_seconds += leg.floor_seconds
            total.client_cpu += leg.client_cpu
            total.server_cpu += leg.server_cpu
            total.per_record_seconds += leg.per_record_seconds
            total.per_record_bytes += leg.per_record_bytes
            total.records += leg.records
        for leg in [*legs, total]:
            both = leg.carried_bytes + leg.other_bytes
            print(
                f"| {label} | {leg.name} | {leg.records} | {leg.seconds:.1f} | "
                f"{leg.client_cpu:.1f} | {leg.server_cpu:.1f} | {leg.floor_seconds:.1f} | "
                f"{leg.seconds / leg.floor_seconds if leg.floor_seconds else 0:.2f} | "
                f"{leg.carried_bytes / 1000:.0f} | {leg.other_bytes / 1000:.0f} | "
                f"{leg.plain_floor_bytes / 1000:.0f} | {both / leg.plain_floor_bytes:.2f} | "
                f"{leg.floor_bytes / 1000:.0f} | {leg.per_record_seconds:.0f} | "
                f"{leg.per_record_seconds / leg.seconds:.1f}x |"
            )


if __name__ == "__main__":
    main()
