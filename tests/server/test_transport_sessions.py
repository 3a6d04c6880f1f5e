"""Transport and sessions on a REAL server process: security headers, production settings (no
docs, metrics behind a token, HSTS, no trusted proxy by default), login limits per address
across usernames, expiring tokens renewed by the client (also during a sync), desktop logout."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from app.cli import main
from app.storage import KeySettings, create_store
from app.sync import enrolment
from app.sync.engine import SyncEngine
from app.sync.transport import DeviceRevoked, RetryPolicy, SessionExpired, Transport
from server.core.config import Settings
from server.main import create_app
from server.models import Device
from server.services import identity
from tests.server.helpers import Device as Clock
from tests.server.helpers import new_dossier, new_name, new_ward
from tests.support.server_proc import ApiServer, sqlite_url, start_api_server

METRICS_TOKEN = "metrics-secret-for-tests"
ADDRESS_LIMIT = 5  # failed logins per address in these servers (30 by default): fewer hashes
PASSWORD = "một mật khẩu dài"
FAST = RetryPolicy(attempts=2, base_s=0.01, cap_s=0.02)
PAST = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


class DictSettings(dict):
    """The store's settings port, in memory."""

    def set(self, key, value) -> None:
        self[key] = value


# ---- headers -------------------------------------------------------------------------------


