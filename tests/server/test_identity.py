"""Enrolment and login details: expired codes, the enrolment rate limit (per client address,
also behind a load balancer), tokens stored only as hashes, Argon2id passwords, and the sync-lag
metric."""

from __future__ import annotations

import datetime as dt
import hashlib
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import inspect, text

from server.core import security
from server.services import identity
from tests.server.helpers import Device, new_dossier, new_name, new_ward, pull_all, push
from tests.support.server_proc import ApiServer, sqlite_url, start_api_server

LIMIT = 10  # Settings.enrol_attempts_per_window


@pytest.fixture
def fresh_server() -> Iterator[Callable[..., ApiServer]]:
    """Start a server of our own (its rate limiter and change log untouched by other tests)."""
    started: list[ApiServer] = []
    folders: list[tempfile.TemporaryDirectory] = []

    def start(*extra_args: str) -> ApiServer:
        folders.append(tempfile.TemporaryDirectory(prefix="commune-api-"))
        folder = Path(folders[-1].name)
        started.append(start_api_server(sqlite_url(folder), folder, extra_args=list(extra_args)))
        return started[-1]

    yield start
    for server in started:
        server.stop()
    for folder in folders:
        folder.cleanup()


def _all_rows_text(api: ApiServer) -> str:
    with api.engine.connect() as conn:
        tables = inspect(conn).get_table_names()
        return "\n".join(
            repr(tuple(row)) for t in tables for row in conn.execute(text(f"SELECT * FROM {t}"))
        )


def test_an_expired_enrolment_code_is_refused(sqlite_api_server):
    api = sqlite_api_server
    user = new_name("officer")
    api.add_user(user, "officer", [new_ward()])
    code = identity.create_enrol_code(api.engine, user, 5)
    with api.engine.begin() as conn:
        conn.execute(
            text("UPDATE enrol_code SET expires_at = :t WHERE code_hash = :h"),
            {"t": dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1), "h": security.code_hash(code)},
        )
    devices = api.count("device")
    with api.client() as client:
        refused = client.post("/auth/enrol", json={"code": code, "device_name": "tab"})
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_code"
    assert api.count("device") == devices


def _enrol(api: ApiServer, code: str, client_address: str) -> httpx.Response:
    return httpx.post(
        api.url + "/auth/enrol",
        json={"code": code, "device_name": "tab"},
        headers={"X-Forwarded-For": client_address},
        timeout=30,
    )


def _good_code(api: ApiServer) -> str:
    user = new_name("officer")
    api.add_user(user, "officer", [new_ward()])
    return identity.create_enrol_code(api.engine, user, 5)


def test_enrolment_rate_limit_counts_failures_per_client_behind_a_balancer(fresh_server):
    api = fresh_server("--forwarded-allow-ips", "127.0.0.1")  # the balancer's address
    for _ in range(LIMIT):
        assert _enrol(api, "WRONG-CODE-0000", "10.1.1.1").status_code == 401
    blocked = _enrol(api, _good_code(api), "10.1.1.1")
    assert blocked.status_code == 429 and blocked.json()["error"]["code"] == "rate_limited"
    assert int(blocked.headers["Retry-After"]) > 0
    # Another client behind the same balancer is not punished for the first one's guesses.
    assert _enrol(api, _good_code(api), "10.1.1.2").status_code == 200


def test_forwarded_addresses_from_an_untrusted_peer_are_ignored(fresh_server):
    api = fresh_server("--forwarded-allow-ips", "192.0.2.1")  # not us: X-Forwarded-For ignored
    for _ in range(LIMIT):
        assert _enrol(api, "WRONG-CODE-0000", "10.1.1.1").status_code == 401
    # A forged header does not buy a fresh allowance: the key is the real peer, 127.0.0.1.
    assert _enrol(api, _good_code(api), "10.1.1.2").status_code == 429


