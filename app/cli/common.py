"""Helpers shared by the command modules: data dir, PIN resolution, opening the store."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import platformdirs

APP_NAME = "commune-field"


def data_dir(args: argparse.Namespace) -> Path:
    chosen = getattr(args, "data_dir", None) or os.environ.get("COMMUNE_DATA_DIR")
    return Path(chosen) if chosen else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def add_store_options(parser: argparse.ArgumentParser) -> None:
    """--data-dir and --pin-stdin, accepted after the command name too."""
    parser.add_argument(
        "--data-dir",
        default=argparse.SUPPRESS,
        help="data folder (default: COMMUNE_DATA_DIR, else the platform's user data folder)",
    )
    add_pin_option(parser)


def add_pin_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--pin-stdin",
        action="store_true",
        help="read the PIN from the first line of stdin (else COMMUNE_PIN, else a prompt)",
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


def open_store(args: argparse.Namespace, pin: str | None = None):
    """Open the local store; storage errors (wrong PIN, locked, tampered) reach `main`, which
    prints them as one line (exit 3)."""
    from app.cli import CliError
    from app.storage import open_store as _open
    from app.storage import store_exists
    from app.storage.errors import StoreDestroyed
    from app.storage.services.local_store import store_destroyed

    folder = data_dir(args)
    if store_destroyed(folder):
        raise CliError(f"{StoreDestroyed()} ({folder})")
    if not store_exists(folder):
        raise CliError(f"no store in {folder}: run 'commune init' first")
    pin = pin if pin is not None else read_pin(args)
    return _open(folder, pin)  # a StorageError (wrong PIN, tampering) is printed by main


def print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2, default=str))
