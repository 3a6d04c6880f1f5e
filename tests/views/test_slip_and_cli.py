from __future__ import annotations

import datetime as dt
import io
import re

from pypdf import PdfReader

from app.cli import build_parser
from app.domain.models import DocumentReceived, Dossier
from app.i18n import set_language
from app.reports.slip import SlipContext, build_slip, slip_file_name


def dossier() -> Dossier:
    return Dossier(
        id="d-1",
        code="000.00.04.H26-261124-0007",
        procedure_code="1.004884",
        ward_code="00004",
        applicant_name="Đặng Thị Ánh Tuyết",
        applicant_id_number="001190012345",
        applicant_address="Số 12 phố Đội Cấn, Ba Đình",
        channel=1,
        received_at=dt.datetime(2026, 11, 24, 2, 15, tzinfo=dt.UTC),
        appointment_date=dt.date(2026, 12, 1),
        status=2,
        documents=[
            DocumentReceived(name="Tờ khai đăng ký lại khai sinh", originals=1),
            DocumentReceived(name="Bản sao giấy khai sinh cũ", copies=2),
        ],
    )


def test_form_01_holds_what_the_counter_promises_in_vietnamese() -> None:
    set_language("en")  # the legal form stays Vietnamese whatever the UI language
    ctx = SlipContext(
        agency_name="Phường Ba Đình",
        officer="Trần Văn Nam",
        procedure_name="Thủ tục đăng ký lại khai sinh",
        processing_days=5,
        place="Hà Nội",
    )
    pdf = build_slip(dossier(), ctx)
    assert pdf.startswith(b"%PDF-")
    text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    for expected in (
        "PHIẾU TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ",
        "ỦY BAN NHÂN DÂN PHƯỜNG BA ĐÌNH",
        "Mã hồ sơ: 000.00.04.H26-261124-0007",
        "Ông/bà: Đặng Thị Ánh Tuyết",
        "Thủ tục đăng ký lại khai sinh (mã thủ tục 1.004884)",
        "Tờ khai đăng ký lại khai sinh",
        "Bản sao giấy khai sinh cũ",
        "09 giờ 15 phút, ngày 24/11/2026",  # stored UTC, shown in Hanoi time
        "ngày 01/12/2026",
        "5 ngày làm việc",
        "Trần Văn Nam",
    ):
        assert expected in text, expected
    assert slip_file_name(dossier()) == "phieu-tiep-nhan-000.00.04.H26-261124-0007.pdf"


def test_app_command_is_registered_with_web_and_port() -> None:
    args = build_parser().parse_args(["app", "--web", "--port", "0"])
    assert (args.web, args.port) == (True, 0)
    assert build_parser().parse_args(["app"]).web is False


def test_form_01_carries_the_code_as_a_qr_code_of_exactly_that_code() -> None:
    """The slip's image is the QR code segno encodes for the dossier code: every module of
    segno's matrix (quiet zone included) is dark or light in the embedded image as it should."""
    from app.reports.slip import QR_BORDER, QR_SCALE, code_qr

    pdf = build_slip(dossier(), SlipContext(agency_name="Phường Ba Đình"))
    page = PdfReader(io.BytesIO(pdf)).pages[0]
    assert "Mã hồ sơ: 000.00.04.H26-261124-0007" in page.extract_text()
    [embedded] = page.images
    image = embedded.image.convert("L")
    expected = code_qr(dossier().code).matrix
    size = len(expected) + 2 * QR_BORDER
    assert image.size == (size * QR_SCALE, size * QR_SCALE)
    half = QR_SCALE // 2
    for row in range(size):
        for col in range(size):
            inside = QR_BORDER <= row < size - QR_BORDER and QR_BORDER <= col < size - QR_BORDER
            dark = inside and bool(expected[row - QR_BORDER][col - QR_BORDER])
            pixel = image.getpixel((col * QR_SCALE + half, row * QR_SCALE + half))
            assert (pixel < 128) == dark, (row, col)
    other = code_qr("000.00.04.H26-261124-0008").matrix
    assert other != expected  # a neighbouring code would not pass the check above


