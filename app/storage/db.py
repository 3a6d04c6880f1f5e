"""One SQLAlchemy engine per store file, with the pragmas the store relies on.

SQLCipher seam: when the optional `sqlcipher3` package imports (desktop extra), connections
come from it and the first statement on each is `PRAGMA key` with the SQLCipher sub-key; the
rest of the code is the same. Where it does not import (Android, iOS, this CI), the standard
`sqlite3` module is used and per-record AES-GCM sealing is the encryption layer.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import Connection
from sqlalchemy.pool import QueuePool

try:  # pragma: no cover - the optional desktop extra is not installed in CI
    from sqlcipher3 import dbapi2 as _sqlcipher  # type: ignore[import-not-found]
except ImportError:
    _sqlcipher = None

DB_FILE = "store.db"
BUSY_TIMEOUT_MS = 5000
_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",
    "PRAGMA temp_store=MEMORY",  # sorts and temp b-trees never touch disk
    "PRAGMA secure_delete=ON",  # freed pages are zeroed, not left with old ciphertext
    "PRAGMA cache_size=-32768",  # 32 MiB: index pages of ~100k dossiers stay in memory
)


def sqlcipher_available() -> bool:
    return _sqlcipher is not None


def db_path(data_dir: Path) -> Path:
    return Path(data_dir) / DB_FILE


def _connector(path: Path, sqlcipher_key: bytes | None):
    def connect() -> Any:
        module = _sqlcipher if _sqlcipher is not None else sqlite3
        # isolation_level=None: the driver never opens transactions on its own; Database
        # issues BEGIN/COMMIT itself so one local write is exactly one transaction.
        conn = module.connect(str(path), isolation_level=None, check_same_thread=False)
        if _sqlcipher is not None and sqlcipher_key is not None:  # pragma: no cover
            conn.execute(f"PRAGMA key = \"x'{sqlcipher_key.hex()}'\"")
        for pragma in _PRAGMAS:
            conn.execute(pragma)
        return conn

    return connect


class Database:
    """The engine of one store file, with explicit read and write transactions.

    Writes are serialised by a lock in this process and `BEGIN IMMEDIATE` across processes
    (the CLI may run next to the app), so a write never fails half-way on a lock upgrade.
    """

    def __init__(self, path: Path, sqlcipher_key: bytes | None = None) -> None:
        self.path = Path(path)
        self.engine: Engine = create_engine(
            "sqlite://",
            creator=_connector(self.path, sqlcipher_key),
            poolclass=QueuePool,
            pool_size=2,
            max_overflow=4,
        )
        self._write_lock = threading.RLock()
        self._local = threading.local()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One transaction; nested calls join the outer one."""
        outer = getattr(self._local, "conn", None)
        if outer is not None:
            yield outer
            return
        with self._write_lock, self.engine.connect() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            self._local.conn = conn
            try:
                yield conn
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise
            else:
                conn.exec_driver_sql("COMMIT")
            finally:
                self._local.conn = None

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A consistent snapshot for a few queries (inside a write, that write's view)."""
        outer = getattr(self._local, "conn", None)
        if outer is not None:
            yield outer
            return
        with self.engine.connect() as conn:
            conn.exec_driver_sql("BEGIN")
            try:
                yield conn
            finally:
                conn.exec_driver_sql("ROLLBACK")

    def checkpoint(self) -> None:
        with self.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        self.engine.dispose()
