"""Alembic environment: runs on the connection `server.migrate` hands over (or the URL)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from server.core.db import MIGRATION_LOCK_KEY, make_engine
from server.models import SQLModel

config = context.config
target_metadata = SQLModel.metadata


def _run(connection) -> None:
    if connection.dialect.name == "postgresql":
        # Several workers may start at once: one migrates, the others wait and find it done.
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
        connection.commit()
    try:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    finally:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
            connection.commit()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline SQL generation is not supported; run `commune api migrate`")
run_migrations_online()