def test_only_required_papers_start_ticked_and_the_slip_lists_exactly_what_was_received(
    store,
) -> None:
    from app.views.dossier_models import ReceiveForm

    form = ReceiveForm()
    form.choose("1.001193")  # birth registration: a proxy letter only when someone else files
    ticked = {line.name: line.received for line in form.documents}
    assert ticked == {
        "Tờ khai đăng ký khai sinh": True,
        "Giấy chứng sinh hoặc giấy tờ thay thế (văn bản của người làm chứng, giấy cam đoan "
        "về việc sinh)": True,
        "Văn bản ủy quyền": False,
    }
    proxy = form.documents[2]
    assert proxy.hint() == "Chỉ khi: nếu nộp thay, trừ người thân được miễn chứng thực"
    assert form.documents[0].hint() == ""
    form.documents[1].originals, form.documents[1].copies = 0, 2  # two copies, no original
    form.applicant_name = "Lê Văn Tám"
    dossier = form.submit(store.dossiers, "00004", "Trần Văn Nam")
    assert dossier is not None
    assert [(d.name[:24], d.originals, d.copies) for d in dossier.documents] == [
        ("Tờ khai đăng ký khai sin", 1, 0),
        ("Giấy chứng sinh hoặc giấ", 0, 2),
    ]
    text = PdfReader(io.BytesIO(build_slip(dossier, SlipContext(agency_name="Phường Ba Đình"))))
    text = text.pages[0].extract_text()
    assert "Tờ khai đăng ký khai sinh" in text and "Giấy chứng sinh" in text
    assert "Văn bản ủy quyền" not in text  # not handed over, not on the legal receipt
    table = text[text.index("STT Tên giấy tờ") : text.index("Số lượng hồ sơ")]
    assert re.search(r"^1 Tờ khai đăng ký khai sinh 1 0$", table, re.M), table
    flat = " ".join(table.split())  # a wrapped cell breaks its row into lines
    assert flat.endswith(
        "2 Giấy chứng sinh hoặc giấy tờ thay thế (văn bản của người làm "
        "chứng, giấy cam đoan về việc sinh) 0 2"
    ), flat

    form.choose("1.001193")
    form.documents[2].received = True  # filed by a proxy this time
    form.applicant_name = "Lê Văn Tám"
    again = form.submit(store.dossiers, "00004", "Trần Văn Nam", go_on=True)
    assert again is not None and [d.name for d in again.documents][-1] == "Văn bản ủy quyền"


def _pdf_text(data: bytes) -> str:
    return " ".join(PdfReader(io.BytesIO(data)).pages[0].extract_text().split())


def test_a_supplement_request_and_a_refusal_each_give_their_form_from_the_detail(store) -> None:
    from app.domain.status import DossierStatus as S
    from app.reports.counter_forms import build_form, form_file_name
    from app.views.dossier_models import DossierDetailPresenter, ReceiveForm

    form = ReceiveForm()
    form.choose("1.004884")
    form.applicant_name = "Đặng Thị Ánh Tuyết"
    dossier = form.submit(store.dossiers, "00004", "Trần Văn Nam")
    today = dt.date(2026, 12, 7)
    detail = DossierDetailPresenter(store.dossiers, dossier.id, lambda: today)
    assert detail.load().forms == []  # form 01 only, from its own button
    supplement = next(a for a in detail.load().actions if a.needs_date)
    assert (
        detail.apply(
            supplement,
            new_date="21/12/2026",
            actor="Trần Văn Nam",
            note="Bổ sung bản sao giấy khai sinh cũ\nKý lại tờ khai",
        )
        is None
    )
    [link] = detail.load().forms
    assert link.notice.number == "02" and link.label.startswith("Mẫu 02 · Phiếu yêu cầu bổ sung")
    ctx = SlipContext(agency_name="Phường Ba Đình", officer="Trần Văn Nam", place="Hà Nội")
    d = store.dossiers.get(dossier.id)
    text = _pdf_text(build_form("02", d, link.notice, ctx))
    for expected in (
        "Mẫu số 02",
        "PHIẾU YÊU CẦU BỔ SUNG, HOÀN THIỆN HỒ SƠ",
        f"Mã hồ sơ: {d.code}",
        "Ông/bà: Đặng Thị Ánh Tuyết",
        "1. Bổ sung bản sao giấy khai sinh cũ 2. Ký lại tờ khai",
        "Ngày hẹn trả kết quả mới (khi hồ sơ được bổ sung đầy đủ): ngày 21/12/2026",
        "NGƯỜI HƯỚNG DẪN",
        "Trần Văn Nam",
    ):
        assert expected in text, expected
    assert form_file_name("02", d, link.notice).startswith(f"mau-02-{d.code}-")

    online = ReceiveForm()
    online.choose("1.004884")
    online.applicant_name = "Lê Văn Tám"
    online.applicant_id_number = "001190054321"
    request = online.request("00004", "Trần Văn Nam").model_copy(update={"status": S.NEW})
    registered = store.dossiers.receive(request)  # registered online, not yet received
    refuse = DossierDetailPresenter(store.dossiers, registered.id, lambda: today)
    action = next(a for a in refuse.load().actions if a.to_status == S.REFUSED)
    assert refuse.apply(action, note="Không thuộc thẩm quyền của UBND phường") is None
    [link] = refuse.load().forms
    assert link.notice.number == "03"
    text = _pdf_text(build_form("03", store.dossiers.get(registered.id), link.notice, ctx))
    for expected in (
        "Mẫu số 03",
        "PHIẾU TỪ CHỐI TIẾP NHẬN GIẢI QUYẾT HỒ SƠ",
        "Ông/bà: Lê Văn Tám",
        "1. Không thuộc thẩm quyền của UBND phường",
        "Xin thông báo để ông/bà được biết và thực hiện.",
    ):
        assert expected in text, expected
    assert "PHIẾU YÊU CẦU BỔ SUNG" not in text


