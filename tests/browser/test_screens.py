"""Every screen of a working store (40 dossiers, some overdue, one sync conflict), on a desktop
(1280x800, 1920x1080) and a tablet held upright (800x1280): screenshots for the docs, and the
checks that the layout and the conflict chooser work."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from app.storage import DossierQuery, KeySettings, create_store
from app.views.format import today_local
from tests.browser.harness import (
    find_procedure,
    free_port,
    nav,
    open_page,
    shot,
    shows,
    small_targets,
    type_into,
)
from tests.views.seed import WARD, pull_conflict, push_all, seed

PIN = "135790"
MINE, THEIRS = "Đã gọi điện hẹn bổ sung", "Chờ xác minh tại tổ dân phố"
NGOC_HA = "00008"


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store made before the app starts, through the real storage API."""
    folder = tmp_path_factory.mktemp("seeded")
    # the screens under test, not the no-keystore passphrase rule (docs/security.md)
    store = create_store(folder, PIN, settings=KeySettings(offline_years=0))
    try:
        store.settings.set("officer", "Trần Văn Nam")
        store.settings.set("ward_code", WARD)
        store.settings.set("wards", [WARD, NGOC_HA])  # the device works for one of the two
        # Enrolled, but the server is out of reach (nothing listens there): the offline case.
        store.settings.set("server_url", f"http://127.0.0.1:{free_port()}")
        store.settings.set("device_token", "token-of-an-offline-device")
        seed(store, 40, today=today_local(), moves=9)
        push_all(store)
        first = store.dossiers.list(DossierQuery(), offset=0, limit=1).items[0]
        pull_conflict(store, first.id, mine=MINE, theirs=THEIRS)
    finally:
        store.close()
    return folder


def unlock(page: Page) -> None:
    type_into(page, "Mã PIN", PIN)
    page.get_by_role("button", name="Mở khoá").click()
    # The PIN's key derivation is slow by design; under a loaded CI machine the list once
    # took longer than the default 15 s to appear after it (07/12/2026).
    expect(shows(page, "Danh sách hồ sơ")).to_be_visible(timeout=30_000)


def visit_all(page: Page, folder: Path) -> None:
    """Each destination, the detail of an overdue dossier and its status dialog."""
    shot(page, folder, "10-dossiers")
    # The default list is the open work queue: some of the 40 were closed by the seed.
    expect(shows(page, "Hiển thị 40/40 hồ sơ")).to_have_count(0)
    nav(page, "Tổng quan").click()
    expect(shows(page, "Tỷ lệ đúng hạn")).to_be_visible()
    see_all = page.get_by_role("button", name=re.compile(r"^Xem tất cả \d+ hồ sơ quá hạn"))
    expect(see_all).to_be_visible()
    shot(page, folder, "11-dashboard")
    see_all.click()  # the list, filtered to the overdue ones
    expect(page.get_by_role("checkbox", name="Quá hạn", checked=True)).to_be_visible()
    expect(page.get_by_role("button", name=re.compile(r"Hẹn trả: .*Quá hạn")).first).to_be_visible()
    expect(page.get_by_role("button", name=re.compile(r"Hẹn trả: (?!.*Quá hạn)"))).to_have_count(0)
    nav(page, "Tiếp nhận").click()
    expect(page.get_by_role("button", name="Lưu và cấp mã hồ sơ")).to_be_visible()
    shot(page, folder, "12-receive")
    nav(page, "Đồng bộ").click()
    expect(shows(page, "Xung đột cần chọn")).to_be_visible()
    shot(page, folder, "13-sync-conflict")
    nav(page, "Cài đặt").click()
    expect(shows(page, "Đổi mã PIN").first).to_be_visible()
    expect(shows(page, "Máy chủ đồng bộ")).to_be_visible()  # a topic, not the field's label
    shot(page, folder, "14-settings")
    nav(page, "Hồ sơ").click()
    page.get_by_role("checkbox", name="Quá hạn").click()
    expect(shows(page, re.compile(r"Hiển thị \d+/\d+ hồ sơ"))).to_be_visible()
    expect(shows(page, "Hiển thị 40/40 hồ sơ")).to_have_count(0)  # only the overdue ones
    shot(page, folder, "15-dossiers-overdue")
    page.get_by_role("button", name=re.compile(r"Hẹn trả: ")).first.click()
    expect(shows(page, "Quá trình xử lý")).to_be_visible()
    expect(
        page.get_by_role("button", name="Chuyển xử lý")
        .or_(page.get_by_role("button", name="Hoàn thành xử lý"))
        .first
    ).to_be_visible()
    shot(page, folder, "16-detail-overdue")
    # A supplement request asks for the new appointment date (offered: 5 working days on).
    page.get_by_role("button", name="Yêu cầu bổ sung").click()
    new_date = page.get_by_role("textbox", name="Ngày hẹn trả mới (dd/mm/yyyy)", exact=True)
    expect(new_date).to_be_visible()
    shot(page, folder, "17-supplement-dialog")
    type_into(page, "Ghi chú (không bắt buộc)", "Thiếu bản sao CCCD")
    page.get_by_role("button", name="Xác nhận").click()
    expect(
        shows(page, re.compile(r"Thiếu bản sao CCCD · hẹn trả mới \d\d/\d\d/\d{4}"))
    ).to_be_visible()
    expect(shows(page, "Quá hạn")).to_have_count(0)  # the new date is ahead


