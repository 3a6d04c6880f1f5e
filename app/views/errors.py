"""Errors shown to a person: each error type maps to a catalogue message, never `str(exc)`
(storage and sync messages are English and technical). Pure, no Flet."""

from __future__ import annotations

from app.i18n import t

# Class names, looked up along the error's MRO, so a new subclass (say a storage error for a
# bad PIN) gets its base class's message until it has its own.
ERROR_KEYS = {
    "InvalidTransition": "error.invalid_transition",
    "WrongPin": "error.wrong_pin",
    "LockedOut": "error.locked_out",
    "StoreDestroyed": "unlock.destroyed",
    "WeakSecretWithoutKeystore": "pin.no_keystore",
    "TamperError": "error.tampered",
    "NoStore": "error.no_store",
    "NotFound": "error.not_found",
    "StorageError": "error.storage",
    "AttachmentUnavailable": "error.attachment_unavailable",
    "Offline": "error.offline",
    "RequestRejected": "error.rejected",
    "KeyError": "error.not_found",
    "OSError": "error.file",
    "ValueError": "error.invalid",
}


def error_text(exc: BaseException) -> str:
    """The catalogue message for this error (an `EnrolError` speaks for the error it wraps)."""
    cause = exc.__cause__
    if type(exc).__name__ == "EnrolError" and cause is not None:
        return error_text(cause)
    if type(exc).__name__ == "InvalidRecord":  # the domain's reason codes, as the server's
        return t("error.invalid_record", reasons=", ".join(getattr(exc, "reasons", [])))
    for cls in type(exc).__mro__:
        key = ERROR_KEYS.get(cls.__name__)
        if key:
            return t(key)
    return t("error.unexpected")
