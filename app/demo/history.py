"""Weeks of history for the demo's central database, so the supervisor's figures and reports
tell something on first run: dossiers of the last ten weeks across Hanoi's 126 wards (readable
facts only, as imported from the national portal's statistics), earlier approved audits of some
wards, then the report snapshots supervisors pull.

Written straight into the server's tables in one transaction (records, change log, the
dossier_fact projection): thousands of records in about a second, where pushing them from
devices would take the demo minutes.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from typing import Any

from app.domain import audit as A
from app.domain import reference
from app.domain.hlc import Clock

WEEKS = 10
PROCEDURES = ("1.001193", "1.000894", "2.000815", "1.001612", "1.003583")


def _stamped(values: dict[str, Any], clock: Clock) -> dict[str, Any]:
    stamp = clock.now()
    return {k: {"value": v, "hlc": stamp, "changed_version": 1} for k, v in values.items()}


def _dossier(ward: str, received: dt.datetime, today: dt.date, rng: random.Random, lag: float):
    appointment = (received + dt.timedelta(days=rng.randrange(3, 12))).date()
    status, finished = rng.choice([4, 5, 6, 2]), None
    if (appointment < today or rng.random() < 0.6) and rng.random() < 0.93:
        late_by = rng.randrange(1, 6) if rng.random() < lag else -rng.randrange(0, 4)
        finished = dt.datetime.combine(
            appointment + dt.timedelta(days=late_by), dt.time(3, 0), dt.UTC
        )
        status = 10 if rng.random() < 0.7 else 9
        if finished.date() > today:
            status, finished = 4, None
    return {
        "code": f"000.00.53.H48-{received:%y%m%d}-{rng.randrange(1, 9999):04d}",
        "procedure_code": rng.choice(PROCEDURES),
        "ward_code": ward,
        "channel": rng.choice([1, 1, 2, 2, 2, 3]),
        "received_at": received.replace(microsecond=0).isoformat(),
        "appointment_date": appointment.isoformat(),
        "status": status,
        **({"finished_at": finished.isoformat()} if finished else {}),
    }


def _old_audit(ward: str, when: dt.datetime, rng: random.Random) -> dict[str, Any]:
    tpl = A.template()
    values: dict[str, Any] = {
        "ward_code": ward,
        "template_version": tpl.version,
        "review_state": A.ReviewState.APPROVED.value,
        "started_at": when.isoformat(),
        "submitted_at": when.isoformat(),
    }
    for item in tpl.items():
        if item.kind == "yes_no":
            values[f"answers.{item.id}"] = {"value": rng.random() < 0.6, "photos": []}
    return values


def seed_history(
    engine, today: dt.date, skip_wards: frozenset[str] = frozenset(), per_ward_week: int = 4,
    seed: int = 21,
) -> int:
    """Insert the history (none for `skip_wards`, whose dossiers come from a demo device);
    returns the number of dossiers written."""
    from sqlmodel import Session

    from server.core.db import take_log_lock
    from server.models import ChangeLog, Record
    from server.services.reports import project_record

    rng = random.Random(seed)
    clock = Clock("server")
    wards = [w.code for w in reference.hanoi_wards() if w.code not in skip_wards]
    start = dt.datetime.combine(today - dt.timedelta(weeks=WEEKS), dt.time(1, 0), dt.UTC)
    written = 0
    with Session(engine) as session:
        take_log_lock(session)
        for ward in wards:
            lag = rng.choice([0.05, 0.1, 0.15, 0.3, 0.5])  # some wards run late more often
            rows = []
            for week in range(WEEKS):
                for _ in range(rng.randrange(per_ward_week - 2, per_ward_week + 3)):
                    received = start + dt.timedelta(
                        days=7 * week + rng.randrange(0, 5), hours=rng.randrange(0, 9)
                    )
                    rows.append(("dossier", "dossier", _dossier(ward, received, today, rng, lag)))
            if rng.random() < 0.3:  # an earlier audit, approved months ago
                when = start - dt.timedelta(days=rng.randrange(60, 120))
                rows.append(("audit", "audit", _old_audit(ward, when, rng)))
            for entity, family, values in rows:
                record = Record(
                    entity=entity, entity_id=str(uuid.uuid4()), ward_code=ward, family=family,
                    version=1, fields=_stamped(values, clock),
                )
                session.add(record)
                session.add(ChangeLog(entity=entity, entity_id=record.entity_id, ward_code=ward,
                                      family=family, version=1))
                project_record(session, record)
                written += entity == "dossier"
        session.commit()
    return written
