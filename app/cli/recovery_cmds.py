"""Recovery of a forgotten PIN: `commune admin recovery-key create`, `commune admin
recover-device` (the admin, holding the private half offline) and `commune recover` (the user)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from app.cli import CliError
from app.cli.common import add_store_options, data_dir

PASSPHRASE_ENV = "COMMUNE_RECOVERY_PASSPHRASE"


def register(subparsers: argparse._SubParsersAction) -> None:
    recover = subparsers.add_parser(
        "recover", help="forgotten PIN: make a recovery request, or finish one with a new PIN"
    )
    add_store_options(recover)
    mode = recover.add_mutually_exclusive_group(required=True)
    mode.add_argument("--request-out", type=Path, help="write a recovery request for the admin")
    mode.add_argument(
        "--answer", type=Path,
        help="the admin's answer: set a new PIN (COMMUNE_NEW_PIN or the first stdin line)",
    )
    recover.add_argument(
        "--backup", type=Path,
        help="with --request-out: a request for this backup file's key (new device, "
             "forgotten backup secret); finish with `commune backup restore --answer`",
    )
    recover.set_defaults(handler=cmd_recover)

    check = subparsers.add_parser(
        "check-revoked", help="without the PIN: ask the server if this device was revoked"
    )
    check.add_argument("--data-dir", default=argparse.SUPPRESS, help="data folder")
    check.set_defaults(handler=cmd_check_revoked)


def register_admin(actions: argparse._SubParsersAction, add_db) -> None:
    key = actions.add_parser("recovery-key", help="the organisation's recovery key pair")
    key_actions = key.add_subparsers(dest="recovery_key_command", metavar="ACTION", required=True)
    create = key_actions.add_parser(
        "create", help="make the key pair: private half to a file, public half to the server"
    )
    create.add_argument("--out", type=Path, required=True,
                        help="file for the private half (keep it offline)")
    create.add_argument("--passphrase-stdin", action="store_true",
                        help=f"key file passphrase from stdin (else {PASSPHRASE_ENV})")
    add_db(create)
    create.set_defaults(handler=cmd_recovery_key_create)

    device = actions.add_parser(
        "recover-device", help="answer one device's recovery request with the private key"
    )
    device.add_argument("--request", type=Path, required=True, help="the device's request file")
    device.add_argument("--key", type=Path, required=True, help="the private key file")
    device.add_argument("--out", type=Path, required=True, help="answer file for the device")
    device.add_argument("--device-id", help="server device id, when the request has no escrow")
    device.add_argument("--passphrase-stdin", action="store_true",
                        help=f"key file passphrase from stdin (else {PASSPHRASE_ENV})")
    add_db(device)
    device.set_defaults(handler=cmd_recover_device)


def _passphrase(args: argparse.Namespace) -> str:
    value = (sys.stdin.readline().rstrip("\r\n") if args.passphrase_stdin
             else os.environ.get(PASSPHRASE_ENV, ""))
    if not value:
        raise CliError(f"no passphrase: set {PASSPHRASE_ENV} or use --passphrase-stdin")
    return value


def _write_private(path: Path, data: bytes) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise CliError(f"{path} exists: not overwriting it") from exc
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def cmd_recovery_key_create(args: argparse.Namespace) -> int:
    from app.cli.server_cmds import _engine
    from app.storage.recovery import key_id, new_recovery_key
    from server.services import recovery

    pem, public = new_recovery_key(_passphrase(args))
    _write_private(args.out, pem)
    recovery.set_public_key(_engine(args), public, key_id(public))
    print(f"recovery key {key_id(public)}: private half in {args.out} (keep it offline); "
          "public half set on the server")
    return 0


def cmd_recover_device(args: argparse.Namespace) -> int:
    from app.cli.server_cmds import _engine
    from app.storage.recovery import answer_request, load_recovery_key
    from server.services import recovery

    try:
        request = json.loads(args.request.read_text())
        pem = args.key.read_bytes()
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read the request or key file: {exc}") from exc
    private = load_recovery_key(pem, _passphrase(args))
    engine = _engine(args)
    server_id = args.device_id or request.get("server_device_id") or (
        (request.get("escrow") or {}).get("server_device_id"))
    escrow, source = request.get("escrow"), "device"
    if not escrow and server_id:
        escrow, source = recovery.escrow_of(engine, server_id), "server"
    if not escrow:
        raise CliError("no escrow: the request has none and the server holds none for it")
    answer = answer_request(private, request, escrow)
    recovery.log_recovery(engine, server_id, {
        "request_id": request.get("request_id"), "kid": escrow.get("kid"), "escrow": source,
        "store_device_id": escrow.get("device_id"),
    })
    _write_private(args.out, json.dumps(answer).encode())
    print(f"answer for request {request.get('request_id')} written to {args.out} "
          f"(escrow from the {source}); the recovery is in the audit log")
    return 0


def cmd_recover(args: argparse.Namespace) -> int:
    from app.storage import recover_store
    from app.storage.recovery import new_request, read_escrow

    folder = data_dir(args)
    if args.request_out and args.backup:
        from app.storage.backup import read_backup_escrow

        escrow = read_backup_escrow(args.backup)
        if not escrow:
            raise CliError(f"{args.backup} holds no escrow (made before a recovery key existed)")
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        request = new_request(folder, escrow, None)
        _write_private(args.request_out, json.dumps(request).encode())
        print(f"recovery request {request['request_id']} for {args.backup} written to "
              f"{args.request_out}: give it to your admin")
        return 0
    if args.backup:
        raise CliError("--backup goes with --request-out")
    if args.request_out:
        escrow = read_escrow(folder)
        request = new_request(folder, escrow or {}, (escrow or {}).get("server_device_id"))
        _write_private(args.request_out, json.dumps(request).encode())
        where = "with this device's escrow" if escrow else "without escrow (the server's copy)"
        print(f"recovery request {request['request_id']} written to {args.request_out} "
              f"({where}): give it to your admin")
        return 0
    try:
        answer = json.loads(args.answer.read_text())
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read the answer: {exc}") from exc
    new_pin = os.environ.get("COMMUNE_NEW_PIN") or sys.stdin.readline().rstrip("\r\n")
    if not new_pin:
        raise CliError("no new PIN: set COMMUNE_NEW_PIN or give it on stdin")
    store = recover_store(folder, answer, new_pin)
    try:
        print(f"store recovered, new PIN set (device {store.device_id})")
    finally:
        store.close()
    return 0


def cmd_check_revoked(args: argparse.Namespace) -> int:
    from app.sync.locked_check import check_while_locked

    folder = data_dir(args)
    if check_while_locked(folder):
        print(f"this device was revoked: its store in {folder} was crypto-erased")
        return 0
    print("not revoked (or the server could not be asked)")
    return 0
