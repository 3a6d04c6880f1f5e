"""The supervisor's desktop in Chromium, one long journey on a store holding the report
snapshots of Hanoi's 126 wards and five audits waiting for a decision (one resubmitted after a
change request): the dashboard ranks the wards, a ward opens the figures behind it, three audits
are approved together after the selection's failing items are shown, changes are requested on
another, and the summary XLSX is exported and read back. Screenshots 60-65 at 1280x800 and
1920x1080 with COMMUNE_SCREENSHOTS=1."""

from __future__ import annotations

import datetime as dt
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from openpyxl import load_workbook
from playwright.sync_api import Page, expect

from app.domain import audit as A
from app.domain import oversight as O
from app.domain import reference
from app.domain.hlc import Clock
from app.domain.models import AuditAnswer
from app.domain.mutations import Change, FieldValue
from app.storage import KeySettings, create_store
from tests.browser.harness import free_port, nav, open_page, running_app, shots, shows, type_into
from tests.support.tools import missing_tool

PIN = "864200"
AUDIT_APP = Path(__file__).with_name("device_app.py")
WEEKS = [dt.date(2026, 11, 30) - dt.timedelta(weeks=n) for n in range(9, -1, -1)]
WORST = "00070"  # Phường Hoàn Kiếm: seeded with the lowest on-time rate
PICKED = ["00004", "00008", "00025"]  # approved together
ASKED = "00073"  # changes requested on this one
RESUBMITTED = "00091"


def _snapshots(rng: random.Random) -> list[dict]:
    sections = [s.id for s in A.template().sections]
    out = []
    for ward in reference.hanoi_wards():
        weeks = []
        for monday in WEEKS:
            received = rng.randrange(20, 60)
            late = rng.randrange(0, 4) if ward.code != WORST else received // 2
            overdue = rng.randrange(0, 3) if ward.code != WORST else 9
            weeks.append(O.DossierFigures(
                key={"week": monday.isoformat()}, received=received, settled=received - overdue,
                settled_on_time=received - overdue - late, late=late, overdue=overdue,
                online=rng.randrange(0, received),
            ))
        by_section = {s: float(rng.choice([100, 100, 90, 75, 50, 30])) for s in sections}
        audit = O.WardAuditFigures(
            ward_code=ward.code, audits=1, latest_id=None,
            latest_state=rng.choice(["submitted", "approved", "changes_requested", "draft"]),
            latest_score=min(by_section.values()), compliant=min(by_section.values()) >= 80,
            by_section=by_section, failing_items=["premises.cooling"],
        )
        audit.states = {audit.latest_state: 1}
        listed = _behind(weeks) if ward.code == WORST else []
        out.append(O.snapshot_values(ward.code, dt.date(2026, 12, 2), weeks, [], audit, listed))
    return out


def _behind(weeks: list[O.DossierFigures]) -> list[O.ListedDossier]:
    """The dossiers behind the worst ward's overdue and late figures, as many as the figures
    count (the snapshot keeps 100 of each): codes and dates, no applicant."""
    rows = []
    for w in weeks:
        monday = dt.date.fromisoformat(w.key["week"])
        for n in range(w.overdue + w.late):
            kind = "overdue" if n < w.overdue else "late"
            received = monday + dt.timedelta(days=n % 5)
            due = received + dt.timedelta(days=3 + n % 4)
            rows.append(O.ListedDossier(
                kind, f"000.00.53.H48-{received:%y%m%d}-{n + 1:04d}", "1.001193",
                4 if kind == "overdue" else 10, 1 + n % 2, received.isoformat(),
                monday.isoformat(), due.isoformat(),
                None if kind == "overdue" else (due + dt.timedelta(days=1 + n % 6)).isoformat(),
            ))
    return rows


def _answer(store, audit_id: str, good: bool) -> None:
    for item in A.template().items():
        if item.kind in ("text", "photo") or item.photo_required:
            continue
        value = {"yes_no": good, "number": (item.target or 1) * (1 if good else 0.5),
                 "choice": item.options[0 if good else -1].id if item.options else None}
        store.audits.answer(audit_id, item.id, AuditAnswer(value=value[item.kind]))


