"""When to remind a person that nothing protects this device's data: pure, no I/O."""

from __future__ import annotations

import datetime as dt

DEFAULT_BACKUP_REMINDER_DAYS = 7
MAX_BACKUP_REMINDER_DAYS = 365


def days_unprotected(
    last_backup: dt.datetime | None,
    last_sync: dt.datetime | None,
    reminder_days: int,
    now: dt.datetime,
) -> int | None:
    """Whole days since the data last left this device (a sealed backup or a sync, whichever is
    newer) when that is `reminder_days` or more; None when no reminder is due or reminders are
    off (0). `-1` means never backed up nor synced."""
    if reminder_days <= 0:
        return None
    latest = max((t for t in (last_backup, last_sync) if t is not None), default=None)
    if latest is None:
        return -1
    days = (now - latest).days
    return days if days >= reminder_days else None
