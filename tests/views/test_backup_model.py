import datetime as dt

from app.views.backup_model import progress_text, reminder_text

NOW = dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC)


def test_reminder_when_neither_backup_nor_sync_is_recent() -> None:
    old = NOW - dt.timedelta(days=9)
    assert reminder_text(old, old - dt.timedelta(days=3), 7, NOW).startswith("Đã 9 ngày")
    assert reminder_text(None, None, 7, NOW).startswith("Dữ liệu trên máy này chưa từng")


def test_no_reminder_when_either_is_recent_or_reminders_are_off() -> None:
    old = NOW - dt.timedelta(days=30)
    assert reminder_text(old, NOW - dt.timedelta(days=2), 7, NOW) is None
    assert reminder_text(NOW - dt.timedelta(days=6), None, 7, NOW) is None
    assert reminder_text(None, None, 0, NOW) is None


def test_progress_text() -> None:
    assert progress_text(50, 200) == "Đang sao lưu… 25%"
    assert progress_text(0, 0) == "Đang sao lưu… 100%"
