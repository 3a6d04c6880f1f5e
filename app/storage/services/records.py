"""Generic sealed records: one row per synced entity, its terms, and its outbox mutation.

Every local write goes through `RecordStore.write_local[_many]` (or `insert_new_many` for bulk
intake), which in the caller's single transaction upserts the row, refreshes its blind-index
terms and queues the outbox entry. Pulled changes go through `save`, without an outbox entry.

A row keeps every field value with its clock stamp in ONE AES-GCM envelope bound to (records,
entity_id, local_rev): `{"h": [stamp, ...], "f": {field: value}, "s": {field: stamp index}}`,
each distinct stamp listed once and "s" naming only fields not stamped with the first one.
Readable fields (those `app.domain.entities` does not mark sealed) are also copied to query
columns for indexes; the envelope stays the source of truth (a column that disagrees with it
is a TamperError), so a write costs one JSON encode and one seal per record.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pydantic import ValidationError
from sqlalchemy.engine import Connection

from app.domain import entities as E
from app.domain.calendar import WorkingCalendar
from app.domain.hlc import Clock
from app.domain.merge import Stamped
from app.domain.models import UnreadableRecord
from app.domain.records import validate_record
from app.domain.text import digits, tokens
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
    TERM_CODE,
    TERM_ID,
    TERM_IDENTITY,
    UNREADABLE,
)

# What makes two dossiers the same one when neither has a code (order matters).
IDENTITY_FIELDS = ("procedure_code", "applicant_name", "applicant_id_number", "received_at",
                   "ward_code")
_DUMPS = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_DUMPS_ASCII = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode
TAMPERED = "tampered"


def _envelope_bytes(body: dict[str, Any]) -> bytes:
    """UTF-8 JSON; a value UTF-8 cannot carry (a lone surrogate a pulled record held) is kept
    as an escape instead, so such a record is stored and shown as unreadable, not lost."""
    try:
        return _DUMPS(body).encode()
    except UnicodeEncodeError:
        return _DUMPS_ASCII(body).encode()


def column_value(value: Any) -> Any:
    """What a query column holds for a field value: the value itself when SQLite can bind and
    compare it, else NULL (a list or object, NaN, an integer past 64 bits, text UTF-8 cannot
    carry: only records kept aside as unreadable have such values)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return None
        return value
    return None


def readable_only(
    rows: Iterable[Record | UnreadableRecord], convert: Callable[[Record], Any]
) -> list[Any]:
    """`convert` of each row a list can show; the others (kept aside as unreadable, failing to
    open or to convert) are left out, and counted in the sync summary's `unreadable`."""
    out = []
    for row in rows:
        if isinstance(row, UnreadableRecord) or row.sync_state == UNREADABLE:
            continue
        try:
            out.append(convert(row))
        except (ValidationError, TypeError, ValueError):
            continue
    return out


def unreadable(record: Record, reason: str | None = None) -> UnreadableRecord:
    """The line a list shows for a record it cannot show (`reason`: the stored one by default)."""
    code = record.value("code")
    return UnreadableRecord(
        entity=record.entity,
        id=record.entity_id,
        ward_code=record.ward_code,
        code=code if isinstance(code, str) else "",
        reason=reason or record.sync_reason or "invalid",
    )


class InvalidRecord(StorageError, ValueError):
    """The record as it would be after a change breaks a rule of `app.domain.records` (the
    server would refuse it with the same reason codes)."""

    def __init__(self, entity: str, reasons: list[str]) -> None:
        self.entity, self.reasons = entity, reasons
        super().__init__(entity, reasons)

    def __str__(self) -> str:
        codes = ", ".join(self.reasons)
        return f"Dữ liệu không hợp lệ ({codes}) / Invalid {self.entity} ({codes})"


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
    rowid: int = 0  # records.id, the key of its terms; 0 until saved

    def value(self, name: str, default: Any = None) -> Any:
        stamped = self.fields.get(name)
        return default if stamped is None or stamped.value is None else stamped.value

    def values(self) -> dict[str, Any]:
        return {name: s.value for name, s in self.fields.items()}


@dataclass(frozen=True, slots=True)
class EnvelopeValues:
    """What a record's envelope holds, as the outbox reads it (issue 13: no `Stamped` per
    field): field values, the distinct stamps, and the fields not stamped with the first."""

    ward_code: str
    values: dict[str, Any]
    stamps: list[str]
    which: dict[str, int]


