"""Attachments on a dossier: a file from the picker, and a photo from the (stand-in) camera."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from playwright.sync_api import expect

from app.storage import KeySettings, create_store
from app.views.format import today_local
from tests.browser.harness import open_page, running_app, shows, type_into
from tests.views.seed import WARD, seed

PIN = "864202"
CAMERA_APP = Path(__file__).with_name("device_app.py")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("attachments")
    # the screens under test, not the no-keystore passphrase rule (docs/security.md)
    store = create_store(folder, PIN, settings=KeySettings(offline_years=0))
    try:
        store.settings.set("ward_code", WARD)
        seed(store, 3, today=today_local())
    finally:
        store.close()
    with running_app(folder, command=[sys.executable, str(CAMERA_APP)]) as url:
        yield url


def test_file_and_photo_attachments(browser, app_url: str) -> None:
    page = open_page(browser, app_url, 1280, 800)
    try:
        type_into(page, "Mã PIN", PIN)
        page.get_by_role("button", name="Mở khoá").click()
        page.get_by_role("button", name=re.compile(r"Hẹn trả: ")).first.click()
        expect(shows(page, "Chưa có tệp đính kèm.")).to_be_visible()

        with page.expect_file_chooser() as chooser:
            page.get_by_role("button", name="Đính kèm tệp").click()
        chooser.value.set_files(
            {"name": "giay-to-tuy-than.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 x"}
        )
        expect(shows(page, re.compile(r"giay-to-tuy-than\.pdf \(10 B\)"))).to_be_visible()
        # "Mở" hands the decrypted file back (a download in the browser), byte for byte.
        with page.expect_download() as download_info:
            page.get_by_role("button", name=re.compile(r"^Mở(\s|$)")).first.click()
        download = download_info.value
        assert download.suggested_filename == "giay-to-tuy-than.pdf"
        assert Path(download.path()).read_bytes() == b"%PDF-1.4 x"

        page.get_by_role("button", name="Chụp ảnh").click()
        expect(shows(page, re.compile(r"anh-\d{8}-\d{6}\.jpg"))).to_be_visible()
        expect(shows(page, "Chưa có tệp đính kèm.")).to_have_count(0)
    finally:
        page.context.close()
