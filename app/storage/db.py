"""One SQLAlchemy engine per store file, with the pragmas the store relies on.

SQLCipher seam: when the optional `sqlcipher3` package imports (desktop extra, and the dev
group so the tests run it), connections come from it and the first statement on each is
`PRAGMA key` with the SQLCipher sub-key (a raw 256-bit key: no extra key derivation); the rest
of the code is the same. Where it does not import (Android, iOS), or `COMMUNE_SQLCIPHER=off`
asks for the plain path (to inspect a store with the `sqlite3` shell), the standard `sqlite3`
module is used and per-record AES-GCM sealing is the encryption layer. A plain store file met
with SQLCipher on is converted in place (`sqlcipher_export`) on open.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import QueuePool

from app.storage.errors import StorageError, TamperError

try:
    from sqlcipher3 import dbapi2 as _sqlcipher  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - a build without the desktop extra
    _sqlcipher = None

SQLCIPHER_ENV = "COMMUNE_SQLCIPHER"  # "off" (or 0/no/false): the plain sqlite3 path
PLAIN_HEADER = b"SQLite format 3\x00"

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
    """SQLCipher imports and is not switched off by COMMUNE_SQLCIPHER."""
    switched_off = os.environ.get(SQLCIPHER_ENV, "").strip().lower() in {"0", "off", "no", "false"}
    return _sqlcipher is not None and not switched_off


def is_plain_sqlite(path: Path) -> bool:
    """The file starts with SQLite's own header (an unencrypted database)."""
    try:
        with open(path, "rb") as f:
            return f.read(len(PLAIN_HEADER)) == PLAIN_HEADER
    except FileNotFoundError:
        return False


def db_path(data_dir: Path) -> Path:
    return Path(data_dir) / DB_FILE


def _key_pragma(key: bytes, schema: str = "") -> str:
    return f"PRAGMA {schema}key = \"x'{key.hex()}'\""


def connect_raw(path: Path, sqlcipher_key: bytes | None = None) -> Any:
    """A DB-API connection to the store file, keyed when `sqlcipher_key` is given (which
    needs sqlcipher3). The first read proves the key: a file that does not open with it is a
    TamperError (another store's file, or edited), never a raw driver error."""
    if sqlcipher_key is not None and _sqlcipher is None:
        raise StorageError("SQLCipher không có trong bản cài đặt này / SQLCipher is not installed")
    module = _sqlcipher if sqlcipher_key is not None else sqlite3
    # isolation_level=None: the driver never opens transactions on its own; Database issues
    # BEGIN/COMMIT itself so one local write is exactly one transaction.
    conn = module.connect(str(path), isolation_level=None, check_same_thread=False)
    try:
        if sqlcipher_key is not None:
            # failures become exceptions (TamperError); no log lines on the user's stderr
            conn.execute("PRAGMA cipher_log_level = NONE")
            conn.execute(_key_pragma(sqlcipher_key))
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except module.DatabaseError as exc:
        conn.close()
        if sqlcipher_key is None:
            raise StorageError(
                "Tệp dữ liệu được mã hóa SQLCipher nhưng bản cài đặt này không dùng SQLCipher / "
                "The store file is SQLCipher-encrypted but SQLCipher is off or not installed"
            ) from None
        raise TamperError(f"the database file does not open with this store's key ({exc})") \
            from None
    return conn


def _connector(path: Path, sqlcipher_key: bytes | None):
    def connect() -> Any:
        conn = connect_raw(path, sqlcipher_key)
        for pragma in _PRAGMAS:
            conn.execute(pragma)
        return conn

    return connect


def encrypt_plain_store(path: Path, sqlcipher_key: bytes) -> None:
    """Convert a plain store file to SQLCipher in place (`sqlcipher_export`): a store created
    before sqlcipher3 was installed. The copy is written next to it, then renamed over it."""
    if _sqlcipher is None:
        raise StorageError("SQLCipher không có trong bản cài đặt này / SQLCipher is not installed")
    tmp = path.with_name(f"{path.name}.encrypting")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    _create_private(tmp)
    plain = _sqlcipher.connect(str(path), isolation_level=None)
    try:
        plain.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # fold the WAL in before copying
        plain.execute(f"ATTACH DATABASE ? AS encrypted KEY \"x'{sqlcipher_key.hex()}'\"",
                      (str(tmp),))
        plain.execute("SELECT sqlcipher_export('encrypted')")
        plain.execute("DETACH DATABASE encrypted")
    finally:
        plain.close()
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{path}{suffix}").unlink()


def _create_private(path: Path) -> None:
    """An empty file readable by this user only (SQLite gives -wal and -shm the same mode)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    os.chmod(path, 0o600)  # also narrows a file created by an older version


# SQLite result codes of a file whose pages do not read back: edited, truncated, wrong key.
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26
_DAMAGE_WORDS = ("malformed", "not a database")


@contextmanager
def _damage_is_tampering() -> Iterator[None]:
    """A page that fails SQLCipher's HMAC or SQLite's checks is tampering, said as such."""
    try:
        yield
    except DBAPIError as exc:
        code = getattr(exc.orig, "sqlite_errorcode", None)
        if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or (
            code is None and any(w in str(exc.orig) for w in _DAMAGE_WORDS)
        ):
            raise TamperError(f"the database file is damaged or was edited ({exc.orig})") \
                from None
        raise


class Database:
    """The engine of one store file, with explicit read and write transactions.

    Writes are serialised by a lock in this process and `BEGIN IMMEDIATE` across processes
    (the CLI may run next to the app), so a write never fails half-way on a lock upgrade.
    """

    def __init__(self, path: Path, sqlcipher_key: bytes | None = None) -> None:
        self.path = Path(path)
        self._sqlcipher_key = sqlcipher_key
        if sqlcipher_key is not None and is_plain_sqlite(self.path):
            encrypt_plain_store(self.path, sqlcipher_key)
        _create_private(self.path)
        self.engine: Engine = create_engine(
            "sqlite://",
            creator=_connector(self.path, sqlcipher_key),
            # the driver whose exceptions SQLAlchemy wraps (IntegrityError, ...)
            module=_sqlcipher if sqlcipher_key is not None else sqlite3,
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
        with _damage_is_tampering(), self._write_lock, self.engine.connect() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            self._local.conn = conn
            try:
                yield conn
            except BaseException:
                with contextlib.suppress(DBAPIError):  # a damaged file may refuse even this
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
        with _damage_is_tampering(), self.engine.connect() as conn:
            conn.exec_driver_sql("BEGIN")
            try:
                yield conn
            finally:
                with contextlib.suppress(DBAPIError):
                    conn.exec_driver_sql("ROLLBACK")

    @property
    def encrypted(self) -> bool:
        """The whole file is SQLCipher-encrypted (besides the per-record sealing)."""
        return self._sqlcipher_key is not None

    def connect_raw(self) -> Any:
        """A DB-API connection outside the pool (tests and tools that read the file as is)."""
        return connect_raw(self.path, self._sqlcipher_key)

    def checkpoint(self) -> None:
        with self.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        self.engine.dispose()
