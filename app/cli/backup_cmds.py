"""Sealed device backups: `commune backup create|restore|status`."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

from app.cli import CliError
from app.cli.common import add_store_options, data_dir, open_store, read_pin

PASSPHRASE_ENV = "COMMUNE_BACKUP_PASSPHRASE"


def register(subparsers: argparse._SubParsersAction) -> None:
    backup = subparsers.add_parser("backup", help="sealed backups of this device's store")
    sub = backup.add_subparsers(dest="backup_command", metavar="ACTION", required=True)

    create = sub.add_parser("create", help="write one sealed backup file of the local store")
    add_store_options(create)
    create.add_argument("--out", type=Path, required=True, help="backup file to write")
    _add_passphrase_option(create)
    create.set_defaults(handler=cmd_create)

    restore = sub.add_parser("restore", help="restore a sealed backup into an empty data folder")
    add_store_options(restore)
    restore.add_argument("file", type=Path, help="the backup file")
    _add_passphrase_option(restore)
    restore.add_argument(
        "--answer", type=Path,
        help="the admin's answer to `commune recover --backup` (no backup secret needed)",
    )
    restore.set_defaults(handler=cmd_restore)

    status = sub.add_parser("status", help="last backup, last sync and the reminder")
    add_store_options(status)
    status.add_argument(
        "--remind-after-days", type=int, default=None,
        help="set the days without backup or sync before a reminder (0 = never)",
    )
    status.set_defaults(handler=cmd_status)


def _add_passphrase_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--passphrase-stdin", action="store_true",
        help=f"read the backup passphrase from the next stdin line (else {PASSPHRASE_ENV}, "
             "else the PIN)",
    )


def _passphrase(args: argparse.Namespace, pin: str) -> str:
    if args.passphrase_stdin:
        value = sys.stdin.readline().rstrip("\r\n")
        if not value:
            raise CliError("the backup passphrase is empty")
        return value
    return os.environ.get(PASSPHRASE_ENV) or pin


def _progress(label: str):
    shown = [-1]

    def report(done: int, total: int) -> None:
        percent = 100 if total <= 0 else done * 100 // total
        if percent // 10 > shown[0]:
            shown[0] = percent // 10
            print(f"{label}: {percent}%", file=sys.stderr, flush=True)

    return report


def cmd_create(args: argparse.Namespace) -> int:
    from app.storage.errors import WeakSecretWithoutKeystore

    pin = read_pin(args)
    secret = _passphrase(args, pin)
    store = open_store(args, pin)
    try:
        info = store.create_backup(args.out, secret, progress=_progress("sao lưu / backup"))
    except WeakSecretWithoutKeystore as exc:
        raise CliError(
            "a backup file can be guessed at offline and this secret is too weak for it: give "
            f"a backup passphrase ({PASSPHRASE_ENV} or --passphrase-stdin); {exc}"
        ) from None
    finally:
        store.close()
    print(f"backup written to {info.path} ({info.size} bytes, {info.entries} entries)")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from app.storage import restore_store, store_exists

    folder = data_dir(args)
    if store_exists(folder):
        raise CliError(f"a store already exists in {folder}: restore into an empty folder")
    if not args.file.is_file():
        raise CliError(f"{args.file}: no such file")
    pin = read_pin(args)
    backup_key = _answered_key(folder, args.answer) if args.answer else None
    secret = None if backup_key else _passphrase(args, pin)
    store = restore_store(
        args.file, folder, pin, secret=secret, progress=_progress("khôi phục / restore"),
        backup_key=backup_key,
    )
    if backup_key:
        from app.storage.recovery import forget_request

        forget_request(folder)  # the answer works once
    try:
        pending = store.sync.summary().pending
        print(f"restored into {folder} (device {store.device_id}, {pending} changes to sync)")
    finally:
        store.close()
    return 0


def _answered_key(folder: Path, answer_path: Path) -> bytes:
    import json

    from app.storage.recovery import open_answer

    try:
        answer = json.loads(answer_path.read_text())
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read the answer: {exc}") from exc
    key, _ = open_answer(folder, answer)
    return key


def cmd_status(args: argparse.Namespace) -> int:
    from app.domain.reminders import MAX_BACKUP_REMINDER_DAYS, days_unprotected
    from app.views.backup_model import REMINDER_DAYS_SETTING, last_backup, reminder_days

    store = open_store(args)
    try:
        if args.remind_after_days is not None:
            if not 0 <= args.remind_after_days <= MAX_BACKUP_REMINDER_DAYS:
                raise CliError(f"--remind-after-days must be 0-{MAX_BACKUP_REMINDER_DAYS}")
            store.settings.set(REMINDER_DAYS_SETTING, args.remind_after_days)
        days = reminder_days(store.settings)
        backed_up = last_backup(store.settings)
        synced = store.sync.summary().last_synced_at
    finally:
        store.close()
    print(f"last backup: {backed_up.isoformat() if backed_up else 'never'}")
    print(f"last sync:   {synced.isoformat() if synced else 'never'}")
    print(f"reminder after: {days} days" if days else "reminder: off")
    overdue = days_unprotected(backed_up, synced, days, dt.datetime.now(dt.UTC))
    if overdue is not None:
        since = "never backed up or synced" if overdue < 0 else f"{overdue} days"
        print(f"REMINDER: back up or sync now ({since})")
    return 0