def load_snapshots(store, seed: int = 40) -> None:
    """The 126 wards' report snapshots, as a supervisor's pull brings them (also the bench's)."""
    clock = Clock("server")
    changes = [
        Change(seq=i + 1, entity=O.REPORT_SNAPSHOT, entity_id=v["ward_code"],
               ward_code=v["ward_code"], version=1,
               fields={k: FieldValue(value=x, hlc=clock.now()) for k, x in v.items()})
        for i, v in enumerate(_snapshots(random.Random(seed)))
    ]
    store.sync.apply_pull_page(changes, len(changes))


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("oversight")
    store = create_store(folder, PIN, settings=KeySettings(offline_years=0))  # demo data
    try:
        store.settings.set("user", "giamsat.binh")
        store.settings.set("officer", "Giám sát viên Bình")
        store.settings.set("role", "supervisor")
        store.settings.set("wards", ["*"])
        store.settings.set("server_url", f"http://127.0.0.1:{free_port()}")  # offline
        store.settings.set("device_token", "token-of-an-offline-device")
        load_snapshots(store)
        for i, ward in enumerate([*PICKED, ASKED]):
            audit = store.audits.create(ward, A.LATEST_TEMPLATE, "Kiểm tra viên Hà")
            _answer(store, audit.id, good=i % 2 == 0)
            store.audits.submit(audit.id)
        again = store.audits.create(RESUBMITTED, A.LATEST_TEMPLATE, "Kiểm tra viên Minh")
        _answer(store, again.id, good=False)
        store.audits.submit(again.id)
        store.audits.review(again.id, "changes_requested", "Bổ sung điều hoà phòng máy",
                            author="giamsat.binh", role="supervisor")
        time.sleep(0.01)
        store.audits.answer(again.id, "premises.cooling", AuditAnswer(value=True))
        store.audits.submit(again.id)
    finally:
        store.close()
    return folder


def card(page: Page, ident: str):
    return page.locator(f'[flt-semantics-identifier="{ident}"]')


def test_supervisor_oversees_reviews_and_exports(browser, app_dir: Path, screenshots, tmp_path):
    with running_app(app_dir, command=[sys.executable, str(AUDIT_APP)]) as url:
        page = open_page(browser, url, 1280, 800)
        try:
            journey(page, screenshots, tmp_path)
        except Exception:
            page.screenshot(path=str(tmp_path / "failed.png"))  # what the screen showed
            raise
        finally:
            page.context.close()


