"""Sealed key/value settings (server URL, device token, agency code, code counters, ...).

Values are JSON, sealed with the row's key as binding, so a value moved to another key fails.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.engine import Connection

from app.storage.crypto import Sealer
from app.storage.db import Database
from app.storage.tables import SETTINGS

# Keys views and sync use; others (e.g. per-day code counters) are internal.
KNOWN_KEYS = (
    "server_url",
    "device_token",
    "refresh_token",
    "token_expires_at",
    "allow_insecure_http",
    "language",
    "auto_lock_minutes",
    "agency_code",
    "ward_code",
    "code_slot",
)


class SettingsStore:
    def __init__(self, db: Database, sealer: Sealer) -> None:
        self._db = db
        self._sealer = sealer

    def get(self, key: str, default: Any = None) -> Any:
        with self._db.read() as conn:
            return self.get_in(conn, key, default)

    def set(self, key: str, value: Any) -> None:
        with self._db.write() as conn:
            self.set_in(conn, key, value)

    def delete(self, key: str) -> None:
        with self._db.write() as conn:
            conn.exec_driver_sql("DELETE FROM settings WHERE key = ?", (key,))

    def get_in(self, conn: Connection, key: str, default: Any = None) -> Any:
        row = conn.exec_driver_sql("SELECT sealed FROM settings WHERE key = ?", (key,)).first()
        if row is None:
            return default
        return self._sealer.open_json(row[0], table=SETTINGS, row_id=key, version=0)

    def set_in(self, conn: Connection, key: str, value: Any) -> None:
        json.dumps(value)  # fail before writing anything that could not be read back
        sealed = self._sealer.seal_json(value, table=SETTINGS, row_id=key, version=0)
        conn.exec_driver_sql(
            "INSERT INTO settings (key, sealed) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET sealed = excluded.sealed",
            (key, sealed),
        )
