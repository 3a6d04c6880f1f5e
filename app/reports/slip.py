"""Form 01: receipt and appointment slip ("Phiếu tiếp nhận hồ sơ và hẹn trả kết quả").

A legal form, so it is always Vietnamese whatever the UI language. Made in memory with fpdf2 and
DejaVu Sans (Vietnamese glyphs); the caller decides where the bytes go (download, print, share).
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import segno
from fpdf import FPDF

from app.domain.calendar import VN_TZ
from app.domain.models import Dossier, Procedure
from app.i18n import catalogue

FONT_DIR = Path(__file__).resolve().parents[2] / "assets" / "fonts"
FONT = "DejaVu"
QR_MM = 26  # printed size of the code's QR code: a phone camera reads it at arm's length
QR_SCALE = 4  # PNG pixels per module (the PDF scales the image to QR_MM)
QR_BORDER = 4  # the quiet zone the QR standard asks for, in modules


def code_qr(code: str) -> segno.QRCode:
    """The QR code printed on the slip: the dossier code alone, error correction M (a code is
    upper-case letters, digits, dots and dashes: QR's compact alphanumeric mode)."""
    return segno.make_qr(code, error="m", boost_error=False)


@dataclass(frozen=True)
class SlipContext:
    """What the dossier itself does not hold."""

    agency_name: str  # e.g. "Phường Ba Đình"
    officer: str = ""
    procedure_name: str = ""
    processing_days: int | None = None
    place: str = ""  # place name in the date line, e.g. "Hà Nội"
    fee: int | None = None  # VND, from the catalogue in force; None: not known, not printed
    fee_note: str = ""


def context_for(procedure: Procedure | None, **kw: Any) -> SlipContext:
    """A slip's context with what the catalogue says of the procedure (name, days, fee)."""
    if procedure is None:
        return SlipContext(**kw)
    return SlipContext(
        procedure_name=procedure.name,
        processing_days=procedure.processing_days,
        fee=procedure.fee,
        fee_note=procedure.fee_note,
        **kw,
    )


def fee_text(fee: int) -> str:
    """50000 -> '50.000' (Vietnamese thousands separator)."""
    return f"{fee:,}".replace(",", ".")


def _vi(key: str, **kw: object) -> str:
    text = catalogue("vi")[key]
    return text.format(**kw) if kw else text


def slip_file_name(dossier: Dossier) -> str:
    return f"phieu-tiep-nhan-{dossier.code}.pdf"


def new_form(title: str) -> FPDF:
    """An A4 page with the Vietnamese font, as every one-stop form is printed."""
    pdf = FPDF(format="A4")
    pdf.set_margins(18, 15, 18)
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_font(FONT, "", str(FONT_DIR / "DejaVuSans.ttf"))
    pdf.add_font(FONT, "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
    pdf.set_title(title)
    pdf.set_creator("commune-field")
    pdf.add_page()
    return pdf


def build_slip(dossier: Dossier, ctx: SlipContext) -> bytes:
    pdf = new_form(_vi("slip.title"))
    header(pdf, ctx, _vi("slip.form"), _vi("slip.title"))
    _body(pdf, dossier, ctx)
    _documents(pdf, dossier)
    _dates(pdf, dossier, ctx)
    signatures(pdf, ctx)
    return bytes(pdf.output())


def header(pdf: FPDF, ctx: SlipContext, form: str, title: str) -> None:
    """The agency and national motto side by side, the form's number, its title."""
    half = (pdf.w - pdf.l_margin - pdf.r_margin) / 2
    top = pdf.get_y()
    left = [
        ("", _vi("slip.agency_parent", ward=ctx.agency_name.upper())),
        ("B", _vi("slip.agency")),
    ]
    right = [("B", _vi("slip.nation")), ("B", _vi("slip.motto"))]
    bottoms = []
    for x, lines in ((pdf.l_margin, left), (pdf.l_margin + half, right)):
        pdf.set_y(top)
        for style, text in lines:
            pdf.set_x(x)
            pdf.set_font(FONT, style, 9)
            pdf.multi_cell(half, 5, text, align="C", new_x="LEFT", new_y="NEXT")
        bottoms.append(pdf.get_y())
    pdf.set_y(max(bottoms) + 2)
    pdf.set_font(FONT, "", 8)
    pdf.cell(0, 4, form, align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font(FONT, "B", 13)
    pdf.multi_cell(0, 7, title, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)


def line(pdf: FPDF, text: str, bold: bool = False, size: int = 10, width: float = 0) -> None:
    pdf.set_font(FONT, "B" if bold else "", size)
    pdf.multi_cell(width, 6, text, new_x="LMARGIN", new_y="NEXT")


def _qr(pdf: FPDF, code: str) -> float:
    """Draws the code's QR code at the right edge from the current line; the width left to the
    text beside it."""
    png = io.BytesIO()
    code_qr(code).save(png, kind="png", scale=QR_SCALE, border=QR_BORDER)
    png.seek(0)
    x = pdf.w - pdf.r_margin - QR_MM
    pdf.image(png, x=x, y=pdf.get_y(), w=QR_MM, h=QR_MM)
    return x - pdf.l_margin - 2


def _body(pdf: FPDF, d: Dossier, ctx: SlipContext) -> None:
    beside = _qr(pdf, d.code)
    top = pdf.get_y()
    line(pdf, _vi("slip.code", code=d.code), bold=True, width=beside)
    line(pdf, _vi("slip.qr_hint"), size=8, width=beside)
    line(pdf, _vi("slip.received_from", agency=ctx.agency_name), width=beside)
    line(pdf, _vi("slip.applicant", name=d.applicant_name), bold=True, width=beside)
    pdf.set_y(max(pdf.get_y(), top + QR_MM + 1))  # the lines below take the whole width
    if d.applicant_id_number:
        line(pdf, _vi("slip.id_number", value=d.applicant_id_number))
    if d.applicant_phone:
        line(pdf, _vi("slip.phone", value=d.applicant_phone))
    if d.applicant_address:
        line(pdf, _vi("slip.address", value=d.applicant_address))
    name = ctx.procedure_name or d.procedure_code
    line(pdf, _vi("slip.procedure", name=name, code=d.procedure_code))
    line(pdf, _vi("slip.channel", value=_vi(f"channel.{int(d.channel)}")))
    line(pdf, _vi("slip.documents"))


def _documents(pdf: FPDF, d: Dossier) -> None:
    pdf.set_font(FONT, "", 9)
    with pdf.table(
        col_widths=(10, 110, 22, 22),
        text_align=("CENTER", "LEFT", "CENTER", "CENTER"),
        line_height=5.5,
        first_row_as_headings=True,
    ) as table:
        head = table.row()
        for key in ("slip.doc_no", "slip.doc_name", "slip.doc_originals", "slip.doc_copies"):
            head.cell(_vi(key))
        for i, doc in enumerate(d.documents, start=1):
            row = table.row()
            row.cell(str(i))
            # Form 01 has no digitisation column: a paper held electronically says so under
            # its name (one not digitised, the default, adds nothing).
            state = f"\n({_vi(f'digitised.{int(doc.digitised)}')})" if doc.digitised else ""
            row.cell(doc.name + state)
            row.cell(str(doc.originals))
            row.cell(str(doc.copies))
    pdf.ln(2)
    line(pdf, _vi("slip.doc_count", n=1))


def _dates(pdf: FPDF, d: Dossier, ctx: SlipContext) -> None:
    if ctx.processing_days is not None:
        line(pdf, _vi("slip.processing", n=ctx.processing_days))
    if ctx.fee is not None:
        line(pdf, _vi("slip.fee", amount=fee_text(ctx.fee)))
        if ctx.fee_note:
            line(pdf, ctx.fee_note, size=8)
    received = d.received_at if d.received_at.tzinfo else d.received_at.replace(tzinfo=dt.UTC)
    local = received.astimezone(VN_TZ)
    line(pdf, _vi("slip.received_at", time=local.strftime("%H giờ %M phút, ngày %d/%m/%Y")))
    line(pdf, _vi("slip.appointment", date=d.appointment_date.strftime("%d/%m/%Y")), bold=True)
    line(pdf, _vi("slip.register"))
    pdf.ln(2)
    place = ctx.place or ctx.agency_name
    line_right(
        pdf,
        _vi(
            "slip.place_date",
            place=place,
            d=f"{local.day:02d}",
            m=f"{local.month:02d}",
            y=local.year,
        ),
    )


def line_right(pdf: FPDF, text: str) -> None:
    pdf.set_font(FONT, "", 10)
    pdf.multi_cell(0, 6, text, align="R", new_x="LMARGIN", new_y="NEXT")


SIGNERS = ("slip.applicant_sign", "slip.officer_sign")


def signatures(pdf: FPDF, ctx: SlipContext, titles: tuple[str, str] = SIGNERS) -> None:
    """Two signature columns (catalogue keys; "" leaves a column empty); the officer's name
    under the right one."""
    half = (pdf.w - pdf.l_margin - pdf.r_margin) / 2
    top = pdf.get_y() + 2
    for column, title in enumerate(titles):
        if not title:
            continue
        x = pdf.l_margin + column * half
        pdf.set_xy(x, top)
        pdf.set_font(FONT, "B", 10)
        pdf.multi_cell(half, 6, _vi(title), align="C", new_x="LEFT", new_y="NEXT")
        pdf.set_font(FONT, "", 8)
        pdf.multi_cell(half, 5, _vi("slip.sign_hint"), align="C", new_x="LEFT", new_y="NEXT")
    if ctx.officer:
        pdf.set_xy(pdf.l_margin + half, top + 32)
        pdf.set_font(FONT, "B", 10)
        pdf.multi_cell(half, 6, ctx.officer, align="C")
