"""The shape of the local database: tables, and which readable fields get a query column.

The schema itself is built by the ordered migrations in `migrations.py`; this module names
what the rest of the storage code relies on. Only fields that `app.domain.entities` marks
readable (no personal data, no free text) ever get a column of their own.

- `records`: every synced entity (dossiers, their events, audits, comments, attachments,
  conflicts). `sealed` is one AES-GCM envelope of all field values and their clock stamps, bound
  to (`records`, entity_id, local_rev); editing or swapping it is a TamperError. Query columns
  repeat readable values (never a sealed field's) for indexes.
- `terms`: blind-index terms (keyed HMAC, 8 bytes) per record (`rid` = records.id): kind `n`
  name, `i` ID number, `k` a dossier's import identity.
- `outbox`: mutations not yet pushed: record, fields set, base version, clock stamp. No
  values: those are read from the sealed record at push time (see `outbox.py`).
- `sync_state`: the pull cursor and when sync last finished.
- `settings`: sealed key/value pairs.
- `blobs`: attachments stored as sealed files, and whether the server has them yet.
- `meta`: device id, clock high-water mark, key check; `schema_version`: the migration level.
"""

from __future__ import annotations

import os
import threading
import time

from app.domain import entities as E

RECORDS = "records"
OUTBOX = "outbox"
SETTINGS = "settings"
META_CHECK = "meta"

# Query columns of `records` and, per entity, which readable field fills each.
QUERY_COLUMNS: dict[str, dict[str, str]] = {
    E.DOSSIER: {
        "code": "code",
        "procedure_code": "procedure_code",
        "status": "status",
        "channel": "channel",
        "received_at": "received_at",
        "appointment_date": "appointment_date",
        "finished_at": "finished_at",
        "returned_at": "returned_at",
    },
    E.DOSSIER_EVENT: {"parent_id": "dossier_id", "received_at": "at"},
    E.AUDIT: {"state": "review_state", "received_at": "started_at"},
    E.AUDIT_COMMENT: {"parent_id": "audit_id", "received_at": "at"},
    E.ATTACHMENT: {"parent_id": "owner_id", "code": "sha256"},
    E.CONFLICT: {"parent_id": "entity_id", "state": "state", "code": "field"},
}

def _check_query_columns_name_nobody() -> None:
    for entity, mapping in QUERY_COLUMNS.items():
        leaked = E.sealed_fields(entity, list(mapping.values()))
        if leaked:
            raise AssertionError(f"query columns of {entity} would hold sealed fields {leaked}")


_check_query_columns_name_nobody()

ALL_QUERY_COLUMNS = (
    "parent_id",
    "code",
    "procedure_code",
    "status",
    "channel",
    "received_at",
    "appointment_date",
    "finished_at",
    "returned_at",
    "state",
)

# Blind-index kinds: which sealed field feeds which kind of term.
TERM_NAME = "n"
TERM_ID = "i"
TERM_CODE = "c"  # a dossier's code, whole and its tails (see BlindIndex.code_terms)
TERM_IDENTITY = "k"  # one per dossier: its import identity (see BlindIndex.identity_term)
# Addresses are deliberately not indexed: nothing searches them, and every stored term is
# both insert cost and leakage (see app/storage/blind_index.py).
SEARCHABLE: dict[str, dict[str, str]] = {
    E.DOSSIER: {
        "applicant_name": TERM_NAME,
        "applicant_id_number": TERM_ID,
    },
}

# Per-record sync states.
PENDING = "pending"
SYNCED = "synced"
REJECTED = "rejected"
CONFLICT = "conflict"
# A pulled record this device cannot read (see app.domain.readable): stored, sealed, shown as
# unreadable; the next pull of a fixed version replaces it.
UNREADABLE = "unreadable"


class _IdSource:
    """Record ids made on this device: UUIDv7 layout, 48 bits of milliseconds, then a 12-bit
    counter within the millisecond, then a 62-bit node drawn at random once per process (and
    again in a forked child).

    Unique without any stored state: within a process (ms, counter) only ever grows (a clock
    that steps back keeps counting on from the last id's millisecond; a full counter borrows
    the next millisecond), and two processes (two devices, two stores, a store and its
    restored backup opened after a reset clock) differ by their node, 62 random bits. A
    stored node would need a stored high-water mark as well, or a clock reset would repeat
    ids. The wire gains: ids of one batch share their node and mostly their milliseconds, which
    a compressor sends once, where 10 random bytes per id cost about as much as the content
    (docs/benchmarks.md, issue 13)."""

    COUNTER = 0x1000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.renew()

    def renew(self) -> None:
        node = int.from_bytes(os.urandom(8), "big") & (2**62 - 1)
        self.node = f"{0x8000 | (node >> 48):04x}-{node & (2**48 - 1):012x}"
        self.ms = 0
        self.counter = 0

    def take(self, count: int) -> list[str]:
        with self._lock:
            now = time.time_ns() // 1_000_000
            if now > self.ms:
                self.ms, self.counter = now, 0
            out = []
            for _ in range(count):
                if self.counter == self.COUNTER:
                    self.ms, self.counter = self.ms + 1, 0
                ms = f"{self.ms:012x}"
                out.append(f"{ms[:8]}-{ms[8:]}-7{self.counter:03x}-{self.node}")
                self.counter += 1
            return out


_IDS = _IdSource()
os.register_at_fork(after_in_child=_IDS.renew)


SQL_VARIABLES = 500  # ids bound in one `IN (...)`, well within SQLite's bound on variables


def in_parts(ids: list[str]) -> list[list[str]]:
    """`ids` in parts of at most `SQL_VARIABLES`, one `IN (...)` query each."""
    return [ids[start : start + SQL_VARIABLES] for start in range(0, len(ids), SQL_VARIABLES)]


def new_id() -> str:
    """A time-ordered UUID (version 7 layout, see `_IdSource`): new rows land at the end of
    every id index instead of at random pages, which keeps bulk inserts fast as the store
    grows."""
    return _IDS.take(1)[0]


def new_ids(count: int) -> list[str]:
    """`count` ids as `new_id` makes them, in one call (bulk intake makes four per dossier)."""
    return _IDS.take(count)
