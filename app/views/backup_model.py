"""The backup reminder and progress text for Settings and the list screen. Pure, no Flet."""

from __future__ import annotations

import datetime as dt

from app.domain.reminders import DEFAULT_BACKUP_REMINDER_DAYS, days_unprotected
from app.i18n import t
from app.views.format import path_text

REMINDER_DAYS_SETTING = "backup_reminder_days"
LAST_BACKUP_SETTING = "last_backup_at"


def reminder_days(settings) -> int:
    """The chosen number of days (store setting), else the default."""
    value = settings.get(REMINDER_DAYS_SETTING)
    return int(value) if isinstance(value, int) else DEFAULT_BACKUP_REMINDER_DAYS


def last_backup(settings) -> dt.datetime | None:
    value = settings.get(LAST_BACKUP_SETTING)
    return dt.datetime.fromisoformat(value) if isinstance(value, str) and value else None


def reminder_text(
    last_backup_at: dt.datetime | None,
    last_sync_at: dt.datetime | None,
    days: int,
    now: dt.datetime,
) -> str | None:
    """The reminder to show, or None when the data left the device recently enough."""
    overdue = days_unprotected(last_backup_at, last_sync_at, days, now)
    if overdue is None:
        return None
    if overdue < 0:
        return t("backup.reminder_never")
    return t("backup.reminder", n=overdue)


def progress_text(done: int, total: int) -> str:
    percent = 100 if total <= 0 else min(100, done * 100 // total)
    return t("backup.progress", p=percent)


class BackupPresenter:
    """Backup from Settings: a sealed file in the data folder's `backups/`, with progress."""

    def __init__(self, store) -> None:
        self.store = store
        self.done, self.total = 0, 0

    def reminder(self, now: dt.datetime | None = None) -> str | None:
        synced = self.store.sync.summary().last_synced_at
        return reminder_text(
            last_backup(self.store.settings),
            synced,
            reminder_days(self.store.settings),
            now or dt.datetime.now(dt.UTC),
        )

    def progress(self) -> float:
        return 0.0 if self.total <= 0 else min(1.0, self.done / self.total)

    def _progress(self, done: int, total: int) -> None:
        self.done, self.total = done, total

    def create(self, secret: str) -> tuple[bool, str]:
        """(done, message). Blocking: run it off the UI loop."""
        from app.storage.errors import StorageError, WeakSecretWithoutKeystore
        from app.views.errors import error_text

        if not secret:
            return False, t("backup.need_secret")
        folder = self.store.data_dir / "backups"
        folder.mkdir(exist_ok=True, mode=0o700)
        out = folder / f"commune-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}.cfbk"
        try:
            info = self.store.create_backup(out, secret, progress=self._progress)
        except WeakSecretWithoutKeystore:
            return False, t("backup.weak_secret")
        except (StorageError, OSError) as exc:
            return False, error_text(exc)
        return True, t("backup.done", path=path_text(info.path))
