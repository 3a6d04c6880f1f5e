"""Dossier register exports (CSV and XLSX) for supervisors and archives."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from app.domain.models import Dossier, UnreadableRecord
from app.domain.papers import papers_text
from app.i18n import t

COLUMNS = [
    ("code", "Mã hồ sơ"),
    ("procedure_code", "Mã thủ tục"),
    ("ward_code", "Mã xã/phường"),
    ("applicant_name", "Người nộp"),
    ("applicant_id_number", "Số định danh"),
    ("applicant_phone", "Điện thoại"),
    ("applicant_address", "Địa chỉ"),
    ("channel", "Kênh"),
    ("received_at", "Ngày tiếp nhận"),
    ("appointment_date", "Ngày hẹn trả"),
    ("status", "Trạng thái"),
    ("timeliness", "Tiến độ"),
    ("notes", "Ghi chú"),
    ("documents", "Giấy tờ đã nhận"),
]


def unreadable_text(record: UnreadableRecord) -> str:
    """"Hồ sơ không đọc được: <reason>", the line every list and export shows for it."""
    reason = t("unreadable.tampered") if record.reason == "tampered" else record.reason
    return f"{t('unreadable.dossier')}: {reason}"


def _row(dossier: Dossier | UnreadableRecord, today: dt.date) -> list[object]:
    if isinstance(dossier, UnreadableRecord):  # one marked line, its code or id to find it by
        known = {"code": dossier.code or dossier.id, "ward_code": dossier.ward_code,
                 "notes": unreadable_text(dossier)}
        return [known.get(key, "") for key, _ in COLUMNS]
    values = dossier.model_dump()
    values["channel"] = int(dossier.channel)
    values["status"] = int(dossier.status)
    values["received_at"] = dossier.received_at.isoformat()
    values["appointment_date"] = dossier.appointment_date.isoformat()
    kind = dossier.timeliness(today)
    values["timeliness"] = kind.value if kind else ""
    values["documents"] = papers_text(dossier.documents)
    return [values[key] for key, _ in COLUMNS]


def write_csv(
    dossiers: Iterable[Dossier | UnreadableRecord], out: Path, today: dt.date
) -> int:
    """Rows written (an unreadable dossier is one row marked as such)."""
    count = 0
    with out.open("w", newline="", encoding="utf-8-sig") as fh:  # BOM: Excel reads UTF-8
        writer = csv.writer(fh)
        writer.writerow([key for key, _ in COLUMNS])
        for dossier in dossiers:
            writer.writerow(_row(dossier, today))
            count += 1
    return count


def write_xlsx(
    dossiers: Iterable[Dossier | UnreadableRecord], out: Path, today: dt.date
) -> int:
    book = Workbook(write_only=False)
    sheet = book.active
    sheet.title = "So theo doi ho so"
    sheet.append([label for _, label in COLUMNS])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    count = 0
    for dossier in dossiers:
        sheet.append(_row(dossier, today))
        count += 1
    for index, (key, _) in enumerate(COLUMNS, start=1):
        width = 40 if key in {"applicant_address", "notes"} else 22
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = "A2"
    book.save(out)
    return count
