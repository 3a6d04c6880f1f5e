"""First run with a server: a wrong code keeps the user on the form and creates nothing; enrol
with a one-time code on screen, receive a dossier offline-first, open what waits to be sent;
with the real central API (a subprocess on 127.0.0.1) stopped by SIGSTOP the app says within
30 s that the server does not answer and when it retries; once it runs again "Đồng bộ ngay"
sends the dossier; then the device is revoked and the app erases its store."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from app.storage import store_exists
from server.scope import OFFICER, SUPERVISOR
from server.services import identity
from tests.browser.harness import find_procedure, nav, open_page, shot, shows, type_into
from tests.support.server_proc import sqlite_api_server  # noqa: F401  (fixture)

PIN = "975310"
WARD = "00004"
DESK_PASSWORD = "mat-khau-giam-sat-2026"


@pytest.fixture
def page(browser, app_url):
    page = open_page(browser, app_url, 1280, 800)
    yield page
    page.context.close()


def test_enrol_receive_and_sync_now(page, sqlite_api_server, app_dir, screenshots) -> None:  # noqa: F811
    server = sqlite_api_server
    server.add_user("canbo.badinh", OFFICER, [WARD])
    code = identity.create_enrol_code(server.engine, "canbo.badinh", 10)

    page.get_by_role("radio", name="Đăng ký với máy chủ bằng mã").click()
    type_into(page, "Địa chỉ máy chủ", server.url)
    type_into(page, "Mã đăng ký thiết bị", "SAI-MA-0000")
    type_into(page, "Họ tên của bạn", "Lê Thu Hà")
    type_into(page, "Mã PIN", PIN)
    type_into(page, "Nhập lại mã PIN", PIN)
    page.get_by_role("button", name="Tạo kho dữ liệu").click()
    refused = shows(page, re.compile("^Không đăng ký được: .*Chưa tạo gì trên máy"))
    expect(refused).to_be_visible()
    expect(page.get_by_role("button", name="Tạo kho dữ liệu")).to_be_enabled()
    assert not store_exists(app_dir)  # nothing created, still on the form
    shot(page, screenshots, "09-enrol-refused")
    type_into(page, "Mã đăng ký thiết bị", code)
    page.get_by_role("button", name="Tạo kho dữ liệu").click()
    # Enrolled: the scheduler's first run reaches the server and says when.
    expect(shows(page, re.compile(r"Đồng bộ lúc \d\d:\d\d"))).to_be_visible(timeout=30_000)

    nav(page, "Tiếp nhận").click()
    find_procedure(page, "1.004884")
    page.get_by_role("button", name=re.compile(r"^Thủ tục đăng ký lại khai sinh\s")).click()
    type_into(page, "Họ và tên người nộp", "Vũ Minh Khánh")
    page.get_by_role("button", name="Lưu và cấp mã hồ sơ").click()
    waiting = shows(page, re.compile(r"Chờ gửi 1 "))  # one dossier, not its outbox rows
    expect(waiting).to_be_visible()
    waiting.click()  # the line opens what waits, each with its state
    expect(shows(page, "Chờ gửi (1)")).to_be_visible()
    expect(shows(page, re.compile(r"^Hồ sơ$"))).to_be_visible()

    # The server accepts connections and never answers: said within 30 s, with the retry.
    server.freeze()
    try:
        page.get_by_role("button", name="Đồng bộ ngay").first.click()
        silent = shows(page, re.compile(r"Máy chủ (chưa trả lời sau \d+ giây|không trả lời)"))
        expect(silent).to_be_visible(timeout=30_000)
        expect(shows(page, re.compile(r"thử lại lúc \d\d:\d\d:\d\d"))).to_be_visible()
        shot(page, screenshots, "51-sync-server-silent")
        expect(shows(page, re.compile("không trả lời · thử lại lúc"))).to_be_visible(
            timeout=30_000
        )  # the hung run was cut
        page.get_by_role("button", name="Đồng bộ ngay").first.click()  # works while hung
        expect(shows(page, re.compile("Đang"))).to_be_visible()
    finally:
        server.thaw()
    page.get_by_role("button", name="Đồng bộ ngay").first.click()
    # The sync line's count goes (the sync screen's own "Chờ gửi 0" fact stays).
    expect(shows(page, re.compile(r"Chờ gửi \d+ ·"))).to_have_count(0, timeout=60_000)
    expect(shows(page, re.compile(r"Đồng bộ lúc \d\d:\d\d"))).to_be_visible()
    expect(shows(page, "Không có gì chờ gửi.")).to_be_visible()  # the list refreshed too
    assert dossiers_on_server(server) == 1

    # A lost tablet: the admin revokes it; the next sync erases the store and the app goes back
    # to the first-run screen saying why.
    [(device, _owner)] = identity.list_devices(server.engine)
    identity.revoke_device(server.engine, device.id)
    page.get_by_role("button", name="Đồng bộ ngay").first.click()
    expect(shows(page, re.compile("Kho dữ liệu đã bị xoá"))).to_be_visible(timeout=30_000)
    expect(page.get_by_role("button", name="Tạo kho dữ liệu")).to_be_visible()


def dossiers_on_server(server) -> int:
    from sqlalchemy import text

    with server.engine.connect() as conn:
        sql = "SELECT COUNT(*) FROM record WHERE entity = 'dossier'"
        return conn.execute(text(sql)).scalar_one()


def test_a_local_store_enrols_later_from_settings(
    page, sqlite_api_server, screenshots  # noqa: F811
) -> None:
    """After the revocation above the app is back at first run: start locally this time; a
    supervisor's account logs this desktop in (a wrong password refused with its reason first)
    and out; then enrol from the settings screen as a user with two wards, and keep the
    offered ward."""
    server = sqlite_api_server
    server.add_user("giamsat.desk", SUPERVISOR, [WARD], password=DESK_PASSWORD)
    server.add_user("canbo.hai.phuong", OFFICER, [WARD, "00008"])
    code = identity.create_enrol_code(server.engine, "canbo.hai.phuong", 10)

    expect(page.get_by_role("button", name="Tạo kho dữ liệu")).to_be_visible()
    type_into(page, "Mã PIN", PIN)
    type_into(page, "Nhập lại mã PIN", PIN)
    page.get_by_role("button", name="Tạo kho dữ liệu").click()
    expect(shows(page, "Chỉ lưu trên máy")).to_be_visible()

    nav(page, "Cài đặt").click()
    expect(shows(page, re.compile("^Thiết bị đang chỉ làm việc trên máy"))).to_be_visible()
    type_into(page, "Địa chỉ máy chủ", server.url)
    log_in_and_out(page, screenshots)
    type_into(page, "Mã đăng ký thiết bị", code)
    page.get_by_role("button", name="Đăng ký thiết bị").click()
    expect(shows(page, re.compile("^Tài khoản này phụ trách nhiều xã/phường"))).to_be_visible()
    page.get_by_role("button", name="Lưu xã/phường").click()
    expect(shows(page, "Đã đăng ký với máy chủ")).to_be_visible()
    expect(shows(page, re.compile(r"Đồng bộ lúc \d\d:\d\d"))).to_be_visible(timeout=30_000)


def log_in_and_out(page, screenshots) -> None:
    """The account login a supervisor's desktop uses instead of a code: the password is not
    left on screen after a refusal; a login turns sync on and says so; logging out ends it."""
    type_into(page, "Tên đăng nhập", "giamsat.desk")
    type_into(page, "Mật khẩu", "sai-mat-khau")
    page.get_by_role("button", name="Đăng nhập", exact=True).click()
    expect(shows(page, re.compile("^Không đăng nhập được: sai tên đăng nhập"))).to_be_visible()
    shot(page, screenshots, "29-settings-login-refused")
    type_into(page, "Mật khẩu", DESK_PASSWORD)
    page.get_by_role("button", name="Đăng nhập", exact=True).click()
    expect(shows(page, "Đã đăng nhập vào máy chủ bằng tài khoản (máy tính)")).to_be_visible()
    shot(page, screenshots, "29-settings-logged-in")
    page.get_by_role("button", name="Đăng xuất").click()
    expect(shows(page, re.compile("^Đã đăng xuất: phiên trên máy chủ đã kết thúc"))).to_be_visible()
    expect(shows(page, re.compile("^Thiết bị đang chỉ làm việc trên máy"))).to_be_visible()
