"""The transactional outbox: which record fields still have to reach the server.

A row is written by the same transaction as the change it announces, so nothing is ever saved
but not queued. A fresh row names the record and the fields the change set, not their values:
while those fields are unchanged, the record's sealed envelope holds exactly the values (and
clock stamps) the change wrote, so intake does not write personal values twice. The moment a
later write or a pulled change is about to overwrite a field that a pending row names, the row
is frozen: the values it announced are copied, sealed, into its `sealed` column (same
transaction). So every mutation carries the values as of its own write, and the server sees a
dossier's status moves in order (2, then 4), never a creation with a later status.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import ValidationError
from sqlalchemy.engine import Connection

from app.domain.mutations import Mutation, derived_mutation_id
from app.storage.crypto import Sealer
from app.storage.tables import OUTBOX, in_parts

_NAME = re.compile(r"^[a-z0-9_.-]+$")  # field names, joined with "," in the `fields` column
PREFETCH = 50  # records read in one query while a batch is read from the outbox


@lru_cache(maxsize=512)
def _fields_column(names: tuple[str, ...]) -> str:
    """The `fields` column for these names, checked once per distinct set (bulk intake writes
    the same few sets thousands of times)."""
    bad = [n for n in names if not _NAME.match(n)]
    if bad:
        raise ValueError(f"field names not storable in the outbox: {bad}")
    return ",".join(names)


@dataclass
class LocalChange:
    """One local write: the record it touched and the fields it set."""

    entity: str
    entity_id: str
    ward_code: str
    base_version: int
    hlc: str
    fields: list[str]
    mutation_id: str = ""  # "" makes the derived id (a push may then leave it out)
    incarnation: str = ""  # the store's (see derived_mutation_id)

    def __post_init__(self) -> None:
        if not self.mutation_id:
            self.mutation_id = derived_mutation_id(
                self.entity, self.entity_id, self.base_version, self.hlc, self.fields,
                self.incarnation,
            )


@dataclass(frozen=True)
class RefusedRow:
    """An outbox row that cannot become a valid `Mutation`, and why (one line)."""

    mutation_id: str
    entity_id: str
    reason: str


class Outbox:
    def __init__(self, device_id: str, sealer: Sealer) -> None:
        self.device_id = device_id
        self.sealer = sealer

    def freeze_before_overwrite(self, conn: Connection, record: Any, names: Iterable[str]) -> None:
        """Snapshot pending rows of `record` that name any of `names` (call BEFORE the record's
        new values are saved, with the record as it still is)."""
        touched = set(names)
        rows = conn.exec_driver_sql(
            "SELECT id, mutation_id, fields FROM outbox WHERE entity_id = ? AND sealed IS NULL",
            (record.entity_id,),
        ).all()
        for row_id, mutation_id, fields in rows:
            listed = fields.split(",")
            if touched.isdisjoint(listed):
                continue
            snapshot = {
                n: [record.fields[n].value, record.fields[n].hlc]
                for n in listed
                if n in record.fields
            }
            sealed = self.sealer.seal_json(snapshot, table=OUTBOX, row_id=mutation_id, version=0)
            conn.exec_driver_sql("UPDATE outbox SET sealed = ? WHERE id = ?", (sealed, row_id))

    def enqueue_many(self, conn: Connection, changes: list[LocalChange]) -> list[str]:
        rows = [
            (c.mutation_id, c.entity, c.entity_id, c.base_version, c.hlc,
             _fields_column(tuple(c.fields)))
            for c in changes
        ]
        if rows:
            conn.exec_driver_sql(
                "INSERT INTO outbox (mutation_id, entity, entity_id, base_version, hlc, fields) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
        return [c.mutation_id for c in changes]

    def pending(
        self,
        conn: Connection,
        max_bytes: int,
        load: Callable[[Connection, str], Any],
        refused: list[RefusedRow] | None = None,
        skip: Collection[str] = (),
        load_many: Callable[[Connection, list[str]], dict[str, Any]] | None = None,
        max_rows: int | None = None,
    ) -> list[Mutation]:
        """Oldest first, as many as fit in `max_bytes` of JSON (always at least one) and, when
        given, no more than `max_rows`, leaving out the rows named in `skip` (a push in flight).
        The rows of a record that has a row in `skip` ahead of them are passed over (not read):
        a record's later rows wait for the answer to its earlier ones (its order), while the
        rows of other records behind them may go.

        `load(conn, entity_id)` returns the record's envelope values (`EnvelopeValues`, raising
        TamperError if it was altered); `load_many(conn, ids)` the same for many ids ({id:
        values, None or the TamperError}).
        Rows that make no valid mutation are skipped and added to `refused` when it is given
        (else the first one raises): one such row must not stop the rows behind it."""
        out: list[Mutation] = []
        total = 0
        cache: dict[str, Any] = {}
        upcoming: list[str] = []  # the page's records still to come, rows in `skip` left out
        at = [0]

        def see_page(page: list) -> None:
            upcoming[:] = [r[3] for r in page if r[1] not in skip]
            at[0] = 0

        held: set[str] = set()  # records with a row in `skip` seen so far
        for row in self._rows(conn, on_page=see_page):
            if max_rows is not None and len(out) >= max_rows:
                break  # the rows past the batch are not read (issue 13: the audits' CPU)
            mutation_id, entity_id = row[0], row[2]
            if mutation_id in skip:
                held.add(entity_id)
                continue
            at[0] += 1
            if entity_id in held:
                continue  # its earlier row is in flight (an audit's answers span batches)
            if entity_id not in cache and load_many is not None:
                # The records of the next rows in one query (issue 13: CPU), no more than a
                # batch may use: the rest of a page is often left for the next batch.
                ahead = upcoming[at[0] - 1 : at[0] - 1 + PREFETCH]
                wanted = list(dict.fromkeys(i for i in ahead if i not in cache))
                cache.update(load_many(conn, wanted))
            if entity_id not in cache:
                cache[entity_id] = load(conn, entity_id)
            if isinstance(cache[entity_id], Exception):
                raise cache[entity_id]  # a tampered record fails the read, as one load does
            try:
                mutation = self._mutation(row, cache[entity_id])
            except (ValidationError, _Unreadable) as exc:
                if refused is None:
                    raise
                refused.append(RefusedRow(mutation_id, entity_id, _refusal(exc)))
                continue
            size = len(mutation.model_dump_json())
            if out and total + size > max_bytes:
                break
            out.append(mutation)
            total += size
        return out

    def _mutation(self, row: tuple, record: Any) -> Mutation:
        mutation_id, entity, entity_id, base_version, names, sealed = row
        if record is None:
            raise _Unreadable("its record is missing")
        if sealed is not None:
            frozen = self.sealer.open_json(sealed, table=OUTBOX, row_id=mutation_id, version=0)
            if not isinstance(frozen, dict) or not all(
                isinstance(pair, list) and len(pair) == 2 for pair in frozen.values()
            ):
                raise _Unreadable("its sealed values are not [value, stamp] pairs")
            fields = {n: {"value": v, "hlc": h} for n, (v, h) in frozen.items()}
        else:
            have, stamps, which = record.values, record.stamps, record.which
            fields = {
                n: {"value": have[n], "hlc": stamps[which.get(n, 0)]}
                for n in names.split(",")
                if n in have
            }
        # One validation of the whole mutation (issue 13: a model built per field cost a third
        # more CPU); the same checks, a bad stamp now located as fields.<name>.hlc.
        return Mutation.model_validate(
            {
                "mutation_id": mutation_id,
                "device_id": self.device_id,
                "entity": entity,
                "entity_id": entity_id,
                "ward_code": record.ward_code,
                "base_version": base_version,
                "fields": fields,
            }
        )

    def take_out(self, conn: Connection, mutation_id: str) -> dict[str, Any] | None:
        """Remove one row from the queue and return it as it was, to be kept elsewhere: its
        sealed values stay sealed (base64) with their binding, so they open as before."""
        row = conn.exec_driver_sql(
            "SELECT mutation_id, entity, entity_id, base_version, hlc, fields, sealed "
            "FROM outbox WHERE mutation_id = ?",
            (mutation_id,),
        ).first()
        if row is None:
            return None
        self.drop(conn, [mutation_id])
        keys = ("mutation_id", "entity", "entity_id", "base_version", "hlc", "fields")
        kept: dict[str, Any] = dict(zip(keys, row[:6], strict=True))
        kept["sealed"] = base64.b64encode(row[6]).decode() if row[6] is not None else None
        return kept

    @staticmethod
    def _rows(conn: Connection, page: int = 200, on_page: Callable[[list], None] | None = None):
        """Outbox rows oldest first, read a page at a time (the outbox may hold 100k rows);
        `on_page` sees each page before its rows are yielded."""
        last = 0
        while True:
            rows = conn.exec_driver_sql(
                "SELECT id, mutation_id, entity, entity_id, base_version, fields, sealed "
                "FROM outbox "
                "WHERE id > ? ORDER BY id LIMIT ?",
                (last, page),
            ).all()
            if on_page is not None and rows:
                on_page(rows)
            for row in rows:
                yield row[1:]
            if len(rows) < page:
                return
            last = rows[-1][0]

    def entity_of(self, conn: Connection, mutation_ids: list[str]) -> dict[str, tuple[str, str]]:
        out: dict[str, tuple[str, str]] = {}
        for part in in_parts(mutation_ids):
            marks = ",".join("?" * len(part))
            for mid, entity, entity_id in conn.exec_driver_sql(
                f"SELECT mutation_id, entity, entity_id FROM outbox WHERE mutation_id IN ({marks})",
                tuple(part),
            ):
                out[mid] = (entity, entity_id)
        return out

    def drop(self, conn: Connection, mutation_ids: list[str]) -> None:
        if mutation_ids:
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


class _Unreadable(ValueError):
    """An outbox row that makes no mutation for a reason the wire schema does not check."""


MAX_REASON = 300


def _refusal(exc: Exception) -> str:
    """Why a row was refused, in the form a server rejection takes: one printable line."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        text = f"refused_locally:{where}: {first.get('msg', '')}"
    else:
        text = f"refused_locally:{exc}"
    return "".join(c if c.isprintable() else "?" for c in text)[:MAX_REASON]
