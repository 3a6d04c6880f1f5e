"""A new officer, end to end in Chromium: start locally, set a PIN, receive a dossier, find it
without diacritics, move it to in process and completed, download its receipt slip, lock and
unlock. Every step is asserted through the accessibility tree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from pypdf import PdfReader

from tests.browser.harness import find_procedure, nav, open_page, shot, shots, shows, type_into

PIN = "246810"
APPLICANT = "Nguyễn Thị Hương"
OFFICER = "Trần Văn Nam"


@pytest.fixture(scope="module")
def page(browser, app_url):
    page = open_page(browser, app_url, 1280, 800)
    yield page
    page.context.close()


def test_new_officer_flow(page: Page, screenshots: Path, tmp_path: Path) -> None:
    # First run: local only, officer name, PIN twice.
    expect(page.get_by_role("radio", name="Chỉ làm việc trên máy này")).to_be_visible()
    shot(page, screenshots, "01-first-run")
    page.set_viewport_size({"width": 1920, "height": 1080})
    expect(page.get_by_role("radio", name="Chỉ làm việc trên máy này")).to_be_visible()
    shot(page, screenshots, "01-first-run")
    page.set_viewport_size({"width": 1280, "height": 800})
    type_into(page, "Tên cán bộ tiếp nhận", OFFICER)
    type_into(page, "Mã PIN", PIN)
    type_into(page, "Nhập lại mã PIN", "135790")
    page.get_by_role("button", name="Tạo kho dữ liệu").click()
    expect(shows(page, "Hai lần nhập mã PIN không khớp")).to_be_visible()
    type_into(page, "Nhập lại mã PIN", PIN)
    page.get_by_role("button", name="Tạo kho dữ liệu").click()

    # The empty dossier list, with the local-only sync line.
    expect(shows(page, "Danh sách hồ sơ")).to_be_visible()
    expect(shows(page, "Hiển thị 0/0 hồ sơ")).to_be_visible()
    expect(shows(page, "Chỉ lưu trên máy")).to_be_visible()
    shots(page, screenshots, "02-dossiers-empty")

    # Intake: pick the procedure by a diacritic-free search, fill the applicant, save.
    nav(page, "Tiếp nhận").click()
    find_procedure(page, "dang ky lai khai sinh")
    page.get_by_role(
        "button", name=re.compile(r"^Thủ tục đăng ký lại khai sinh\s+1\.004884")
    ).click()
    expect(shows(page, "Thời hạn giải quyết: 5 ngày làm việc")).to_be_visible()
    expect(shows(page, re.compile(r"Ngày hẹn trả dự kiến: \d\d/\d\d/\d{4}"))).to_be_visible()
    type_into(page, "Họ và tên người nộp", APPLICANT)
    type_into(page, "Số CCCD", "001190012345")
    type_into(page, "Điện thoại", "0912345678")
    type_into(page, "Địa chỉ", "Số 5 phố Đội Cấn, phường Ba Đình")
    expect(shows(page, re.compile("^Thủ tục: Thủ tục"))).to_have_count(0)  # named once
    shots(page, screenshots, "03-receive-form")
    page.get_by_role("button", name="Lưu và cấp mã hồ sơ").click()

    # Detail: code issued, status received, only the allowed moves offered.
    code = shows(page, re.compile(r"\d{3}\.\d{2}\.\d{2}\.H26-\d{6}-\d{4}"))
    expect(code).to_be_visible()
    expect(shows(page, "Đã tiếp nhận")).to_be_visible()
    expect(page.get_by_role("button", name="Chuyển xử lý")).to_be_visible()
    expect(page.get_by_role("button", name="Trả kết quả")).to_have_count(0)
    shots(page, screenshots, "04-dossier-detail")

    # The list finds it by the name typed without diacritics.
    nav(page, "Hồ sơ").click()
    type_into(page, "Tìm theo tên người nộp, số CCCD hoặc mã hồ sơ", "nguyen thi huong")
    expect(shows(page, "Hiển thị 1/1 hồ sơ")).to_be_visible()
    shots(page, screenshots, "05-dossiers-search")
    type_into(page, "Tìm theo tên người nộp, số CCCD hoặc mã hồ sơ", "tran van binh")
    expect(shows(page, "Không có hồ sơ phù hợp.")).to_be_visible()
    type_into(page, "Tìm theo tên người nộp, số CCCD hoặc mã hồ sơ", "huong")
    page.get_by_role("button", name=re.compile(rf"^{APPLICANT}\s")).click()

    # Received -> in process -> completed, through the confirmation dialog.
    page.get_by_role("button", name="Chuyển xử lý").click()
    expect(page.get_by_role("textbox", name="Ghi chú (không bắt buộc)")).to_be_visible()
    shots(page, screenshots, "06-status-dialog")
    page.get_by_role("button", name="Xác nhận").click()
    expect(shows(page, "Đã tiếp nhận » Đang xử lý")).to_be_visible()
    page.get_by_role("button", name="Hoàn thành xử lý").click()
    type_into(page, "Kết quả (số quyết định, giấy tờ trả)", "Giấy khai sinh số 123/2026")
    page.get_by_role("button", name="Xác nhận").click()
    expect(shows(page, "Đang xử lý » Đã xử lý xong")).to_be_visible()
    expect(page.get_by_role("button", name="Trả kết quả")).to_be_visible()
    expect(page.get_by_role("button", name="Chuyển xử lý")).to_have_count(0)

    # The receipt slip (form 01) downloads as a PDF naming the applicant with diacritics.
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Phiếu tiếp nhận (mẫu 01)").click()
    download = download_info.value
    assert download.suggested_filename.startswith("phieu-tiep-nhan-")
    pdf_path = tmp_path / download.suggested_filename
    download.save_as(pdf_path)
    text = "".join(p.extract_text() for p in PdfReader(pdf_path).pages)
    assert "PHIẾU TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ" in text
    assert APPLICANT in text and OFFICER in text

    # Lock now; a wrong PIN says how many attempts are left; the right one opens the list.
    page.get_by_role("button", name="Khoá ngay").click()
    expect(page.get_by_role("button", name="Mở khoá")).to_be_visible()
    shots(page, screenshots, "07-unlock")
    type_into(page, "Mã PIN", "999999")
    page.get_by_role("button", name="Mở khoá").click()
    expect(shows(page, re.compile(r"Sai mã PIN, còn \d+ lần thử"))).to_be_visible()
    shots(page, screenshots, "08-unlock-wrong-pin")
    unlock = page.get_by_role("button", name=re.compile(r"^Mở khoá$"))
    expect(unlock).to_be_enabled(timeout=40_000)
    type_into(page, "Mã PIN", PIN)
    unlock.click()
    expect(shows(page, "Danh sách hồ sơ")).to_be_visible()
    # Completed, it has left the default list (the open work queue); every status shows it.
    expect(shows(page, "Hiển thị 0/0 hồ sơ")).to_be_visible()
    page.get_by_role("textbox", name="Trạng thái", exact=True).click()
    option = page.get_by_role("menuitem", name="Tất cả trạng thái", exact=True)
    option.or_(page.get_by_role("button", name="Tất cả trạng thái", exact=True)).first.click()
    expect(page.get_by_role("button", name=re.compile(rf"^{APPLICANT}\s"))).to_be_visible()
