"""The province's reference data on the server: `commune procedures import|versions` (the
procedure catalogue, CSV or XLSX) and `commune admin calendar` (the working calendar). Both
write the central database (`--db`) as new versions; devices receive them by sync."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
from collections.abc import Callable, Iterator
from pathlib import Path

from app.cli import CliError
from app.domain.catalogue import MAX_ROWS, LineError, header_map, parse_rows
from app.domain.models import Procedure

MAX_FILE_BYTES = 20 * 1024 * 1024


def register_procedures(psub: argparse._SubParsersAction, add_db: Callable) -> None:
    """`commune procedures import` and `commune procedures versions` (beside `list`)."""
    imp = psub.add_parser(
        "import",
        help="load the province's procedure catalogue (CSV or XLSX) on the server as a new "
        "version",
        description="Check every line of FILE (columns code, name, level, processing_days, fee, "
        "documents, forms; optional field, fee_note, source) and store it in the central database "
        "as the next catalogue version. One bad line and nothing is stored: each bad line is "
        "printed with its number and reason. Devices receive the new version at their next sync.",
    )
    imp.add_argument("file", type=Path, help="a .csv (UTF-8) or .xlsx file")
    imp.add_argument("--check", action="store_true", help="only check the file; store nothing")
    add_db(imp)
    imp.set_defaults(handler=cmd_import)
    ver = psub.add_parser(
        "versions",
        help="list the catalogue and calendar versions published on the server",
        description="List every published version (newest first) and say which is in force.",
    )
    add_db(ver)
    ver.set_defaults(handler=cmd_versions)


def register_admin(actions: argparse._SubParsersAction, add_db: Callable) -> None:
    cal = actions.add_parser(
        "calendar",
        help="publish the working calendar (make-up days, extra holidays) for every device",
        description="Publish the province's make-up working days and extra holidays as the "
        "next calendar version (the whole list each time: days left out are no longer make-up "
        "days or holidays). Devices receive it at their next sync and it replaces their own "
        "days. Without --make-up-days and --extra-holidays, print the calendar in force.",
    )
    cal.add_argument("--make-up-days", default=None, help="comma-separated YYYY-MM-DD dates")
    cal.add_argument("--extra-holidays", default=None, help="comma-separated YYYY-MM-DD dates")
    add_db(cal)
    cal.set_defaults(handler=cmd_calendar)


# ---------------------------------------------------------------------------------------------
# Reading the file


def read_file(path: Path) -> tuple[list[Procedure], list[LineError]]:
    """The procedures of a CSV or XLSX file and every bad line (see app.domain.catalogue)."""
    if not path.is_file():
        raise CliError(f"no such file: {path}")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise CliError(f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        rows = _xlsx_rows(path)
    elif suffix == ".csv":
        rows = _csv_rows(path)
    else:
        raise CliError("the catalogue must be a .csv or .xlsx file")
    header = next(rows, None)
    if header is None:
        return [], [LineError(1, "no_header")]
    names, missing = header_map(header[1])
    if missing:
        return [], [LineError(header[0], "missing_columns:" + ",".join(missing))]
    cells = ((line, {names[i]: v for i, v in enumerate(row) if i in names}) for line, row in rows)
    try:
        return parse_rows(cells)
    except csv.Error as exc:  # a cell past the csv module's field limit (128 KiB), a NUL...
        return [], [LineError(_last_line[0] + 1, f"csv:{str(exc)[:80]}")]


_last_line = [0]  # the CSV line read last, for an error the csv module raises mid-row


def _csv_rows(path: Path) -> Iterator[tuple[int, list[object]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise CliError("the CSV file is not UTF-8") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    first = 1
    _last_line[0] = 0
    for row in reader:  # a row's number is the line it starts on (a cell may hold newlines)
        yield first, list(row)
        _last_line[0] = reader.line_num
        first = reader.line_num + 1


def _xlsx_rows(path: Path) -> Iterator[tuple[int, list[object]]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a damaged file
        raise CliError(f"not a readable XLSX file: {type(exc).__name__}") from None
    try:
        sheet = book.worksheets[0]
        for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            if number > MAX_ROWS + 1:
                yield number, ["too many rows"]  # parse_rows stops at its bound
                return
            yield number, list(row)
    finally:
        book.close()


# ---------------------------------------------------------------------------------------------
# Commands


def _engine(args: argparse.Namespace):
    from app.cli.server_cmds import _engine as server_engine

    return server_engine(args)


def cmd_import(args: argparse.Namespace) -> int:
    found, errors = read_file(args.file)
    if errors:
        for error in errors:
            print(error)
        raise CliError(f"{len(errors)} bad line(s) in {args.file.name}; nothing stored")
    if args.check:
        print(f"{len(found)} procedures, no bad line (nothing stored: --check)")
        return 0
    from server.services import reference

    version = reference.import_catalogue(_engine(args), found, source=args.file.name)
    print(f"catalogue version {version}: {len(found)} procedures from {args.file.name} (in force)")
    return 0


def cmd_versions(args: argparse.Namespace) -> int:
    from server.services import reference

    engine = _engine(args)
    in_force = dict(zip(("catalogue", "calendar"), reference.in_force(engine), strict=True))
    print("kind\tversion\tin_force\tcreated_at\tby\tsource\titems")
    for row in reference.versions(engine):
        items = sum(len(v) for v in row.body.values() if isinstance(v, list))
        mark = "yes" if in_force.get(row.kind) == row.version else ""
        print(
            f"{row.kind}\t{row.version}\t{mark}\t{row.created_at:%Y-%m-%d %H:%M}\t"
            f"{row.created_by}\t{row.source}\t{items}"
        )
    for kind, version in in_force.items():
        if version == 0:
            print(f"{kind}\t0\tyes\t\t\t(shipped / server configuration)\t")
    return 0


def cmd_calendar(args: argparse.Namespace) -> int:
    from server.services import reference

    engine = _engine(args)
    if args.make_up_days is None and args.extra_holidays is None:
        answer = reference.answer_for(engine, 0, 0)["calendar"]
        if answer is None:
            print("calendar version 0 (the server's configuration; none published)")
            return 0
        print(f"calendar version {answer['version']}")
        print("make-up days: " + (", ".join(answer["make_up_days"]) or "-"))
        print("extra holidays: " + (", ".join(answer["extra_holidays"]) or "-"))
        return 0
    make_up = _dates(args.make_up_days or "")
    holidays = _dates(args.extra_holidays or "")
    try:
        version = reference.set_calendar(engine, make_up, holidays)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    print(f"calendar version {version}: {len(make_up)} make-up days, {len(holidays)} holidays")
    return 0


def _dates(text: str) -> list[dt.date]:
    days = []
    for part in text.split(","):
        if part.strip():
            try:
                days.append(dt.date.fromisoformat(part.strip()))
            except ValueError:
                raise CliError(f"not a date (YYYY-MM-DD): {part.strip()!r}") from None
    return days
