"""A new officer, end to end in Chromium: start locally, set a PIN, receive a dossier with a
conditional paper left unticked, get the duplicate warning on a second receive for the same ID
number, find the first dossier without diacritics and by its code's tail, request a supplement
and open form 02, move it to in process and completed, download its receipt slip, lock and
unlock. Every step is asserted through the accessibility tree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from openpyxl import load_workbook
from playwright.sync_api import Page, expect
from pypdf import PdfReader

from tests.browser.harness import (
    find_procedure,
    nav,
    open_page,
    resize,
    shot,
    shots,
    shows,
    type_into,
)

PIN = "246810"
APPLICANT = "Nguyễn Thị Hương"
OFFICER = "Trần Văn Nam"


TABLET = {"width": 800, "height": 1280}


def counter_shots(page: Page, folder: Path, name: str) -> None:
    """The counter's changed screens at both desktop sizes and on an upright tablet."""
    shots(page, folder, name)
    size = page.viewport_size or {"width": 1280, "height": 800}
    resize(page, TABLET["width"], TABLET["height"])
    shot(page, folder, name)
    resize(page, size["width"], size["height"])
    # Back on the desktop layout: the app repaints with its desktop theme; the next click waits
    # for it (a dialog pressed while that repaint was still to come did not close). A modal
    # dialog hides the navigation from the accessibility tree, so this waits by time.
    page.wait_for_timeout(1500)


def pdf_text(download, folder: Path) -> str:
    path = folder / download.suggested_filename
    download.save_as(path)
    return " ".join("".join(p.extract_text() for p in PdfReader(path).pages).split())


@pytest.fixture(scope="module")
def page(browser, app_url):
    page = open_page(browser, app_url, 1280, 800)
    yield page
    page.context.close()