def journey(page: Page, screenshots: Path, tmp_path: Path) -> None:
    type_into(page, "Mã PIN", PIN)
    page.get_by_role("button", name="Mở khoá").click()
    expect(page).to_have_url(re.compile(r"/reviews$"))
    nav(page, "Giám sát").click()
    expect(page).to_have_url(re.compile(r"/oversight$"))
    worst = page.get_by_role("button", name=re.compile(r"^1\. Phường Hoàn Kiếm"))
    expect(worst.first).to_be_visible()
    expect(shows(page, "Tỷ lệ đúng hạn thấp nhất")).to_be_visible()
    shots(page, screenshots, "60-oversight-dashboard")
    page.mouse.move(700, 500)
    page.mouse.wheel(0, 700)  # down to the grid (Flutter scrolls by the wheel, not the DOM)
    expect(card(page, "compliance-grid")).to_be_attached()
    shots(page, screenshots, "61-compliance-grid")
    # An audit-state figure opens the wards behind it.
    approved = page.get_by_role("button", name=re.compile(r"^Đã duyệt: \d+$"))
    count = re.search(r"\d+", approved.first.inner_text() or approved.first.get_attribute(
        "aria-label") or "")
    approved.first.click()
    expect(page).to_have_url(re.compile(r"/oversight/state/approved$"))
    if count:
        expect(shows(page, f"Đã duyệt: {count.group()} xã/phường", exact=False)).to_be_visible()
    page.get_by_role("button", name="Về bảng giám sát").click()
    expect(page).to_have_url(re.compile(r"/oversight$"))

    # Export the summary of all wards and read it back.
    page.get_by_role("button", name=re.compile("^Xuất tổng hợp XLSX")).scroll_into_view_if_needed()
    with page.expect_download() as info:
        page.get_by_role("button", name=re.compile("^Xuất tổng hợp XLSX")).click()
    saved = tmp_path / info.value.suggested_filename
    info.value.save_as(saved)
    rows = list(load_workbook(saved).worksheets[0].iter_rows(min_row=3, values_only=True))
    assert len(rows) == 126 and rows[0][0] == WORST  # worst on-time rate first
    assert rows[0][6] == 90  # nine overdue a week for ten weeks

    # The ward behind the figure.
    worst.first.click()
    expect(page).to_have_url(re.compile(rf"/oversight/ward/{WORST}$"))
    expect(shows(page, "Theo tuần")).to_be_visible()
    expect(shows(page, "2026-11-30").first).to_be_visible()
    # The dossiers behind its overdue figure, from the snapshot: codes and dates only.
    expect(card(page, "ward-overdue")).to_be_attached()
    expect(shows(page, "Hồ sơ quá hạn (90/90)")).to_be_attached()
    expect(shows(page, "Hồ sơ giải quyết trễ hạn (100/207)")).to_be_attached()  # its bound
    expect(shows(page, "000.00.53.H48-260928-0001").first).to_be_attached()  # longest overdue
    page.mouse.move(700, 500)
    page.mouse.wheel(0, 500)  # down to the lists (Flutter scrolls by the wheel)
    expect(shows(page, "Hồ sơ quá hạn (90/90)")).to_be_visible()
    shots(page, screenshots, "62-ward-overdue-dossiers")
    page.mouse.wheel(0, -2000)
    page.get_by_role("button", name="Về bảng giám sát").click()

    # Review several: the resubmitted one shows what changed; approve three together.
    page.get_by_role("button", name=re.compile("^Duyệt nhiều biên bản")).click()
    expect(page).to_have_url(re.compile(r"/oversight/review$"))
    diff = shows(page, re.compile(r"Đã sửa sau yêu cầu chỉnh sửa lúc .*: 1 mục"))
    expect(diff).to_be_visible()
    cooling = A.template().item("premises.cooling").label
    expect(shows(page, f"• {cooling}: trước Không, nay Có")).to_be_visible()  # old → new
    shots(page, screenshots, "64-change-diff")  # resubmitted audits come first
    for ward in PICKED:
        name = reference.ward(ward).name
        page.get_by_role("checkbox", name=re.compile(rf"^{name} · ")).click()
    approve = page.get_by_role("button", name="Duyệt 3 biên bản đã chọn")
    expect(approve.first).to_be_enabled()
    approve.first.click()
    expect(shows(page, "Duyệt 3 biên bản?")).to_be_visible()
    expect(shows(page, re.compile(r"Phường Ngọc Hà: [×?] ")).first).to_be_visible()
    shots(page, screenshots, "63-bulk-review")
    page.get_by_role("button", name="Duyệt 3 biên bản đã chọn").last.click()
    expect(shows(page, "Đã duyệt 3 biên bản, 0 không duyệt được.")).to_be_visible()
    for ward in PICKED:
        expect(card(page, f"pending-{ward}")).to_have_count(0)

    # Ask for changes on one, with a comment, through the audit's own screen.
    card(page, f"pending-{ASKED}").get_by_role("button", name="Mở cuộc khảo sát").click()
    type_into(page, "Ý kiến gửi người khảo sát (bắt buộc, trừ khi duyệt)",
              "Bổ sung ảnh tủ mạng")
    page.get_by_role("button", name="Yêu cầu chỉnh sửa").click()
    decided = re.compile(r"giamsat\.binh · Yêu cầu chỉnh sửa: Bổ sung ảnh")
    expect(shows(page, decided)).to_be_visible()


def test_report_pages_for_the_docs(screenshots, tmp_path) -> None:
    """The weekly PDF made from the same snapshots, rendered as a reader sees it (pdftoppm),
    at the documented widths: screenshot 45."""
    if shutil.which("pdftoppm") is None:
        missing_tool("pdftoppm missing (Debian package poppler-utils)")
    from PIL import Image

    from app.reports import oversight as R
    from app.views.oversight_models import ward_name

    snaps = [O.snapshot_from_values(v) for v in _snapshots(random.Random(40))]
    pdf = tmp_path / "tuan.pdf"
    pdf.write_bytes(R.weekly_pdf(R.data_from_snapshots(snaps, dt.date(2026, 12, 2), ward_name)))
    subprocess.run(["pdftoppm", "-png", "-r", "110", "-f", "1", "-l", "1", str(pdf),
                    str(tmp_path / "p")], check=True, timeout=60)
    [page] = tmp_path.glob("p*.png")
    image = Image.open(page).convert("RGB")
    for width, height in ((1280, 800), (1920, 1080)):
        scaled = image.resize((width, int(image.height * width / image.width)))
        canvas = Image.new("RGB", (width, height), "white")
        canvas.paste(scaled.crop((0, 0, width, min(height, scaled.height))), (0, 0))
        canvas.save(screenshots / f"65-report-weekly-{width}x{height}.png")
    assert (screenshots / "65-report-weekly-1280x800.png").exists()