def test_every_screen_on_desktop_sizes(browser, app_url: str, screenshots: Path) -> None:
    for width, height in ((1280, 800), (1920, 1080)):
        page = open_page(browser, app_url, width, height)
        try:
            expect(page.get_by_role("button", name="Mở khoá")).to_be_visible()
            unlock(page)  # the unlock screen's pictures come from the officer flow (07, 08)
            # Desktop: the rail, not the bottom bar; the conflict is counted in the sync line.
            expect(nav(page, "Hồ sơ")).to_be_visible()
            expect(shows(page, re.compile(r"Mất kết nối.*Xung đột 1"))).to_be_visible()
            visit_all(page, screenshots)
        finally:
            page.context.close()


def test_tablet_layout_conflict_choice_and_english(browser, app_url: str, screenshots) -> None:
    page = open_page(browser, app_url, 800, 1280)
    try:
        unlock(page)
        shot(page, screenshots, "20-tablet-dossiers")
        # The status filter (a menu): only dossiers in process remain.
        page.get_by_role("textbox", name="Trạng thái", exact=True).click()
        option = page.get_by_role("menuitem", name="Đang xử lý", exact=True)
        option.or_(page.get_by_role("button", name="Đang xử lý", exact=True)).first.click()
        expect(shows(page, "Hiển thị 40/40 hồ sơ")).to_have_count(0)
        expect(
            page.get_by_role("button", name=re.compile(r"Hẹn trả: .*Đang xử lý")).first
        ).to_be_visible()
        expect(
            page.get_by_role("button", name=re.compile(r"Hẹn trả: .*Đã tiếp nhận"))
        ).to_have_count(0)
        page.get_by_role("button", name=re.compile(r"Hẹn trả: ")).first.click()
        expect(shows(page, "Quá trình xử lý")).to_be_visible()
        shot(page, screenshots, "21-tablet-detail")
        nav(page, "Tiếp nhận").click()
        find_procedure(page, "ket hon")
        expect(
            page.get_by_role("button", name=re.compile(r"^Thủ tục đăng ký kết hôn\s+1\.000894"))
        ).to_be_visible()  # (also found: the mobile marriage registration, 1.000593)
        birth = page.get_by_role("button", name=re.compile(r"^Thủ tục đăng ký khai sinh\s"))
        expect(birth).to_have_count(0)  # filtered out by the diacritic-free search
        shot(page, screenshots, "22-tablet-receive")

        # The conflict shows both values; choosing one clears it.
        nav(page, "Đồng bộ").click()
        expect(shows(page, f"Đang giữ: {THEIRS}")).to_be_visible()
        expect(shows(page, f"Giá trị khác: {MINE}")).to_be_visible()
        shot(page, screenshots, "23-tablet-sync-conflict")
        page.get_by_role("button", name="Chọn giá trị này").nth(1).click()
        expect(shows(page, "Không có xung đột cần xử lý.")).to_be_visible()
        expect(shows(page, "Xung đột 0")).to_be_visible()

        # The device's ward, found by typing without diacritics; the picker's matches and the
        # rest of the screen in sight are 48 dp targets.
        nav(page, "Cài đặt").click()
        expect(shows(page, "Đã chọn: Phường Ba Đình")).to_be_visible()
        type_into(page, "Tìm xã/phường (gõ không dấu cũng được)", "ngoc ha")
        ba_dinh = page.get_by_role("button", name="Phường Ba Đình", exact=True)
        expect(ba_dinh).to_have_count(0)
        page.get_by_role("button", name="Phường Ngọc Hà", exact=True).click()
        expect(shows(page, "Đã chọn: Phường Ngọc Hà")).to_be_visible()
        found = small_targets(page)
        assert found == [], "controls under 48 dp:\n" + "\n".join(found)
        shot(page, screenshots, "28-tablet-settings-ward")

        # English, then back to Vietnamese (kept in the sealed settings).
        page.get_by_role("radio", name="English").click()
        expect(nav(page, "Dossiers")).to_be_visible()
        expect(page.get_by_role("button", name="Sync now")).to_be_visible()
        page.get_by_role("radio", name="Tiếng Việt").click()
        expect(nav(page, "Hồ sơ")).to_be_visible()
    finally:
        page.context.close()
