"""The opened store: keys unwrapped, database migrated, services wired."""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import threading
import uuid
from pathlib import Path

from app.domain.hlc import Clock, is_stamp
from app.storage.backup import (
    INCARNATION,
    BackupInfo,
    Progress,
    new_incarnation,
    restore_backup_files,
    sqlite_snapshot,
    write_backup,
)
from app.storage.blind_index import BlindIndex
from app.storage.crypto import Sealer, derive_subkeys
from app.storage.db import Database, db_path, sqlcipher_available
from app.storage.errors import StorageError, TamperError
from app.storage.escrow import EscrowKeeper
from app.storage.files import SealedFileStore
from app.storage.keys import KeySettings, KeyVault
from app.storage.migrations import migrate
from app.storage.outbox import Outbox
from app.storage.services.attachments import AttachmentService
from app.storage.services.audits import AuditService
from app.storage.services.calendar import CalendarStore
from app.storage.services.dossiers import DossierService
from app.storage.services.oversight import OversightService
from app.storage.services.records import RecordStore
from app.storage.services.reference import ReferenceStore
from app.storage.settings import SettingsStore
from app.storage.sync_store import SyncStore
from app.storage.tables import META_CHECK

FILES_DIR = "files"
LAST_BACKUP_SETTING = "last_backup_at"  # ISO time of the last sealed backup (backup_model)
_CHECK_PLAINTEXT = b"commune-field store"
_DB_SUFFIXES = ("", "-wal", "-shm", "-journal")


def store_exists(data_dir: Path) -> bool:
    return KeyVault(Path(data_dir)).exists()


def store_destroyed(data_dir: Path) -> bool:
    """A store was here and was crypto-erased (too many wrong PINs, revoked, wiped)."""
    return KeyVault(Path(data_dir)).destroyed()


def create_store(data_dir: Path, pin: str, *, settings: KeySettings | None = None) -> LocalStore:
    """A new store: random data key wrapped under `pin`, a new device id, a migrated DB."""
    data_dir = Path(data_dir)
    vault = KeyVault(data_dir, settings)
    if vault.exists():
        raise StorageError("Kho dữ liệu đã tồn tại / A data store already exists here")
    _remove_data_files(data_dir)  # leftovers of an erased store are unreadable: start clean
    data_key = vault.create(pin)
    return LocalStore(data_dir, data_key, vault, new=True)


def open_store(data_dir: Path, pin: str) -> LocalStore:
    """Unlock with `pin`. Raises WrongPin, LockedOut, StoreDestroyed, NoStore, TamperError."""
    data_dir = Path(data_dir)
    vault = KeyVault(data_dir)
    data_key = vault.unlock(pin)
    if not db_path(data_dir).exists():
        raise TamperError("store file missing")
    return LocalStore(data_dir, data_key, vault, new=False)


def restore_store(
    backup: Path,
    data_dir: Path,
    pin: str,
    *,
    secret: str | None = None,
    progress: Progress | None = None,
    settings: KeySettings | None = None,
    backup_key: bytes | None = None,
) -> LocalStore:
    """A store in an empty `data_dir` from a sealed backup opened with `secret` (default: the
    PIN) or with `backup_key` (from a recovery answer), its data key wrapped under `pin` with
    this device's keystore. `settings` override the
    backup's policy (else the backed-up store's cost and attempt policy are kept)."""
    data_dir = Path(data_dir)
    if KeyVault(data_dir).exists():
        raise StorageError("Kho dữ liệu đã tồn tại / A data store already exists here")
    _remove_data_files(data_dir)  # leftovers of an erased store
    try:
        restored = restore_backup_files(
            backup, secret or pin, data_dir, progress, backup_key=backup_key
        )
        vault = KeyVault(data_dir, settings or restored.settings)
        vault.create(pin, data_key=restored.data_key)
    except BaseException:
        _remove_data_files(data_dir)
        raise
    return LocalStore(data_dir, restored.data_key, vault, new=False)


def recover_store(data_dir: Path, answer: dict, new_pin: str) -> LocalStore:
    """Finish a one-time recovery (app.storage.recovery): the admin's answer gives the data key,
    which must open this store; it is then wrapped under `new_pin` and the request key erased."""
    from app.storage.recovery import forget_request, open_answer

    data_dir = Path(data_dir)
    data_key, _ = open_answer(data_dir, answer)
    if not db_path(data_dir).exists():
        raise TamperError("store file missing")
    vault = KeyVault(data_dir)
    settings = vault.stored_settings() if vault.exists() else KeySettings()
    _prove_key(data_dir, data_key)
    vault.replace_key(new_pin, data_key, settings)
    forget_request(data_dir)
    return LocalStore(data_dir, data_key, KeyVault(data_dir), new=False)


def _prove_key(data_dir: Path, data_key: bytes) -> None:
    """TamperError unless `data_key` opens this folder's database."""
    keys = derive_subkeys(data_key)
    db = Database(db_path(data_dir), keys.sqlcipher if sqlcipher_available() else None)
    try:
        with db.read() as conn:
            LocalStore._check_meta(conn, Sealer(keys.seal))
    finally:
        db.close()


def wipe_store(data_dir: Path) -> None:
    """Crypto-erase a store without its PIN (lost PIN, revoked device, `commune wipe`): the
    wrapped key and device secret go first, then the database and sealed files."""
    data_dir = Path(data_dir)
    KeyVault(data_dir).destroy()
    _remove_data_files(data_dir)
    from app.storage.escrow import CONTACT_FILE
    from app.storage.recovery import ESCROW_FILE, REQUEST_FILE

    for name in (ESCROW_FILE, REQUEST_FILE, CONTACT_FILE):  # not to be recovered
        with contextlib.suppress(FileNotFoundError):
            (data_dir / name).unlink()


