"""`commune report`: from the server's database (--db) and from a device's store; the XLSX read
back and checked against the seed counted by hand, the PDFs' Vietnamese text extracted and a
page rendered to PNG."""

from __future__ import annotations

import hashlib
import io
import random
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from openpyxl import load_workbook
from PIL import Image
from pypdf import PdfReader

from app.domain import audit as A
from server import migrate
from server.core import sealing
from server.core.db import make_engine
from server.storage import LocalDiskStore
from tests.oversight.seed import insert_records, seed_dossiers
from tests.support.tools import missing_tool

DOSSIERS = seed_dossiers(300, random.Random(5))


def _png(color: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def server_db(tmp_path_factory) -> tuple[str, Path, str]:
    root = tmp_path_factory.mktemp("server")
    url = f"sqlite:///{root / 'commune.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    insert_records(engine, "dossier", "dossier", DOSSIERS)
    photo = _png((200, 30, 30))
    sha = hashlib.sha256(photo).hexdigest()
    attachments = root / "attachments"
    # As the server keeps it: sealed at rest with the server data key of its key file.
    sealing.install(sealing.load_keyring(root / "keys" / "server.key"))
    blobs = LocalDiskStore(attachments)
    blobs.write_at(sha, 0, photo)
    assert blobs.finish(sha)
    assert photo not in (attachments / sha[:2] / sha).read_bytes()
    tpl = A.template()
    photo_item = next(i for i in tpl.items() if i.kind == "photo" or i.photo_required)
    failing = next(i for i in tpl.items() if i.kind == "yes_no" and i.scored)
    audit = {
        "id": "a-00070",
        "ward_code": "00070",
        "review_state": "submitted",
        "template_version": tpl.version,
        "submitted_at": "2026-11-20T02:00:00+00:00",
        f"answers.{photo_item.id}": {"value": True if photo_item.kind == "yes_no" else None,
                                      "photos": [sha]},
        f"answers.{failing.id}": {"value": False, "photos": []},
    }
    insert_records(engine, "audit", "audit", [audit])
    engine.dispose()
    return url, attachments, failing.label


def test_audits_xlsx_has_one_row_per_ward_with_the_seeded_figures(cli, server_db, tmp_path):
    url, _, _ = server_db
    out = tmp_path / "tong-hop.xlsx"
    done = cli("report", "audits", "--format", "xlsx", "--out", str(out), "--db", url)
    assert done.code == 0, done.err
    assert "Đã lưu" in done.err  # progress and the end go to stderr
    sheet = load_workbook(out).worksheets[0]
    header = [c.value for c in sheet[2]]
    assert header[:4] == ["Mã xã/phường", "Xã/phường", "Tiếp nhận", "Đã giải quyết"]
    rows = {r[0]: r for r in sheet.iter_rows(min_row=3, values_only=True)}
    received = Counter(d["ward_code"] for d in DOSSIERS)
    settled = Counter(d["ward_code"] for d in DOSSIERS if d["status"] in (9, 10))
    online = Counter(d["ward_code"] for d in DOSSIERS if d["channel"] == 2)
    assert set(rows) == set(received)
    for ward, row in rows.items():
        assert row[2] == received[ward] and row[3] == settled[ward]
        assert row[7] == pytest.approx(round(online[ward] / received[ward], 4))
    assert rows["00070"][9] == 1 and rows["00070"][10] == "Đã gửi duyệt"
    assert rows["00070"][13] >= 1  # the failing item
    rates = [r[8] for r in sheet.iter_rows(min_row=3, values_only=True)]
    assert rates == sorted(rates)  # worst on-time rate first


def _render(pdf: Path, tmp_path: Path) -> list[Path]:
    """Every page as PNG (pdftoppm, as a reader would see it)."""
    if shutil.which("pdftoppm") is None:
        missing_tool("pdftoppm missing (Debian package poppler-utils)")
    subprocess.run(["pdftoppm", "-png", "-r", "50", str(pdf), str(tmp_path / "page")],
                   check=True, timeout=60)
    return sorted(tmp_path.glob("page*.png"))


def test_weekly_pdf_text_in_vietnamese_and_rendered(cli, server_db, tmp_path):
    url, _, _ = server_db
    out = tmp_path / "tuan.pdf"
    done = cli("report", "weekly", "--format", "pdf", "--out", str(out), "--db", url,
               "--from", "2026-11-02", "--to", "2026-11-29")
    assert done.code == 0, done.err
    text = "".join(p.extract_text() for p in PdfReader(out).pages)
    assert "Báo cáo tiến độ hằng tuần" in text
    assert "Tỷ lệ đúng hạn" in text and "Kỳ báo cáo: 02/11/2026 – 29/11/2026" in text
    assert "2026-11-02" in text and "2026-10-26" not in text  # weeks outside the period left out
    image = Image.open(_render(out, tmp_path)[0]).convert("L")
    assert image.getextrema()[0] < 100  # dark text painted on the page


def test_ward_pdf_lists_failing_items_and_shows_the_photo(cli, server_db, tmp_path):
    url, attachments, failing_label = server_db
    out = tmp_path / "phuong.pdf"
    key_file = attachments.parent / "keys" / "server.key"
    done = cli("report", "ward", "--ward", "00070", "--format", "pdf", "--out", str(out),
               "--db", url, "--attachments", str(attachments), "--key-file", str(key_file))
    assert done.code == 0, done.err
    reader = PdfReader(out)
    text = "".join(p.extract_text() for p in reader.pages)
    assert "Báo cáo khảo sát hạ tầng CNTT" in text and "Ảnh minh chứng" in text
    assert failing_label.split()[0] in text and "Chưa đạt" in text
    assert sum(len(p.images) for p in reader.pages) == 1  # the thumbnail
    pages = [Image.open(p).convert("RGB") for p in _render(out, tmp_path)]
    red = [(r, g, b) for page in pages for r, g, b in page.get_flattened_data() if r > 150 > 80 > g]
    assert red  # the red photo is painted


def _tree(folder: Path) -> list[tuple[str, int, int]]:
    """(path, mode, size) of the folder and everything in it."""
    paths = [folder, *sorted(folder.rglob("*"))]
    return [(str(p.relative_to(folder)), p.stat().st_mode, p.stat().st_size) for p in paths]


def test_ward_report_reads_photos_without_touching_the_servers_folder(cli, server_db, tmp_path):
    url, attachments, _ = server_db
    # A folder the report must leave as it finds it: no partial/ folder, modes not the server's.
    shutil.rmtree(attachments / "partial", ignore_errors=True)
    for path in [attachments, *attachments.iterdir()]:
        path.chmod(0o755)
    before = _tree(attachments)
    out = tmp_path / "phuong.pdf"
    key_file = attachments.parent / "keys" / "server.key"
    done = cli("report", "ward", "--ward", "00070", "--format", "pdf", "--out", str(out),
               "--db", url, "--attachments", str(attachments), "--key-file", str(key_file))
    assert done.code == 0, done.err
    assert sum(len(p.images) for p in PdfReader(out).pages) == 1  # the photo was read
    assert _tree(attachments) == before


def test_ward_report_needs_a_ward(cli, server_db, tmp_path):
    done = cli("report", "ward", "--format", "pdf", "--out", str(tmp_path / "x.pdf"),
               "--db", server_db[0])
    assert done.code == 2 and "--ward" in done.err


def test_device_report_counts_its_own_dossiers(cli, tmp_path):
    from tests.cli.conftest import PIN, row, write_csv

    assert cli("init", "--ward", "00070", stdin=f"{PIN}\n", COMMUNE_PIN=PIN).code == 0
    rows = [
        row("1.001193", channel="2", applicant_name="Phạm Minh An"),
        row("1.001193", applicant_name="Đỗ Thu Hà"),
        row("1.000894", status="1", applicant_name="Vũ Quang Huy"),
    ]
    path = write_csv(tmp_path / "in.csv", rows)
    assert cli("dossiers", "import", str(path), COMMUNE_PIN=PIN).code == 0
    out = tmp_path / "may.xlsx"
    done = cli("report", "audits", "--format", "xlsx", "--out", str(out), COMMUNE_PIN=PIN)
    assert done.code == 0, done.err
    [ward_row] = load_workbook(out).worksheets[0].iter_rows(min_row=3, values_only=True)
    assert ward_row[0] == "00070" and ward_row[2] == 3 and ward_row[7] == pytest.approx(0.3333)
