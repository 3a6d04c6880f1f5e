"""The `commune` command. Each room registers its commands from its own module."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Modules that add commands: each has `register(subparsers: argparse._SubParsersAction)`.
COMMAND_MODULES = (
    "store_cmds", "calendar_cmds", "server_cmds", "sync_cmds", "app_cmds", "demo_cmds",
    "backup_cmds", "recovery_cmds", "report_cmds",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="commune",
        description="commune-field: hồ sơ một cửa, khảo sát hạ tầng CNTT, đồng bộ ngoại tuyến.",
    )
    parser.add_argument(
        "--data-dir",
        help="data folder (default: COMMUNE_DATA_DIR, else the platform's user data folder)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"app.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"app.cli.{name}":
                raise
            continue  # that room has not landed its commands yet
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from app.storage.errors import StorageError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        return 130
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except StorageError as exc:  # tampered data, wrong or too short PIN, ...: one clear line
        print(f"error: {exc}", file=sys.stderr)
        return STORAGE_ERROR_EXIT


STORAGE_ERROR_EXIT = 3


class CliError(Exception):
    """An error the user can act on: printed without a traceback."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code