def _remove_data_files(data_dir: Path) -> None:
    for suffix in _DB_SUFFIXES:
        with contextlib.suppress(FileNotFoundError):
            Path(f"{db_path(data_dir)}{suffix}").unlink()
    shutil.rmtree(data_dir / FILES_DIR, ignore_errors=True)


class LocalStore:
    def __init__(self, data_dir: Path, data_key: bytes, vault: KeyVault, *, new: bool) -> None:
        self.data_dir = Path(data_dir)
        self._vault = vault
        self._data_key = data_key  # kept for sealed backups (app.storage.backup)
        self._closed = False
        self._lock = threading.Lock()
        keys = derive_subkeys(data_key)
        cipher_key = keys.sqlcipher if sqlcipher_available() else None
        self.db = Database(db_path(self.data_dir), cipher_key)
        sealer = Sealer(keys.seal)
        try:
            with self.db.write() as conn:
                migrate(conn)
                if new:
                    self._init_meta(conn, sealer)
                self.device_id, clock_mark, self.incarnation = self._check_meta(conn, sealer)
        except BaseException:
            self.db.close()
            raise
        clock = Clock(self.device_id)
        if is_stamp(clock_mark):
            clock.observe(clock_mark)  # never stamp earlier than the last local write
        self.records = RecordStore(
            sealer, BlindIndex(keys.index), clock, self.device_id,
            Outbox(self.device_id, sealer), self.incarnation,
        )
        if not self._terms_done("identity_terms") or not self._terms_done("code_terms"):
            with self.db.write() as conn:
                self.records.backfill_identity_terms(conn)
                self.records.backfill_code_terms(conn)
        files = SealedFileStore(self.data_dir / FILES_DIR, keys.files)
        self.settings = SettingsStore(self.db, sealer)
        self.calendar = CalendarStore(self.settings)
        self.reference = ReferenceStore(self.settings, self.calendar)
        # The catalogue this store received, else the shipped one (a damaged setting shows
        # where it is read, not as a failed unlock).
        with contextlib.suppress(StorageError, ValueError):
            self.reference.install()
        self.dossiers = DossierService(self.db, self.records, self.settings, self.calendar)
        self.audits = AuditService(self.db, self.records)
        self.attachments = AttachmentService(self.db, self.records, files)
        self.sync = SyncStore(self.db, self.records, files, self.wipe)
        self.oversight = OversightService(self.db, self.records)
        self.escrow = EscrowKeeper(
            self.data_dir, data_key, vault.store_id(), self.device_id, self.settings
        )
        self.sync.escrow = self.escrow  # the sync engine uploads it (app.sync.engine)
        self.sync.reference = self.reference  # and fetches the server's reference data into it
        # Best effort: a damaged settings row shows where it is read, not as a failed unlock.
        with contextlib.suppress(OSError, StorageError):
            self.escrow.refresh()
            self.escrow.refresh_contact()

    def _terms_done(self, mark: str) -> bool:
        """Whether a once-per-store backfill of blind terms (`meta` key `mark`) has run."""
        with self.db.read() as conn:
            found = conn.exec_driver_sql("SELECT 1 FROM meta WHERE key = ?", (mark,))
            return found.first() is not None

    @staticmethod
    def _init_meta(conn, sealer: Sealer) -> None:
        check = sealer.seal(_CHECK_PLAINTEXT, table=META_CHECK, row_id="check", version=0)
        conn.exec_driver_sql(
            "INSERT INTO meta (key, value) VALUES ('device_id', ?), ('clock', ''), ('check', ?)",
            (str(uuid.uuid4()), check.hex()),
        )

    @staticmethod
    def _check_meta(conn, sealer: Sealer) -> tuple[str, str, str]:
        """The device id, clock mark and incarnation, after proving this DB belongs to this
        key (a store made before incarnations has "")."""
        meta = dict(conn.exec_driver_sql("SELECT key, value FROM meta").all())
        if "check" not in meta or "device_id" not in meta:
            raise TamperError("store file is not this store's")
        sealer.open(bytes.fromhex(meta["check"]), table=META_CHECK, row_id="check", version=0)
        return meta["device_id"], meta.get("clock", ""), meta.get(INCARNATION, "")

    def change_pin(self, old: str, new: str) -> None:
        """Re-wrap the data key; no record is re-encrypted."""
        self._vault.change_pin(old, new)

    def create_backup(
        self, out: Path, secret: str, progress: Progress | None = None
    ) -> BackupInfo:
        """One sealed file with the database, outbox and attachments (app.storage.backup),
        opened later with `secret` (the PIN or a backup passphrase)."""

        def snapshot(path: Path) -> None:
            with self.db.write():  # no local write lands half-way through the copy
                raw = self.db.connect_raw()
                try:
                    sqlite_snapshot(raw, path)
                finally:
                    raw.close()
            new_incarnation(path)

        info = write_backup(
            out=out, data_dir=self.data_dir, data_key=self._data_key,
            settings=self._vault.stored_settings(), secret=secret, device_id=self.device_id,
            snapshot=snapshot, progress=progress, recovery_public=self.escrow.public_key(),
        )
        self.settings.set(LAST_BACKUP_SETTING, dt.datetime.now(dt.UTC).isoformat())
        return info

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        with contextlib.suppress(Exception):
            self.db.checkpoint()  # fold the WAL back so a closed store is one file
        self.db.close()

    def wipe(self) -> None:
        """Crypto-erase (the wrapped key and device secret go first), then delete the files."""
        self.close()
        wipe_store(self.data_dir)

    def __enter__(self) -> LocalStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
