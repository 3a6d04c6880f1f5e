"""Local store commands: init, dossiers import/list/export, procedures, wards, PIN, wipe."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

from app.cli import CliError
from app.cli.common import add_store_options, data_dir, open_store, print_json, read_pin
from app.domain import reference
from app.domain.status import DossierStatus
from app.domain.text import fold
from app.storage.services.register_file import RegisterFileError, read_register


def register(subparsers: argparse._SubParsersAction) -> None:
    init = subparsers.add_parser("init", help="create an encrypted local store protected by a PIN")
    add_store_options(init)
    init.add_argument("--ward", help="the commune's 5-digit ward code (e.g. 00070)")
    init.add_argument("--agency-code", help="the agency code used in dossier codes (QCVN 102)")
    init.add_argument(
        "--max-attempts", type=int, default=None,
        help="wrong PINs in a row before the key is destroyed (default 10)",
    )
    init.set_defaults(handler=cmd_init)

    dossiers = subparsers.add_parser("dossiers", help="one-stop dossiers in the local store")
    dsub = dossiers.add_subparsers(dest="dossiers_command", metavar="ACTION", required=True)
    imp = dsub.add_parser("import", help="import dossiers from a CSV or XLSX register (header row)")
    add_store_options(imp)
    imp.add_argument("file", type=Path, help="CSV (UTF-8) or XLSX file with a header row")
    imp.set_defaults(handler=cmd_import)

    lst = dsub.add_parser("list", help="list dossiers sorted by appointment date")
    add_store_options(lst)
    lst.add_argument(
        "--search", default="",
        help="applicant name (diacritics optional), ID number, dossier code or its tail "
        "(261207-9944, 9944)",
    )
    lst.add_argument("--status", type=int, choices=[int(s) for s in DossierStatus],
                     help="only this status (1-10)")
    lst.add_argument("--overdue", action="store_true", help="only open dossiers past their date")
    lst.add_argument("--limit", type=int, default=50, help="rows to show (default 50)")
    lst.add_argument("--json", action="store_true", help="print JSON instead of a table")
    lst.set_defaults(handler=cmd_list)

    exp = dsub.add_parser("export", help="export all dossiers to CSV or XLSX")
    add_store_options(exp)
    exp.add_argument("--format", choices=["csv", "xlsx"], required=True, help="file format")
    exp.add_argument("--out", type=Path, required=True, help="file to write")
    exp.set_defaults(handler=cmd_export)

    reg = dsub.add_parser(
        "register", help="the register of received dossiers (form 06, Circular 01/2018) as XLSX"
    )
    add_store_options(reg)
    reg.add_argument("--out", type=Path, required=True, help="XLSX file to write")
    reg.add_argument("--from", dest="first", type=dt.date.fromisoformat,
                     help="first day of receipt, YYYY-MM-DD (Vietnam time)")
    reg.add_argument("--to", dest="last", type=dt.date.fromisoformat,
                     help="last day of receipt, YYYY-MM-DD (Vietnam time)")
    reg.set_defaults(handler=cmd_register)

    procs = subparsers.add_parser("procedures", help="the administrative procedure catalogue")
    psub = procs.add_subparsers(dest="procedures_command", metavar="ACTION", required=True)
    plist = psub.add_parser("list", help="list procedures")
    plist.add_argument("--search", default="", help="name or code (diacritics optional)")
    plist.add_argument("--json", action="store_true", help="print JSON instead of a table")
    plist.set_defaults(handler=cmd_procedures)
    from app.cli import catalogue_cmds
    from app.cli.server_cmds import _add_db

    catalogue_cmds.register_procedures(psub, _add_db)

    wards = subparsers.add_parser("wards", help="commune-level units (official codes)")
    wsub = wards.add_subparsers(dest="wards_command", metavar="ACTION", required=True)
    wlist = wsub.add_parser("list", help="list wards and communes")
    wlist.add_argument("--province", help="2-digit province code (01 = Hà Nội)")
    wlist.add_argument("--json", action="store_true", help="print JSON instead of a table")
    wlist.set_defaults(handler=cmd_wards)

    pin = subparsers.add_parser(
        "change-pin",
        help="change the PIN (new PIN from COMMUNE_NEW_PIN or the next stdin line)",
    )
    add_store_options(pin)
    pin.set_defaults(handler=cmd_change_pin)

    wipe = subparsers.add_parser("wipe", help="crypto-erase and delete the local store")
    wipe.add_argument("--data-dir", default=argparse.SUPPRESS, help="data folder")
    wipe.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    wipe.set_defaults(handler=cmd_wipe)


def cmd_init(args: argparse.Namespace) -> int:
    from app.storage import KeySettings, create_store, store_exists

    folder = data_dir(args)
    if store_exists(folder):
        raise CliError(f"a store already exists in {folder}")
    if args.max_attempts is not None and args.max_attempts < 1:
        raise CliError("--max-attempts must be at least 1")
    if args.ward and not reference.is_ward_code(args.ward):
        raise CliError(f"no ward with code {args.ward}")
    pin = read_pin(args)  # the PIN policy is the store's (PinTooShort, shown by main)
    policy = KeySettings() if args.max_attempts is None else KeySettings(
        max_attempts=args.max_attempts)
    store = create_store(folder, pin, settings=policy)
    try:
        if args.ward:
            store.settings.set("ward_code", args.ward)
        if args.agency_code:
            store.settings.set("agency_code", args.agency_code)
        print(f"store created in {folder} (device {store.device_id})")
    finally:
        store.close()
    return 0


def read_import_file(path: Path) -> list[dict]:
    """Rows of a CSV or XLSX register with their line numbers; a bad file is one clear error."""
    try:
        return read_register(path.read_bytes(), path.name)
    except FileNotFoundError as exc:
        raise CliError(f"{path}: no such file") from exc
    except RegisterFileError as exc:
        raise CliError(f"{path}: {exc}") from exc


def cmd_import(args: argparse.Namespace) -> int:
    rows = read_import_file(args.file)
    store = open_store(args)
    try:
        report = store.dossiers.import_rows(rows)
    finally:
        store.close()
    for line, reason in report.errors:
        print(f"{args.file}:{line}: {reason}", file=sys.stderr)
    print(
        f"imported {report.imported}, skipped {report.skipped_duplicates} already present, "
        f"{len(report.errors)} rejected"
    )
    return 1 if report.errors else 0


def cmd_list(args: argparse.Namespace) -> int:
    from app.domain.calendar import vn_today
    from app.storage.services import DossierQuery

    store = open_store(args)
    try:
        query = DossierQuery(search=args.search, status=args.status, overdue=args.overdue)
        page = store.dossiers.list(query, offset=0, limit=args.limit)
    finally:
        store.close()
    if args.json:
        print_json({
            "total": page.total,
            "items": [d.model_dump(mode="json") for d in page.items],
            "unreadable": [u.model_dump(mode="json") for u in page.unreadable],
        })
        return 0
    from app.reports.export import unreadable_text

    today = vn_today()
    for d in page.items:
        kind = d.timeliness(today)
        flag = "QUÁ HẠN" if kind and kind.value == "overdue" else ""
        print(f"{d.code}  {d.appointment_date}  {int(d.status):>2}  {d.applicant_name}  {flag}")
    for u in page.unreadable:  # kept aside: one line each, never a traceback
        print(f"{u.code or u.id}  {unreadable_text(u)}")
    print(f"{len(page.items)} of {page.total}")
    _raise_if_tampered(page.unreadable)
    return 0


def _raise_if_tampered(unreadable) -> None:
    """The list or file is complete, but a row failed to open: end with the tampering error
    (one line on stderr, exit 3), so neither a person nor a script misses it."""
    from app.storage.errors import TamperError

    tampered = [u.id for u in unreadable if u.reason == "tampered"]
    if tampered:
        raise TamperError(f"dossier {', '.join(tampered[:5])}")


def _say_written(count: int, out, kept_aside: list) -> None:
    """The rows written, then each dossier written as a marked row (kept aside, unreadable)."""
    from app.reports.export import unreadable_text

    print(f"wrote {count - len(kept_aside)} dossiers to {out}")
    for u in kept_aside:
        print(f"{u.code or u.id}  {unreadable_text(u)}")
    _raise_if_tampered(kept_aside)


def cmd_export(args: argparse.Namespace) -> int:
    from app.domain.calendar import vn_today
    from app.domain.models import UnreadableRecord
    from app.reports.export import write_csv, write_xlsx

    store = open_store(args)
    kept_aside: list[UnreadableRecord] = []

    def noting(rows):
        for row in rows:
            if isinstance(row, UnreadableRecord):
                kept_aside.append(row)
            yield row

    try:
        writer = write_csv if args.format == "csv" else write_xlsx
        count = writer(noting(store.dossiers.everything()), args.out, vn_today())
    finally:
        store.close()
    _say_written(count, args.out, kept_aside)
    return 0


def cmd_register(args: argparse.Namespace) -> int:
    from app.domain.models import UnreadableRecord
    from app.reports.counter_forms import agency_name, write_register_xlsx

    store = open_store(args)
    kept_aside: list[UnreadableRecord] = []
    try:
        agency = agency_name(store.settings.get("ward_code"))
        rows = list(store.dossiers.everything())
        kept_aside = [r for r in rows if isinstance(r, UnreadableRecord)]
        count = write_register_xlsx(rows, args.out, agency, args.first, args.last)
    finally:
        store.close()
    _say_written(count, args.out, kept_aside)
    return 0


def cmd_procedures(args: argparse.Namespace) -> int:
    found = reference.search_procedures(args.search) if args.search else reference.procedures()
    if args.json:
        print_json([p.model_dump() for p in found])
        return 0
    for p in found:
        print(f"{p.code:<12} {p.processing_days:>3} ngày  {p.field:<18} {p.name}")
    return 0


def cmd_wards(args: argparse.Namespace) -> int:
    try:
        found = reference.wards(args.province)
    except KeyError as exc:
        raise CliError(str(exc)) from exc
    if args.province and not found:
        raise CliError(f"no province with code {args.province}")
    if args.json:
        print_json([w.model_dump() for w in found])
        return 0
    for w in found:
        print(f"{w.code}  {w.name}  ({w.province_name})")
    print(f"{len(found)} units")
    return 0


def cmd_change_pin(args: argparse.Namespace) -> int:
    old = read_pin(args)
    store = open_store(args, pin=old)
    try:
        new = os.environ.get("COMMUNE_NEW_PIN") or sys.stdin.readline().rstrip("\r\n")
        store.change_pin(old, new)  # a too short new PIN: PinTooShort, printed by main
    finally:
        store.close()
    print("PIN changed")
    return 0


def cmd_wipe(args: argparse.Namespace) -> int:
    from app.storage import wipe_store

    folder = data_dir(args)
    if not args.yes:
        if not sys.stdin.isatty():
            raise CliError("refusing to wipe without --yes")
        answer = input(f"Xoá vĩnh viễn dữ liệu trong {folder}? Gõ 'xoa' để xác nhận: ")
        if fold(answer) != "xoa":
            print("cancelled")
            return 1
    wipe_store(folder)
    print(f"store in {folder} crypto-erased and deleted")
    return 0
