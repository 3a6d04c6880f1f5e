"""`commune demo`: the README's main command."""

from __future__ import annotations

import argparse

from app.cli import CliError
from app.cli.common import data_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="run the whole product on embedded defaults: API, seeded devices, sync, client",
        description="Starts the central API on an embedded SQLite file, seeds Hanoi's 126 wards, "
        "demo users, dossiers and audits, enrols local devices, syncs, prints what is due and "
        "overdue, and opens the client. Ctrl-C stops everything.",
    )
    demo.add_argument("--data-dir", default=argparse.SUPPRESS, help="data folder (demo/ inside)")
    demo.add_argument("--dossiers", type=int, default=300, help="dossiers to seed (default 300)")
    demo.add_argument("--api-port", type=int, default=0, help="API port (default: a free one)")
    demo.add_argument("--web-port", type=int, default=0, help="web client port (default: free)")
    demo.add_argument("--no-open", action="store_true", help="stop after the summary")
    demo.add_argument("--reset", action="store_true", help="throw away earlier demo data")
    demo.set_defaults(handler=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from app.demo.run import DemoPlan, run, stop

    plan = DemoPlan(
        root=data_dir(args) / "demo",
        api_port=args.api_port,
        web_port=args.web_port,
        dossiers=args.dossiers,
        open_client=not args.no_open,
        reset=args.reset,
        say=lambda line: print(line, flush=True),
    )
    try:
        return run(plan)
    except KeyboardInterrupt:  # Ctrl-C is how the demo ends: stop everything, exit cleanly
        print("Đang dừng demo …", flush=True)
        return 0
    except RuntimeError as exc:
        raise CliError(str(exc), exit_code=1) from exc
    finally:
        stop(plan)
