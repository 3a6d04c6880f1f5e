"""Reference data an admin publishes and devices receive: the procedure catalogue and the
working calendar, each a series of versions (table `reference_version`, never updated).

- The newest version of each kind is in force: devices get it by `GET /sync/reference`
  (`answer_for`), and intake on a device offers only it.
- The push check honours every version (`honoured`, at most `HONOURED_VERSIONS` of each kind):
  a device that received a dossier offline under the catalogue and calendar it held, before a
  newer version reached it, computed its appointment date honestly, and the citizen holds that
  date on the slip, so the server takes the date some published version gives and never refuses
  the dossier for it. Version 0 of the catalogue is the shipped one; the calendar's version 0 is
  the server's configured one (`server_calendar`: the package plus COMMUNE_MAKE_UP_DAYS /
  COMMUNE_EXTRA_HOLIDAYS), honoured always.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from app.domain import reference as R
from app.domain.calendar import WorkingCalendar
from app.domain.catalogue import Catalogue, merged
from app.domain.models import Procedure
from app.domain.records import Honoured
from server.core.config import server_calendar
from server.core.db import read_session, write_session
from server.models import AuditLog, ReferenceVersion

CATALOGUE = "catalogue"
CALENDAR = "calendar"
HONOURED_VERSIONS = 20
MAX_CALENDAR_DAYS = 400


def import_catalogue(
    engine: Engine, procedures: Sequence[Procedure], *, actor: str = "cli", source: str = ""
) -> int:
    """Store a checked import as the next catalogue version; its number."""
    body = {"procedures": [p.model_dump(mode="json") for p in procedures]}
    return _publish(engine, CATALOGUE, body, actor, source[:300])


def set_calendar(
    engine: Engine,
    make_up_days: Sequence[dt.date],
    extra_holidays: Sequence[dt.date],
    *,
    actor: str = "cli",
) -> int:
    """Publish the working calendar's days as the next calendar version; its number."""
    make_up, off = set(make_up_days), set(extra_holidays)
    if make_up & off:
        raise ValueError("a day cannot be both a make-up working day and an extra holiday")
    if len(make_up) + len(off) > MAX_CALENDAR_DAYS:
        raise ValueError(f"at most {MAX_CALENDAR_DAYS} days")
    body = {
        "make_up_days": sorted(d.isoformat() for d in make_up),
        "extra_holidays": sorted(d.isoformat() for d in off),
    }
    return _publish(engine, CALENDAR, body, actor, "")


def _publish(engine: Engine, kind: str, body: dict, actor: str, source: str) -> int:
    with write_session(engine) as session:
        version = _latest(session, kind) + 1
        session.add(
            ReferenceVersion(kind=kind, version=version, created_by=actor, source=source, body=body)
        )
        session.add(
            AuditLog(
                action=f"publish_{kind}",
                username=actor,
                version=version,
                detail={"source": source, "items": sum(len(v) for v in body.values())},
            )
        )
    return version


def _latest(session: Session, kind: str) -> int:
    found = session.exec(
        select(func.max(ReferenceVersion.version)).where(ReferenceVersion.kind == kind)
    ).one()
    return int(found or 0)


def versions(engine: Engine) -> list[ReferenceVersion]:
    """Every published version, newest first (bodies left out of what callers print)."""
    with read_session(engine) as session:
        rows = session.exec(
            select(ReferenceVersion).order_by(
                ReferenceVersion.kind, ReferenceVersion.version.desc()  # type: ignore[union-attr]
            )
        ).all()
    return list(rows)


def in_force(engine: Engine) -> tuple[int, int]:
    """(catalogue version, calendar version) in force; 0 when none was published."""
    with read_session(engine) as session:
        return _latest(session, CATALOGUE), _latest(session, CALENDAR)


_VERSION = ReferenceVersion.__table__.c
# Both kinds' latest versions in one statement, built once (a push reads them every batch).
LATEST_BOTH = (
    sa_select(_VERSION.kind, func.max(_VERSION.version))
    .where(_VERSION.kind.in_((CATALOGUE, CALENDAR)))
    .group_by(_VERSION.kind)
)


def honoured(session: Session) -> Honoured:
    """What a push is checked against, newest first (kept on the session: one batch, one
    read)."""
    cached = session.info.get("reference_honoured")
    if cached is None:
        latest = {kind: int(v or 0) for kind, v in session.execute(LATEST_BOTH)}
        cached = _honoured_for(session, latest.get(CATALOGUE, 0), latest.get(CALENDAR, 0))
        session.info["reference_honoured"] = cached
    return cached


def _honoured_for(session: Session, catalogue_v: int, calendar_v: int) -> Honoured:
    key = (str(session.get_bind().url), catalogue_v, calendar_v)
    found = _HONOURED.get(key)
    if found is None:
        catalogues = tuple(_catalogue(b, v) for v, b in _bodies(session, CATALOGUE))
        calendars = tuple(_calendar(b) for _, b in _bodies(session, CALENDAR))
        found = Honoured(
            catalogues + (R.shipped_catalogue(),), calendars + (server_calendar(),)
        )
        if len(_HONOURED) > 16:
            _HONOURED.clear()
        _HONOURED[key] = found
    return found


_HONOURED: dict[tuple[str, int, int], Honoured] = {}


def _bodies(session: Session, kind: str) -> list[tuple[int, dict[str, Any]]]:
    rows = session.exec(
        select(ReferenceVersion.version, ReferenceVersion.body)
        .where(ReferenceVersion.kind == kind)
        .order_by(ReferenceVersion.version.desc())  # type: ignore[union-attr]
        .limit(HONOURED_VERSIONS)
    ).all()
    return [(int(v), b) for v, b in rows]


def _catalogue(body: dict[str, Any], version: int) -> Catalogue:
    items = [Procedure.model_validate(i) for i in body.get("procedures", [])]
    return merged(R.shipped_catalogue(), items, version)


def _calendar(body: dict[str, Any]) -> WorkingCalendar:
    return WorkingCalendar(
        [dt.date.fromisoformat(d) for d in body.get("make_up_days", [])],
        [dt.date.fromisoformat(d) for d in body.get("extra_holidays", [])],
    )


def answer_for(engine: Engine, have_catalogue: int, have_calendar: int) -> dict[str, Any]:
    """What `GET /sync/reference` answers a device holding these versions: each kind's newest
    version with its body, or null when the device holds it already (or none was published).
    A device holding a version the server does not have (a restored database) gets the
    server's newest, which replaces it."""
    with read_session(engine) as session:
        return {
            "catalogue": _newest(session, CATALOGUE, have_catalogue),
            "calendar": _newest(session, CALENDAR, have_calendar),
        }


def _newest(session: Session, kind: str, have: int) -> dict[str, Any] | None:
    row = session.exec(
        select(ReferenceVersion)
        .where(ReferenceVersion.kind == kind)
        .order_by(ReferenceVersion.version.desc())  # type: ignore[union-attr]
        .limit(1)
    ).first()
    if row is None or row.version == have:
        return None
    return {"version": row.version, **row.body}
