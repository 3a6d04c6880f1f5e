"""First run with a server: enrol with a one-time code on screen, receive a dossier offline-first,
press "Đồng bộ ngay" and find it on the real central API (a subprocess on 127.0.0.1); then the
device is revoked and the app erases its store."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from server.scope import OFFICER
from server.services import identity
from tests.browser.harness import find_procedure, nav, open_page, shows, type_into
from tests.support.server_proc import sqlite_api_server  # noqa: F401  (fixture)

PIN = "975310"
WARD = "00004"


@pytest.fixture
def page(browser, app_url):
    page = open_page(browser, app_url, 1280, 800)
    yield page
    page.context.close()


def test_enrol_receive_and_sync_now(page, sqlite_api_server) -> None:  # noqa: F811
    server = sqlite_api_server
    server.add_user("canbo.badinh", OFFICER, [WARD])
    code = identity.create_enrol_code(server.engine, "canbo.badinh", 10)

    page.get_by_role("radio", name="Đăng ký với máy chủ bằng mã").click()
    type_into(page, "Địa chỉ máy chủ", server.url)
    type_into(page, "Mã đăng ký thiết bị", code)
    type_into(page, "Tên cán bộ tiếp nhận", "Lê Thu Hà")
    type_into(page, "Mã PIN", PIN)
    type_into(page, "Nhập lại mã PIN", PIN)
    page.get_by_role("button", name="Tạo kho dữ liệu").click()
    # Enrolled: the scheduler's first run reaches the server and says when.
    expect(shows(page, re.compile(r"Đồng bộ lúc \d\d:\d\d"))).to_be_visible(timeout=30_000)

    nav(page, "Tiếp nhận").click()
    find_procedure(page, "1.004884")
    page.get_by_role("button", name=re.compile(r"^Thủ tục đăng ký lại khai sinh\s")).click()
    type_into(page, "Họ và tên người nộp", "Vũ Minh Khánh")
    page.get_by_role("button", name="Lưu và cấp mã hồ sơ").click()
    expect(shows(page, re.compile(r"Chờ gửi \d+"))).to_be_visible()

    page.get_by_role("button", name="Đồng bộ ngay").click()
    expect(shows(page, re.compile(r"Chờ gửi"))).to_have_count(0, timeout=30_000)
    expect(shows(page, re.compile(r"Đồng bộ lúc \d\d:\d\d"))).to_be_visible()
    assert dossiers_on_server(server) == 1

    # A lost tablet: the admin revokes it; the next sync erases the store and the app goes back
    # to the first-run screen saying why.
    [(device, _owner)] = identity.list_devices(server.engine)
    identity.revoke_device(server.engine, device.id)
    page.get_by_role("button", name="Đồng bộ ngay").click()
    expect(shows(page, re.compile("Kho dữ liệu đã bị xoá"))).to_be_visible(timeout=30_000)
    expect(page.get_by_role("button", name="Tạo kho dữ liệu")).to_be_visible()


def dossiers_on_server(server) -> int:
    from sqlalchemy import text

    with server.engine.connect() as conn:
        sql = "SELECT COUNT(*) FROM record WHERE entity = 'dossier'"
        return conn.execute(text(sql)).scalar_one()


def test_a_local_store_enrols_later_from_settings(page, sqlite_api_server) -> None:  # noqa: F811
    """After the revocation above the app is back at first run: start locally this time, then
    enrol from the settings screen as a user with two wards, and keep the offered ward."""
    server = sqlite_api_server
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
    type_into(page, "Mã đăng ký thiết bị", code)
    page.get_by_role("button", name="Đăng ký thiết bị").click()
    expect(shows(page, re.compile("^Tài khoản này phụ trách nhiều xã/phường"))).to_be_visible()
    page.get_by_role("button", name="Lưu xã/phường").click()
    expect(shows(page, "Đã đăng ký với máy chủ")).to_be_visible()
    expect(shows(page, re.compile(r"Đồng bộ lúc \d\d:\d\d"))).to_be_visible(timeout=30_000)