def _assert_protective_headers(response: httpx.Response, strict_csp: bool = True) -> None:
    h = response.headers
    assert h["x-content-type-options"] == "nosniff"
    assert h["x-frame-options"] == "DENY"
    assert h["referrer-policy"] == "no-referrer"
    assert h["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in h["content-security-policy"]
    assert ("default-src 'none'" in h["content-security-policy"]) is strict_csp


def test_every_answer_carries_the_security_headers(sqlite_api_server):
    api = sqlite_api_server
    officer = api.enrol(new_name("officer"), "officer", [new_ward()])
    with api.client(officer.token) as client:
        answers = [
            client.get("/health"),
            client.get("/sync/pull"),
            client.get("/no/such/path"),
            client.post("/sync/push", content=b"{}", headers={"Content-Encoding": "br"}),
            client.post("/auth/login", content=b"x" * (128 * 1024)),  # 413 from the middleware
            client.get("/metrics"),
        ]
        docs = client.get("/docs")
    with api.client("wrong") as client:
        answers.append(client.get("/sync/pull"))
    assert [a.status_code for a in answers] == [200, 200, 404, 415, 413, 200, 401]
    for answer in answers:
        _assert_protective_headers(answer)
        assert "strict-transport-security" not in answer.headers  # not configured here
    assert docs.status_code == 200
    _assert_protective_headers(docs, strict_csp=False)  # the docs page loads its scripts


# ---- production settings --------------------------------------------------------------------


@pytest.fixture(scope="module")
def production_api() -> Iterator[ApiServer]:
    """`commune api` as in production: COMMUNE_ENV, a metrics token, HSTS, and the default of
    trusting no proxy (the test helper's loopback proxy is taken back)."""
    with tempfile.TemporaryDirectory(prefix="commune-prod-") as tmp:
        server = start_api_server(
            sqlite_url(Path(tmp)),
            Path(tmp),
            extra_env={
                "COMMUNE_ENV": "production",
                "COMMUNE_METRICS_TOKEN": METRICS_TOKEN,
                "COMMUNE_HSTS_SECONDS": "31536000",
                "COMMUNE_LOGIN_ATTEMPTS_PER_ADDRESS": str(ADDRESS_LIMIT),
            },
            extra_args=["--forwarded-allow-ips", ""],
        )
        try:
            yield server
        finally:
            server.stop()


def test_production_hides_docs_and_guards_metrics(production_api):
    with production_api.client() as client:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert client.get(path).status_code == 404, path
        assert client.get("/metrics").status_code == 401
        wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        good = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        health = client.get("/health")
    assert good.status_code == 200 and "commune_requests_total" in good.text
    assert health.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    _assert_protective_headers(health)


def test_production_without_a_metrics_token_serves_no_metrics(tmp_path):
    from fastapi.testclient import TestClient

    closed = create_app(Settings(data_dir=tmp_path / "a", production=True))
    with TestClient(closed) as client:
        assert client.get("/metrics").status_code == 404
        assert client.get("/openapi.json").status_code == 404
    kept = create_app(Settings(data_dir=tmp_path / "b", production=True, docs=True))
    with TestClient(kept) as client:
        assert client.get("/openapi.json").status_code == 200


def _fail_until_limited(client: httpx.Client, forwarded_for, limit: int) -> list[int]:
    """Failed logins, each with a new username, until one is refused with 429 (at most twice
    the limit: the limiter's fixed window may turn over once on the way)."""
    statuses: list[int] = []
    for i in range(2 * limit + 1):
        answer = client.post(
            "/auth/login",
            json={"username": new_name("u"), "password": "x"},
            headers={"X-Forwarded-For": forwarded_for(i)},
        )
        statuses.append(answer.status_code)
        if answer.status_code == 429:
            break
    return statuses


@pytest.fixture(scope="module")
def proxied_api() -> Iterator[ApiServer]:
    """A server that names 127.0.0.1 as its load balancer (the test helper's default)."""
    with tempfile.TemporaryDirectory(prefix="commune-proxied-") as tmp:
        server = start_api_server(
            sqlite_url(Path(tmp)),
            Path(tmp),
            extra_env={"COMMUNE_LOGIN_ATTEMPTS_PER_ADDRESS": str(ADDRESS_LIMIT)},
        )
        try:
            yield server
        finally:
            server.stop()


def test_no_proxy_is_trusted_by_default_and_usernames_cycled_from_one_address_are_stopped(
    production_api,
):
    """Each attempt claims another address in X-Forwarded-For and tries another username: the
    server believes no proxy, so all count against 127.0.0.1, and the per-address limit stops
    them."""
    limit = ADDRESS_LIMIT
    with production_api.client() as client:
        statuses = _fail_until_limited(client, lambda i: f"203.0.113.{i + 1}", limit)
    assert statuses[-1] == 429 and set(statuses[:-1]) == {401}
    assert len(statuses) > limit  # the limit, not fewer


def test_login_limit_per_address_across_usernames_behind_a_named_proxy(proxied_api):
    """Behind a named proxy, one client address cycling usernames is stopped at the limit,
    while another client address still gets its own tries."""
    limit = ADDRESS_LIMIT
    with proxied_api.client() as client:
        statuses = _fail_until_limited(client, lambda i: "198.51.100.7", limit)
        other = client.post(
            "/auth/login",
            json={"username": new_name("u"), "password": "x"},
            headers={"X-Forwarded-For": "198.51.100.8"},
        )
    assert statuses[-1] == 429 and set(statuses[:-1]) == {401}
    assert len(statuses) > limit
    assert other.status_code == 401


# ---- tokens: expiry, renewal, logout (SQLite and PostgreSQL) --------------------------------


def _set_device(api: ApiServer, device_id: str, **values) -> None:
    with api.engine.begin() as conn:
        conn.execute(update(Device).where(Device.id == device_id).values(**values))


def test_tokens_expire_and_the_refresh_token_renews_them(api_server):
    api = api_server
    tablet = api.enrol(new_name("officer"), "officer", [new_ward()])
    assert tablet.refresh_token
    with api.client(tablet.token) as client:
        assert client.get("/sync/pull").status_code == 200
    _set_device(api, tablet.device_id, token_expires_at=PAST)
    with api.client(tablet.token) as client:
        expired = client.get("/sync/pull")
    assert expired.status_code == 401 and expired.json()["error"]["code"] == "token_expired"
    with api.client() as client:
        first = client.post("/auth/refresh", json={"refresh_token": tablet.refresh_token})
        # The answer lost on a bad link: asking again with the same refresh token works.
        again = client.post("/auth/refresh", json={"refresh_token": tablet.refresh_token})
        unknown = client.post("/auth/refresh", json={"refresh_token": "not-a-refresh-token"})
    assert first.status_code == 200 and again.status_code == 200, (first.text, again.text)
    expires = dt.datetime.fromisoformat(again.json()["expires_at"])
    assert dt.timedelta(hours=11) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=12)
    assert unknown.status_code == 401 and unknown.json()["error"]["code"] == "invalid_refresh"
    with api.client(first.json()["token"]) as client:  # replaced by the second renewal
        assert client.get("/sync/pull").status_code == 401
    with api.client(again.json()["token"]) as client:
        assert client.get("/sync/pull").status_code == 200

    _set_device(api, tablet.device_id, refresh_expires_at=PAST)  # unused for too long
    with api.client() as client:
        ended = client.post("/auth/refresh", json={"refresh_token": tablet.refresh_token})
    assert ended.status_code == 401 and ended.json()["error"]["code"] == "session_expired"


def test_a_revoked_device_cannot_renew(api_server):
    api = api_server
    tablet = api.enrol(new_name("auditor"), "auditor", [new_ward()])
    identity.revoke_device(api.engine, tablet.device_id)
    with api.client() as client:
        refused = client.post("/auth/refresh", json={"refresh_token": tablet.refresh_token})
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "device_revoked"
    transport = Transport(api.url, tablet.token, refresh_token=tablet.refresh_token, retry=FAST)
    with transport, pytest.raises(DeviceRevoked):
        transport.renew()


def test_the_client_renews_before_and_when_the_token_expires(api_server):
    api = api_server
    tablet = api.enrol(new_name("officer"), "officer", [new_ward()])
    renewed: list[dict] = []
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    with Transport(
        api.url,
        tablet.token,
        refresh_token=tablet.refresh_token,
        expires_at=soon,
        on_renewed=renewed.append,
        retry=FAST,
    ) as transport:
        transport.pull(0)  # within 5 minutes of expiry: renewed first
        assert len(renewed) == 1 and transport.token == renewed[0]["token"] != tablet.token
        assert transport.expires_at > soon + dt.timedelta(hours=11)
        # Expired on the server while the client thought otherwise: renewed on the 401.
        _set_device(api, tablet.device_id, token_expires_at=PAST)
        transport.pull(0)
        assert len(renewed) == 2 and transport.token == renewed[1]["token"]
        _set_device(api, tablet.device_id, token_expires_at=PAST, refresh_expires_at=PAST)
        with pytest.raises(SessionExpired):
            transport.pull(0)


