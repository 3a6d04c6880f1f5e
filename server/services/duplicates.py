"""The ward-wide duplicate check: open dossiers of a procedure for an ID term, in scope.

The device sends, per ward of its scope, the term of the ID number under that ward's key
(`app.domain.duplicates`); the server compares it with `dossier_fact.id_term`, which it made
from the number it received in the push. The answer names only codes and Vietnam days of
receipt, only in the caller's wards of the dossier family. Reasoning: docs/security.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.engine import Engine

from app.domain import entities as E
from app.domain.duplicates import KEY_HEX_CHARS, ward_key
from app.domain.status import ABANDONED, FINISHED
from server.core import sealing
from server.core.db import read_session, write_session
from server.models import AuditLog, DossierFact, utcnow
from server.scope import DOSSIER_FAMILY, Caller
from server.services import reports

MARKER = "index_id_terms"  # audit_log action, its detail the key id the terms were made with
MAX_ANSWERS = 20
CLOSED = sorted(int(s) for s in FINISHED | ABANDONED)


class StaleIndexKey(Exception):
    """The device's ward keys were made with a key this server no longer indexes with."""


@dataclass(frozen=True)
class Found:
    code: str
    received_day: str
    ward_code: str


def current_key_id() -> str:
    return sealing.process_ring().sealing_key().key_id


def ward_keys(caller: Caller, wards: list[str]) -> dict[str, str]:
    """The ward keys of the asked wards the caller may see dossiers in (others: left out, so
    the answer says nothing about wards beyond the scope)."""
    index_key = sealing.process_ring().sealing_key().index
    asked = wards or ([] if caller.all_wards else sorted(caller.wards))
    return {
        ward: ward_key(index_key, ward).hex()[:KEY_HEX_CHARS]
        for ward in dict.fromkeys(asked)
        if caller.may_access(ward, DOSSIER_FAMILY)
    }


def find_open(
    engine: Engine, caller: Caller, procedure_code: str, key_id: str, terms: dict[str, str]
) -> list[Found]:
    """Open dossiers of the procedure whose ID term matches, in the caller's wards only."""
    if key_id != current_key_id():
        raise StaleIndexKey(key_id)
    facts = DossierFact.__table__
    found: list[Found] = []
    with read_session(engine) as session:
        for ward, term in terms.items():
            if not caller.may_access(ward, DOSSIER_FAMILY):
                continue  # beyond the scope: as if nothing were there
            rows = session.execute(
                select(facts.c.code, facts.c.received_day)
                .where(
                    facts.c.ward_code == ward,
                    facts.c.id_term == term,
                    facts.c.procedure_code == procedure_code,
                    facts.c.status.not_in(CLOSED),
                )
                .order_by(facts.c.received_day, facts.c.code)
                .limit(MAX_ANSWERS)
            ).all()
            found += [Found(r.code or "", r.received_day or "", ward) for r in rows]
    return found[:MAX_ANSWERS]


def index_on_start(engine: Engine) -> int | None:
    """Make every dossier's ID term under the current data key, once per key (the first start
    after migration 0009, and the first after a key rotation); None when already done."""
    kid = current_key_id()
    with read_session(engine) as session:
        rows = (
            session.execute(select(AuditLog.detail).where(AuditLog.action == MARKER))
            .scalars()
            .all()
        )
    if any(isinstance(d, dict) and d.get("key_id") == kid for d in rows):
        return None
    count = reindex(engine)
    with write_session(engine) as session:
        session.add(AuditLog(at=utcnow(), action=MARKER, detail={"key_id": kid, "dossiers": count}))
    return count


def reindex(engine: Engine) -> int:
    """Recompute code and ID term of every dossier's fact row from its opened record."""
    with read_session(engine) as session:
        rows = session.execute(
            text("SELECT entity_id, ward_code, fields FROM record WHERE entity = :e"),
            {"e": E.DOSSIER},
        ).all()
    updates = [reports.fact_row(i, w, f) for i, w, f in rows]
    facts = DossierFact.__table__
    with write_session(engine) as session:
        for row in updates:
            session.execute(
                facts.update()
                .where(facts.c.entity_id == row["entity_id"])
                .values(code=row["code"], id_term=row["id_term"])
            )
    return len(updates)
