"""Engine and sessions for SQLite (WAL, the embedded default) and PostgreSQL (production).

Write transactions go through `write_session`: on SQLite it starts with BEGIN IMMEDIATE, so a
writer waits for the lock up front (busy_timeout) instead of failing when it upgrades a read
lock; on PostgreSQL `take_log_lock` serialises change-log inserts so that change-log sequence
numbers become visible in order and a pull cursor never skips a change committed late.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, create_engine

from server.core.config import Settings
from server.core.private_files import private_dir, private_file

LOG_LOCK_KEY = 740_117  # PostgreSQL advisory lock guarding change-log order
MIGRATION_LOCK_KEY = 740_118
_IMMEDIATE = "commune_immediate"


def make_engine(url: str, pool_size: int = 10) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    if parsed.drivername == "postgresql":
        url = str(parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False))
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def _sqlite_engine(url: str) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:":
        _private_database(Path(database))
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see _on_begin)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _private_database(database: Path) -> None:
    """File 0600 before SQLite opens it: SQLite gives `-wal` and `-shm` the mode of the
    database file. Files of an older server are tightened too. A missing folder is made 0700;
    an existing one is left as it is (the data folder itself is made private at start)."""
    if not database.parent.exists():
        private_dir(database.parent)
    private_file(database)
    for suffix in ("-wal", "-shm", "-journal"):
        extra = database.with_name(database.name + suffix)
        if extra.exists():
            private_file(extra)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


_WRITE_LOCKS: weakref.WeakKeyDictionary[Engine, threading.RLock] = weakref.WeakKeyDictionary()
_WRITE_LOCKS_GUARD = threading.Lock()


def writer_turn(engine: Engine):
    """On SQLite, threads of this process take turns to write.

    SQLite allows one writer anyway; a waiting writer in SQLite's busy handler sleeps in steps
    of up to 100 ms while the lock may already be free, so queueing on a Python lock hands the
    turn over at once. Other processes on the same file still meet busy_timeout.
    """
    if not is_sqlite(engine):
        return nullcontext()
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(engine, threading.RLock())


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """One write transaction: committed on success, rolled back on any exception."""
    with writer_turn(engine), Session(engine, expire_on_commit=False) as session:
        session.connection(execution_options={_IMMEDIATE: True})
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def take_log_lock(session: Session) -> None:
    """Hold the change-log lock until this transaction ends (PostgreSQL; SQLite is serial)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOG_LOCK_KEY})


def engine_for(settings: Settings) -> Engine:
    return make_engine(settings.db_url, settings.db_pool_size)