def test_a_late_dossier_gets_an_apology_with_a_new_date_and_form_04(store) -> None:
    from app.domain.status import DossierStatus as S
    from app.reports.counter_forms import build_form
    from app.views.dossier_models import DossierDetailPresenter, ReceiveForm

    form = ReceiveForm()
    form.choose("1.004884")
    form.applicant_name = "Đặng Thị Ánh Tuyết"
    dossier = form.submit(store.dossiers, "00004", "Trần Văn Nam")
    promised = dossier.appointment_date
    on_time = DossierDetailPresenter(store.dossiers, dossier.id, lambda: promised)
    assert not any(a.apology for a in on_time.load().actions)  # not late: no apology
    late_day = promised + dt.timedelta(days=3)
    late = DossierDetailPresenter(store.dossiers, dossier.id, lambda: late_day)
    late.apply(next(a for a in late.load().actions if a.to_status == S.IN_PROCESS))
    apology = next(a for a in late.load().actions if a.apology)
    new_date = late_day + dt.timedelta(days=7)
    typed = new_date.strftime("%d/%m/%Y")
    assert late.apply(apology, new_date=typed) == (
        "Ghi lý do chậm trả kết quả (in trên phiếu xin lỗi)"
    )
    assert (
        late.apply(
            apology, new_date=typed, note="Chờ xác minh của Sở Tư pháp", actor="Trần Văn Nam"
        )
        is None
    )
    state = late.load()
    assert state.dossier.status == S.IN_PROCESS and state.dossier.appointment_date == new_date
    assert state.timeline[0].title == "Xin lỗi và hẹn lại ngày trả kết quả"
    [link] = state.forms
    assert link.notice.number == "04" and link.notice.previous_date == promised
    ctx = SlipContext(agency_name="Phường Ba Đình", officer="Trần Văn Nam", place="Hà Nội")
    text = _pdf_text(build_form("04", state.dossier, link.notice, ctx))
    for expected in (
        "Mẫu số 04",
        "PHIẾU XIN LỖI VÀ HẸN LẠI NGÀY TRẢ KẾT QUẢ",
        f"Thời hạn trả kết quả đã hẹn: ngày {promised:%d/%m/%Y}.",
        "1. Chờ xác minh của Sở Tư pháp",
        f"Phường Ba Đình xin lỗi ông/bà và hẹn lại ngày trả kết quả vào ngày {typed}.",
        "THỦ TRƯỞNG CƠ QUAN",
    ):
        assert expected in text, expected


def test_digitisation_shows_on_the_slip_under_a_paper_and_in_the_registers_notes() -> None:
    from app.domain.status import Digitisation
    from app.reports.counter_forms import register_rows

    d = dossier()
    d.documents[1].digitised = Digitisation.REUSED_RESULT
    ctx = SlipContext(
        agency_name="Phường Ba Đình",
        officer="Trần Văn Nam",
        procedure_name="Thủ tục đăng ký lại khai sinh",
        processing_days=5,
        place="Hà Nội",
    )
    text = _pdf_text(build_slip(d, ctx))
    assert "(Tái sử dụng kết quả của hồ sơ khác)" in text
    assert text.count("(Tái sử dụng") == 1 and "(Chưa số hoá)" not in text  # default: nothing
    finished = d.model_copy(update={"result_digitised": Digitisation.DIGITISED, "notes": "x"})
    [row] = register_rows([finished], "Phường Ba Đình")
    assert row[-1] == "x; Số hoá kết quả: Đã số hoá"
    [plain] = register_rows([d], "Phường Ba Đình")
    assert plain[-1] == ""


def test_a_made_document_is_never_handed_over_in_silence() -> None:
    """After the slip or a form is made: the web build says where the download went; a build
    with a file system names the saved file, and a desktop offers to open it (to print); a save
    dialog left without a place says nothing was saved."""
    from app.views.handover import notice_after_save

    name = "phieu-tiep-nhan-000.00.70.H26-261207-0001.pdf"
    assert notice_after_save(None, name, web=True, opens=False) == (
        f"Đã tải {name} về máy: mở từ mục tải xuống của trình duyệt để xem và in", False
    )
    saved = "/tmp/elsewhere/" + name
    assert notice_after_save(saved, name, web=False, opens=True) == (f"Đã lưu {saved}", True)
    assert notice_after_save(saved, name, web=False, opens=False)[1] is False  # a tablet
    assert notice_after_save(None, name, web=False, opens=True) == (
        f"Chưa lưu {name}: chưa chọn nơi lưu", False
    )
