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


def test_backup_from_settings_and_recovery_from_the_lock_screen(tmp_path) -> None:
    import json

    from app.storage import KeySettings, create_store
    from app.storage.recovery import answer_request, load_recovery_key, new_recovery_key
    from app.views.backup_model import BackupPresenter
    from app.views.lock_model import RecoveryPresenter

    folder = tmp_path / "d"
    pem, public = new_recovery_key("a long admin passphrase")
    with create_store(folder, "2468", settings=KeySettings.for_tests()) as store:
        store.escrow.set_public_key(public)
        store.settings.set("note", "Lê Thị Ánh")
        presenter = BackupPresenter(store)
        assert presenter.reminder(NOW).startswith("Dữ liệu trên máy này chưa từng")
        assert presenter.create("") == (False, "Hãy nhập mã PIN hoặc cụm mật khẩu cho bản sao lưu")
        done, message = presenter.create("2468")
        assert done and message.startswith("Đã sao lưu vào") and presenter.progress() == 1.0
        assert presenter.reminder() is None  # just backed up
    recovery = RecoveryPresenter(folder)
    text, saved = recovery.request()
    assert json.loads(saved.read_text()) == json.loads(text)
    assert recovery.finish("{}", "135790", "135790").message.startswith("Không khôi phục được")
    bad = recovery.finish("not json", "135790", "135790")
    assert bad.message == "Mã trả lời không đúng định dạng"
    answer = answer_request(load_recovery_key(pem, "a long admin passphrase"), json.loads(text))
    assert recovery.finish(json.dumps(answer), "135790", "999999").message.startswith("Hai lần")
    opened = recovery.finish(json.dumps(answer), "135790", "135790")
    assert opened.ok and opened.store.settings.get("note") == "Lê Thị Ánh"
    opened.store.close()


def test_a_saved_file_is_named_from_the_home_folder(tmp_path) -> None:
    from app.views.format import path_text

    home = tmp_path / "home" / "canbo"
    inside = home / ".local/share/commune-field/backups/commune-20261207.cfbk"
    assert path_text(inside, home) == "~/.local/share/commune-field/backups/commune-20261207.cfbk"
    elsewhere = tmp_path / "usb" / "commune.cfbk"
    assert path_text(elsewhere, home) == str(elsewhere)  # outside home: the whole path
