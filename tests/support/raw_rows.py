"""Rows written straight into the central database, bypassing push and its checks: what older
data, a bug or a hand edit of the database could have left there."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine


def insert_raw_record(
    engine: Engine,
    entity: str,
    ward: str,
    fields: str | dict[str, Any],
    *,
    entity_id: str | None = None,
    family: str = "dossier",
    version: int = 1,
    device_id: str | None = None,
) -> str:
    """One `record` row and its `change_log` row; `fields` as stored JSON text (which may be
    anything the engine's JSON column takes) or a dict to dump. Returns the entity id."""
    entity_id = entity_id or str(uuid.uuid4())
    body = fields if isinstance(fields, str) else json.dumps(fields, ensure_ascii=False)
    as_json = "CAST(:f AS json)" if engine.dialect.name == "postgresql" else ":f"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO record (entity, entity_id, ward_code, family, version, fields, "
                f"updated_at) VALUES (:e, :i, :w, :fam, :v, {as_json}, :at)"
            ),
            {"e": entity, "i": entity_id, "w": ward, "fam": family, "v": version, "f": body,
             "at": dt.datetime.now(dt.UTC)},
        )
        conn.execute(
            text(
                "INSERT INTO change_log (entity, entity_id, ward_code, family, version, "
                "device_id) VALUES (:e, :i, :w, :fam, :v, :d)"
            ),
            {"e": entity, "i": entity_id, "w": ward, "fam": family, "v": version, "d": device_id},
        )
    return entity_id


def stamped(values: dict[str, Any], hlc: str) -> dict[str, dict[str, Any]]:
    """Field values as the server stores them: {name: {value, hlc, changed_version}}."""
    return {k: {"value": v, "hlc": hlc, "changed_version": 1} for k, v in values.items()}


def edit_raw_fields(engine: Engine, entity_id: str, edit) -> None:
    """Rewrite one stored record's `fields` in place (`edit(fields) -> fields`), as a hand
    edit of the database would: no new version, no change-log row, no check."""
    as_json = "CAST(:f AS json)" if engine.dialect.name == "postgresql" else ":f"
    with engine.begin() as conn:
        stored = conn.execute(
            text("SELECT fields FROM record WHERE entity_id = :i"), {"i": entity_id}
        ).scalar_one()
        fields = json.loads(stored) if isinstance(stored, str) else stored
        conn.execute(
            text(f"UPDATE record SET fields = {as_json} WHERE entity_id = :i"),
            {"i": entity_id, "f": json.dumps(edit(fields), ensure_ascii=False)},
        )