def test_requests_at_once_after_expiry_renew_once_and_all_go_through(api_server):
    """A sync sends several requests at once (the reference beside the first pull page, a
    page ahead). When the token expires under them, one renewal must serve them all: a
    second renewal would retire the token the first one handed to the others."""
    api = api_server
    tablet = api.enrol(new_name("officer"), "officer", [new_ward()])
    _set_device(api, tablet.device_id, token_expires_at=PAST)
    renewed: list[dict] = []
    start = threading.Barrier(4)

    def pull(transport: Transport) -> None:
        start.wait(timeout=10)
        transport.pull(0)

    with (
        Transport(
            api.url,
            tablet.token,
            refresh_token=tablet.refresh_token,
            on_renewed=renewed.append,
            retry=FAST,
        ) as transport,
        ThreadPoolExecutor(4) as pool,
    ):
        done = [pool.submit(pull, transport) for _ in range(4)]
        errors = [f.exception(timeout=30) for f in done]
    assert errors == [None] * 4
    assert len(renewed) == 1 and transport.token == renewed[0]["token"] != tablet.token


def test_a_sync_renews_an_expired_token_without_anyone_noticing(api_server, tmp_path):
    api = api_server
    ward = new_ward()
    username = new_name("officer")
    api.add_user(username, "officer", [ward])
    code = identity.create_enrol_code(api.engine, username, 10)
    answer = dataclasses.asdict(identity.enrol(api.engine, code, "tablet"))
    store = create_store(tmp_path / "store", "2468", settings=KeySettings.for_tests(base_delay_s=0))
    try:
        enrolment.save_enrolment(store.settings, api.url, answer)
        _set_device(api, answer["device_id"], token_expires_at=PAST)
        with Transport.from_settings(store.settings, retry=FAST) as transport:
            report = SyncEngine(store.sync, transport).run_once()
        assert report.ok, report.errors
        assert store.settings.get("device_token") != answer["token"]
        kept = dt.datetime.fromisoformat(store.settings.get("token_expires_at"))
        assert kept > dt.datetime.now(dt.UTC) + dt.timedelta(hours=11)
        with api.client(store.settings.get("device_token")) as client:  # the kept one works
            pushed = client.post("/sync/push", json={"mutations": [new_dossier(Clock(), ward)]})
        assert pushed.status_code == 200
    finally:
        store.close()


def test_desktop_login_logs_out_and_tablets_cannot(api_server):
    api = api_server
    username = new_name("sup")
    api.add_user(username, "supervisor", ["*"], password=PASSWORD)
    settings = DictSettings()
    answer = enrolment.login(settings, api.url, username, PASSWORD)
    token, refresh = settings["device_token"], settings["refresh_token"]
    assert answer["role"] == "supervisor" and token and refresh and settings["token_expires_at"]
    with api.client(token) as client:
        assert client.get("/reviews").status_code == 200
    enrolment.logout(settings)
    assert settings["device_token"] is None and settings["refresh_token"] is None
    with api.client(token) as client:
        after = client.get("/reviews")
    assert after.status_code == 401 and after.json()["error"]["code"] == "token_expired"
    with api.client() as client:
        renewal = client.post("/auth/refresh", json={"refresh_token": refresh})
    assert renewal.status_code == 401
    tablet = api.enrol(new_name("officer"), "officer", [new_ward()])
    with api.client(tablet.token) as client:
        refused = client.post("/auth/logout")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_a_login"


STORE_PASSPHRASE = "con mèo đen 2468"


def test_cli_login_and_logout(sqlite_api_server, tmp_path, monkeypatch, capsys):
    api = sqlite_api_server
    username = new_name("admin")
    api.add_user(username, "admin", ["*"], password=PASSWORD)
    folder = str(tmp_path / "desk")
    # No keystore in this process (the file fallback): a passphrase, as the rule asks.
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{STORE_PASSPHRASE}\n{PASSWORD}\n"))
    base = ["--data-dir", folder]
    code = main([*base, "login", "--server", api.url, "--username", username, "--pin-stdin",
                 "--password-stdin"])  # fmt: skip
    assert code == 0 and f"logged in as {username}" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{STORE_PASSPHRASE}\n"))
    assert main([*base, "logout", "--pin-stdin"]) == 0
    assert "logged out" in capsys.readouterr().out
    sessions = [d for d, user in identity.list_devices(api.engine) if user == username]
    assert len(sessions) == 1 and sessions[0].kind == "desktop"
    assert sessions[0].refresh_hash is None  # ended on the server
