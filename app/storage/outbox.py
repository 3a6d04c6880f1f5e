"""The transactional outbox: mutations waiting to be pushed, sealed because they carry
personal values. Rows are written by the same transaction as the change they carry."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection

from app.domain.mutations import FieldValue, Mutation
from app.storage.crypto import Sealer
from app.storage.tables import OUTBOX, new_id

_DUMPS = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


@dataclass
class LocalChange:
    """One local write: the values it set, all stamped with the same clock reading."""

    entity: str
    entity_id: str
    ward_code: str
    base_version: int
    hlc: str
    values: dict[str, Any]
    mutation_id: str = field(default_factory=new_id)


class Outbox:
    """Rows hold a compact sealed body (one stamp for all fields of a write); `pending()`
    rebuilds the wire `Mutation`."""

    def __init__(self, sealer: Sealer, device_id: str) -> None:
        self.sealer = sealer
        self.device_id = device_id

    def enqueue_many(self, conn: Connection, changes: list[LocalChange]) -> list[str]:
        rows = []
        for c in changes:
            body = _DUMPS(
                {"e": c.entity, "i": c.entity_id, "w": c.ward_code, "b": c.base_version,
                 "h": c.hlc, "v": c.values}
            ).encode()
            sealed = self.sealer.seal(body, table=OUTBOX, row_id=c.mutation_id, version=0)
            rows.append((c.mutation_id, c.entity, c.entity_id, len(body), sealed))
        if rows:
            conn.exec_driver_sql(
                "INSERT INTO outbox (mutation_id, entity, entity_id, size, sealed) "
                "VALUES (?, ?, ?, ?, ?)",
                rows,
            )
        return [c.mutation_id for c in changes]

    def _mutation(self, mutation_id: str, body: bytes) -> Mutation:
        data = json.loads(body)
        return Mutation(
            mutation_id=mutation_id,
            device_id=self.device_id,
            entity=data["e"],
            entity_id=data["i"],
            ward_code=data["w"],
            base_version=data["b"],
            fields={n: FieldValue(value=v, hlc=data["h"]) for n, v in data["v"].items()},
        )

    def pending(self, conn: Connection, max_bytes: int) -> list[Mutation]:
        """Oldest first, as many as fit in `max_bytes` of JSON (always at least one)."""
        out: list[Mutation] = []
        total = 0
        rows = conn.exec_driver_sql(
            "SELECT mutation_id, size, sealed FROM outbox ORDER BY id"
        )
        for mutation_id, size, sealed in rows:
            if out and total + size > max_bytes:
                break
            body = self.sealer.open(sealed, table=OUTBOX, row_id=mutation_id, version=0)
            out.append(self._mutation(mutation_id, body))
            total += size
        return out

    def entity_of(self, conn: Connection, mutation_ids: list[str]) -> dict[str, tuple[str, str]]:
        out: dict[str, tuple[str, str]] = {}
        for mid in mutation_ids:
            row = conn.exec_driver_sql(
                "SELECT entity, entity_id FROM outbox WHERE mutation_id = ?", (mid,)
            ).first()
            if row:
                out[mid] = (row[0], row[1])
        return out

    def drop(self, conn: Connection, mutation_ids: list[str]) -> None:
        conn.exec_driver_sql(
            "DELETE FROM outbox WHERE mutation_id = ?", [(m,) for m in mutation_ids]
        )

    def has_pending(self, conn: Connection, entity_id: str) -> bool:
        row = conn.exec_driver_sql(
            "SELECT 1 FROM outbox WHERE entity_id = ? LIMIT 1", (entity_id,)
        ).first()
        return row is not None

    def count(self, conn: Connection) -> int:
        return conn.exec_driver_sql("SELECT count(*) FROM outbox").scalar_one()
