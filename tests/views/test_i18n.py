from __future__ import annotations

import pytest

from app.i18n import catalogue, has, language, set_language, t

LEGAL_FORM_PREFIX = "slip."  # form 01 is always Vietnamese


def test_every_screen_string_exists_in_both_languages() -> None:
    vi, en = catalogue("vi"), catalogue("en")
    screen_keys = {k for k in vi if not k.startswith(LEGAL_FORM_PREFIX)}
    assert screen_keys == set(en)
    assert all(v.strip() for v in vi.values()) and all(v.strip() for v in en.values())


def test_vietnamese_is_default_with_diacritics_and_english_switch() -> None:
    assert language() == "vi"
    assert t("lock.now") == "Khoá ngay"
    assert t("sync.now") == "Đồng bộ ngay"
    assert t("receive.title") == "Tiếp nhận hồ sơ"
    set_language("en")
    assert t("lock.now") == "Lock now"
    assert t("sync.pending", n=3) == "3 pending"


def test_missing_key_shows_itself_and_legal_form_falls_back_to_vietnamese() -> None:
    set_language("en")
    assert t("no.such.key") == "no.such.key"
    assert t("slip.title") == "PHIẾU TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ"
    assert has("slip.title") and not has("slip.title", "en")


def test_unknown_language_is_refused() -> None:
    with pytest.raises(ValueError):
        set_language("fr")
