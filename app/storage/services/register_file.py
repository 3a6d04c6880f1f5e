"""A register file to import, CSV or XLSX, read into rows the dossier import takes.

The CLI (`commune dossiers import`) and the app ("Nhập sổ") read files through this one
function, so both accept the same columns and report the same line numbers (line 1 is the
header; an XLSX row's line is its sheet row). A file that cannot be read, or whose header
lacks a column, is refused whole with one clear message (`RegisterFileError`).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

# The header the import needs (values may be empty where optional; extra columns ignored).
IMPORT_COLUMNS = (
    "code", "procedure_code", "ward_code", "applicant_name", "applicant_id_number",
    "applicant_phone", "applicant_address", "channel", "received_at", "status", "notes",
)
MAX_ROWS = 100_000  # a commune's register over years; a bigger file is a mistake


class RegisterFileError(ValueError):
    """The file as a whole cannot be imported (its rows are never half-read)."""


def read_register(data: bytes, name: str) -> list[dict[str, Any]]:
    """Rows as dicts with their line number under `line_no`, from CSV (UTF-8) or XLSX bytes."""
    if name.lower().endswith(".xlsx") or data[:2] == b"PK":
        header, rows = _xlsx_rows(data)
    else:
        header, rows = _csv_rows(data)
    missing = [column for column in IMPORT_COLUMNS if column not in header]
    if missing:
        raise RegisterFileError(
            f"thiếu cột / missing columns: {', '.join(missing)} "
            f"(the header needs {', '.join(IMPORT_COLUMNS)})"
        )
    if len(rows) > MAX_ROWS:
        raise RegisterFileError(f"more than {MAX_ROWS} rows: split the file")
    return rows


def _csv_rows(data: bytes) -> tuple[set[str], list[dict[str, Any]]]:
    try:
        text = data.decode("utf-8-sig")
        reader = csv.DictReader(io.StringIO(text, newline=""))
        reader.fieldnames = [name.strip() for name in reader.fieldnames or []]
        rows = [dict(row, line_no=reader.line_num) for row in reader]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise RegisterFileError(f"not a UTF-8 CSV file ({exc})") from exc
    return set(reader.fieldnames or []), rows


def _xlsx_rows(data: bytes) -> tuple[set[str], list[dict[str, Any]]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # zip, XML or openpyxl's own errors: not a workbook we can read
        raise RegisterFileError(f"not an XLSX workbook ({type(exc).__name__})") from exc
    try:
        lines = book.worksheets[0].iter_rows(values_only=True)
        header = [_cell(v).strip() for v in next(lines, ())]
        rows = []
        for line_no, values in enumerate(lines, start=2):
            if all(v is None or _cell(v).strip() == "" for v in values):
                continue  # blank rows at the end of a sheet
            row = {h: _cell(v) for h, v in zip(header, values, strict=False) if h}
            rows.append({**row, "line_no": line_no})
    finally:
        book.close()
    return set(header), rows


def _cell(value: Any) -> str:
    """A cell as the CSV would hold it: dates in ISO 8601, whole numbers without '.0'."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
