"""Server settings: one frozen object built from arguments or environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import platformdirs

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
    max_body_bytes: int = 32 * 1024 * 1024  # after decompression
    pull_limit_max: int = 1000
    enrol_code_ttl_minutes: int = 60
    login_attempts_per_window: int = 10
    enrol_attempts_per_window: int = 10
    rate_window_seconds: int = 60
    db_pool_size: int = 10

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
            values["migrate_on_start"] = env["COMMUNE_MIGRATE_ON_START"].lower() in ("1", "true")
        for name in ("max_attachment_bytes", "max_body_bytes", "db_pool_size"):
            if env.get(ENV_PREFIX + name.upper()):
                values[name] = int(env[ENV_PREFIX + name.upper()])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
