"""The opened store: keys unwrapped, database migrated, services wired."""

from __future__ import annotations

import contextlib
import shutil
import threading
import uuid
from pathlib import Path

from app.domain.hlc import Clock, is_stamp
from app.storage.blind_index import BlindIndex
from app.storage.crypto import Sealer, derive_subkeys
from app.storage.db import Database, db_path, sqlcipher_available
from app.storage.errors import StorageError, TamperError
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
from app.storage.settings import SettingsStore
from app.storage.sync_store import SyncStore
from app.storage.tables import META_CHECK

FILES_DIR = "files"
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


def wipe_store(data_dir: Path) -> None:
    """Crypto-erase a store without its PIN (lost PIN, revoked device, `commune wipe`): the
    wrapped key and device secret go first, then the database and sealed files."""
    data_dir = Path(data_dir)
    KeyVault(data_dir).destroy()
    _remove_data_files(data_dir)


def _remove_data_files(data_dir: Path) -> None:
    for suffix in _DB_SUFFIXES:
        with contextlib.suppress(FileNotFoundError):
            Path(f"{db_path(data_dir)}{suffix}").unlink()
    shutil.rmtree(data_dir / FILES_DIR, ignore_errors=True)


class LocalStore:
    def __init__(self, data_dir: Path, data_key: bytes, vault: KeyVault, *, new: bool) -> None:
        self.data_dir = Path(data_dir)
        self._vault = vault
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
                self.device_id, clock_mark = self._check_meta(conn, sealer)
        except BaseException:
            self.db.close()
            raise
        clock = Clock(self.device_id)
        if is_stamp(clock_mark):
            clock.observe(clock_mark)  # never stamp earlier than the last local write
        self.records = RecordStore(
            sealer, BlindIndex(keys.index), clock, self.device_id, Outbox(self.device_id, sealer)
        )
        if not self._identity_terms_done():
            with self.db.write() as conn:
                self.records.backfill_identity_terms(conn)
        files = SealedFileStore(self.data_dir / FILES_DIR, keys.files)
        self.settings = SettingsStore(self.db, sealer)
        self.calendar = CalendarStore(self.settings)
        self.dossiers = DossierService(self.db, self.records, self.settings, self.calendar)
        self.audits = AuditService(self.db, self.records)
        self.attachments = AttachmentService(self.db, self.records, files)
        self.sync = SyncStore(self.db, self.records, files, self.wipe)
        self.oversight = OversightService(self.db, self.records)

    def _identity_terms_done(self) -> bool:
        with self.db.read() as conn:
            mark = "SELECT 1 FROM meta WHERE key = 'identity_terms'"
            return conn.exec_driver_sql(mark).first() is not None

    @staticmethod
    def _init_meta(conn, sealer: Sealer) -> None:
        check = sealer.seal(_CHECK_PLAINTEXT, table=META_CHECK, row_id="check", version=0)
        conn.exec_driver_sql(
            "INSERT INTO meta (key, value) VALUES ('device_id', ?), ('clock', ''), ('check', ?)",
            (str(uuid.uuid4()), check.hex()),
        )

    @staticmethod
    def _check_meta(conn, sealer: Sealer) -> tuple[str, str]:
        """The device id and clock mark, after proving this DB belongs to this key."""
        meta = dict(conn.exec_driver_sql("SELECT key, value FROM meta").all())
        if "check" not in meta or "device_id" not in meta:
            raise TamperError("store file is not this store's")
        sealer.open(bytes.fromhex(meta["check"]), table=META_CHECK, row_id="check", version=0)
        return meta["device_id"], meta.get("clock", "")

    def change_pin(self, old: str, new: str) -> None:
        """Re-wrap the data key; no record is re-encrypted."""
        self._vault.change_pin(old, new)

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