def test_new_officer_flow(page: Page, screenshots: Path, tmp_path: Path) -> None:
    # First run: local only, officer name, PIN twice.
    expect(page.get_by_role("radio", name="Chỉ làm việc trên máy này")).to_be_visible()
    shot(page, screenshots, "01-first-run")
    resize(page, 1920, 1080)
    expect(page.get_by_role("radio", name="Chỉ làm việc trên máy này")).to_be_visible()
    shot(page, screenshots, "01-first-run")
    resize(page, 1280, 800)
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
    expect(shows(page, re.compile(r"^Phí, lệ phí: [\d.]+ đồng$"))).to_be_visible()  # at intake
    expect(shows(page, re.compile(r"Ngày hẹn trả dự kiến: \d\d/\d\d/\d{4}"))).to_be_visible()
    type_into(page, "Họ và tên người nộp", APPLICANT)
    type_into(page, "Số CCCD", "001190012345")
    type_into(page, "Điện thoại", "0912345678")
    type_into(page, "Địa chỉ", "Số 5 phố Đội Cấn, phường Ba Đình")
    expect(shows(page, re.compile("^Thủ tục: Thủ tục"))).to_have_count(0)  # named once
    # Only the papers every case needs start ticked; the proxy letter says when it is needed.
    expect(page.get_by_role("checkbox", name="Tờ khai đăng ký lại khai sinh")).to_be_checked()
    expect(page.get_by_role("checkbox", name="Văn bản ủy quyền")).not_to_be_checked()
    expect(shows(page, re.compile("^Chỉ khi: nếu nộp thay"))).to_be_visible()
    counter_shots(page, screenshots, "03-receive-form")
    page.get_by_role("button", name="Lưu và cấp mã hồ sơ").click()

    # Detail: code issued, status received, only the allowed moves offered.
    code = shows(page, re.compile(r"\d{3}\.\d{2}\.\d{2}\.H26-\d{6}-\d{4}"))
    expect(code).to_be_visible()
    first_code = re.search(r"\d{3}\.\d{2}\.\d{2}\.H26-\d{6}-\d{4}",
                           code.text_content() or code.get_attribute("aria-label") or "")[0]
    expect(page.get_by_text("Văn bản ủy quyền")).to_have_count(0)  # not handed over
    expect(shows(page, "Đã tiếp nhận")).to_be_visible()
    expect(page.get_by_role("button", name="Chuyển xử lý")).to_be_visible()
    expect(page.get_by_role("button", name="Trả kết quả")).to_have_count(0)
    shots(page, screenshots, "04-dossier-detail")

    # The same person for the same procedure again: a warning naming the open dossier; the
    # officer goes on (written as "Nguyễn T. Hương" on this form) and the history says so.
    nav(page, "Tiếp nhận").click()
    find_procedure(page, "dang ky lai khai sinh")
    page.get_by_role(
        "button", name=re.compile(r"^Thủ tục đăng ký lại khai sinh\s+1\.004884")
    ).click()
    type_into(page, "Họ và tên người nộp", "Nguyễn T. Hương")
    type_into(page, "Số CCCD", "001190012345")
    page.get_by_role("button", name="Lưu và cấp mã hồ sơ").click()
    expect(shows(page, "Có thể trùng hồ sơ")).to_be_visible()
    expect(shows(page, re.compile(rf"đang có hồ sơ chưa giải quyết xong.*{re.escape(first_code)}")
                 )).to_be_visible()
    counter_shots(page, screenshots, "24-duplicate-warning")
    page.get_by_role("button", name="Vẫn tiếp nhận").click()
    expect(shows(page, re.compile(rf"cảnh báo trùng hồ sơ đang mở: {re.escape(first_code)}"))
           ).to_be_visible()
    page.get_by_role("button", name="Công dân rút hồ sơ").click()  # the citizen withdraws it
    page.get_by_role("button", name="Xác nhận").click()
    expect(shows(page, "Đã tiếp nhận » Công dân rút hồ sơ")).to_be_visible()

    # The list finds it by the name typed without diacritics.
    nav(page, "Hồ sơ").click()
    type_into(page, "Tìm theo tên người nộp, số CCCD hoặc mã hồ sơ", "nguyen thi huong")
    expect(shows(page, "Hiển thị 1/1 hồ sơ")).to_be_visible()
    shots(page, screenshots, "05-dossiers-search")
    type_into(page, "Tìm theo tên người nộp, số CCCD hoặc mã hồ sơ", "tran van binh")
    expect(shows(page, "Không có hồ sơ phù hợp.")).to_be_visible()
    # ... and by the tail of its code printed on the slip, in any case.
    type_into(page, "Tìm theo tên người nộp, số CCCD hoặc mã hồ sơ", first_code[-11:])
    expect(shows(page, "Hiển thị 1/1 hồ sơ")).to_be_visible()
    counter_shots(page, screenshots, "25-dossiers-search-code")
    page.get_by_role("button", name=re.compile(rf"^{APPLICANT}\s")).click()

    # Received -> in process -> completed, through the confirmation dialog.
    page.get_by_role("button", name="Chuyển xử lý").click()
    expect(page.get_by_role("textbox", name="Ghi chú (không bắt buộc)")).to_be_visible()
    shots(page, screenshots, "06-status-dialog")
    page.get_by_role("button", name="Xác nhận").click()
    expect(shows(page, "Đã tiếp nhận » Đang xử lý")).to_be_visible()

    # A supplement request hands over form 02 at once, and the detail opens it again.
    page.get_by_role("button", name="Yêu cầu bổ sung").click()
    type_into(page, "Ghi chú (không bắt buộc)", "Bổ sung bản sao giấy khai sinh cũ")
    with page.expect_download() as handed:
        page.get_by_role("button", name="Xác nhận").click()
    assert handed.value.suggested_filename.startswith(f"mau-02-{first_code}-")
    expect(shows(page, "Đang xử lý » Yêu cầu bổ sung")).to_be_visible()
    form_02 = page.get_by_role("button", name=re.compile(r"^Mẫu 02 · Phiếu yêu cầu bổ sung"))
    counter_shots(page, screenshots, "26-detail-form-02")
    with page.expect_download() as opened:
        form_02.click()
    text = pdf_text(opened.value, tmp_path)
    assert "PHIẾU YÊU CẦU BỔ SUNG, HOÀN THIỆN HỒ SƠ" in text and first_code in text
    assert "1. Bổ sung bản sao giấy khai sinh cũ" in text and APPLICANT in text
    page.get_by_role("button", name="Chuyển xử lý").click()  # supplied: back in process
    page.get_by_role("button", name="Xác nhận").click()
    expect(shows(page, "Yêu cầu bổ sung » Đang xử lý")).to_be_visible()
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
    handed = re.compile(rf"^Đã tải {re.escape(download.suggested_filename)} về máy: mở từ mục tải")
    expect(shows(page, handed)).to_be_visible()  # not a silent download
    pdf_path = tmp_path / download.suggested_filename
    download.save_as(pdf_path)
    text = "".join(p.extract_text() for p in PdfReader(pdf_path).pages)
    assert "PHIẾU TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ" in text
    assert APPLICANT in text and OFFICER in text
    assert re.search(r"Phí, lệ phí: [\d.]+ đồng", text)  # the fee of the catalogue in force

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

    # "Nhập sổ": an XLSX register picked from the device; progress, then the summary and the
    # refused line by its sheet row; the imported dossiers are in the list behind.
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Nhập sổ").click()
    chooser.value.set_files(
        {"name": "so-theo-doi.xlsx", "buffer": _register_xlsx(),
         "mimeType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
    )
    expect(shows(page, "Đã nhập 2 hồ sơ, bỏ qua 0 hồ sơ đã có, 1 dòng bị từ chối.")
           ).to_be_visible()
    expect(shows(page, re.compile(r"^Dòng 4: "))).to_be_visible()
    counter_shots(page, screenshots, "27-register-import")  # the tablet too: the dialog
    close_import = page.get_by_role("button", name="Đóng")  # still closes after the resize
    close_import.click()
    expect(close_import).to_have_count(0, timeout=30_000)
    expect(page.get_by_role("button", name=re.compile(r"^Lê Văn Sổ\s"))).to_be_visible()
    # ... and the register goes out again from the app (form 06, every dossier of the store).
    with page.expect_download() as exported:
        page.get_by_role("button", name="Xuất sổ").click()
    assert re.fullmatch(r"so-theo-doi-ho-so-\d{8}\.xlsx", exported.value.suggested_filename)
    exported_note = re.compile(r"^Đã xuất sổ theo dõi hồ sơ \(mẫu 06\): \d+ hồ sơ")
    expect(shows(page, exported_note)).to_be_visible()
    register = tmp_path / exported.value.suggested_filename
    exported.value.save_as(register)
    book = load_workbook(register)
    names = {row[4] for row in book.active.iter_rows(min_row=5, values_only=True)}
    assert "Lê Văn Sổ" in names and APPLICANT in names


def _register_xlsx() -> bytes:
    import io

    from openpyxl import Workbook

    from app.storage.services.register_file import IMPORT_COLUMNS

    book = Workbook()
    book.active.append(list(IMPORT_COLUMNS))
    for name, procedure in (("Lê Văn Sổ", "1.004884"), ("Lê Thị Sổ", "1.004884"),
                            ("Lê Văn Sai", "9.999999")):
        values = {"procedure_code": procedure, "ward_code": "00004", "applicant_name": name,
                  "channel": 1, "received_at": "2026-11-20T08:30:00", "status": 2}
        book.active.append([values.get(c) for c in IMPORT_COLUMNS])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
