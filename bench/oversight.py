"""Oversight aggregation over Hanoi's 126 wards and 100,000 dossiers, on SQLite and PostgreSQL.

    uv run python bench/oversight.py [--dossiers 100000] [--engines sqlite postgresql]

Seeds a migrated server database with dossier records as the sync service stores them (per field
{value, hlc, changed_version}, with applicant fields too), then times, in the same run:
- the SQL figures per ward, per ward and week, per procedure (server/services/reports.py);
- the lists behind the overdue and late figures, and a whole first publish of the snapshots;
- the baseline: every dossier's fields read into Python and tallied there (app/domain/oversight).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text  # noqa: E402

from app.domain import oversight as O  # noqa: E402
from app.domain import reference  # noqa: E402
from server import migrate  # noqa: E402
from server.core.db import make_engine  # noqa: E402
from server.services import reports  # noqa: E402
from tests.oversight import seed  # noqa: E402

TODAY = dt.date(2026, 12, 2)


def _dossiers(count: int) -> list[dict]:
    rng = random.Random(2026)
    wards = [w.code for w in reference.hanoi_wards()]
    seed.WARDS[:] = wards
    rows = seed.seed_dossiers(count, rng)
    for row in rows:
        row["applicant_address"] = "Số 12 ngõ 34 phố Hàng Bông, Hoàn Kiếm, Hà Nội"
        row["applicant_id_number"] = "001203004567"
        row["code"] = f"000.00.53.H48-261101-{row['id'][-4:]}"
    return rows


def _baseline(engine) -> float:
    start = time.perf_counter()
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT fields FROM record WHERE entity = 'dossier'")).all()
    import json

    facts = []
    for (fields,) in rows:
        f = json.loads(fields) if isinstance(fields, str) else fields
        v = {k: s["value"] for k, s in f.items()}
        facts.append(
            O.DossierFact(
                ward_code=v["ward_code"],
                procedure_code=v["procedure_code"],
                status=v["status"],
                channel=v.get("channel"),
                received_at=dt.datetime.fromisoformat(v["received_at"]),
                appointment_date=dt.date.fromisoformat(v["appointment_date"])
                if v.get("appointment_date")
                else None,
                finished_at=dt.datetime.fromisoformat(v["finished_at"])
                if v.get("finished_at")
                else None,
            )
        )
    O.tally(facts, TODAY, ("ward",))
    return time.perf_counter() - start


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(url: str, name: str, rows: list[dict]) -> None:
    engine = make_engine(url)
    migrate.upgrade(engine)
    seed.insert_records(engine, "dossier", "dossier", rows)
    with engine.connect() as conn:
        wards = conn.execute(text("SELECT COUNT(DISTINCT ward_code) FROM record")).scalar_one()
    print(f"{name}: {len(rows)} dossiers in {wards} wards")
    for by in (("ward",), ("ward", "week"), ("procedure",)):
        runs = [_timed(lambda b=by: reports.dossier_figures(engine, TODAY, b)) for _ in range(3)]
        seconds = min(runs)
        print(f"  SQL figures by {'+'.join(by):<12} {seconds:6.2f} s")
    listed = min(_timed(lambda: reports.listed_dossiers(engine, TODAY)) for _ in range(3))
    print(f"  overdue and late dossiers listed     {listed:6.2f} s")
    publish = _timed(lambda: reports.publish_snapshots(engine, TODAY))
    print(f"  publish_snapshots (first, all wards) {publish:6.2f} s")
    print(f"  baseline (read all, tally in Python) {_baseline(engine):6.2f} s")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dossiers", type=int, default=100_000)
    parser.add_argument("--engines", nargs="+", default=["sqlite", "postgresql"])
    args = parser.parse_args()
    rows = _dossiers(args.dossiers)
    with tempfile.TemporaryDirectory() as tmp:
        if "sqlite" in args.engines:
            run(f"sqlite:///{tmp}/bench.db", "SQLite", rows)
        if "postgresql" in args.engines:
            from tests.support.postgres import PostgresServer, find_bindir

            server = PostgresServer(find_bindir()).start()
            try:
                run(server.create_database(), "PostgreSQL", rows)
            finally:
                server.stop()


if __name__ == "__main__":
    main()
