"""Server settings: one frozen object built from arguments or environment variables."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import platformdirs

from app.domain.calendar import WorkingCalendar

APP_NAME = "commune-field"
ENV_PREFIX = "COMMUNE_"
SERVER_NODE = "server"  # the clock node of what the server itself writes (conflicts, decisions)


def default_data_dir() -> Path:
    chosen = os.environ.get("COMMUNE_DATA_DIR")
    return Path(chosen) if chosen else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=default_data_dir)
    database_url: str = ""  # empty: SQLite file `server/commune.db` in the data dir (WAL)
    attachment_dir: Path | None = None  # None: `server/attachments` in the data dir
    # The server data key ring (see server.core.sealing); COMMUNE_SERVER_KEY overrides the file.
    server_key_file: Path | None = None  # None: `keys/server.key` in the data dir
    migrate_on_start: bool = True
    max_attachment_bytes: int = 50 * 1024 * 1024
    max_chunk_bytes: int = 8 * 1024 * 1024
    max_body_bytes: int = 32 * 1024 * 1024  # counted while reading, and after decompression
    max_auth_body_bytes: int = 64 * 1024  # /auth/*: a code, a name, a password
    spool_memory_bytes: int = 1024 * 1024  # a body past this waits in a temporary file
    pull_limit_max: int = 4000  # the largest pull page served (asked for more: clamped)
    enrol_code_ttl_minutes: int = 60
    login_attempts_per_window: int = 10  # per address and username
    login_attempts_per_address: int = 30  # per address, whatever the usernames
    enrol_attempts_per_window: int = 10
    rate_window_seconds: int = 60
    db_pool_size: int = 10
    # Bearer tokens expire; the refresh token (sent only to /auth/refresh) renews them until it
    # has gone unused this long. A revoked device or an ended session cannot renew.
    token_ttl_minutes: int = 12 * 60
    device_refresh_days: int = 30  # enrolled tablets: a month offline still renews
    login_refresh_days: int = 7  # desktop logins (/auth/login)
    # production: /docs, /redoc, /openapi.json off unless `docs` says otherwise, and /metrics
    # only with `metrics_token` (off without one). Not production: all open (embedded demo).
    production: bool = False
    docs: bool | None = None  # None: on unless production
    metrics_token: str = ""
    hsts_seconds: int = 0  # >0: Strict-Transport-Security (set when clients reach it by https)
    # Report snapshots published by the API process itself every this many seconds, when a
    # dossier or audit changed or the day turned (0: off; `commune report publish` from cron).
    report_publish_seconds: int = 300

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'server' / 'commune.db'}"

    @property
    def blobs_dir(self) -> Path:
        return self.attachment_dir or self.data_dir / "server" / "attachments"

    @property
    def key_file(self) -> Path:
        return self.server_key_file or self.data_dir / "keys" / "server.key"

    @property
    def is_sqlite(self) -> bool:
        return self.db_url.startswith("sqlite")

    @property
    def docs_enabled(self) -> bool:
        return (not self.production) if self.docs is None else self.docs

    def with_(self, **changes) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_env(cls, **overrides) -> Settings:
        """Settings from COMMUNE_* variables (used by `uvicorn --factory` workers)."""
        env = os.environ
        values: dict = {}
        if env.get("COMMUNE_DATA_DIR"):
            values["data_dir"] = Path(env["COMMUNE_DATA_DIR"])
        if env.get("COMMUNE_DATABASE_URL"):
            values["database_url"] = env["COMMUNE_DATABASE_URL"]
        if env.get("COMMUNE_ATTACHMENT_DIR"):
            values["attachment_dir"] = Path(env["COMMUNE_ATTACHMENT_DIR"])
        if env.get("COMMUNE_SERVER_KEY_FILE"):
            values["server_key_file"] = Path(env["COMMUNE_SERVER_KEY_FILE"])
        if env.get("COMMUNE_MIGRATE_ON_START"):
            values["migrate_on_start"] = _flag(env["COMMUNE_MIGRATE_ON_START"])
        for name in INT_SETTINGS:
            if env.get(ENV_PREFIX + name.upper()):
                values[name] = int(env[ENV_PREFIX + name.upper()])
        if env.get("COMMUNE_ENV"):
            values["production"] = env["COMMUNE_ENV"].strip().lower() == "production"
        if env.get("COMMUNE_DOCS"):
            values["docs"] = _flag(env["COMMUNE_DOCS"])
        if env.get("COMMUNE_METRICS_TOKEN"):
            values["metrics_token"] = env["COMMUNE_METRICS_TOKEN"]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


INT_SETTINGS = (
    "max_attachment_bytes",
    "max_body_bytes",
    "db_pool_size",
    "token_ttl_minutes",
    "device_refresh_days",
    "login_refresh_days",
    "login_attempts_per_window",
    "login_attempts_per_address",
    "rate_window_seconds",
    "hsts_seconds",
    "report_publish_seconds",
    "pull_limit_max",
)


def _flag(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")
@lru_cache(maxsize=1)
def server_calendar() -> WorkingCalendar:
    """The working calendar the server recomputes appointment dates with: Vietnam's holidays
    (the `holidays` package) and the official changes of the year, set like the devices' own
    (`commune calendar`): COMMUNE_MAKE_UP_DAYS and COMMUNE_EXTRA_HOLIDAYS, ISO dates separated
    by commas. A device whose calendar days differ has its new dossiers refused with
    `appointment_date_mismatch`."""
    return WorkingCalendar(_dates("COMMUNE_MAKE_UP_DAYS"), _dates("COMMUNE_EXTRA_HOLIDAYS"))


def _dates(variable: str) -> list[dt.date]:
    text = os.environ.get(variable, "")
    return [dt.date.fromisoformat(part.strip()) for part in text.split(",") if part.strip()]
