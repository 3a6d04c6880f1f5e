"""The push batch's set-based writes (`server.core.db.insert_rows` / `update_rows`: one
`json_to_recordset` statement per table on PostgreSQL) store exactly what an executemany of
the same rows stores: the same JSON text, instants, NULLs and non-ASCII text; and a row the
database refuses fails the statement as before (IntegrityError for a taken key, DataError
for a value a column refuses), which the push's fallbacks rely on."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import DataError, IntegrityError

from server.core.db import insert_rows, update_rows, write_session
from server.models import AppliedMutation, AuditLog, Record
from tests.support.central_db import migrated_engine

RECORD = Record.__table__
APPLIED = AppliedMutation.__table__
AUDIT = AuditLog.__table__


def _records(prefix: str) -> list[dict]:
    at = dt.datetime(2025, 11, 3, 1, 30, 15, 123456, tzinfo=dt.UTC)
    return [
        {
            "ward_code": "00070",
            "family": "dossier",
            "version": i + 1,
            "fields": {
                "applicant_name": {"sealed": "sv1.k.abc", "hlc": "h", "changed_version": 1},
                "notes": {"value": 'Thiếu bản sao "giấy" khai sinh\n\t€', "hlc": "h"},
                "score": {"value": 12.5, "hlc": "h", "changed_version": None},
                "nested": {"value": {"b": [1, 2.0, None, True], "a": {}}, "hlc": "h"},
            },
            "updated_at": at + dt.timedelta(days=i),
            "blob_sha256": None if i % 2 else "ab" * 32,
            "entity": "dossier",
            "entity_id": f"{prefix}-{i}",
        }
        for i in range(3)
    ]


def _stored(engine, prefix: str) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                text(
                    "SELECT ward_code, family, version, CAST(fields AS TEXT), updated_at, "
                    "blob_sha256, entity FROM record WHERE entity_id LIKE :p ORDER BY entity_id"
                ),
                {"p": prefix + "-%"},
            )
        ]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path):
    engine = migrated_engine(request, tmp_path)
    yield engine
    engine.dispose()


def test_set_based_rows_are_stored_as_executemany_stores_them(engine):
    with write_session(engine) as session:
        session.execute(insert(RECORD), _records("many"))
        insert_rows(session, RECORD, _records("set"))
    assert _stored(engine, "set") == _stored(engine, "many")
    with engine.connect() as conn:
        ids = dict(conn.execute(select(RECORD.c.entity_id, RECORD.c.id)).all())
    changed = {"version": 9, "fields": {"notes": {"value": "Đã bổ sung", "hlc": "h2"}}}
    statement = RECORD.update().where(RECORD.c.id == text(":p_row"))
    with write_session(engine) as session:
        session.execute(statement, [{"p_row": ids[f"many-{i}"], **changed} for i in range(3)])
        update_rows(
            session,
            RECORD,
            [{"p_row": ids[f"set-{i}"], **changed} for i in range(3)],
            statement,
            "p_row",
        )
    assert _stored(engine, "set") == _stored(engine, "many")
    expected = '{"notes": {"value": "\\u0110\\u00e3 b\\u1ed5 sung", "hlc": "h2"}}'
    assert _stored(engine, "set")[0][2:4] == (9, expected)


def test_a_taken_key_and_a_refused_value_fail_the_set_based_statement(engine):
    row = {
        "mutation_id": "m-1",
        "device_id": "dev",
        "status": "applied",
        "version": 1,
        "applied_at": dt.datetime.now(dt.UTC),
    }
    with write_session(engine) as session:
        insert_rows(session, APPLIED, [row])
    with pytest.raises(IntegrityError), write_session(engine) as session:
        insert_rows(session, APPLIED, [{**row, "mutation_id": "m-2"}, row])
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM applied_mutation")).scalar() == 1
    if engine.dialect.name == "postgresql":  # SQLite does not bound VARCHAR lengths
        with pytest.raises(DataError), write_session(engine) as session:
            insert_rows(session, APPLIED, [{**row, "mutation_id": "m" * 37}])
    audit = {
        "at": dt.datetime.now(dt.UTC),
        "user_id": None,
        "username": "x",
        "device_id": "dev",
        "action": "change",
        "entity": "dossier",
        "entity_id": "e",
        "ward_code": "00070",
        "version": 1,
        "detail": {"fields": ["notes"], "values": {}},
    }
    with write_session(engine) as session:
        insert_rows(session, AUDIT, [audit, {**audit, "version": 2}])
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_log")).scalar() == 2


def test_sqlite_rows_go_to_the_driver_once_compiled_and_defaults_still_apply(tmp_path):
    """On SQLite the push's tables are written straight through the driver with the statement
    compiled once (`_driver_plan`), not SQLAlchemy's per-row parameters; a statement that binds
    a column the rows lack (a Python-side default) goes SQLAlchemy's way and gets its default."""
    from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine

    from server.core import db

    engine = create_engine(f"sqlite:///{tmp_path / 'plain.db'}")
    table = Table(
        "item",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("name", String),
        Column("size", Integer, default=5),
    )
    table.metadata.create_all(engine)
    with db.Session(engine) as session:
        insert_rows(session, table, [{"name": "a"}, {"name": "b"}])
        insert_rows(session, table, [{"name": "c", "size": 7}])
        session.commit()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name, size FROM item ORDER BY id")).all() == [
            ("a", 5),
            ("b", 5),
            ("c", 7),
        ]
    dialect = engine.dialect
    assert db._driver_plan(db._insert_of(table), ("name",), dialect) is None  # the default
    assert db._driver_plan(db._insert_of(table), ("name", "size"), dialect) is not None
    keys = tuple(_records("x")[0])
    sql, steps, row_marks = db._driver_plan(db._insert_of(RECORD), keys, dialect)
    assert sql.startswith("INSERT INTO record (") and [n for n, _ in steps] == [
        c.name for c in RECORD.c if c.name in keys
    ]
    assert row_marks == "(" + ", ".join(["?"] * len(steps)) + ")"
    engine.dispose()


