"""What reaches the screen when something fails (catalogue messages by error type), and every
catalogue key the views use exists in both languages."""

from __future__ import annotations

import re
from pathlib import Path

from app.i18n import catalogue, set_language
from app.storage.errors import StorageError, TamperError, WrongPin
from app.storage.services.dossiers import InvalidTransition
from app.sync.transport import Offline
from app.views.errors import error_text
from app.views.sync_bridge import EnrolError

VIEWS = Path(__file__).resolve().parents[2] / "app" / "views"
KEY_CALL = re.compile(r"""\bt\(\s*["']([a-z0-9_.]+)["']""")
PREFIX_CALL = re.compile(r"""\bt\(\s*f["']([a-z0-9_.]+)\{""")


def test_errors_become_catalogue_messages_not_their_english_text() -> None:
    assert error_text(InvalidTransition(2, 10)) == (
        "Không thể chuyển trạng thái này từ trạng thái hiện tại."
    )
    assert error_text(WrongPin(3, 0.0)) == "Mã PIN hiện tại không đúng."
    assert error_text(TamperError("x")).startswith("Dữ liệu trên máy bị hỏng")

    class NewStorageProblem(StorageError):  # a subclass added later: its base's message
        pass

    assert error_text(NewStorageProblem("PIN must have at least 6 characters")) == (
        "Không đọc/ghi được dữ liệu trên máy."
    )
    try:
        raise EnrolError("connection refused") from Offline("connection refused")
    except EnrolError as exc:
        assert error_text(exc) == "không kết nối được máy chủ"
    assert error_text(RuntimeError("boom")) == "Đã xảy ra lỗi không mong muốn."
    set_language("en")
    assert error_text(WrongPin(3, 0.0)) == "The current PIN is wrong."


def test_every_key_the_views_use_exists_in_both_languages() -> None:
    vi, en = catalogue("vi"), catalogue("en")
    used: set[str] = set()
    prefixes: set[str] = set()
    for source in VIEWS.glob("*.py"):
        text = source.read_text(encoding="utf-8")
        used |= set(KEY_CALL.findall(text))
        prefixes |= set(PREFIX_CALL.findall(text))
    assert len(used) > 100 and {"lock.now", "dash.see_all_overdue"} <= used
    screen_keys = {k for k in used if not k.startswith("slip.")}  # form 01 is Vietnamese only
    assert sorted(screen_keys - set(vi)) == [] and sorted(screen_keys - set(en)) == []
    assert sorted(k for k in used if k not in vi) == []
    for prefix in prefixes:  # t(f"status.{n}") and the like: the family exists in both
        assert any(k.startswith(prefix) for k in vi) and any(k.startswith(prefix) for k in en)


def test_an_attachment_opens_from_the_local_copy_and_is_missing_without_a_download(
    store,
) -> None:
    import pytest

    from app.views.dossier_views import read_attachment
    from tests.views.seed import WARD

    meta = store.attachments.add("dossier", "d-1", WARD, b"%PDF-1.4 ban sao", filename="a.pdf")
    assert read_attachment(store, None, meta.sha256) == b"%PDF-1.4 ban sao"
    with pytest.raises(FileNotFoundError):
        read_attachment(store, None, "0" * 64)  # local only: nothing to download from

    class AttachmentUnavailable(Exception):  # the sync bridge's error, by its name
        pass

    assert error_text(AttachmentUnavailable("offline")).startswith("Không tải được tệp")