def test_tokens_are_stored_only_as_hashes_and_passwords_as_argon2id(api_server):
    api = api_server
    ward = new_ward()
    tablet = api.enrol(new_name("officer"), "officer", [ward])
    user = new_name("sup")
    api.add_user(user, "supervisor", [ward], password="một mật khẩu dài")
    with api.client() as client:
        login = client.post("/auth/login", json={"username": user, "password": "một mật khẩu dài"})
    assert login.status_code == 200
    dump = _all_rows_text(api)
    for token in (tablet.token, login.json()["token"]):
        assert token not in dump
        assert hashlib.sha256(token.encode()).hexdigest() in dump
    with api.engine.connect() as conn:
        stored = conn.execute(
            text("SELECT password_hash FROM app_user WHERE username = :u"), {"u": user}
        ).scalar_one()
    assert stored.startswith("$argon2id$") and "một mật khẩu dài" not in dump


def _lag(client: httpx.Client) -> dict[str, int]:
    lines = client.get("/metrics").text.splitlines()
    values = dict(line.split() for line in lines if line and not line.startswith("#"))
    names = ("change_log_head", "sync_devices_behind", "sync_lag_changes_max")
    return {name: int(values[f"commune_{name}"]) for name in (*names, "sync_lag_changes_sum")}


def test_sync_lag_metric_counts_changes_until_each_device_pulls(fresh_server):
    api = fresh_server()
    ward = new_ward()
    writer = api.enrol(new_name("officer"), "officer", [ward])
    reader = api.enrol(new_name("officer"), "officer", [ward])
    device = Device()
    with api.client(writer.token) as w, api.client(reader.token) as r:
        assert _lag(w) == {
            "change_log_head": 0,
            "sync_devices_behind": 0,
            "sync_lag_changes_max": 0,
            "sync_lag_changes_sum": 0,
        }
        push(w, [new_dossier(device, ward) for _ in range(5)])
        assert _lag(w) == {
            "change_log_head": 5,
            "sync_devices_behind": 2,
            "sync_lag_changes_max": 5,
            "sync_lag_changes_sum": 10,
        }
        changes, cursor = pull_all(r)
        assert len(changes) == 5 and _lag(w)["sync_lag_changes_sum"] == 10  # not confirmed yet
        r.get("/sync/pull", params={"cursor": cursor})  # asking from 5 confirms 1..5
        assert _lag(w) == {
            "change_log_head": 5,
            "sync_devices_behind": 1,
            "sync_lag_changes_max": 5,
            "sync_lag_changes_sum": 5,
        }
        _, cursor = pull_all(w)
        w.get("/sync/pull", params={"cursor": cursor})
        assert _lag(w)["sync_devices_behind"] == 0 and _lag(w)["sync_lag_changes_sum"] == 0


def test_a_pull_cursor_noted_in_memory_shows_at_once_and_revocation_counts_next_request(
    api_server,
):
    """Pull cursors are written once a second (sync.CURSOR_NOTES), yet the admin's device list
    shows the one confirmed a moment ago; authentication caches nothing, so a device revoked
    between two of its requests is refused on the second."""
    api = api_server
    ward = new_ward()
    writer = api.enrol(new_name("officer"), "officer", [ward])
    reader = api.enrol(new_name("officer"), "officer", [ward])
    admin = api.enrol(new_name("admin"), "admin", [ward])
    with api.client(writer.token) as w, api.client(reader.token) as r:
        push(w, [new_dossier(Device(), ward) for _ in range(3)])
        _, cursor = pull_all(r)
        for _ in range(3):  # requests that authenticate the reader again and again
            assert r.get("/sync/pull", params={"cursor": cursor}).status_code == 200
        with api.client(admin.token) as a:
            listed = {d["device_id"]: d for d in a.get("/admin/devices").json()["devices"]}
            assert listed[reader.device_id]["last_pull_cursor"] == cursor > 0
            revoked = a.post(f"/admin/devices/{reader.device_id}/revoke")
            assert revoked.status_code == 200
        refused = r.get("/sync/pull", params={"cursor": cursor})
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "device_revoked"
