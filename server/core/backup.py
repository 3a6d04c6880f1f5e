"""Sealed backups of the central database: a consistent copy, sealed with a backup key.

- SQLite: the online backup API (a consistent copy while the API runs). PostgreSQL: `pg_dump -Fc`.
- The copy is sealed into one file: `"CFSB" | 0x01 | stream prefix(7) | wrap nonce(12) |
  file key wrapped by the backup key (48)`, then chunks `u32 length | AES-256-GCM(file key,
  nonce = prefix | index | final, aad = header | index | final)` of up to 1 MiB. Nothing in it is
  readable; truncation, reordering and edits fail.
- The backup key is 32 random bytes in a 0600 file (default `<data dir>/backup.key`, made on first
  use). Keep a copy of it away from the server and away from the backups.
- Restore: open the file with the key, then the SQLite backup API into the target file, or
  `pg_restore --clean --if-exists --single-transaction` into the target database.
- Scheduled: `COMMUNE_BACKUP_DIR` turns on a job in the API process (APScheduler) every
  `COMMUNE_BACKUP_EVERY_HOURS` (default 24, first run at start), keeping the newest
  `COMMUNE_BACKUP_KEEP` (default 7) files.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import sqlite3
import struct
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.engine import make_url

MAGIC = b"CFSB"
FORMAT = 1
CHUNK_BYTES = 1 << 20
_HEAD = struct.Struct(">4sB7s12s")
HEADER_BYTES = _HEAD.size + 32 + 16
_U32 = struct.Struct(">I")
KEY_FILE = "backup.key"
SUFFIX = ".cfsb"
PG_TIMEOUT_S = 3600


class BackupError(Exception):
    """A backup that cannot be made, opened or restored (the message says why)."""


# ---------------------------------------------------------------- the key


def load_or_create_key(path: Path) -> bytes:
    path = Path(path)
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        key = secrets.token_bytes(32)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
    if len(key) != 32:
        raise BackupError(f"{path} is not a backup key (32 bytes)")
    return key


def load_key(path: Path) -> bytes:
    try:
        key = Path(path).read_bytes()
    except OSError as exc:
        raise BackupError(f"cannot read the backup key {path}: {exc}") from exc
    if len(key) != 32:
        raise BackupError(f"{path} is not a backup key (32 bytes)")
    return key


# ---------------------------------------------------------------- dump and load


def _kind(db_url: str) -> str:
    name = make_url(db_url).get_backend_name()
    if name not in ("sqlite", "postgresql"):
        raise BackupError(f"no backup for {name} databases")
    return name


def _sqlite_path(db_url: str) -> Path:
    database = make_url(db_url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory database has nothing to back up")
    return Path(database)


def _libpq_url(db_url: str) -> str:
    return make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False)


def _run(command: list[str]) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PG_TIMEOUT_S)
    except FileNotFoundError as exc:
        raise BackupError(f"{command[0]} is not installed") from exc
    if done.returncode != 0:
        raise BackupError(f"{command[0]} failed: {done.stderr.strip()[-500:]}")


def dump(db_url: str, out: Path) -> None:
    """A consistent plain copy of the database at `out`."""
    if _kind(db_url) == "sqlite":
        source = sqlite3.connect(str(_sqlite_path(db_url)))
        dest = sqlite3.connect(str(out))
        try:
            source.backup(dest)
        finally:
            dest.close()
            source.close()
        return
    _run(["pg_dump", "--format=custom", "--no-owner", "--file", str(out), _libpq_url(db_url)])


def load(db_url: str, copy: Path) -> None:
    """Put the copy's content into the database at `db_url` (stop the API first)."""
    if _kind(db_url) == "sqlite":
        target = _sqlite_path(db_url)
        target.parent.mkdir(parents=True, exist_ok=True)
        source = sqlite3.connect(str(copy))
        dest = sqlite3.connect(str(target))
        try:
            source.backup(dest)
        finally:
            dest.close()
            source.close()
        return
    _run(["pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction",
          "--dbname", _libpq_url(db_url), str(copy)])


# ---------------------------------------------------------------- sealing


