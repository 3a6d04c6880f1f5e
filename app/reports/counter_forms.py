"""Forms 02, 03 and 04 of Circular 01/2018/TT-VPCP, printed like form 01 (`app.reports.slip`).

02 "Phiếu yêu cầu bổ sung, hoàn thiện hồ sơ" (a supplement request), 03 "Phiếu từ chối tiếp
nhận giải quyết hồ sơ" (a refusal), 04 "Phiếu xin lỗi và hẹn lại ngày trả kết quả" (an apology
with a new appointment date). Legal forms: always Vietnamese. Which move calls for which form is
`app.domain.forms`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from fpdf import FPDF
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from app.domain import reference
from app.domain.calendar import vn_date
from app.domain.forms import APOLOGY, REFUSAL, SUPPLEMENT_REQUEST, FormNotice
from app.domain.models import Dossier, UnreadableRecord
from app.reports.export import unreadable_text
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


# ---------------------------------------------------------------------------------------------
# The register of received dossiers ("Sổ theo dõi hồ sơ", form 06 of the Circular) as XLSX

REGISTER_FORM = "06"
REGISTER_COLUMNS = (
    "STT",
    "Mã hồ sơ",
    "Tên thủ tục hành chính",
    "Số lượng hồ sơ (bộ)",
    "Tên cá nhân, tổ chức",
    "Địa chỉ, số điện thoại",
    "Cơ quan chủ trì giải quyết",
    "Nhận hồ sơ (ngày, tháng, năm)",
    "Hẹn trả kết quả (ngày, tháng, năm)",
    "Trả kết quả (ngày, tháng, năm)",
    "Ký nhận",
    "Ghi chú",
)
_WIDTHS = (6, 28, 48, 10, 28, 40, 24, 16, 16, 16, 12, 30)


def register_rows(
    dossiers: Iterable[Dossier | UnreadableRecord],
    agency_name: str,
    first: dt.date | None = None,
    last: dt.date | None = None,
) -> list[list[object]]:
    """One row per dossier received (Vietnam day) from `first` to `last`, in receipt order;
    a dossier this device cannot read is one marked row, its code kept, never a failed file."""
    readable: list[Dossier] = []
    marked: list[list[object]] = []
    for d in dossiers:
        if isinstance(d, UnreadableRecord):
            marked.append(["", d.code or d.id, "", "", "", "", "", "", "", "", "",
                           unreadable_text(d)])
            continue
        day = vn_date(d.received_at)
        if (first is None or day >= first) and (last is None or day <= last):
            readable.append(d)
    rows: list[list[object]] = []
    for i, d in enumerate(sorted(readable, key=lambda d: (d.received_at, d.code)), start=1):
        contact = ", ".join(x for x in (d.applicant_address, d.applicant_phone) if x)
        returned = vn_date(d.returned_at) if d.returned_at else None
        rows.append([
            i,
            d.code,
            _procedure_name(d.procedure_code),
            1,
            d.applicant_name,
            contact,
            agency_name,
            vn_date(d.received_at),
            d.appointment_date,
            returned,
            "",
            _register_note(d),
        ])
    return rows + marked


def _register_note(d: Dossier) -> str:
    """Form 06 has no digitisation column: the result's status goes in its notes column."""
    if d.result_digitised is None:
        return d.notes
    state = f"{_vi('field.result_digitised')}: {_vi(f'digitised.{int(d.result_digitised)}')}"
    return "; ".join(x for x in (d.notes, state) if x)


def agency_name(ward_code: str | None) -> str:
    """The receiving agency a register names: the ward's name (its code if unknown)."""
    if not ward_code:
        return ""
    try:
        return reference.ward(ward_code).name
    except KeyError:
        return ward_code


def write_register_xlsx(
    dossiers: Iterable[Dossier | UnreadableRecord],
    out: Path | IO[bytes],
    agency_name: str,
    first: dt.date | None = None,
    last: dt.date | None = None,
) -> int:
    """The register as an XLSX workbook; the number of dossier rows written."""
    rows = register_rows(dossiers, agency_name, first, last)
    book = Workbook()
    sheet = book.active
    sheet.title = "So theo doi ho so"
    period = " - ".join(f"{d:%d/%m/%Y}" for d in (first, last) if d is not None)
    sheet.append([_vi("slip.form_no", number=REGISTER_FORM)])
    sheet.append([_vi("slip.register_title")])
    sheet.append([f"{agency_name}" + (f" · {period}" if period else "")])
    sheet.append(list(REGISTER_COLUMNS))
    sheet["A2"].font = Font(bold=True, size=13)
    for cell in sheet[4]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    for row in rows:
        sheet.append(row)
    for index, width in enumerate(_WIDTHS, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
        for (cell,) in sheet.iter_rows(min_row=5, min_col=index, max_col=index):
            if isinstance(cell.value, dt.date):
                cell.number_format = "DD/MM/YYYY"
    sheet.freeze_panes = "A5"
    book.save(out)
    return len(rows)


def _procedure_name(code: str) -> str:
    try:
        return reference.procedure(code).name
    except KeyError:
        return code
