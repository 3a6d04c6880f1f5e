"""The encrypted local store: the only client code that opens the database or touches keys.

Public API (see docs/ARCHITECTURE.md): `store_exists`, `create_store`, `open_store` and the
`LocalStore` they return, with `.dossiers`, `.audits`, `.attachments`, `.settings`, `.sync`.
"""

from app.storage.errors import (
    LockedOut,
    NoStore,
    StorageError,
    StoreDestroyed,
    TamperError,
    WrongPin,
)
from app.storage.keys import KeySettings
from app.storage.services import (
    AttachmentService,
    AuditNotEditable,
    AuditService,
    DossierQuery,
    DossierService,
    ImportReport,
    InvalidAnswer,
    InvalidTransition,
    LocalStore,
    NotFound,
    ReviewRefused,
    create_store,
    open_store,
    recover_store,
    restore_store,
    store_exists,
    wipe_store,
)
from app.storage.settings import SettingsStore
from app.storage.sync_store import RecordState, SyncStore, SyncSummary

__all__ = [
    "AttachmentService",
    "AuditNotEditable",
    "ReviewRefused",
    "AuditService",
    "DossierQuery",
    "DossierService",
    "ImportReport",
    "InvalidAnswer",
    "InvalidTransition",
    "KeySettings",
    "LocalStore",
    "LockedOut",
    "NoStore",
    "NotFound",
    "RecordState",
    "SettingsStore",
    "StorageError",
    "StoreDestroyed",
    "SyncStore",
    "SyncSummary",
    "TamperError",
    "WrongPin",
    "create_store",
    "open_store",
    "recover_store",
    "restore_store",
    "store_exists",
    "wipe_store",
]
