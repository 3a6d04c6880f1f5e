"""Helpers shared by the command modules: data dir and PIN resolution."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import platformdirs

APP_NAME = "commune-field"


def data_dir(args: argparse.Namespace) -> Path:
    chosen = getattr(args, "data_dir", None) or os.environ.get("COMMUNE_DATA_DIR")
    return Path(chosen) if chosen else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def add_pin_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--pin-stdin", action="store_true", help="read the PIN from the first line of stdin"
    )


def read_pin(args: argparse.Namespace, *, prompt: str = "PIN: ") -> str:
    """The PIN from --pin-stdin, else COMMUNE_PIN, else an interactive prompt."""
    from app.cli import CliError

    if getattr(args, "pin_stdin", False):
        pin = sys.stdin.readline().rstrip("\r\n")
    elif os.environ.get("COMMUNE_PIN"):
        pin = os.environ["COMMUNE_PIN"]
    elif sys.stdin.isatty():
        import getpass

        pin = getpass.getpass(prompt)
    else:
        raise CliError("no PIN: set COMMUNE_PIN or use --pin-stdin")
    if not pin:
        raise CliError("the PIN is empty")
    return pin
