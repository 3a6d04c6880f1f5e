"""Sealed device backups: one file that restores a store, its outbox and attachments elsewhere.

A backup is opened with a secret alone (the PIN, or a backup passphrase), because the new device
has none of the old one's keystore. That file can be guessed at offline, so the secret must pass
the no-keystore rule of `secret_strength` at the store's Argon2 cost, like a folder without a
keystore.

Format (binary, nothing readable; every byte after the header is AES-256-GCM ciphertext):

    header  = MAGIC "CFBK" | 0x01 | time_cost u32 | memory_cost u32 | lanes u8 | salt(16)
              | wrap nonce(12) | stream prefix(7) | wrapped backup key(48)
    chunk i = u32 length | AES-GCM(backup key, nonce = prefix | i u32 | final u8,
                                   aad = header | i u64 | final u8, up to 1 MiB)

The KEK is HKDF(Argon2id(secret, salt), "…/backup-kek"); the wrap's associated data is the header
without the wrapped key, so editing the cost or salt fails. The plaintext stream is
`u32 manifest length | manifest JSON | entry bytes in manifest order`; the manifest carries the data
key, the Argon2/attempt settings and each entry's name and size. Entries: `store.db` (a
consistent plain SQLite snapshot of the store, whose rows are sealed one by one anyway) and every
sealed attachment under `files/`. Truncation (no final chunk), reordering and edits all fail.

Restoring writes the entries into an empty data folder and wraps the SAME data key under the PIN
with that device's keystore: the device id, clock, outbox and enrolment come back as they were, so
unsynced work is pushed once (mutation ids are unchanged; the server applies each at most once).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import sqlite3
import struct
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.storage.crypto import KEY_BYTES, TAG_BYTES, hkdf
from app.storage.db import DB_FILE, db_path
from app.storage.errors import StorageError, TamperError
from app.storage.keys import KeySettings, argon2id

MAGIC = b"CFBK"
BACKUP_FORMAT = 1
CHUNK_BYTES = 1 << 20
_PREFIX_BYTES = 7
_HEAD = struct.Struct(">4sBIIB16s12s7s")
_WRAPPED_BYTES = KEY_BYTES + TAG_BYTES
HEADER_BYTES = _HEAD.size + _WRAPPED_BYTES
_KEK_INFO = b"commune-field/v1/backup-kek"
_U32 = struct.Struct(">I")
FILES_DIR = "files"

Progress = Callable[[int, int], None]  # (bytes done, bytes in all)


class WrongBackupSecret(StorageError):
    def __str__(self) -> str:
        return (
            "Sai mã PIN hoặc cụm mật khẩu của bản sao lưu / "
            "Wrong PIN or passphrase for this backup"
        )


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    size: int
    entries: int
    device_id: str


# ---------------------------------------------------------------- writing


def write_backup(
    *,
    out: Path,
    data_dir: Path,
    data_key: bytes,
    settings: KeySettings,
    secret: str,
    device_id: str,
    snapshot: Callable[[Path], None],
    progress: Progress | None = None,
    recovery_public: str | None = None,
) -> BackupInfo:
    """Seal `data_dir`'s store into `out`. `snapshot(path)` writes a consistent plain copy of the
    database to `path` (the caller holds the open store)."""
    settings.check_secret_without_keystore(secret)
    out = Path(out)
    work = Path(tempfile.mkdtemp(prefix=".backup-", dir=data_dir))  # 0700, inside the store
    try:
        snapshot_path = work / DB_FILE
        snapshot(snapshot_path)
        entries = [(DB_FILE, snapshot_path)] + _attachment_entries(Path(data_dir) / FILES_DIR)
        manifest = {
            "format": BACKUP_FORMAT,
            "data_key": data_key.hex(),
            "device_id": device_id,
            "settings": asdict(settings),
            "entries": [{"name": name, "size": path.stat().st_size} for name, path in entries],
        }
        total = sum(e["size"] for e in manifest["entries"])
        tmp = out.with_name(f".{out.name}.{secrets.token_hex(4)}.tmp")
        try:
            with _private_file(tmp) as fh:
                writer = _SealedWriter(fh, secret, settings, recovery_public, device_id)
                body = json.dumps(manifest).encode()
                writer.write(_U32.pack(len(body)) + body)
                done = 0
                for _, path in entries:
                    with path.open("rb") as src:
                        while block := src.read(CHUNK_BYTES):
                            writer.write(block)
                            done += len(block)
                            if progress:
                                progress(done, total)
                writer.close()
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, out)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return BackupInfo(out, out.stat().st_size, len(entries), device_id)


def sqlite_snapshot(source_conn, path: Path) -> None:
    """A plain copy of an open store connection (sqlite3 or SQLCipher) at `path`."""
    if isinstance(source_conn, sqlite3.Connection):
        dest = sqlite3.connect(str(path))
        try:
            source_conn.backup(dest)
        finally:
            dest.close()
        return
    # SQLCipher: export into an attached plain database (the reverse of encrypt_plain_store).
    source_conn.execute(f"ATTACH DATABASE '{_sql_path(path)}' AS plain KEY ''")
    try:
        source_conn.execute("SELECT sqlcipher_export('plain')")
    finally:
        source_conn.execute("DETACH DATABASE plain")


INCARNATION = "incarnation"  # meta key: which copy of a store this is
# meta key, present in a backup's copy until its first whole pull: the server may hold records
# this device pushed after the copy was made, which the copy lacks.
PULL_OWN_RECORDS = "pull_own_records"


def new_incarnation(path: Path) -> None:
    """Give the plain snapshot at `path` an incarnation of its own: a store put back from it
    makes write ids no write of the store it was copied from made after the copy
    (`app.domain.mutations.derived_mutation_id`). The copy also asks for its own records on
    its first pull (`PULL_OWN_RECORDS`): the server leaves a device's own pushes out of its
    pulls, which a store put back from an older copy does not hold."""
    conn = sqlite3.connect(str(path))
    try:
        with conn:
            conn.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                [(INCARNATION, secrets.token_hex(8)), (PULL_OWN_RECORDS, "1")],
            )
    finally:
        conn.close()


def _sql_path(path: Path) -> str:
    text = str(path)
    if "'" in text:
        raise StorageError("backup work folder path contains a quote")
    return text


def _attachment_entries(files_dir: Path) -> list[tuple[str, Path]]:
    if not files_dir.is_dir():
        return []
    found = sorted(p for p in files_dir.rglob("*") if p.is_file() and not p.name.startswith("."))
    return [(f"{FILES_DIR}/{p.relative_to(files_dir).as_posix()}", p) for p in found]


@contextlib.contextmanager
def _private_file(path: Path) -> Iterator[BinaryIO]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        yield fh


class _SealedWriter:
    """Buffers plaintext into 1 MiB chunks, seals each; `close` seals the final one."""

    def __init__(self, fh: BinaryIO, secret: str, settings: KeySettings,
                 recovery_public: str | None = None, device_id: str = "") -> None:
        self.fh = fh
        salt, wrap_nonce = secrets.token_bytes(16), secrets.token_bytes(12)
        prefix = secrets.token_bytes(_PREFIX_BYTES)
        head = _HEAD.pack(
            MAGIC, BACKUP_FORMAT, settings.argon2_time_cost, settings.argon2_memory_cost,
            settings.argon2_parallelism, salt, wrap_nonce, prefix,
        )
        backup_key = secrets.token_bytes(KEY_BYTES)
        kek = _backup_kek(secret, salt, settings)
        wrapped = AESGCM(kek).encrypt(wrap_nonce, backup_key, head)
        self.header = head + wrapped
        fh.write(self.header)
        escrow = b""
        if recovery_public:  # the backup key also sealed to the organisation's recovery key
            from app.storage.recovery import seal_to

            context = {"store_id": _backup_escrow_id(self.header), "device_id": device_id}
            escrow = json.dumps(seal_to(recovery_public, backup_key, context)).encode()
        fh.write(_U32.pack(len(escrow)) + escrow)
        self.aead, self.prefix = AESGCM(backup_key), prefix
        self.index = 0
        self.buffer = bytearray()

    def write(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) > CHUNK_BYTES:
            self._seal(bytes(self.buffer[:CHUNK_BYTES]), final=False)
            del self.buffer[:CHUNK_BYTES]

    def close(self) -> None:
        self._seal(bytes(self.buffer), final=True)
        self.buffer.clear()

    def _seal(self, plain: bytes, *, final: bool) -> None:
        nonce, aad = _chunk_nonce_aad(self.prefix, self.header, self.index, final)
        sealed = self.aead.encrypt(nonce, plain, aad)
        self.fh.write(_U32.pack(len(sealed)) + sealed)
        self.index += 1


def _backup_escrow_id(header: bytes) -> str:
    return "backup-" + hashlib.sha256(header).hexdigest()[:16]


def read_backup_escrow(backup: Path) -> dict | None:
    """The backup key sealed to the recovery key (for `commune recover --backup`), or None."""
    with Path(backup).open("rb") as fh:
        header = fh.read(HEADER_BYTES)
        if len(header) != HEADER_BYTES or header[:4] != MAGIC:
            raise StorageError("Không phải tệp sao lưu / Not a backup file")
        return _read_escrow_block(fh)


def _read_escrow_block(fh: BinaryIO) -> dict | None:
    raw = fh.read(4)
    if len(raw) != 4:
        raise TamperError("backup truncated")
    (length,) = _U32.unpack(raw)
    if length > 4096:
        raise TamperError("backup escrow too long")
    block = fh.read(length)
    return json.loads(block) if block else None


def _chunk_nonce_aad(prefix: bytes, header: bytes, index: int, final: bool) -> tuple[bytes, bytes]:
    flag = b"\x01" if final else b"\x00"
    return prefix + struct.pack(">I", index) + flag, header + struct.pack(">Q", index) + flag


def _backup_kek(secret: str, salt: bytes, settings: KeySettings) -> bytes:
    import unicodedata

    stretched = argon2id(
        unicodedata.normalize("NFC", secret).encode(), salt, settings.argon2_time_cost,
        settings.argon2_memory_cost, settings.argon2_parallelism,
    )
    return hkdf(stretched, _KEK_INFO, salt=salt)


# ---------------------------------------------------------------- reading


@dataclass(frozen=True)
class RestoredBackup:
    data_key: bytes
    settings: KeySettings
    device_id: str
    entries: int


def restore_backup_files(
    backup: Path, secret: str | None, data_dir: Path, progress: Progress | None = None,
    backup_key: bytes | None = None,
) -> RestoredBackup:
    """Open `backup` with `secret` and write its entries into `data_dir` (which must hold no
    store). The key file is the caller's to write (with this device's keystore)."""
    data_dir = Path(data_dir)
    if db_path(data_dir).exists():
        raise StorageError(
            "Thư mục đích đã có kho dữ liệu / The target folder already holds a data store"
        )
    with Path(backup).open("rb") as fh:
        chunks = _open_chunks(fh, secret, backup_key)
        stream = _ChunkReader(chunks)
        (length,) = _U32.unpack(stream.read_exact(4))
        manifest = json.loads(stream.read_exact(length))
        if manifest.get("format") != BACKUP_FORMAT:
            raise StorageError("unknown backup format")
        total = sum(int(e["size"]) for e in manifest["entries"])
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(data_dir, 0o700)
        done = 0
        for entry in manifest["entries"]:
            target = _safe_target(data_dir, entry["name"])
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            remaining = int(entry["size"])
            with _private_file(target) as out:
                while remaining:
                    block = stream.read_exact(min(remaining, CHUNK_BYTES))
                    out.write(block)
                    remaining -= len(block)
                    done += len(block)
                    if progress:
                        progress(done, total)
        stream.expect_end()
    return RestoredBackup(
        data_key=bytes.fromhex(manifest["data_key"]),
        settings=KeySettings(**manifest["settings"]),
        device_id=manifest["device_id"],
        entries=len(manifest["entries"]),
    )


def _safe_target(data_dir: Path, name: str) -> Path:
    parts = Path(name).parts
    if not parts or any(p in ("", ".", "..") for p in parts) or Path(name).is_absolute():
        raise TamperError(f"backup entry name {name!r}")
    if parts[0] not in (DB_FILE, FILES_DIR):
        raise TamperError(f"backup entry name {name!r}")
    return data_dir.joinpath(*parts)


def _open_chunks(fh: BinaryIO, secret: str | None, backup_key: bytes | None = None
                 ) -> Iterator[bytes]:
    """The plaintext chunks, the backup key from `secret` or given (a recovery answer)."""
    header = fh.read(HEADER_BYTES)
    if len(header) != HEADER_BYTES or header[:4] != MAGIC:
        raise StorageError("Không phải tệp sao lưu / Not a backup file")
    magic, version, time_cost, memory_cost, lanes, salt, wrap_nonce, prefix = _HEAD.unpack(
        header[: _HEAD.size]
    )
    if version != BACKUP_FORMAT:
        raise StorageError(f"unknown backup format {version}")
    _read_escrow_block(fh)
    if backup_key is None:
        cost = KeySettings(
            argon2_time_cost=time_cost, argon2_memory_cost=memory_cost, argon2_parallelism=lanes
        )
        kek = _backup_kek(secret or "", salt, cost)
        try:
            backup_key = AESGCM(kek).decrypt(
                wrap_nonce, header[_HEAD.size :], header[: _HEAD.size]
            )
        except InvalidTag:
            raise WrongBackupSecret() from None
    return _chunks(fh, AESGCM(backup_key), prefix, header)


def _chunks(fh: BinaryIO, aead: AESGCM, prefix: bytes, header: bytes) -> Iterator[bytes]:
    index = 0
    while True:
        raw_len = fh.read(4)
        if len(raw_len) != 4:
            raise TamperError("backup truncated")
        (length,) = _U32.unpack(raw_len)
        if length > CHUNK_BYTES + TAG_BYTES:
            raise TamperError("backup chunk too long")
        sealed = fh.read(length)
        final = not fh.peek(1) if hasattr(fh, "peek") else False
        plain = _open_chunk(aead, prefix, header, index, sealed, final)
        yield plain
        if final:
            return
        index += 1


def _open_chunk(aead: AESGCM, prefix: bytes, header: bytes, index: int, sealed: bytes,
                final: bool) -> bytes:
    nonce, aad = _chunk_nonce_aad(prefix, header, index, final)
    try:
        return aead.decrypt(nonce, sealed, aad)
    except InvalidTag:
        raise TamperError(f"backup chunk {index}") from None


class _ChunkReader:
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.buffer = bytearray()
        self.ended = False

    def read_exact(self, n: int) -> bytes:
        while len(self.buffer) < n:
            try:
                self.buffer += next(self.chunks)
            except StopIteration:
                raise TamperError("backup truncated") from None
        out = bytes(self.buffer[:n])
        del self.buffer[:n]
        return out

    def expect_end(self) -> None:
        for extra in self.chunks:
            self.buffer += extra
        if self.buffer:
            raise TamperError("backup has trailing data")
