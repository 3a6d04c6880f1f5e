"""Seeded dossiers and audits written straight into a migrated server database."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Engine

from server.models import Record

TODAY = dt.date(2026, 12, 2)  # a Wednesday
WARDS = ["00001", "00004", "00006", "00008", "00070"]
PROCEDURES = ["1.001193", "1.000894", "2.000815"]


def _stamped(values: dict[str, Any]) -> dict[str, Any]:
    return {
        k: {"value": v, "hlc": "0000000000001-0000-seed", "changed_version": 1}
        for k, v in values.items()
        if v is not None
    }


def seed_dossiers(count: int, rng: random.Random) -> list[dict[str, Any]]:
    """Plain dicts of what each dossier holds; received instants straddle VN midnights."""
    rows = []
    base = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    for i in range(count):
        received = base + dt.timedelta(minutes=rng.randrange(0, 60 * 24 * 31))
        if i % 17 == 0:  # Sunday 17:30 UTC is Monday 00:30 in Hanoi: next week there
            received = dt.datetime(2026, 11, 15, 17, 30, tzinfo=dt.UTC)
        status = rng.choice([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 9, 10, 4])
        appointment = (received + dt.timedelta(days=rng.randrange(0, 25))).date()
        finished = None
        if status in (9, 10) and rng.random() < 0.9:
            finished = received + dt.timedelta(days=rng.randrange(0, 25), hours=rng.randrange(24))
        rows.append(
            {
                "id": f"d{i:05d}",
                "code": f"000.00.53.H48-{received:%y%m%d}-{i:04d}",
                "ward_code": rng.choice(WARDS),
                "procedure_code": rng.choice(PROCEDURES),
                "status": status,
                "channel": rng.choice([1, 2, 3, 2]),
                "received_at": received.replace(microsecond=0).isoformat(),
                "appointment_date": appointment.isoformat() if rng.random() < 0.95 else None,
                "finished_at": finished.isoformat() if finished else None,
                "applicant_name": f"Nguyễn Văn {i}",
            }
        )
    return rows


def insert_records(engine: Engine, entity: str, family: str, rows: list[dict[str, Any]]) -> None:
    table = Record.__table__
    now = dt.datetime.now(dt.UTC)
    values = [
        {
            "entity": entity,
            "entity_id": row["id"],
            "ward_code": row["ward_code"],
            "family": family,
            "version": 1,
            "fields": _stamped({k: v for k, v in row.items() if k != "id"}),
            "updated_at": now,
        }
        for row in rows
    ]
    with engine.begin() as conn:
        for start in range(0, len(values), 5000):
            conn.execute(insert(table), values[start : start + 5000])
    if entity == "dossier":
        from server.services.reports import rebuild_facts

        rebuild_facts(engine)  # rows written around the sync service: project them as 0007 does
