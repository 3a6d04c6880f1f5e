"""A migrated central database for tests that use the server's services without its API."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from server import migrate
from server.core.db import make_engine


def migrated_engine(request: pytest.FixtureRequest, tmp_path) -> Engine:
    """SQLite in `tmp_path` when `request.param` is "sqlite", else a new database on the test
    PostgreSQL (the `postgres_server` fixture); migrated to the latest schema."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'server.db'}"
    else:
        url = request.getfixturevalue("postgres_server").create_database()
    engine = make_engine(url)
    migrate.upgrade(engine)
    return engine
