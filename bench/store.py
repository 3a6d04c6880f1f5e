"""Local store benchmark: encrypted store vs plain SQLModel on the same dossier rows.

    uv run python bench/store.py [--sizes 10000 100000] [--batch 1000] [--rounds 3]

For each size, in one run: bulk inserts (batches, one transaction each) into the encrypted
store (sealed fields, blind-index terms, history event and outbox mutation per dossier) and
into a plain SQLModel table with the same columns and pragmas; then the time to read one
50-row page (several filters) and to search by name and by ID number, each also on the plain
table (the same filters in SQL; a name search is a LIKE on a folded-name column, as a plain
app would do it). Prints a markdown table.

The encrypted store takes its default path: SQLCipher on when sqlcipher3 imports (the dev group
has it); `COMMUNE_SQLCIPHER=off` measures the per-record sealing alone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import event, func
from sqlmodel import Field, Session, SQLModel, col, create_engine, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.domain import reference  # noqa: E402
from app.domain.calendar import WorkingCalendar, counted_from  # noqa: E402
from app.domain.codes import format_code  # noqa: E402
from app.domain.models import ReceiveDossier  # noqa: E402
from app.domain.status import DossierStatus, is_open  # noqa: E402
from app.domain.text import digits, fold  # noqa: E402
from app.storage import DossierQuery, KeySettings, create_store  # noqa: E402
from app.storage.db import sqlcipher_available  # noqa: E402
from app.storage.tables import new_id  # noqa: E402

SURNAMES = [
    "Nguyễn",
    "Trần",
    "Lê",
    "Phạm",
    "Hoàng",
    "Huỳnh",
    "Phan",
    "Vũ",
    "Võ",
    "Đặng",
    "Bùi",
    "Đỗ",
    "Hồ",
    "Ngô",
    "Dương",
    "Lý",
]
MIDDLE = ["Thị", "Văn", "Đức", "Minh", "Ngọc", "Thanh", "Hữu", "Quang", "Thu", "Kim"]
GIVEN = [
    "Hương",
    "Lan",
    "Hùng",
    "Dũng",
    "Mai",
    "Tuấn",
    "Hà",
    "Linh",
    "Nam",
    "Trang",
    "Phúc",
    "Quân",
    "Thảo",
    "Yến",
    "Sơn",
    "Bình",
    "Khoa",
    "Vy",
    "Long",
    "Hạnh",
    "Giang",
    "Tâm",
]
STREETS = [
    "phố Huế",
    "Hàng Bài",
    "Kim Mã",
    "Láng Hạ",
    "Trần Duy Hưng",
    "Nguyễn Trãi",
    "Giải Phóng",
    "Cầu Giấy",
    "Tây Sơn",
    "Bạch Mai",
]


class PlainDossier(SQLModel, table=True):
    """The same dossier columns, unencrypted, with a client-made id (as any syncing table has)
    and indexes on the columns the list queries use."""

    id: str = Field(default_factory=new_id, primary_key=True)
    code: str = Field(index=True)
    procedure_code: str = Field(index=True)
    ward_code: str
    applicant_name: str
    name_folded: str  # fold(applicant_name): what a plain app would LIKE-search
    applicant_id_number: str = Field(index=True)
    applicant_phone: str
    applicant_address: str
    channel: int
    received_at: dt.datetime
    appointment_date: dt.date = Field(index=True)
    status: int = Field(index=True)
    notes: str


def make_rows(n: int, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    procedures = [p.code for p in reference.procedures()]
    wards = [w.code for w in reference.hanoi_wards()]
    start = dt.datetime(2025, 1, 2, 1, 0, tzinfo=dt.UTC)
    per_day: dict[dt.date, int] = {}
    calendar = WorkingCalendar()
    days = {p.code: p.processing_days for p in reference.procedures()}
    rows = []
    for i in range(n):
        received = start + dt.timedelta(minutes=rng.randrange(0, 365 * 24 * 60))
        day = (received + dt.timedelta(hours=7)).date()
        per_day[day] = per_day.get(day, 0) + 1
        rows.append(
            {
                "code": format_code("000.00.70.H26", day, per_day[day]),
                "procedure_code": rng.choice(procedures),
                "ward_code": rng.choice(wards),
                "applicant_name": f"{rng.choice(SURNAMES)} {rng.choice(MIDDLE)} "
                f"{rng.choice(GIVEN)}",
                "applicant_id_number": f"{rng.randrange(10**11, 10**12):012d}",
                "applicant_phone": f"09{rng.randrange(10**8):08d}",
                "applicant_address": f"Số {rng.randrange(1, 300)} {rng.choice(STREETS)}, Hà Nội",
                "channel": rng.choice((1, 1, 1, 2, 3)),
                "received_at": received,
                "status": int(rng.choice((DossierStatus.NEW, DossierStatus.RECEIVED))),
                "notes": f"Hồ sơ số {i}",
            }
        )
        rows[-1]["appointment_date"] = calendar.add_working_days(
            *counted_from(received, days[rows[-1]["procedure_code"]])  # the 15:00 rule
        )
    return rows


def _batches(rows: list[dict], size: int):
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


def bench_plain(rows: list[dict], folder: Path, batch: int):
    engine = create_engine(f"sqlite:///{folder / 'plain.db'}")

    @event.listens_for(engine, "connect")
    def _pragmas(conn, _record):  # the same pragmas as the encrypted store
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "temp_store=MEMORY",
            "cache_size=-32768",
        ):
            conn.execute(f"PRAGMA {pragma}")

    SQLModel.metadata.create_all(engine)
    wall, cpu = time.perf_counter(), time.process_time()
    for chunk in _batches(rows, batch):
        with Session(engine) as session:
            session.add_all(
                PlainDossier(**r, name_folded=fold(r["applicant_name"])) for r in chunk
            )
            session.commit()
    return engine, _rates(len(rows), wall, cpu)


def _rates(n: int, wall: float, cpu: float) -> tuple[float, float]:
    """Rows per second of wall time and of this process's CPU time (SQLite runs in-process;
    CPU time is what stays comparable when other work shares the machine)."""
    return n / (time.perf_counter() - wall), n / (time.process_time() - cpu)


def bench_store(rows: list[dict], folder: Path, batch: int):
    store = create_store(folder / "store", "2468", settings=KeySettings.for_tests())
    WorkingCalendar().add_working_days(dt.date(2025, 1, 2), 1)  # load the holiday tables once
    wall, cpu = time.perf_counter(), time.process_time()
    for chunk in _batches(rows, batch):
        store.dossiers.receive_many(ReceiveDossier(**_request(r)) for r in chunk)
    return store, _rates(len(rows), wall, cpu)


def _request(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "appointment_date"}  # the store computes it


def _median_ms(fn, repeat: int = 7) -> float:
    fn()  # warm the page cache and statement cache
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000


TODAY = dt.date(2025, 9, 1)
OPEN = [int(s) for s in DossierStatus if is_open(s)]
SEARCHES = {
    "search: common full name": "nguyen thi huong",
    "search: one common word": "nguyen",
    "search: prefixes while typing": "ng thi hu",
}


def bench_reads(store, rows: list[dict]) -> dict[str, float]:
    today = TODAY
    some_procedure = rows[0]["procedure_code"]
    middle = len(rows) // 2
    pages = {
        "page: all, first": DossierQuery(),
        "page: all, middle": DossierQuery(),
        "page: status": DossierQuery(status=int(DossierStatus.NEW)),
        "page: procedure": DossierQuery(procedure_code=some_procedure),
        "page: overdue": DossierQuery(overdue=True, today=today),
        "page: due in 7 days": DossierQuery(due_within_days=7, today=today),
    }
    out = {}
    for label, query in pages.items():
        offset = middle if "middle" in label else 0
        out[label] = _median_ms(lambda q=query, o=offset: store.dossiers.list(q, o, 50))
    searches = SEARCHES | {"search: ID number": rows[middle]["applicant_id_number"]}
    for label, text in searches.items():
        out[label] = _median_ms(lambda t=text: store.dossiers.list(DossierQuery(search=t)))
    return out


def bench_plain_reads(engine, rows: list[dict]) -> dict[str, float]:
    """The same pages on the plain table: a count and a 50-row page ordered like the store's
    list, as model objects."""
    day = TODAY
    middle = len(rows) // 2
    soon = day + dt.timedelta(days=7)
    open_status = col(PlainDossier.status).in_(OPEN)
    due = col(PlainDossier.appointment_date)
    wheres = {
        "page: all, first": [],
        "page: all, middle": [],
        "page: status": [PlainDossier.status == int(DossierStatus.NEW)],
        "page: procedure": [PlainDossier.procedure_code == rows[0]["procedure_code"]],
        "page: overdue": [open_status, due < day],
        "page: due in 7 days": [open_status, due >= day, due <= soon],
    }
    for label, text in SEARCHES.items():
        wheres[label] = [col(PlainDossier.name_folded).like(f"%{fold(text)}%")]
    wheres["search: ID number"] = [
        PlainDossier.applicant_id_number == digits(rows[middle]["applicant_id_number"])]
    out = {}
    with Session(engine) as session:
        for label, where in wheres.items():
            offset = middle if "middle" in label else 0

            def page(where=where, offset=offset) -> None:
                session.exec(select(func.count()).select_from(PlainDossier).where(*where)).one()
                session.exec(
                    select(PlainDossier).where(*where)
                    .order_by(PlainDossier.appointment_date, PlainDossier.id)
                    .offset(offset).limit(50)
                ).all()
                session.expunge_all()

            out[label] = _median_ms(page)
    return out


def _best(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    return max(a[0], b[0]), max(a[1], b[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--batch", type=int, default=1000, help="rows per transaction")
    parser.add_argument("--rounds", type=int, default=3, help="insert rounds; best one counts")
    args = parser.parse_args(argv)
    lines = [
        "| dossiers | measure | encrypted store | plain SQLModel | ratio |",
        "|---:|---|---:|---:|---:|",
    ]
    for n in args.sizes:
        rows = make_rows(n)
        plain_rate = store_rate = (0.0, 0.0)
        plain_engine = None
        with tempfile.TemporaryDirectory() as tmp:
            # Alternate the two, best round of each: other load on the machine hits both alike.
            for round_no in range(args.rounds):
                folder = Path(tmp) / f"round{round_no}"
                folder.mkdir()
                gc.collect()
                if plain_engine is not None:
                    plain_engine.dispose()
                plain_engine, rate = bench_plain(rows, folder, args.batch)
                plain_rate = _best(plain_rate, rate)
                gc.collect()
                store, rate = bench_store(rows, folder, args.batch)
                store_rate = _best(store_rate, rate)
                if round_no < args.rounds - 1:
                    store.close()
            encrypted_file = store.db.encrypted
            reads = bench_reads(store, rows)
            store.close()
            plain_reads = bench_plain_reads(plain_engine, rows)
            plain_engine.dispose()
        for i, clock in enumerate(("wall", "CPU")):
            lines.append(
                f"| {n:,} | inserts/s of {clock} time (batches of {args.batch}) | "
                f"{store_rate[i]:,.0f} | {plain_rate[i]:,.0f} | "
                f"{store_rate[i] / plain_rate[i]:.2f}x |"
            )
        for label, ms in reads.items():
            plain_ms = plain_reads[label]
            lines.append(f"| {n:,} | {label} (50-row page), ms | {ms:.1f} | {plain_ms:.1f} | "
                         f"{ms / plain_ms:.2f}x |")
        print("\n".join(lines[-2 - len(reads) :]), file=sys.stderr, flush=True)
    print("\n".join(lines))
    print(f"\nSQLCipher file encryption: {'on' if encrypted_file else 'off'} "
          f"(sqlcipher3 {'imports' if sqlcipher_available() else 'off or missing'}); "
          "read ratios are encrypted time / plain time (above 1: slower)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
