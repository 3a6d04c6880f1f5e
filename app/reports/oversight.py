"""Oversight reports: the weekly progress report, the summary of all wards (XLSX, one row per
ward) and a ward's audit report (PDF with photo thumbnails).

Always Vietnamese, like the legal forms; built in memory from figures (app/domain/oversight),
whichever side computed them: the server's SQL (`commune report --db`) or a device's snapshots.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from dataclasses import dataclass, field

from fpdf import FPDF
from openpyxl import Workbook
from openpyxl.styles import Font

from app.domain import audit as A
from app.domain import oversight as O
from app.i18n import catalogue
from app.reports.slip import FONT, FONT_DIR

Progress = Callable[[str], None]


def _vi(key: str, **kw: object) -> str:
    text = catalogue("vi")[key]
    return text.format(**kw) if kw else text


@dataclass
class WardLine:
    code: str
    name: str
    dossiers: O.DossierFigures
    audit: O.WardAuditFigures | None = None


@dataclass
class ReportData:
    as_of: dt.date
    date_from: dt.date | None
    date_to: dt.date | None
    wards: list[WardLine]
    weeks: list[O.DossierFigures] = field(default_factory=list)  # the whole scope per week


@dataclass
class Photo:
    item_label: str
    data: bytes


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


SUMMARY_COLUMNS = (
    "report.col.ward_code", "report.col.ward", "report.col.received", "report.col.settled",
    "report.col.on_time", "report.col.late", "report.col.overdue", "report.col.online_share",
    "report.col.on_time_rate", "report.col.audits", "report.col.audit_state",
    "report.col.score", "report.col.compliant", "report.col.failing",
)


def summary_row(line: WardLine) -> list[object]:
    d, a = line.dossiers, line.audit
    return [
        line.code, line.name, d.received, d.settled, d.settled_on_time, d.late, d.overdue,
        None if d.online_share is None else round(d.online_share, 4),
        None if d.on_time_rate is None else round(d.on_time_rate, 4),
        a.audits if a else 0,
        _vi(f"audit.state.{a.latest_state}") if a and a.latest_state else "",
        a.latest_score if a else None,
        (_vi("report.yes") if a.compliant else _vi("report.no")) if a and a.compliant is not None
        else "",
        len(a.failing_items) if a else 0,
    ]


def summary_xlsx(data: ReportData, progress: Progress = lambda _: None) -> bytes:
    """All wards, one row each, worst on-time rate first; a second sheet of weekly totals."""
    book = Workbook()
    sheet = book.active
    sheet.title = _vi("report.sheet.wards")
    sheet.append([_vi("report.summary_title", day=data.as_of.strftime("%d/%m/%Y"))])
    sheet["A1"].font = Font(bold=True, size=13)
    sheet.append([_vi(k) for k in SUMMARY_COLUMNS])
    for cell in sheet[2]:
        cell.font = Font(bold=True)
    ranked = {id(f): i for i, f in enumerate(O.worst_first([w.dossiers for w in data.wards]))}
    lines = sorted(data.wards, key=lambda w: ranked[id(w.dossiers)])
    for i, line in enumerate(lines, start=1):
        sheet.append(summary_row(line))
        if i % 25 == 0:
            progress(_vi("report.progress.rows", done=i, total=len(lines)))
    for column in ("H", "I"):
        for cell in sheet[column][2:]:
            cell.number_format = "0.0%"
    sheet.freeze_panes = "C3"
    weeks = book.create_sheet(_vi("report.sheet.weeks"))
    weeks.append([_vi("report.col.week"), *[_vi(k) for k in SUMMARY_COLUMNS[2:9]]])
    for w in data.weeks:
        weeks.append(
            [w.key.get("week"), w.received, w.settled, w.settled_on_time, w.late, w.overdue,
             w.online_share, w.on_time_rate]
        )
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


class _Pdf(FPDF):
    def __init__(self, title: str) -> None:
        super().__init__(format="A4", orientation="L")
        self.set_margins(12, 12, 12)
        self.set_auto_page_break(True, margin=12)
        self.add_font(FONT, "", str(FONT_DIR / "DejaVuSans.ttf"))
        self.add_font(FONT, "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
        self.set_title(title)
        self.set_creator("commune-field")
        self._heading = title

    def header(self) -> None:
        self.set_font(FONT, "B", 13)
        self.cell(0, 8, self._heading, new_x="LMARGIN", new_y="NEXT")
        self.ln(1)

    def footer(self) -> None:
        self.set_y(-10)
        self.set_font(FONT, "", 8)
        self.cell(0, 5, _vi("report.page", n=self.page_no()), align="R")

    def line_text(self, text: str, bold: bool = False, size: int = 10) -> None:
        self.set_font(FONT, "B" if bold else "", size)
        self.multi_cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")


def _period(data: ReportData) -> str:
    start = data.date_from.strftime("%d/%m/%Y") if data.date_from else "…"
    end = data.date_to.strftime("%d/%m/%Y") if data.date_to else data.as_of.strftime("%d/%m/%Y")
    return _vi("report.period", start=start, end=end)


def _table(pdf: _Pdf, head: list[str], rows: list[list[object]], widths: tuple) -> None:
    pdf.set_font(FONT, "", 8)
    with pdf.table(col_widths=widths, line_height=5, first_row_as_headings=True) as table:
        row = table.row()
        for text in head:
            row.cell(text)
        for values in rows:
            row = table.row()
            for value in values:
                row.cell("" if value is None else str(value))
    pdf.ln(3)


def weekly_pdf(data: ReportData, progress: Progress = lambda _: None) -> bytes:
    """The weekly progress report: totals per week, then every ward, worst first."""
    pdf = _Pdf(_vi("report.weekly_title"))
    pdf.add_page()
    pdf.line_text(_period(data))
    whole = O.total(w.dossiers for w in data.wards)
    pdf.line_text(
        _vi("report.weekly_lead", wards=len(data.wards), received=whole.received,
            rate=_pct(whole.on_time_rate), overdue=whole.overdue), bold=True,
    )
    head = [_vi("report.col.week"), *[_vi(k) for k in SUMMARY_COLUMNS[2:9]]]
    rows = [
        [w.key.get("week"), w.received, w.settled, w.settled_on_time, w.late, w.overdue,
         _pct(w.online_share), _pct(w.on_time_rate)]
        for w in data.weeks
    ]
    _table(pdf, head, rows, (30, 22, 22, 22, 22, 22, 26, 26))
    progress(_vi("report.progress.weeks"))
    ranked = O.worst_first([w.dossiers for w in data.wards])
    order = {id(f): i for i, f in enumerate(ranked)}
    lines = sorted(data.wards, key=lambda w: order[id(w.dossiers)])
    rows = []
    for line in lines:
        r = summary_row(line)
        r[7], r[8] = _pct(line.dossiers.online_share), _pct(line.dossiers.on_time_rate)
        rows.append(r)
    _table(pdf, [_vi(k) for k in SUMMARY_COLUMNS], rows,
           (14, 40, 16, 16, 16, 14, 16, 18, 18, 14, 28, 16, 18, 16))
    progress(_vi("report.progress.rows", done=len(lines), total=len(lines)))
    return bytes(pdf.output())


def summary_pdf(data: ReportData, progress: Progress = lambda _: None) -> bytes:
    return weekly_pdf(data, progress)


def ward_audit_pdf(
    line: WardLine, template: A.AuditTemplate, photos: list[Photo], as_of: dt.date
) -> bytes:
    """A ward's latest audit: state, score, sections, what fails or is missing, photos."""
    pdf = _Pdf(_vi("report.ward_title", ward=line.name))
    pdf.add_page()
    a = line.audit
    pdf.line_text(_vi("report.as_of", day=as_of.strftime("%d/%m/%Y")))
    if a is None or a.latest_id is None:
        pdf.line_text(_vi("report.no_audit"), bold=True)
        return bytes(pdf.output())
    state = _vi(f"audit.state.{a.latest_state}") if a.latest_state else ""
    pdf.line_text(
        _vi("report.ward_lead", audits=a.audits, state=state, score=a.latest_score or 0.0,
            compliant=_vi("report.yes") if a.compliant else _vi("report.no")), bold=True,
    )
    sections = {s.id: s.label for s in template.sections}
    worst_first = sorted(a.by_section.items(), key=lambda x: x[1])
    rows = [[sections.get(s, s), f"{v:.1f}"] for s, v in worst_first]
    _table(pdf, [_vi("report.col.section"), _vi("report.col.score")], rows, (120, 30))
    labels = {item.id: item.label for item in template.items()}
    if a.failing_items or a.missing_items:
        pdf.line_text(_vi("report.failing_heading"), bold=True)
        rows = [[labels.get(i, i), _vi("report.failing")] for i in a.failing_items]
        rows += [[labels.get(i, i), _vi("report.missing")] for i in a.missing_items]
        _table(pdf, [_vi("report.col.item"), _vi("report.col.finding")], rows, (200, 50))
    d = line.dossiers
    pdf.line_text(
        _vi("report.ward_dossiers", received=d.received, rate=_pct(d.on_time_rate),
            overdue=d.overdue)
    )
    if photos:
        pdf.line_text(_vi("report.photos"), bold=True)
        _thumbnails(pdf, photos)
    return bytes(pdf.output())