def test_many_rows_go_in_order_over_several_statements(engine):
    """More rows than one statement holds (SQLite: `ROWS_PER_INSERT` to an INSERT) are stored
    in the order given, every one, each as executemany stores it."""
    from server.core import db

    count = 2 * db.ROWS_PER_INSERT + 3
    rows = [{**_records("big")[i % 3], "entity_id": f"big-{i:05d}"} for i in range(count)]
    with write_session(engine) as session:
        session.execute(
            insert(RECORD), [{**r, "entity_id": "many" + r["entity_id"][3:]} for r in rows]
        )
        insert_rows(session, RECORD, rows)
    with engine.connect() as conn:
        order = (
            conn.execute(
                text("SELECT entity_id FROM record WHERE entity_id LIKE 'big-%' ORDER BY id")
            )
            .scalars()
            .all()
        )
    assert order == [r["entity_id"] for r in rows]
    assert _stored(engine, "big") == _stored(engine, "many")


def test_sqlite_inserts_go_as_few_statements_of_many_rows(tmp_path):
    """Each statement lets go of the GIL once per row it steps through; an INSERT of a push
    group's rows is one statement per `ROWS_PER_INSERT` rows, not one execution per row."""
    from sqlalchemy import event

    from server import migrate
    from server.core import db
    from server.core.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'server.db'}")
    migrate.upgrade(engine)
    seen: list[tuple[str, bool]] = []

    def note(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement.split(" (")[0], executemany))

    event.listen(engine, "before_cursor_execute", note)
    rows = [{**_records("n")[0], "entity_id": f"n-{i}"} for i in range(db.ROWS_PER_INSERT + 1)]
    with write_session(engine) as session:
        insert_rows(session, RECORD, rows)
    inserts = [s for s in seen if s[0] == "INSERT INTO record"]
    assert inserts == [("INSERT INTO record", False)] * 2
    engine.dispose()