def seal(src: Path, out: Path, key: bytes) -> None:
    prefix, wrap_nonce, file_key = (secrets.token_bytes(n) for n in (7, 12, 32))
    head = _HEAD.pack(MAGIC, FORMAT, prefix, wrap_nonce)
    header = head + AESGCM(key).encrypt(wrap_nonce, file_key, head)
    aead = AESGCM(file_key)
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh, Path(src).open("rb") as plain:
            fh.write(header)
            index, block = 0, plain.read(CHUNK_BYTES)
            while True:
                following = plain.read(CHUNK_BYTES)
                final = not following
                nonce, aad = _nonce_aad(prefix, header, index, final)
                sealed = aead.encrypt(nonce, block, aad)
                fh.write(_U32.pack(len(sealed)) + sealed)
                if final:
                    break
                index, block = index + 1, following
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def unseal(sealed_file: Path, out: Path, key: bytes) -> None:
    with Path(sealed_file).open("rb") as fh, out.open("wb") as plain:
        for block in _open_chunks(fh, key):
            plain.write(block)


def _open_chunks(fh: BinaryIO, key: bytes) -> Iterator[bytes]:
    header = fh.read(HEADER_BYTES)
    if len(header) != HEADER_BYTES or header[:4] != MAGIC:
        raise BackupError("not a server backup file")
    _, version, prefix, wrap_nonce = _HEAD.unpack(header[: _HEAD.size])
    if version != FORMAT:
        raise BackupError(f"unknown backup format {version}")
    try:
        file_key = AESGCM(key).decrypt(wrap_nonce, header[_HEAD.size :], header[: _HEAD.size])
    except InvalidTag:
        raise BackupError("this backup was sealed with another backup key") from None
    aead, index = AESGCM(file_key), 0
    while True:
        raw = fh.read(4)
        if len(raw) != 4:
            raise BackupError("backup truncated")
        sealed = fh.read(_U32.unpack(raw)[0])
        final = not fh.peek(1)
        nonce, aad = _nonce_aad(prefix, header, index, final)
        try:
            yield aead.decrypt(nonce, sealed, aad)
        except InvalidTag:
            raise BackupError(f"backup damaged or edited (chunk {index})") from None
        if final:
            return
        index += 1


def _nonce_aad(prefix: bytes, header: bytes, index: int, final: bool) -> tuple[bytes, bytes]:
    flag = b"\x01" if final else b"\x00"
    return prefix + struct.pack(">I", index) + flag, header + struct.pack(">Q", index) + flag


# ---------------------------------------------------------------- the commands' work


def backup(db_url: str, out: Path, key: bytes) -> int:
    """Dump and seal; returns the sealed file's size."""
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix=".commune-backup-", dir=out.parent) as work:
        copy = Path(work) / "copy"
        dump(db_url, copy)
        seal(copy, out, key)
    return out.stat().st_size


def restore(sealed_file: Path, db_url: str, key: bytes) -> None:
    with tempfile.TemporaryDirectory(prefix=".commune-restore-") as work:
        os.chmod(work, 0o700)
        copy = Path(work) / "copy"
        unseal(sealed_file, copy, key)
        load(db_url, copy)


# ---------------------------------------------------------------- scheduled backups


@dataclass
class BackupSchedule:
    db_url: str
    folder: Path
    key: bytes
    every_hours: float = 24.0
    keep: int = 7

    @classmethod
    def from_env(cls, db_url: str, data_dir: Path) -> BackupSchedule | None:
        folder = os.environ.get("COMMUNE_BACKUP_DIR")
        if not folder:
            return None
        key_path = os.environ.get("COMMUNE_BACKUP_KEY_FILE") or str(Path(data_dir) / KEY_FILE)
        return cls(
            db_url, Path(folder), load_or_create_key(Path(key_path)),
            float(os.environ.get("COMMUNE_BACKUP_EVERY_HOURS", "24")),
            max(1, int(os.environ.get("COMMUNE_BACKUP_KEEP", "7"))),
        )

    def run_once(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        out = self.folder / f"commune-{stamp}{SUFFIX}"
        backup(self.db_url, out, self.key)
        for old in sorted(self.folder.glob(f"commune-*{SUFFIX}"))[: -self.keep]:
            old.unlink()
        return out

    def start(self):
        """The job in a background scheduler, first run now; returns the scheduler."""
        from apscheduler.schedulers.background import BackgroundScheduler

        scheduler = BackgroundScheduler(timezone="UTC")
        scheduler.add_job(
            self.run_once, "interval", hours=self.every_hours, id="backup",
            next_run_time=dt.datetime.now(dt.UTC), max_instances=1, coalesce=True,
        )
        scheduler.start()
        return scheduler
