"""Generic sealed records: one row per synced entity, its terms, and its outbox mutation.

Every local write goes through `RecordStore.write_local[_many]`, which in the caller's single
transaction upserts the row (readable fields in clear JSON and query columns, sealed fields in
one AES-GCM envelope bound to (records, entity_id, local_rev)), refreshes its blind-index terms
and queues the mutation. Pulled changes go through `save` without a mutation.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection

from app.domain import entities as E
from app.domain.hlc import Clock
from app.domain.merge import Stamped
from app.storage.blind_index import BlindIndex
from app.storage.crypto import Sealer
from app.storage.errors import StorageError, TamperError
from app.storage.outbox import LocalChange, Outbox
from app.storage.tables import (
    ALL_QUERY_COLUMNS,
    PENDING,
    QUERY_COLUMNS,
    RECORDS,
    SEARCHABLE,
    TERM_ID,
)

_DUMPS = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class NotFound(StorageError, KeyError):
    """No record with that id on this device."""

    def __init__(self, entity: str, entity_id: str) -> None:
        self.entity, self.entity_id = entity, entity_id
        super().__init__(entity, entity_id)

    def __str__(self) -> str:
        return f"Không tìm thấy {self.entity} {self.entity_id} / {self.entity} not found"


@dataclass
class Record:
    entity: str
    entity_id: str
    ward_code: str
    fields: dict[str, Stamped] = field(default_factory=dict)
    version: int = 0  # server version last seen
    local_rev: int = 0  # bumped on every local save; part of the sealed envelope's binding
    sync_state: str = PENDING
    sync_reason: str | None = None

    def value(self, name: str, default: Any = None) -> Any:
        stamped = self.fields.get(name)
        return default if stamped is None or stamped.value is None else stamped.value

    def values(self) -> dict[str, Any]:
        return {name: s.value for name, s in self.fields.items()}


_SEALED = {entity: frozenset(E.sealed_fields(entity)) for entity in E.ENTITIES}
_READABLE = {entity: frozenset(specs) - _SEALED[entity] for entity, specs in E.ENTITIES.items()}


def _is_sealed(entity: str, name: str) -> bool:
    if name in _READABLE.get(entity, ()):
        return False
    if name in _SEALED.get(entity, ()):
        return True
    spec = E.field_spec(entity, name)
    return spec is None or spec.sealed  # unknown fields are sealed: safe by default


# Per entity, the field feeding each query column in ALL_QUERY_COLUMNS order ("" for none).
_QUERY_SOURCES = {
    entity: tuple(mapping.get(c, "") for c in ALL_QUERY_COLUMNS)
    for entity, mapping in QUERY_COLUMNS.items()
}
_NO_QUERY = ("",) * len(ALL_QUERY_COLUMNS)


def _digest(readable_json: str) -> str:
    """Binds the readable JSON to the sealed envelope: editing either is a TamperError."""
    return hashlib.sha256(readable_json.encode()).hexdigest()[:32]


RECORD_COLUMNS = (
    "entity, entity_id, ward_code, version, local_rev, readable, sealed, sync_state, sync_reason"
)
_UPSERT = (
    f"INSERT INTO records ({RECORD_COLUMNS}, {', '.join(ALL_QUERY_COLUMNS)}) "
    f"VALUES ({', '.join('?' * (9 + len(ALL_QUERY_COLUMNS)))}) "
    "ON CONFLICT(entity_id) DO UPDATE SET "
    + ", ".join(
        f"{c} = excluded.{c}"
        for c in ("ward_code", "version", "local_rev", "readable", "sealed", "sync_state",
                  "sync_reason", *ALL_QUERY_COLUMNS)
    )
)
SELECT_RECORD = f"SELECT {RECORD_COLUMNS} FROM records"


class RecordStore:
    """Seals, indexes and queues records. Stateless apart from keys and the clock."""

    def __init__(
        self, sealer: Sealer, index: BlindIndex, clock: Clock, device_id: str, outbox: Outbox
    ) -> None:
        self.sealer = sealer
        self.index = index
        self.clock = clock
        self.device_id = device_id
        self.outbox = outbox

    # ------------------------------------------------------------------ reading

    def open_row(self, row: Sequence[Any]) -> Record:
        """A row selected with SELECT_RECORD -> Record. TamperError if its envelope fails or the
        readable part no longer matches the digest sealed with it."""
        entity, entity_id, ward, version, local_rev, readable, sealed, state, reason = row[:9]
        try:
            secret = self.sealer.open_json(
                sealed, table=RECORDS, row_id=entity_id, version=local_rev
            )
        except TamperError as exc:
            raise TamperError(f"{entity} {entity_id}: {exc.detail}") from None
        if secret.get("r") != _digest(readable):
            raise TamperError(f"{entity} {entity_id}: readable fields were edited")
        clear = json.loads(readable)
        stamps = clear["h"]
        fields = {n: Stamped(v, stamps[i]) for n, (v, i) in clear["f"].items()}
        fields.update({n: Stamped(v, stamps[i]) for n, (v, i) in secret["f"].items()})
        return Record(entity, entity_id, ward, fields, version, local_rev, state, reason)

    def load(self, conn: Connection, entity_id: str) -> Record | None:
        row = conn.exec_driver_sql(f"{SELECT_RECORD} WHERE entity_id = ?", (entity_id,)).first()
        return self.open_row(row) if row else None

    def get(self, conn: Connection, entity: str, entity_id: str) -> Record:
        record = self.load(conn, entity_id)
        if record is None or record.entity != entity:
            raise NotFound(entity, entity_id)
        return record

    def select(self, conn: Connection, where: str, params: Sequence[Any] = ()) -> list[Record]:
        rows = conn.exec_driver_sql(f"{SELECT_RECORD} {where}", tuple(params)).all()
        return [self.open_row(r) for r in rows]

    # ------------------------------------------------------------------ writing

    def write_local(
        self,
        conn: Connection,
        entity: str,
        entity_id: str,
        ward_code: str,
        changes: dict[str, Any],
        base: Record | None = None,
    ) -> Record:
        return self.write_local_many(conn, [(entity, entity_id, ward_code, changes, base)])[0]

    def write_local_many(
        self,
        conn: Connection,
        items: Iterable[tuple[str, str, str, dict[str, Any], Record | None]],
        *,
        validate: bool = True,
    ) -> list[Record]:
        """Stamp each change set, save the records and queue one mutation per record.

        `validate=False` only for values already checked by a pydantic model with the same
        limits (bulk intake): the field check costs as much as the sealing."""
        saved: list[tuple[Record, Record | None]] = []
        changes_out: list[LocalChange] = []
        stamp = ""
        for entity, entity_id, ward_code, changes, base in items:
            if validate and (problems := E.validate_fields(entity, changes)):
                raise ValueError(f"{entity}: invalid fields {problems}")
            stamp = self.clock.now()
            record = Record(
                entity,
                entity_id,
                ward_code,
                dict(base.fields) if base else {},
                base.version if base else 0,
                base.local_rev if base else 0,
            )
            for name, value in changes.items():
                record.fields[name] = Stamped(value, stamp)
            saved.append((record, base))
            changes_out.append(
                LocalChange(entity, entity_id, ward_code, record.version, stamp, changes)
            )
        self.save_many(conn, saved)
        self.outbox.enqueue_many(conn, changes_out)
        if stamp:
            conn.exec_driver_sql("UPDATE meta SET value = ? WHERE key = 'clock'", (stamp,))
        return [record for record, _ in saved]

    def save(self, conn: Connection, record: Record, old: Record | None) -> None:
        self.save_many(conn, [(record, old)])

    def save_many(self, conn: Connection, items: list[tuple[Record, Record | None]]) -> None:
        """Upsert rows (bumping local_rev) and replace the terms of searchable fields."""
        if not items:
            return
        rows, old_terms, new_terms = [], [], []
        for record, old in items:
            record.local_rev += 1
            rows.append(self._row(record))
            if record.entity not in SEARCHABLE:
                continue
            now, before = self._terms(record), (self._terms(old) if old else set())
            old_terms.extend((term, kind, record.entity_id) for kind, term in before - now)
            new_terms.extend((term, kind, record.entity_id) for kind, term in now - before)
        conn.exec_driver_sql(_UPSERT, rows)
        if old_terms:
            conn.exec_driver_sql(
                "DELETE FROM terms WHERE term = ? AND kind = ? AND entity_id = ?", old_terms
            )
        if new_terms:
            conn.exec_driver_sql(
                "INSERT OR IGNORE INTO terms (term, kind, entity_id) VALUES (?, ?, ?)", new_terms
            )

    def _row(self, record: Record) -> tuple[Any, ...]:
        # Stamps are listed once per record and fields point at them: a new record's 17 fields
        # share one stamp, and each stamp is ~60 characters.
        stamps: dict[str, int] = {}
        readable: dict[str, list[Any]] = {}
        secret: dict[str, list[Any]] = {}
        for name, s in record.fields.items():
            index = stamps.setdefault(s.hlc, len(stamps))
            target = secret if _is_sealed(record.entity, name) else readable
            target[name] = [s.value, index]
        clear = _DUMPS({"h": list(stamps), "f": readable})
        sealed = self.sealer.seal(
            _DUMPS({"r": _digest(clear), "f": secret}).encode(),
            table=RECORDS,
            row_id=record.entity_id,
            version=record.local_rev,
        )
        fields = record.fields
        query = tuple(
            (s.value if (s := fields.get(name)) is not None else None) if name else None
            for name in _QUERY_SOURCES.get(record.entity, _NO_QUERY)
        )
        return (
            record.entity,
            record.entity_id,
            record.ward_code,
            record.version,
            record.local_rev,
            clear,
            sealed,
            record.sync_state,
            record.sync_reason,
            *query,
        )

    def _terms(self, record: Record) -> set[tuple[str, bytes]]:
        """(kind, term) pairs; terms are stored as 8 raw bytes, half the size of their hex."""
        out: set[tuple[str, bytes]] = set()
        for name, kind in SEARCHABLE.get(record.entity, {}).items():
            text = record.value(name)
            if not text:
                continue
            terms = self.index.id_terms(text) if kind == TERM_ID else self.index.terms(text)
            out.update((kind, bytes.fromhex(t)) for t in terms)
        return out
