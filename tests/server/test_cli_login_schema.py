"""Admin CLI against the running server's database, desktop login with its rate limit, and the
Alembic schema matching the models on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.cli import main
from server import migrate
from server.core.db import make_engine
from server.models import SQLModel
from tests.server.helpers import new_name, new_ward
from tests.support.server_proc import sqlite_url, start_api_server


def _cli(capsys, api, *args: str) -> tuple[int, str, str]:
    code = main(["--data-dir", str(api.data_dir), *args[:2], *args[2:], "--db", api.db_url])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_admin_cli_enrols_lists_and_revokes(sqlite_api_server, capsys, monkeypatch):
    api = sqlite_api_server
    user, ward = new_name("officer"), new_ward()
    assert (
        _cli(
            capsys,
            api,
            "admin",
            "create-user",
            user,
            "--role",
            "officer",
            "--wards",
            f"{ward},00073",
        )[0]
        == 0
    )
    code_status, out, _ = _cli(
        capsys, api, "admin", "enrol-code", "--user", user, "--ttl-minutes", "5"
    )
    enrol_code = out.strip()
    assert code_status == 0 and len(enrol_code) == 14
    with api.client() as client:
        enrolled = client.post("/auth/enrol", json={"code": enrol_code, "device_name": "Tab 1"})
        assert enrolled.status_code == 200
        assert enrolled.json()["wards"] == ["00073", ward]
        reused = client.post("/auth/enrol", json={"code": enrol_code, "device_name": "Tab 2"})
        assert reused.status_code == 401 and reused.json()["error"]["code"] == "invalid_code"
    device_id = enrolled.json()["device_id"]
    _, listing, _ = _cli(capsys, api, "admin", "list-devices")
    assert any(line.startswith(device_id) and user in line for line in listing.splitlines())
    assert _cli(capsys, api, "admin", "revoke-device", device_id)[0] == 0
    with api.client(enrolled.json()["token"]) as client:
        refused = client.get("/sync/pull")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "device_revoked"
    status, _, err = _cli(capsys, api, "admin", "revoke-device", "no-such-device")
    assert status == 2 and "device_not_found" in err
    status, _, err = _cli(
        capsys, api, "admin", "create-user", new_name("x"), "--role", "officer", "--wards", "*"
    )
    assert status == 2 and "invalid_ward" in err
    assert _cli(capsys, api, "api", "migrate")[1].strip() == "schema at revision 0012"


@pytest.fixture(scope="module")
def slow_window_api():
    """A server whose rate window outlasts any machine's slowness: ten Argon2 checks on a loaded
    machine can take longer than the default minute, and the window would slide."""
    with tempfile.TemporaryDirectory(prefix="commune-api-") as tmp:
        server = start_api_server(
            sqlite_url(Path(tmp)), Path(tmp), {"COMMUNE_RATE_WINDOW_SECONDS": "3600"}
        )
        try:
            yield server
        finally:
            server.stop()


def test_login_and_its_rate_limit(slow_window_api, capsys, monkeypatch):
    api = slow_window_api
    user = new_name("sup")
    monkeypatch.setattr("sys.stdin", io.StringIO("mật khẩu đủ dài\n"))
    assert (
        _cli(
            capsys,
            api,
            "admin",
            "create-user",
            user,
            "--role",
            "supervisor",
            "--wards",
            "*",
            "--password-stdin",
        )[0]
        == 0
    )
    with api.client() as client:
        good = client.post("/auth/login", json={"username": user, "password": "mật khẩu đủ dài"})
        assert good.status_code == 200 and good.json()["role"] == "supervisor"
        with api.client(good.json()["token"]) as session:
            assert session.get("/reviews").status_code == 200
        for _ in range(10):
            bad = client.post("/auth/login", json={"username": user, "password": "sai"})
            assert bad.json()["error"]["code"] == "invalid_credentials"
        blocked = client.post("/auth/login", json={"username": user, "password": "mật khẩu đủ dài"})
        assert blocked.status_code == 429 and blocked.json()["error"]["code"] == "rate_limited"
        assert int(blocked.headers["Retry-After"]) > 0
        other = client.post("/auth/login", json={"username": "nobody", "password": "x"})
        assert other.status_code == 401


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_migrations_build_exactly_the_models(db, tmp_path, request):
    if db == "sqlite":
        url = f"sqlite:///{tmp_path / 'm.db'}"
    else:
        url = request.getfixturevalue("postgres_server").create_database()
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        migrate.upgrade(engine)  # idempotent
        assert migrate.current_revision(engine) == "0012"
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), SQLModel.metadata) == []
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO audit_log (at, username, action, detail) "
                    "VALUES (CURRENT_TIMESTAMP, 'x', 'test', '{}')"
                )
            )
        for statement in ("UPDATE audit_log SET username = 'y'", "DELETE FROM audit_log"):
            with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
                conn.execute(text(statement))
    finally:
        engine.dispose()


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_migration_0003_names_the_device_of_changes_logged_before_it(db, tmp_path, request):
    if db == "sqlite":
        url = f"sqlite:///{tmp_path / 'm.db'}"
    else:
        url = request.getfixturevalue("postgres_server").create_database()
    engine = make_engine(url)
    try:
        migrate.upgrade(engine, "0002")
        with engine.begin() as conn:
            for version, device in ((1, "dev-a"), (2, "dev-b")):
                conn.execute(
                    text(
                        "INSERT INTO change_log (entity, entity_id, ward_code, family, version) "
                        "VALUES ('dossier', 'd1', '00001', 'dossier', :v)"
                    ),
                    {"v": version},
                )
                conn.execute(
                    text(
                        "INSERT INTO audit_log (at, username, device_id, action, entity, "
                        "entity_id, ward_code, version, detail) VALUES (CURRENT_TIMESTAMP, "
                        "'u', :d, 'change', 'dossier', 'd1', '00001', :v, '{}')"
                    ),
                    {"v": version, "d": device},
                )
            conn.execute(  # a change with no audit row keeps no device
                text(
                    "INSERT INTO change_log (entity, entity_id, ward_code, family, version) "
                    "VALUES ('dossier', 'd2', '00001', 'dossier', 1)"
                )
            )
        migrate.upgrade(engine)
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT entity_id, version, device_id FROM change_log ORDER BY seq")
            ).all()
        assert [tuple(r) for r in rows] == [("d1", 1, "dev-a"), ("d1", 2, "dev-b"), ("d2", 1, None)]
    finally:
        engine.dispose()


def test_errors_are_json_and_metrics_show_sync_lag(sqlite_api_server):
    api = sqlite_api_server
    officer = api.enrol(new_name("officer"), "officer", [new_ward()])
    with api.client(officer.token) as client:
        cases = {
            "not_found": client.get("/no/such/path"),
            "method_not_allowed": client.delete("/sync/pull"),
            "validation_error": client.get("/sync/pull", params={"cursor": -1}),
            "bad_encoding": client.post(
                "/sync/push", content=b"not gzip", headers={"Content-Encoding": "gzip"}
            ),
            "unsupported_encoding": client.post(
                "/sync/push", content=b"{}", headers={"Content-Encoding": "br"}
            ),
        }
        malformed = client.post(
            "/sync/push", content=b'{"mutations": [', headers={"Content-Type": "application/json"}
        )
        metrics = client.get("/metrics").text
    for code, response in cases.items():
        assert 400 <= response.status_code < 500
        assert response.json()["error"]["code"] == code, response.text
    assert malformed.status_code == 422
    assert malformed.json()["error"]["code"] == "validation_error"
    values = dict(line.split() for line in metrics.splitlines() if not line.startswith("#"))
    assert int(values["commune_request_errors_4xx_total"]) >= 6
    assert int(values["commune_devices_active"]) >= 1
    assert int(values["commune_sync_lag_changes_max"]) >= 0
    assert set(values) >= {
        "commune_requests_total",
        "commune_sync_devices_behind",
        "commune_change_log_head",
        "commune_request_errors_5xx_total",
    }
