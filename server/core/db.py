"""Engine and sessions for SQLite (WAL, the embedded default) and PostgreSQL (production).

Write transactions go through `write_session`: on SQLite it starts with BEGIN IMMEDIATE, so a
writer waits for the lock up front (busy_timeout) instead of failing when it upgrades a read
lock; on PostgreSQL `take_log_lock` serialises change-log inserts so that change-log sequence
numbers become visible in order and a pull cursor never skips a change committed late.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from functools import lru_cache
from pathlib import Path
from typing import Any, Generic, TypeVar

from sqlalchemy import DateTime, String, Table, any_, bindparam, event, insert, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, create_engine

from server.core.config import Settings
from server.core.private_files import private_dir, private_file

T = TypeVar("T")

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


class PerEngine(Generic[T]):
    """One `T` per engine (a lock, a queue, a cache), made on first use and gone with the
    engine: tests and tools open many engines in one process."""

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._items: weakref.WeakKeyDictionary[Engine, T] = weakref.WeakKeyDictionary()
        self._guard = threading.Lock()

    def of(self, engine: Engine) -> T:
        with self._guard:
            found = self._items.get(engine)
            if found is None:
                found = self._items[engine] = self._make()
            return found


_WRITE_LOCKS: PerEngine[threading.RLock] = PerEngine(threading.RLock)


def writer_turn(engine: Engine):
    """On SQLite, threads of this process take turns to write.

    SQLite allows one writer anyway; a waiting writer in SQLite's busy handler sleeps in steps
    of up to 100 ms while the lock may already be free, so queueing on a Python lock hands the
    turn over at once. Other processes on the same file still meet busy_timeout.
    """
    if not is_sqlite(engine):
        return nullcontext()
    return _WRITE_LOCKS.of(engine)


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


# --- set-based writes of many rows ------------------------------------------------------------
#
# psycopg's executemany sends one statement per row (pipelined): for a push batch's thousands of
# rows over five tables its per-row work cost more CPU than checking and merging them. On
# PostgreSQL the rows go instead as ONE JSON text parameter, expanded by `json_to_recordset`
# into the table's own column types (one json.dumps in C, one statement). The `json` type keeps
# the text of a nested value as it came, so a JSON column stores what SQLAlchemy's own
# serializer (json.dumps with its defaults) would have written. On SQLite an INSERT's rows go
# as a few statements of many rows each (`_execute_many`, issue 13's tenth round), an UPDATE's
# as the driver's executemany. Errors are the database's as before: a unique key lost to a twin
# is an IntegrityError, a value a column refuses a DataError.


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


def _recordset_type(column: Any, dialect: Any) -> str:
    if isinstance(column.type, DateTime):  # an aware instant, read as psycopg would send it
        return "timestamptz"
    return column.type.compile(dialect=dialect)


@lru_cache(maxsize=64)
def _insert_recordset(table: Table, names: tuple[str, ...]) -> Any:
    dialect = postgresql.dialect()
    quote = dialect.identifier_preparer.quote
    columns = [table.c[name] for name in names]
    listed = ", ".join(quote(c.name) for c in columns)
    typed = ", ".join(f"{quote(c.name)} {_recordset_type(c, dialect)}" for c in columns)
    return text(
        f"INSERT INTO {quote(table.name)} ({listed}) SELECT {listed} "
        f"FROM json_to_recordset(CAST(:p_rows AS json)) AS r({typed})"
    )


@lru_cache(maxsize=64)
def _update_recordset(table: Table, key: str, names: tuple[str, ...]) -> Any:
    dialect = postgresql.dialect()
    quote = dialect.identifier_preparer.quote
    columns = [table.c[name] for name in names]
    typed = ", ".join(f"{quote(c.name)} {_recordset_type(c, dialect)}" for c in columns)
    pk = table.primary_key.columns.values()[0]
    sets = ", ".join(f"{quote(c.name)} = r.{quote(c.name)}" for c in columns)
    return text(
        f"UPDATE {quote(table.name)} AS t SET {sets} "
        f"FROM json_to_recordset(CAST(:p_rows AS json)) AS r({quote(key)} "
        f"{pk.type.compile(dialect=dialect)}, {typed}) "
        f"WHERE t.{quote(pk.name)} = r.{quote(key)}"
    )


ROWS_PER_STATEMENT = 5000


def insert_rows(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """INSERT these rows (each with the same keys) into `table`, set-based (see above)."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        _execute_many(session, _insert_of(table), rows)
        return
    _execute_recordset(session, _insert_recordset(table, tuple(rows[0])), rows)


