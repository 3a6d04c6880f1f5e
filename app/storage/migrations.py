"""Versioned schema migrations: an ordered list, run inside the transaction that opens the store.

A migration's SQL is frozen once released: change the schema by appending a new function, never
by editing an old one. `schema_version` holds how many have run. Dossier-only indexes are partial
(`WHERE entity = 'dossier'`), so history events and other entities sharing `records` do not pay
for them.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.engine import Connection

Migration = Callable[[Connection], None]


def _run(conn: Connection, script: str) -> None:
    for statement in script.split(";"):
        if statement.strip():
            conn.exec_driver_sql(statement)


def m001_core(conn: Connection) -> None:
    _run(
        conn,
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE records (
            id INTEGER PRIMARY KEY,
            entity TEXT NOT NULL,
            entity_id TEXT NOT NULL UNIQUE,
            ward_code TEXT NOT NULL DEFAULT '',
            version INTEGER NOT NULL DEFAULT 0,
            local_rev INTEGER NOT NULL DEFAULT 1,
            sealed BLOB NOT NULL,
            parent_id TEXT,
            code TEXT,
            procedure_code TEXT,
            status INTEGER,
            channel INTEGER,
            received_at TEXT,
            appointment_date TEXT,
            finished_at TEXT,
            returned_at TEXT,
            state TEXT,
            sync_state TEXT NOT NULL DEFAULT 'pending',
            sync_reason TEXT
        );
        CREATE TABLE terms (
            term BLOB NOT NULL,
            kind TEXT NOT NULL,
            rid INTEGER NOT NULL,
            PRIMARY KEY (term, kind, rid)
        ) WITHOUT ROWID;
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            mutation_id TEXT NOT NULL UNIQUE,
            entity TEXT NOT NULL,
            entity_id TEXT NOT NULL,
            base_version INTEGER NOT NULL,
            hlc TEXT NOT NULL,
            fields TEXT NOT NULL
        );
        CREATE INDEX outbox_entity_id ON outbox (entity_id);
        CREATE TABLE sync_state (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            cursor INTEGER NOT NULL DEFAULT 0,
            last_synced_at TEXT
        );
        INSERT INTO sync_state (id, cursor) VALUES (1, 0);
        CREATE TABLE settings (key TEXT PRIMARY KEY, sealed BLOB NOT NULL)
        """,
    )


def m002_query_indexes_and_blobs(conn: Connection) -> None:
    _run(
        conn,
        """
        CREATE INDEX records_due ON records (appointment_date)
            WHERE entity = 'dossier';
        CREATE INDEX records_status_due ON records (status, appointment_date)
            WHERE entity = 'dossier';
        CREATE INDEX records_procedure_due ON records (procedure_code, appointment_date)
            WHERE entity = 'dossier';
        CREATE INDEX records_received ON records (received_at) WHERE entity = 'dossier';
        CREATE INDEX records_code ON records (entity, code) WHERE code IS NOT NULL;
        CREATE INDEX records_parent ON records (parent_id, received_at)
            WHERE parent_id IS NOT NULL;
        CREATE INDEX records_state ON records (entity, state) WHERE state IS NOT NULL;
        CREATE TABLE blobs (
            sha256 TEXT PRIMARY KEY,
            size INTEGER NOT NULL,
            uploaded INTEGER NOT NULL DEFAULT 0
        )
        """,
    )


def m003_outbox_snapshots(conn: Connection) -> None:
    # Values a pending mutation announced, sealed, once a later write is about to overwrite them.
    conn.exec_driver_sql("ALTER TABLE outbox ADD COLUMN sealed BLOB")


def m004_dossier_code_register(conn: Connection) -> None:
    # Every dossier code issued, imported or received here, unique: the database itself refuses
    # a second dossier with a code this device already gave out. Not a unique index on
    # `records.code`: a pulled dossier of another device must still be stored even if its code
    # clashes (an old store, a mis-set slot), or one bad row would stop every later pull.
    _run(
        conn,
        """
        CREATE TABLE dossier_codes (code TEXT PRIMARY KEY) WITHOUT ROWID;
        INSERT OR IGNORE INTO dossier_codes (code)
            SELECT code FROM records WHERE entity = 'dossier' AND code IS NOT NULL
        """,
    )


def m005_drop_received_index(conn: Connection) -> None:
    # No query seeks on a dossier's receipt time: the dashboard counts today's intake in the
    # same pass as its other sums, and a count of all dossiers is served as well by the (smaller)
    # partial due-date index. Kept, this index took one random insert per dossier: about an
    # eighth of the pages a bulk intake dirtied (and, under SQLCipher, encrypted).
    conn.exec_driver_sql("DROP INDEX IF EXISTS records_received")


MIGRATIONS: list[Migration] = [
    m001_core,
    m002_query_indexes_and_blobs,
    m003_outbox_snapshots,
    m004_dossier_code_register,
    m005_drop_received_index,
]


def current_version(conn: Connection) -> int:
    conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.exec_driver_sql("SELECT version FROM schema_version").first()
    return row[0] if row else 0


def migrate(conn: Connection, migrations: list[Migration] | None = None) -> int:
    """Run the migrations not yet applied (inside the caller's transaction); the new version."""
    steps = MIGRATIONS if migrations is None else migrations
    version = current_version(conn)
    if version > len(steps):
        raise RuntimeError(f"store schema {version} is newer than this app ({len(steps)})")
    for step in steps[version:]:
        step(conn)
    conn.exec_driver_sql("DELETE FROM schema_version")
    conn.exec_driver_sql("INSERT INTO schema_version (version) VALUES (?)", (len(steps),))
    return len(steps)
