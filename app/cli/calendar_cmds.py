"""Calendar commands: the commune's official make-up working days and extra holidays."""

from __future__ import annotations

import argparse
import datetime as dt

from app.cli import CliError
from app.cli.common import add_store_options, open_store, print_json


def register(subparsers: argparse._SubParsersAction) -> None:
    cal = subparsers.add_parser(
        "calendar", help="official make-up working days and extra holidays of this store"
    )
    csub = cal.add_subparsers(dest="calendar_command", metavar="ACTION", required=True)
    lst = csub.add_parser("list", help="list the make-up working days and extra holidays")
    add_store_options(lst)
    lst.add_argument("--json", action="store_true", help="print JSON instead of a table")
    lst.set_defaults(handler=cmd_list)
    for name, help_text, handler in (
        ("add-make-up-day", "a weekend or holiday date that is worked (YYYY-MM-DD)", cmd_make_up),
        ("add-holiday", "a weekday date that is a day off (YYYY-MM-DD)", cmd_holiday),
        ("remove", "forget a make-up day or extra holiday (YYYY-MM-DD)", cmd_remove),
    ):
        action = csub.add_parser(name, help=help_text)
        add_store_options(action)
        action.add_argument("date", type=_date, help="the date, YYYY-MM-DD")
        action.set_defaults(handler=handler)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def cmd_list(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        days = store.calendar.days()
        server_version = store.calendar.server_version()
    if args.json:
        print_json({"make_up_days": [d.isoformat() for d in days.make_up_days],
                    "extra_holidays": [d.isoformat() for d in days.extra_holidays],
                    "server_version": server_version})
        return 0
    if server_version:
        print(f"the server's calendar, version {server_version} (this store's own days set aside)")
    for day in days.make_up_days:
        print(f"{day.isoformat()}  ngày làm bù / make-up working day")
    for day in days.extra_holidays:
        print(f"{day.isoformat()}  ngày nghỉ thêm / extra holiday")
    if not days.make_up_days and not days.extra_holidays:
        print("no make-up days or extra holidays")
    return 0


def cmd_make_up(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        if store.dossiers.calendar.is_working_day(args.date):
            raise CliError(f"{args.date} is already a working day")
        store.calendar.add_make_up_day(args.date)
        version = store.calendar.server_version()
    print(f"{args.date} is now a working day (dossiers received from now on)")
    _note_server_calendar(version)
    return 0


def cmd_holiday(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        if not store.dossiers.calendar.is_working_day(args.date):
            raise CliError(f"{args.date} is already a day off")
        store.calendar.add_holiday(args.date)
        version = store.calendar.server_version()
    print(f"{args.date} is now a day off (dossiers received from now on)")
    _note_server_calendar(version)
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        removed = store.calendar.remove(args.date)
    if not removed:
        raise CliError(f"{args.date} is neither a make-up day nor an extra holiday")
    print(f"{args.date} removed")
    return 0



def _note_server_calendar(version: int) -> None:
    if version:
        print(f"note: the server's calendar (version {version}) is in force on this device; "
              "this store's own days apply only without it")
