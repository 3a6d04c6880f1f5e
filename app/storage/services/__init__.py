"""Services over the local store: what views and the CLI call. No SQL outside `app/storage`."""

from app.storage.services.attachments import AttachmentService
from app.storage.services.audits import (
    AuditNotEditable,
    AuditService,
    InvalidAnswer,
    ReviewRefused,
)
from app.storage.services.dossiers import (
    DossierQuery,
    DossierService,
    ImportReport,
    InvalidTransition,
    UnreadableDossier,
)
from app.storage.services.local_store import (
    LocalStore,
    create_store,
    open_store,
    recover_store,
    restore_store,
    store_exists,
    wipe_store,
)
from app.storage.services.records import NotFound

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
    "LocalStore",
    "NotFound",
    "UnreadableDossier",
    "create_store",
    "open_store",
    "recover_store",
    "restore_store",
    "store_exists",
    "wipe_store",
]