# Per entity, the field feeding each query column in ALL_QUERY_COLUMNS order ("" for none).
_QUERY_SOURCES = {
    entity: tuple(mapping.get(c, "") for c in ALL_QUERY_COLUMNS)
    for entity, mapping in QUERY_COLUMNS.items()
}
_NO_QUERY = ("",) * len(ALL_QUERY_COLUMNS)


RECORD_COLUMNS = (
    "entity, entity_id, ward_code, version, local_rev, sealed, sync_state, sync_reason"
)
_UPSERT = (
    f"INSERT INTO records (id, {RECORD_COLUMNS}, {', '.join(ALL_QUERY_COLUMNS)}) "
    f"VALUES ({', '.join('?' * (9 + len(ALL_QUERY_COLUMNS)))}) "
    "ON CONFLICT(entity_id) DO UPDATE SET "
    + ", ".join(
        f"{c} = excluded.{c}"
        for c in ("ward_code", "version", "local_rev", "sealed", "sync_state", "sync_reason",
                  *ALL_QUERY_COLUMNS)
    )
)
SELECT_RECORD = f"SELECT {RECORD_COLUMNS}, id, {', '.join(ALL_QUERY_COLUMNS)} FROM records"


class RecordStore:
    """Seals, indexes and queues records. Stateless apart from keys and the clock."""

    def __init__(
        self,
        sealer: Sealer,
        index: BlindIndex,
        clock: Clock,
        device_id: str,
        outbox: Outbox,
        incarnation: str = "",
    ) -> None:
        self.sealer = sealer
        self.incarnation = incarnation  # this copy of the store's (a backup's copy has its own)
        self.index = index
        # Name terms are computed per folded token; names come from a small vocabulary, so a
        # per-token cache saves most HMACs on bulk intake. Memory only, dropped with the store.
        self._token_terms = lru_cache(maxsize=20_000)(self._compute_token_terms)
        # Folding is per word too: whitespace never joins or splits a token (see _tokens_of).
        self._word_tokens = lru_cache(maxsize=20_000)(lambda word: tuple(tokens(word)))
        self.clock = clock
        self.device_id = device_id
        self.outbox = outbox

    # ------------------------------------------------------------------ reading

    def open_row(self, row: Sequence[Any]) -> Record:
        """A row selected with SELECT_RECORD -> Record. TamperError if its envelope fails."""
        entity, entity_id, ward, version, local_rev, sealed, state, reason, rowid = row[:9]
        body = self._open_envelope(entity, entity_id, local_rev, sealed)
        stamps, which = body["h"], body.get("s", {})
        fields = {n: Stamped(v, stamps[which.get(n, 0)]) for n, v in body["f"].items()}
        if len(row) > 9:
            self._check_query_columns(entity, entity_id, body["f"], row[9:])
        return Record(entity, entity_id, ward, fields, version, local_rev, state, reason, rowid)

    def open_values(self, row: Sequence[Any]) -> EnvelopeValues:
        """A row selected with SELECT_RECORD -> its envelope's values, checked as `open_row`
        checks them (TamperError), without a `Stamped` per field."""
        entity, entity_id, ward, _, local_rev, sealed = row[:6]
        body = self._open_envelope(entity, entity_id, local_rev, sealed)
        self._check_query_columns(entity, entity_id, body["f"], row[9:])
        return EnvelopeValues(ward, body["f"], body["h"], body.get("s", {}))

    def _open_envelope(
        self, entity: str, entity_id: str, local_rev: int, sealed: bytes
    ) -> dict[str, Any]:
        try:
            return self.sealer.open_json(sealed, table=RECORDS, row_id=entity_id, version=local_rev)
        except TamperError as exc:
            raise TamperError(f"{entity} {entity_id}: {exc.detail}") from None

    @staticmethod
    def _check_query_columns(
        entity: str, entity_id: str, values: dict[str, Any], columns: Sequence[Any]
    ) -> None:
        """The clear copies must equal the sealed values: an edited column is tampering too."""
        for name, column in zip(_QUERY_SOURCES.get(entity, _NO_QUERY), columns, strict=True):
            if name and column_value(values.get(name)) != column:
                raise TamperError(f"{entity} {entity_id}: column for {name} was edited")

    def load(self, conn: Connection, entity_id: str) -> Record | None:
        row = conn.exec_driver_sql(f"{SELECT_RECORD} WHERE entity_id = ?", (entity_id,)).first()
        return self.open_row(row) if row else None

    def load_values(self, conn: Connection, entity_id: str) -> EnvelopeValues | None:
        """`load`, as `open_values`."""
        row = conn.exec_driver_sql(f"{SELECT_RECORD} WHERE entity_id = ?", (entity_id,)).first()
        return self.open_values(row) if row else None

    def load_many(
        self, conn: Connection, entity_ids: list[str]
    ) -> dict[str, Record | TamperError | None]:
        """`load` of many records in one query: each id's record, None when there is none, or
        the TamperError its envelope raised (kept for the caller to raise when it needs it)."""
        return self._open_many(conn, entity_ids, self.open_row)

    def load_values_many(
        self, conn: Connection, entity_ids: list[str]
    ) -> dict[str, EnvelopeValues | TamperError | None]:
        """`load_many`, as `open_values`."""
        return self._open_many(conn, entity_ids, self.open_values)

    @staticmethod
    def _open_many(
        conn: Connection, entity_ids: list[str], open_one: Callable[[Sequence[Any]], Any]
    ) -> dict[str, Any]:
        marks = ",".join("?" * len(entity_ids))
        rows = conn.exec_driver_sql(
            f"{SELECT_RECORD} WHERE entity_id IN ({marks})", tuple(entity_ids)
        ).all()
        out: dict[str, Any] = dict.fromkeys(entity_ids)
        for row in rows:
            try:
                out[row[1]] = open_one(row)
            except TamperError as exc:
                out[row[1]] = exc
        return out

    def get(self, conn: Connection, entity: str, entity_id: str) -> Record:
        record = self.load(conn, entity_id)
        if record is None or record.entity != entity:
            raise NotFound(entity, entity_id)
        return record

    def select(self, conn: Connection, where: str, params: Sequence[Any] = ()) -> list[Record]:
        rows = conn.exec_driver_sql(f"{SELECT_RECORD} {where}", tuple(params)).all()
        return [self.open_row(r) for r in rows]

    def select_each(
        self, conn: Connection, where: str, params: Sequence[Any] = ()
    ) -> list[Record | UnreadableRecord]:
        """`select` for lists: a row that fails to open (tampering) is one unreadable line
        instead of failing the whole list; opening that record directly still raises."""
        rows = conn.exec_driver_sql(f"{SELECT_RECORD} {where}", tuple(params)).all()
        out: list[Record | UnreadableRecord] = []
        for row in rows:
            try:
                out.append(self.open_row(row))
            except TamperError:
                out.append(UnreadableRecord(entity=row[0], id=row[1], ward_code=row[2],
                                            reason=TAMPERED))
        return out

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
        calendar: WorkingCalendar | None = None,
    ) -> list[Record]:
        """Stamp each change set, save the records and queue one mutation per record.

        Text is stored normalised, and each record as it will be is checked by the domain's
        `validate_record` (the server's own check, `calendar` being the device's working
        calendar), so nothing the server would refuse is queued. `validate=False` only for
        values already checked that way (bulk intake)."""
        saved: list[tuple[Record, Record | None]] = []
        changes_out: list[LocalChange] = []
        stamp = ""
        for entity, entity_id, ward_code, raw, base in items:
            changes = {name: E.normalise_value(value) for name, value in raw.items()}
            if validate:
                before = base.values() if base else None
                problems = E.validate_fields(entity, changes) or validate_record(
                    entity,
                    {**(before or {}), **changes},
                    before,
                    calendar=calendar,
                    checked=changes,
                )
                if problems:
                    raise InvalidRecord(entity, problems)
            stamp = self.clock.now()
            record = Record(
                entity,
                entity_id,
                ward_code,
                dict(base.fields) if base else {},
                base.version if base else 0,
                base.local_rev if base else 0,
                rowid=base.rowid if base else 0,
            )
            if base is not None:
                self.outbox.freeze_before_overwrite(conn, base, changes)
            for name, value in changes.items():
                record.fields[name] = Stamped(value, stamp)
            saved.append((record, base))
            changes_out.append(
                LocalChange(
                    entity, entity_id, ward_code, record.version, stamp, list(changes),
                    incarnation=self.incarnation,
                )
            )
        self.save_many(conn, saved)
        self.outbox.enqueue_many(conn, changes_out)
        if stamp:
            conn.exec_driver_sql("UPDATE meta SET value = ? WHERE key = 'clock'", (stamp,))
        return [record for record, _ in saved]

    def insert_new_many(
        self, conn: Connection, groups: list[list[tuple[str, str, str, dict[str, Any]]]]
    ) -> None:
        """Bulk intake of brand-new records (already validated by a model with the same limits):
        the same rows, terms and outbox entries as `write_local_many`, built without the
        per-field objects an update needs. Each group is one logical write (a dossier and its
        first history event) and shares one clock stamp."""
        if not groups:
            return
        rows, terms, changes_out = [], [], []
        stamp = ""
        rowid = self._next_rowid(conn) - 1
        items = [(e, i, w, v, n) for group in groups for n, (e, i, w, v) in enumerate(group)]
        for entity, entity_id, ward_code, values, position in items:
            if position == 0:
                stamp = self.clock.now()
            rowid += 1
            rows.append(self._seal_row(rowid, entity, entity_id, ward_code, 0, 1,
                                       {"h": [stamp], "f": values}, PENDING, None, values.get))
            if entity in SEARCHABLE:
                terms.extend((t, k, rowid) for k, t in self._terms_of(entity, values.get))
            changes_out.append(
                LocalChange(
                    entity, entity_id, ward_code, 0, stamp, list(values),
                    incarnation=self.incarnation,
                )
            )
        conn.exec_driver_sql(_UPSERT, rows)
        if terms:
            conn.exec_driver_sql(
                "INSERT OR IGNORE INTO terms (term, kind, rid) VALUES (?, ?, ?)", terms
            )
        self.outbox.enqueue_many(conn, changes_out)
        conn.exec_driver_sql("UPDATE meta SET value = ? WHERE key = 'clock'", (stamp,))

    def save(self, conn: Connection, record: Record, old: Record | None) -> None:
        self.save_many(conn, [(record, old)])

    def save_many(self, conn: Connection, items: list[tuple[Record, Record | None]]) -> None:
        """Upsert rows (bumping local_rev) and replace the terms of searchable fields."""
        if not items:
            return
        rows, old_terms, new_terms = [], [], []
        next_rowid = self._next_rowid(conn)
        for record, old in items:
            record.local_rev += 1
            if not record.rowid:
                record.rowid = old.rowid if old else next_rowid
                next_rowid += record.rowid == next_rowid
            rows.append(self._row(record))
            if record.entity not in SEARCHABLE:
                continue
            now, before = self._terms(record), (self._terms(old) if old else set())
            old_terms.extend((term, kind, record.rowid) for kind, term in before - now)
            new_terms.extend((term, kind, record.rowid) for kind, term in now - before)
        conn.exec_driver_sql(_UPSERT, rows)
        if old_terms:
            conn.exec_driver_sql(
                "DELETE FROM terms WHERE term = ? AND kind = ? AND rid = ?", old_terms
            )
        if new_terms:
            conn.exec_driver_sql(
                "INSERT OR IGNORE INTO terms (term, kind, rid) VALUES (?, ?, ?)", new_terms
            )

    def _row(self, record: Record) -> tuple[Any, ...]:
        stamps: dict[str, int] = {}
        values: dict[str, Any] = {}
        which: dict[str, int] = {}
        for name, s in record.fields.items():
            values[name] = s.value
            if index := stamps.setdefault(s.hlc, len(stamps)):
                which[name] = index
        body = {"h": list(stamps), "f": values, "s": which} if which else {
            "h": list(stamps), "f": values}
        r = record
        # values.get is r.value (None for a missing field or a None value), without a method
        # call per query column (issue 13: the pull's CPU)
        return self._seal_row(
            r.rowid, r.entity, r.entity_id, r.ward_code, r.version, r.local_rev, body,
            r.sync_state, r.sync_reason, values.get,
        )

    def _seal_row(
        self,
        rowid: int,
        entity: str,
        entity_id: str,
        ward_code: str,
        version: int,
        local_rev: int,
        body: dict[str, Any],
        sync_state: str,
        sync_reason: str | None,
        value: Callable[[str], Any],
    ) -> tuple[Any, ...]:
        sealed = self.sealer.seal(
            _envelope_bytes(body),
            table=RECORDS,
            row_id=entity_id,
            version=local_rev,
        )
        # "" (no source field) is never a field name, so value("") is None
        query = tuple(column_value(value(n)) for n in _QUERY_SOURCES.get(entity, _NO_QUERY))
        return (rowid, entity, entity_id, ward_code, version, local_rev, sealed, sync_state,
                sync_reason, *query)

    @staticmethod
    def _next_rowid(conn: Connection) -> int:
        """Ids are handed out inside the write transaction (BEGIN IMMEDIATE holds the lock),
        so terms can point at a record's integer id in the same batch."""
        return conn.exec_driver_sql("SELECT coalesce(max(id), 0) + 1 FROM records").scalar_one()

    def _compute_token_terms(self, token: str) -> tuple[bytes, ...]:
        """The terms a search can ask for (`BlindIndex.query_terms` of each prefix): the
        whole-word term of a longer token is never queried, so it is not stored."""
        if len(token) < 2:
            return tuple(bytes.fromhex(t) for t in self.index.terms(token))
        prefixes = (token[:end] for end in range(2, len(token) + 1))
        return tuple(bytes.fromhex(t) for p in prefixes for t in self.index.query_terms(p))

    def _terms(self, record: Record) -> set[tuple[str, bytes]]:
        return self._terms_of(record.entity, record.value)

    def _terms_of(self, entity: str, value: Callable[[str], Any]) -> set[tuple[str, bytes]]:
        """(kind, term) pairs; terms are stored as 8 raw bytes, half the size of their hex."""
        out: set[tuple[str, bytes]] = set()
        name_tokens: list[str] = []
        id_digits = ""
        for name, kind in SEARCHABLE.get(entity, {}).items():
            text = value(name)
            if not text:
                continue
            if kind == TERM_ID:
                number = digits(text)
                if name == "applicant_id_number":
                    id_digits = number
                out.update((kind, bytes.fromhex(t)) for t in self.index.digit_id_terms(number))
            else:
                words = self._tokens_of(text)
                if name == "applicant_name":
                    name_tokens = words
                for token in words:
                    out.update((kind, t) for t in self._token_terms(token))
        if entity == E.DOSSIER:
            out.add((TERM_IDENTITY, self.identity_term(value, name_tokens, id_digits)))
            out.update(self._code_terms(value("code")))
        return out

    def _code_terms(self, code: Any) -> set[tuple[str, bytes]]:
        return {(TERM_CODE, bytes.fromhex(t)) for t in self.index.code_terms(str(code or ""))}

    def _tokens_of(self, text: str) -> list[str]:
        """`tokens(text)`, folded a whitespace-separated word at a time through a cache (a
        commune's names share few words). Equal to `tokens(text)`: folding never carries
        across whitespace, and whitespace always ends a token."""
        out: dict[str, None] = {}
        for word in text.split():
            out.update(dict.fromkeys(self._word_tokens(word)))
        return list(out)

    def backfill_identity_terms(self, conn: Connection) -> int:
        """Give dossiers saved before identity terms existed theirs (once per store)."""
        done = conn.exec_driver_sql("SELECT 1 FROM meta WHERE key = 'identity_terms'").first()
        if done:
            return 0
        rows = [
            (self.identity_term(r.value), TERM_IDENTITY, r.rowid)
            for r in self.select(conn, "WHERE entity = ?", (E.DOSSIER,))
        ]
        if rows:
            conn.exec_driver_sql(
                "INSERT OR IGNORE INTO terms (term, kind, rid) VALUES (?, ?, ?)", rows
            )
        conn.exec_driver_sql("INSERT INTO meta (key, value) VALUES ('identity_terms', '1')")
        return len(rows)

    def backfill_code_terms(self, conn: Connection) -> int:
        """Give dossiers saved before code terms existed theirs (once per store). The code is a
        readable column, so no record is opened."""
        done = conn.exec_driver_sql("SELECT 1 FROM meta WHERE key = 'code_terms'").first()
        if done:
            return 0
        found = conn.exec_driver_sql(
            "SELECT id, code FROM records WHERE entity = ? AND code IS NOT NULL", (E.DOSSIER,)
        ).all()
        rows = [(term, kind, rid) for rid, code in found for kind, term in self._code_terms(code)]
        if rows:
            conn.exec_driver_sql(
                "INSERT OR IGNORE INTO terms (term, kind, rid) VALUES (?, ?, ?)", rows
            )
        conn.exec_driver_sql("INSERT INTO meta (key, value) VALUES ('code_terms', '1')")
        return len(found)

    def identity_term(
        self,
        value: Callable[[str], Any],
        name_tokens: list[str] | None = None,
        id_digits: str | None = None,
    ) -> bytes:
        """The blind term of a dossier's identity, from its field values (`value(name)`);
        `name_tokens` and `id_digits` as `_terms_of` already computed them, if it did."""
        return bytes.fromhex(self.index.identity_term(
            *(str(value(name) or "") for name in IDENTITY_FIELDS),
            name_tokens=name_tokens, id_digits=id_digits or None,
        ))
