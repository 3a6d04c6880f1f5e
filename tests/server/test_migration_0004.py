"""Migration 0004 carries attachments over to scope-bound files (blob_upload, blob_grant,
blob_claim), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text

from server import migrate
from server.core.db import make_engine

H, PENDING = "a" * 64, "b" * 64


def _seed(conn) -> None:
    """At 0003: an auditor of ward A who uploaded H and attached it there, an officer of ward B
    who named H in a record of ward B without sending it, and an upload left half done."""
    for uid, role, ward in ((1, "auditor", "00001"), (2, "officer", "00002")):
        conn.execute(
            text(
                "INSERT INTO app_user (id, username, role, wards, disabled, created_at) "
                "VALUES (:id, :name, :role, :wards, false, CURRENT_TIMESTAMP)"
            ),
            {"id": uid, "name": f"u{uid}", "role": role, "wards": f'["{ward}"]'},
        )
        conn.execute(
            text(
                "INSERT INTO device (id, user_id, name, kind, token_hash, revoked, wards, "
                "last_pull_cursor, created_at) VALUES (:id, :uid, 't', 'tablet', :tok, false, "
                "'[]', 0, CURRENT_TIMESTAMP)"
            ),
            {"id": f"dev{uid}", "uid": uid, "tok": f"{uid}" * 64},
        )
    for sha, complete, size in ((H, True, 3000), (PENDING, False, 4000)):
        conn.execute(
            text(
                'INSERT INTO upload (sha256, size, "offset", complete, device_id, created_at) '
                "VALUES (:sha, :size, :off, :c, 'dev1', CURRENT_TIMESTAMP)"
            ),
            {"sha": sha, "size": size, "off": size if complete else 2000, "c": complete},
        )
    for rid, ward, family, uid in (("r1", "00001", "audit", 1), ("r2", "00002", "dossier", 2)):
        conn.execute(
            text(
                "INSERT INTO record (entity, entity_id, ward_code, family, version, fields, "
                "blob_sha256, updated_at) VALUES ('attachment', :rid, :ward, :family, 1, '{}', "
                ":sha, CURRENT_TIMESTAMP)"
            ),
            {"rid": rid, "ward": ward, "family": family, "sha": H},
        )
        conn.execute(
            text(
                "INSERT INTO audit_log (at, user_id, username, device_id, action, entity, "
                "entity_id, ward_code, version, detail) VALUES (CURRENT_TIMESTAMP, :uid, 'u', "
                ":dev, 'change', 'attachment', :rid, :ward, 1, '{}')"
            ),
            {"uid": uid, "dev": f"dev{uid}", "rid": rid, "ward": ward},
        )


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_migration_0004_grants_the_uploaders_scope_and_only_claims_the_others(
    db, tmp_path, request
):
    if db == "sqlite":
        url = f"sqlite:///{tmp_path / 'm.db'}"
    else:
        url = request.getfixturevalue("postgres_server").create_database()
    engine = make_engine(url)
    try:
        migrate.upgrade(engine, "0003")
        with engine.begin() as conn:
            _seed(conn)
        migrate.upgrade(engine)
        with engine.connect() as conn:
            uploads = conn.execute(
                text('SELECT sha256, user_id, size, "offset", complete FROM blob_upload')
            ).all()
            grants = conn.execute(text("SELECT sha256, ward_code, family FROM blob_grant")).all()
            claims = conn.execute(
                text("SELECT sha256, ward_code, family, user_id FROM blob_claim")
            ).all()
        assert [tuple(r) for r in uploads] == [(H, 1, 3000, 3000, True)]  # half done: dropped
        assert [tuple(r) for r in grants] == [(H, "00001", "audit")]
        assert [tuple(r) for r in claims] == [(H, "00002", "dossier", 2)]
        assert "upload" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()
