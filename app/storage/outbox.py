"""The transactional outbox: mutations waiting to be pushed, sealed because they carry
personal values. Rows are written by the same transaction as the change they carry."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.engine import Connection

from app.domain.mutations import Mutation, new_mutation_id
from app.storage.crypto import Sealer
from app.storage.tables import OUTBOX

_DUMPS = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class Outbox:
    def __init__(self, sealer: Sealer) -> None:
        self.sealer = sealer

    def enqueue_many(self, conn: Connection, mutations: list[dict[str, Any]]) -> list[str]:
        """Queue wire-shaped mutation dicts; fills and returns their mutation ids."""
        rows = []
        for m in mutations:
            m["mutation_id"] = m.get("mutation_id") or new_mutation_id()
            body = _DUMPS(m).encode()
            sealed = self.sealer.seal(body, table=OUTBOX, row_id=m["mutation_id"], version=0)
            rows.append((m["mutation_id"], m["entity"], m["entity_id"], len(body), sealed))
        if rows:
            conn.exec_driver_sql(
                "INSERT INTO outbox (mutation_id, entity, entity_id, size, sealed) "
                "VALUES (?, ?, ?, ?, ?)",
                rows,
            )
        return [m["mutation_id"] for m in mutations]

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
            out.append(Mutation.model_validate_json(body))
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
