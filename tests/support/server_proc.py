"""The REAL central API as a subprocess on 127.0.0.1, for tests of the server and the sync client.

    from tests.support.server_proc import api_server, sqlite_api_server  # in your conftest

- `start_api_server(db_url, data_dir, workers=1, extra_args=[...])` -> `ApiServer` (waits for
  /health, bounded); `workers` and `extra_args` go to `commune api`.
- `ApiServer.add_user(username, role, wards, password=None)`, `.enrol(username, ...)` ->
  `EnrolledDevice(device_id, token, code_slot, ...)`, `.client(token)` -> httpx.Client,
  `.kill()` (SIGKILL), `.restart()`, `.stop()`, `.count(table)`.
- Fixtures: `sqlite_api_server` (module scope, SQLite file), `postgres_api_server` (module scope,
  fresh database on the session's PostgreSQL), `api_server` (module scope, parametrized over
  both; the PostgreSQL case carries the `postgres` mark).
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.postgres import free_port, postgres_server  # noqa: F401  (fixture re-export)

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 40
_MAIN = "import sys; from app.cli import main; sys.exit(main())"


@dataclass(frozen=True)
class EnrolledDevice:
    device_id: str
    token: str
    code_slot: int | None
    user: str
    role: str
    wards: list[str]
    refresh_token: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class ApiServer:
    def __init__(
        self,
        db_url: str,
        data_dir: Path,
        extra_env: dict[str, str] | None = None,
        workers: int = 1,
        extra_args: list[str] | None = None,
    ):
        self.db_url = db_url
        self.workers = workers
        self.extra_args = list(extra_args or [])  # more `commune api` options
        self.data_dir = Path(data_dir)
        self.extra_env = extra_env or {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self._engine = None

    # -- process -------------------------------------------------------------------------
    def start(self) -> ApiServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.data_dir / "server.log", "ab")  # noqa: SIM115 (lives with the process)
        command = [
            sys.executable,
            "-c",
            _MAIN,
            "--data-dir",
            str(self.data_dir),
            "api",
            "--db",
            self.db_url,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            # The tests play a load balancer on 127.0.0.1 (X-Forwarded-For per tablet); the
            # default trusts no proxy, and extra_args may say so again (the last one counts).
            "--forwarded-allow-ips",
            "127.0.0.1",
            *self.extra_args,
        ]
        # Snapshots published by the API itself only where a test asks (exact pulls elsewhere).
        quiet = {"COMMUNE_REPORT_PUBLISH_SECONDS": "0"}
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **quiet, **self.extra_env}
        self.process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=log, stderr=log, env=env)
        log.close()
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"API server exited early:\n{self.log_tail()}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"API server not healthy after {START_TIMEOUT_S}s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        log = self.data_dir / "server.log"
        return log.read_text(errors="replace")[-chars:] if log.exists() else ""

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush; what a power cut does."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=15)

    def freeze(self) -> None:
        """SIGSTOP: the kernel still accepts connections into the listen queue, and nothing
        ever answers them (a server hung in a deadlock, a VM paused)."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)

    def restart(self) -> ApiServer:
        self.stop()
        return self.start()

    # -- data ----------------------------------------------------------------------------
    @property
    def engine(self):
        if self._engine is None:
            from server.core.db import make_engine

            self._engine = make_engine(self.db_url, pool_size=2)
        return self._engine

    def count(self, table: str) -> int:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            return conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()

    def add_user(self, username: str, role: str, wards: list[str], password: str | None = None):
        from server.services import identity

        return identity.create_user(self.engine, username, role, wards, password)

    def enrol(
        self,
        username: str,
        role: str | None = None,
        wards: list[str] | None = None,
        device_name: str = "test tablet",
    ) -> EnrolledDevice:
        """Enrol a device through the real endpoint (creating the user first if role given)."""
        from server.services import identity

        if role is not None:
            self.add_user(username, role, wards or [])
        code = identity.create_enrol_code(self.engine, username, 10)
        # Each tablet enrols from its own address, as behind a load balancer (the test server
        # trusts X-Forwarded-For from 127.0.0.1, see `start`): a fuzz run's failed
        # enrolments from 127.0.0.1 must not rate-limit the tablets of the next test.
        response = httpx.post(
            self.url + "/auth/enrol",
            json={"code": code, "device_name": device_name},
            headers={"X-Forwarded-For": _next_client_address()},
            timeout=30,
        )
        response.raise_for_status()
        body = response.json()
        return EnrolledDevice(
            body["device_id"],
            body["token"],
            body["code_slot"],
            body["user"],
            body["role"],
            body["wards"],
            body.get("refresh_token", ""),
        )

    def client(self, token: str | None = None, timeout: float = 60) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)


_client_numbers = itertools.count(1)


def _next_client_address() -> str:
    number = next(_client_numbers)
    return f"198.18.{number // 250 % 250}.{number % 250 + 1}"  # a benchmarking range (RFC 2544)


def start_api_server(
    db_url: str,
    data_dir: Path,
    extra_env: dict | None = None,
    workers: int = 1,
    extra_args: list[str] | None = None,
) -> ApiServer:
    return ApiServer(db_url, data_dir, extra_env, workers, extra_args).start()


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{Path(data_dir) / 'central.db'}"


@pytest.fixture(scope="module")
def sqlite_api_server() -> Iterator[ApiServer]:
    with tempfile.TemporaryDirectory(prefix="commune-api-") as tmp:
        server = start_api_server(sqlite_url(Path(tmp)), Path(tmp))
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="module")
def postgres_api_server(postgres_server) -> Iterator[ApiServer]:  # noqa: F811
    with tempfile.TemporaryDirectory(prefix="commune-api-") as tmp:
        server = start_api_server(postgres_server.create_database(), Path(tmp))
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def api_server(request) -> ApiServer:
    name = "sqlite_api_server" if request.param == "sqlite" else "postgres_api_server"
    return request.getfixturevalue(name)
