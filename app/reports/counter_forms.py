"""Forms 02, 03 and 04 of Circular 01/2018/TT-VPCP, printed like form 01 (`app.reports.slip`).

02 "Phiếu yêu cầu bổ sung, hoàn thiện hồ sơ" (a supplement request), 03 "Phiếu từ chối tiếp
nhận giải quyết hồ sơ" (a refusal), 04 "Phiếu xin lỗi và hẹn lại ngày trả kết quả" (an apology
with a new appointment date). Legal forms: always Vietnamese. Which move calls for which form is
`app.domain.forms`.
"""

from __future__ import annotations

from fpdf import FPDF

from app.domain.calendar import vn_date
from app.domain.forms import APOLOGY, REFUSAL, SUPPLEMENT_REQUEST, FormNotice
from app.domain.models import Dossier
from app.reports.slip import SlipContext, _vi, header, line, line_right, new_form, signatures

TITLE_KEYS = {
    SUPPLEMENT_REQUEST: "slip.f02.title",
    REFUSAL: "slip.f03.title",
    APOLOGY: "slip.f04.title",
}
SIGNERS = {
    SUPPLEMENT_REQUEST: ("", "slip.f02.signer"),
    REFUSAL: ("", "slip.officer_sign"),
    APOLOGY: ("", "slip.f04.signer"),
}


def form_title(number: str) -> str:
    return _vi(TITLE_KEYS[number])


def form_file_name(number: str, dossier: Dossier, notice: FormNotice) -> str:
    return f"mau-{number}-{dossier.code}-{vn_date(notice.at):%Y%m%d}.pdf"


def build_form(number: str, dossier: Dossier, notice: FormNotice, ctx: SlipContext) -> bytes:
    """The PDF of form `number` for the move `notice` of `dossier`."""
    title = form_title(number)
    pdf = new_form(title)
    header(pdf, ctx, _vi("slip.form_no", number=number), title)
    _applicant(pdf, dossier, ctx)
    if number == SUPPLEMENT_REQUEST:
        _supplement(pdf, notice)
    elif number == REFUSAL:
        _refusal(pdf, notice)
    elif number == APOLOGY:
        _apology(pdf, dossier, notice, ctx)
    else:
        raise ValueError(f"no form {number!r}")
    pdf.ln(2)
    day = vn_date(notice.at)
    place = ctx.place or ctx.agency_name
    line_right(pdf, _vi("slip.place_date", place=place, d=f"{day.day:02d}",
                        m=f"{day.month:02d}", y=day.year))
    signatures(pdf, ctx, SIGNERS[number])
    return bytes(pdf.output())


def _applicant(pdf: FPDF, d: Dossier, ctx: SlipContext) -> None:
    line(pdf, _vi("slip.code", code=d.code), bold=True)
    line(pdf, _vi("slip.received_from", agency=ctx.agency_name))
    line(pdf, _vi("slip.applicant", name=d.applicant_name), bold=True)
    if d.applicant_address:
        line(pdf, _vi("slip.address", value=d.applicant_address))
    name = ctx.procedure_name or d.procedure_code
    line(pdf, _vi("slip.procedure", name=name, code=d.procedure_code))
    received = vn_date(d.received_at)
    line(pdf, _vi("slip.f.received_on", date=f"{received:%d/%m/%Y}"))


def _reason(pdf: FPDF, note: str) -> None:
    for i, text in enumerate(note.splitlines() or [""], start=1):
        line(pdf, f"{i}. {text}" if text else f"{i}. ........................................")


def _supplement(pdf: FPDF, notice: FormNotice) -> None:
    line(pdf, _vi("slip.f02.ask"))
    _reason(pdf, notice.note)
    if notice.new_date:
        line(pdf, _vi("slip.f02.new_date", date=f"{notice.new_date:%d/%m/%Y}"), bold=True)
    line(pdf, _vi("slip.f02.contact"))


def _refusal(pdf: FPDF, notice: FormNotice) -> None:
    line(pdf, _vi("slip.f03.reason"))
    _reason(pdf, notice.note)
    line(pdf, _vi("slip.f03.inform"))


def _apology(pdf: FPDF, d: Dossier, notice: FormNotice, ctx: SlipContext) -> None:
    if notice.previous_date is not None:
        line(pdf, _vi("slip.f04.promised", date=f"{notice.previous_date:%d/%m/%Y}"))
    line(pdf, _vi("slip.f04.late", agency=ctx.agency_name))
    _reason(pdf, notice.note)
    new = notice.new_date or d.appointment_date
    line(pdf, _vi("slip.f04.sorry", agency=ctx.agency_name, date=f"{new:%d/%m/%Y}"), bold=True)
    line(pdf, _vi("slip.f04.thanks"))