def _thumbnails(pdf: _Pdf, photos: list[Photo], size: float = 45.0) -> None:
    x0 = pdf.l_margin
    x, y = x0, pdf.get_y()
    for photo in photos:
        if x + size > pdf.w - pdf.r_margin:
            x, y = x0, y + size + 10
        if y + size + 10 > pdf.h - pdf.b_margin:
            pdf.add_page()
            x, y = x0, pdf.get_y()
        try:
            pdf.image(io.BytesIO(photo.data), x=x, y=y, w=size, h=size, keep_aspect_ratio=True)
        except Exception:  # noqa: BLE001  a file that is no image (or still sealed) is named only
            pdf.rect(x, y, size, size)
        pdf.set_xy(x, y + size + 1)
        pdf.set_font(FONT, "", 7)
        pdf.multi_cell(size, 3.5, photo.item_label[:60], new_x="RIGHT", new_y="TOP")
        x += size + 6
    pdf.set_xy(x0, y + size + 12)


def data_from_snapshots(
    snapshots: list[O.WardSnapshot],
    as_of: dt.date,
    names: Callable[[str], str],
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> ReportData:
    """Report figures from ward snapshots (a device's view): weeks overlapping the period."""

    def in_period(week: str) -> bool:
        monday = dt.date.fromisoformat(week)
        sunday = monday + dt.timedelta(days=6)
        return (date_from is None or sunday >= date_from) and (date_to is None or monday <= date_to)

    lines, weekly = [], {}
    for s in snapshots:
        kept = [w for w in s.weeks if in_period(w.key["week"])]
        whole = O.total(kept)
        whole.key = {"ward": s.ward_code}
        lines.append(WardLine(s.ward_code, names(s.ward_code), whole, s.audit))
        for w in kept:
            into = weekly.setdefault(w.key["week"], O.DossierFigures(key=dict(w.key)))
            for name in O.DOSSIER_FIGURES:
                setattr(into, name, getattr(into, name) + getattr(w, name))
    return ReportData(as_of, date_from, date_to, lines, [weekly[k] for k in sorted(weekly)])
