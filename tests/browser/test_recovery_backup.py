"""In Chromium: a forgotten PIN recovered through the admin's answer ("Quên mã PIN"), then a
sealed backup from Settings with its progress; screenshots for the docs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from app.storage import KeySettings, create_store
from app.storage.recovery import answer_request, load_recovery_key, new_recovery_key
from app.views.format import today_local
from tests.browser.harness import nav, open_page, running_app, shot, shows, type_into
from tests.views.seed import WARD, seed

PIN = "135790"
NEW_PIN = "246813"
ADMIN_PASSPHRASE = "mat khau quan tri vien 2026"


@pytest.fixture(scope="module")
def recovery_pem() -> dict:
    pem, public = new_recovery_key(ADMIN_PASSPHRASE)
    return {"pem": pem, "public": public}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The app's home folder: its data where a Linux desktop keeps it, so the screens name
    files as that user reads them (`~/...`), not by a test's temporary folder."""
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def app_dir(home: Path, recovery_pem: dict) -> Path:
    folder = home / ".local" / "share" / "commune-field"
    # the screens under test, not the no-keystore passphrase rule (docs/security.md)
    store = create_store(folder, PIN, settings=KeySettings(offline_years=0))
    try:
        store.settings.set("officer", "Trần Văn Nam")
        store.settings.set("ward_code", WARD)
        store.escrow.set_public_key(recovery_pem["public"])  # as enrolment or a sync does
        seed(store, 6, today=today_local(), moves=2)
    finally:
        store.close()
    return folder


@pytest.fixture(scope="module")
def app_url(app_dir: Path, home: Path, tmp_path_factory: pytest.TempPathFactory):
    log = tmp_path_factory.mktemp("logs") / "app.log"
    with running_app(app_dir, log, extra_env={"HOME": str(home)}) as url:
        yield url


@pytest.fixture(scope="module")
def page(browser, app_url):
    page = open_page(browser, app_url, 1280, 800)
    yield page
    page.context.close()


def test_forgotten_pin_then_backup_from_settings(
    page: Page, app_dir: Path, recovery_pem: dict, screenshots: Path
) -> None:
    page.get_by_role("button", name="Quên mã PIN").click()
    page.get_by_role("button", name="Tạo yêu cầu khôi phục").click()
    saved = "Đã lưu yêu cầu vào ~/.local/share/commune-field/recovery-request.json"
    expect(shows(page, saved)).to_be_visible()
    request = json.loads((app_dir / "recovery-request.json").read_text())
    assert request["escrow"]["kid"]  # the device's own escrow: it never synced

    # The admin, offline, answers with the private half (what `commune admin recover-device`
    # does); the officer pastes the answer and sets a new PIN.
    private = load_recovery_key(recovery_pem["pem"], ADMIN_PASSPHRASE)
    answer = json.dumps(answer_request(private, request), separators=(",", ":"))
    type_into(page, "Mã trả lời của quản trị viên", answer)
    type_into(page, "Mã PIN mới", NEW_PIN)
    type_into(page, "Nhập lại mã PIN", NEW_PIN)
    shot(page, screenshots, "18-recovery")
    page.get_by_role("button", name="Đặt mã PIN mới").click()
    expect(shows(page, "Danh sách hồ sơ")).to_be_visible()

    nav(page, "Cài đặt").click()
    expect(page.get_by_role("button", name="Sao lưu ngay")).to_be_visible()
    expect(shows(page, re.compile(r"chưa từng được sao lưu"))).to_be_visible()  # the reminder
    type_into(page, "Mã PIN hoặc cụm mật khẩu cho bản sao lưu", NEW_PIN)
    page.get_by_role("button", name="Sao lưu ngay").click()
    backup_saved = re.compile(r"^Đã sao lưu vào ~/\.local/share/commune-field/backups/")
    expect(shows(page, backup_saved)).to_be_visible()
    shot(page, screenshots, "19-settings-backup")
    (made,) = list((app_dir / "backups").glob("*.cfbk"))
    assert made.read_bytes()[:4] == b"CFBK" and b"Tr\xe1\xba\xa7n" not in made.read_bytes()
