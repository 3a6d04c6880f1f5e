"""The shape of the local database: tables, and which readable fields get a query column.

The schema itself is built by the ordered migrations in `migrations.py`; this module names
what the rest of the storage code relies on. Only fields that `app.domain.entities` marks
readable (no personal data, no free text) ever get a column of their own.

- `records`: every synced entity (dossiers, their events, audits, comments, attachments,
  conflicts). `readable` is JSON `{field: [value, hlc]}` of the readable fields; `sealed` is an
  AES-GCM envelope of `{field: [value, hlc]}` for the sealed ones, bound to
  (`records`, entity_id, local_rev). Query columns repeat readable values for indexes.
- `terms`: blind-index terms (keyed HMAC) per record: kind `n` name, `a` address, `i` ID number.
- `outbox`: mutations not yet pushed, each a sealed envelope (they carry personal values).
- `sync_state`: the pull cursor and when sync last finished.
- `settings`: sealed key/value pairs.
- `blobs`: attachments stored as sealed files, and whether the server has them yet.
- `meta`: device id, clock high-water mark, key check; `schema_version`: the migration level.
"""

from __future__ import annotations

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
TERM_ADDRESS = "a"
TERM_ID = "i"
SEARCHABLE: dict[str, dict[str, str]] = {
    E.DOSSIER: {
        "applicant_name": TERM_NAME,
        "applicant_address": TERM_ADDRESS,
        "applicant_id_number": TERM_ID,
    },
}

# Per-record sync states.
PENDING = "pending"
SYNCED = "synced"
REJECTED = "rejected"
CONFLICT = "conflict"