def update_rows(
    session: Session, table: Table, rows: list[dict[str, Any]], statement: Any, key: str
) -> None:
    """UPDATE rows of `table` by primary key (`key` holds it in each row; the other keys are
    columns): one recordset statement on PostgreSQL, else `statement` as an executemany."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        _execute_many(session, statement, rows)
        return
    names = tuple(name for name in rows[0] if name != key)
    _execute_recordset(session, _update_recordset(table, key, names), rows)


def _execute_many(session: Session, statement: Any, rows: list[dict[str, Any]]) -> None:
    """`statement` for these rows (each with the same keys) on SQLite, compiled once per set
    of keys, each value through its column type's own bind processor (as SQLAlchemy would):
    an INSERT as few statements of many rows each, an UPDATE as the driver's executemany."""
    connection = session.connection()
    plan = _driver_plan(statement, tuple(rows[0]), connection.dialect)
    if plan is None:  # the statement binds more than the rows hold (a column default)
        session.execute(statement, rows)
        return
    sql, steps, row_marks = plan
    params = [tuple(row[n] if p is None else p(row[n]) for n, p in steps) for row in rows]
    if row_marks is None or len(params) == 1:  # an UPDATE: one execution per row
        connection.exec_driver_sql(sql, params)
        return
    per = max(1, min(ROWS_PER_INSERT, SQLITE_PARAMS // len(steps)))
    for start in range(0, len(params), per):
        chunk = params[start : start + per]
        connection.exec_driver_sql(_rows_sql(sql, row_marks, len(chunk)), _flat(chunk))


# SQLite's driver lets go of the GIL for every row of an executemany and must then take it
# back: with one other thread busy in Python (a report, a pull's encoding), each row waited
# for that thread's switch interval (5 ms), and a push group's 1,840 rows took 5-7 s instead
# of 0.1 s (bench/write_contention.py). An INSERT of many rows lets go of it once.
ROWS_PER_INSERT = 500
# SQLite's bound on one statement's parameters: 32,766 since 3.32, 999 before.
SQLITE_PARAMS = 32_766 if sqlite3.sqlite_version_info >= (3, 32) else 999


def _flat(rows: list[tuple]) -> tuple:
    return tuple(value for row in rows for value in row)


@lru_cache(maxsize=64)
def _rows_sql(sql: str, row_marks: str, count: int) -> str:
    """The single-row INSERT `sql` (ending in `row_marks`) for `count` rows."""
    return sql + (", " + row_marks) * (count - 1)


@lru_cache(maxsize=64)
def _insert_of(table: Table) -> Any:
    return insert(table)  # one statement object per table: the key of its plans


@lru_cache(maxsize=256)  # statements and key sets are few and fixed; thread-safe
def _driver_plan(statement: Any, names: tuple[str, ...], dialect: Any) -> Any:
    """(driver SQL, [(key, bind processor or None)] in the SQL's order, the one row's
    placeholders an INSERT ends with or None), or None when the compiled statement binds a name
    the rows lack. Kept per statement, keys and dialect (its bind processors are its own)."""
    compiled = statement.compile(dialect=dialect, column_keys=list(names))
    order = compiled.positiontup or []
    if not compiled.positional or not set(order) <= set(names) or compiled.literal_execute_params:
        return None
    sql = compiled.string
    marks = "(" + ", ".join("?" * len(order)) + ")"
    row_marks = marks if compiled.isinsert and sql.endswith(" VALUES " + marks) else None
    return sql, [(n, compiled._bind_processors.get(n)) for n in order], row_marks


def _execute_recordset(session: Session, statement: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[start : start + ROWS_PER_STATEMENT]
        session.execute(statement, {"p_rows": json.dumps(chunk, default=_json_default)})


# A list of ids in a WHERE: an expanding IN renders one placeholder per id, which SQLAlchemy
# renders and psycopg parses again for every statement (500 ids: more CPU than the query). On
# PostgreSQL the ids go as ONE array parameter (`= ANY(:ids)`), as many as a batch holds.
IDS_PER_STATEMENT = {"postgresql": 10_000}
IDS_IN_DEFAULT = 500


def ids_per_statement(session: Session) -> int:
    return IDS_PER_STATEMENT.get(session.get_bind().dialect.name, IDS_IN_DEFAULT)


def by_id_chunks(
    session: Session, statements: tuple[Any, Any], ids: list[str]
) -> Iterator[tuple[Any, list[str]]]:
    """(statement, ids) for each run of `ids` one statement of `id_in`'s pair takes here."""
    statement, size = pick(session, statements), ids_per_statement(session)
    for start in range(0, len(ids), size):
        yield statement, ids[start : start + size]


def id_in(column: Any, name: str) -> tuple[Any, Any]:
    """(expanding IN, = ANY(array)) conditions on `column` for the ids bound as `name`."""
    return (
        column.in_(bindparam(name, expanding=True)),
        column == any_(bindparam(name, type_=postgresql.ARRAY(String))),
    )


def pick(session: Session, statements: tuple[Any, Any]) -> Any:
    """The statement of `id_in`'s pair for this session's database."""
    return statements[1] if session.get_bind().dialect.name == "postgresql" else statements[0]
