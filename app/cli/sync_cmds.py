"""Sync commands: enrol this device with the central API, and sync (once or in the background)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from app.cli import CliError
from app.cli.common import add_store_options, data_dir, open_store, read_pin


def register(subparsers: argparse._SubParsersAction) -> None:
    enrol = subparsers.add_parser(
        "enrol",
        help="enrol this device with the central API using a one-time code from an admin",
        description="Creates the local store if there is none (PIN as usual), redeems the code "
        "and keeps the server address, the device token, the code slot and the ward scope.",
    )
    add_store_options(enrol)
    enrol.add_argument("--server", required=True, help="central API address, e.g. https://host")
    enrol.add_argument("--code", required=True, help="one-time enrolment code from an admin")
    enrol.add_argument(
        "--name", default=None, help="a name for this device (default: the machine's name)"
    )
    _add_insecure_option(enrol)
    enrol.set_defaults(handler=cmd_enrol)

    login = subparsers.add_parser(
        "login",
        help="log in to the central API as a desktop user (supervisor, admin)",
        description="Creates the local store if there is none (PIN as usual), logs in with a "
        "password and keeps the server address, the session's tokens and the ward scope. The "
        "password is read from the first line of stdin with --password-stdin, else prompted; "
        "with --password-stdin and --pin-stdin the PIN is the first line, the password the second.",
    )
    add_store_options(login)
    login.add_argument("--server", required=True, help="central API address, e.g. https://host")
    login.add_argument("--username", required=True, help="the desktop user's login name")
    login.add_argument(
        "--password-stdin", action="store_true", help="read the password from a line of stdin"
    )
    _add_insecure_option(login)
    login.set_defaults(handler=cmd_login)

    logout = subparsers.add_parser(
        "logout",
        help="end this desktop login on the central API and forget its tokens here",
        description="Ends the session on the server (its token and refresh token stop working "
        "at once) and removes them from the local store. Local data stays.",
    )
    add_store_options(logout)
    logout.set_defaults(handler=cmd_logout)

    sync = subparsers.add_parser(
        "sync",
        help="sync with the central API (in the background until Ctrl-C, or once)",
        description="Pushes local changes, pulls what changed on the server, moves attachments.",
    )
    add_store_options(sync)
    sync.add_argument(
        "--once", action="store_true", help="one run, print its report; exit 1 when it failed"
    )
    sync.add_argument("--server", help="use this API address instead of the enrolled one")
    _add_insecure_option(sync)
    sync.add_argument(
        "--stall",
        type=float,
        default=None,
        metavar="SECONDS",
        help="end a run that has had no answer for this long, as offline (default 25)",
    )
    sync.add_argument(
        "--batch-kb",
        type=int,
        default=None,
        help="push batch size in KiB of JSON before compression (1024); smaller when a proxy "
        "refuses large bodies",
    )
    sync.add_argument(
        "--interval", type=float, default=300.0, help="seconds between background runs (300)"
    )
    sync.add_argument(
        "--probe-interval",
        type=float,
        default=30.0,
        help="seconds between connectivity probes; a returning link syncs at once (30)",
    )
    sync.set_defaults(handler=cmd_sync)


def _add_insecure_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-insecure-http",
        action="store_true",
        help="allow http:// to another machine (a lab only: tokens and records cross the "
        "network unencrypted); without it only https:// and http:// to this machine are used",
    )


def _open_or_create(args: argparse.Namespace):
    from app.storage import create_store, store_exists

    folder = data_dir(args)
    pin = read_pin(args)
    if store_exists(folder):
        return open_store(args, pin)
    if len(pin) < 4:
        raise CliError("the PIN needs at least 4 characters")
    return create_store(folder, pin)


def cmd_login(args: argparse.Namespace) -> int:
    from app.sync.enrolment import login
    from app.sync.transport import SyncError

    store = _open_or_create(args)
    try:
        password = _read_password(args)
        try:
            answer = login(
                store.settings, args.server, args.username, password, args.allow_insecure_http
            )
        except SyncError as exc:
            raise CliError(f"login failed: {exc}", exit_code=1) from exc
        wards = ", ".join(answer.get("wards") or []) or "-"
        print(f"logged in as {answer.get('user')} ({answer.get('role')}), wards: {wards}")
    finally:
        store.close()
    return 0


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        import getpass

        password = getpass.getpass("password: ")
    else:
        raise CliError("no password: use --password-stdin")
    if not password:
        raise CliError("the password is empty")
    return password


def cmd_logout(args: argparse.Namespace) -> int:
    from app.sync.enrolment import logout
    from app.sync.transport import NotConfigured, SyncError

    store = open_store(args)
    try:
        try:
            logout(store.settings)
        except NotConfigured as exc:
            raise CliError("not logged in") from exc
        except SyncError as exc:
            raise CliError(f"logout failed: {exc}", exit_code=1) from exc
        print("logged out")
    finally:
        store.close()
    return 0


def cmd_enrol(args: argparse.Namespace) -> int:
    from app.sync.enrolment import enrol
    from app.sync.transport import SyncError

    store = _open_or_create(args)
    try:
        try:
            answer = enrol(
                store.settings, args.server, args.code, args.name or "", args.allow_insecure_http
            )
        except SyncError as exc:
            raise CliError(f"enrolment failed: {exc}", exit_code=1) from exc
        wards = ", ".join(answer.get("wards") or []) or "-"
        print(f"enrolled as {answer.get('user')} ({answer.get('role')}), wards: {wards}")
    finally:
        store.close()
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    from app.runtime import tune_gc
    from app.sync.engine import PUSH_BATCH_BYTES, SyncEngine
    from app.sync.transport import DeviceRevoked, InsecureUrl, NotConfigured, Transport

    tune_gc()  # as the app does: the collector's passes were a third of a sync's CPU
    store = open_store(args)
    erased = threading.Event()

    def on_revoked() -> None:
        erased.set()
        print("this device was revoked: its local data is being erased", file=sys.stderr)

    try:
        options = {"allow_insecure_http": True} if args.allow_insecure_http else {}
        try:
            transport = Transport.from_settings(store.settings, server_url=args.server, **options)
        except (NotConfigured, InsecureUrl) as exc:
            raise CliError(str(exc)) from exc
        engine = SyncEngine(
            store.sync,
            transport,
            on_revoked=on_revoked,
            push_batch_bytes=(
                max(1, args.batch_kb) * 1024 if args.batch_kb is not None else PUSH_BATCH_BYTES
            ),
        )
        try:
            if args.once:
                return _sync_once(engine, store, args.stall)
            return _sync_forever(engine, args)
        except DeviceRevoked:
            return 3
        finally:
            transport.close()
    finally:
        if not erased.is_set():
            store.close()


def waiting_line(store) -> str:
    """What waits to be sent, counted as the user made it (not outbox rows)."""
    waiting = [w for w in store.sync.waiting(limit=10**9) if w.state != "rejected"]
    kinds = {kind: sum(1 for w in waiting if w.entity == kind) for kind in WAITING_KINDS}
    parts = ", ".join(f"{n} {WAITING_KINDS[kind]}" for kind, n in kinds.items())
    return f"waiting to send: {len(waiting)} records ({parts})"


WAITING_KINDS = {"dossier": "dossiers", "audit": "audits", "audit_comment": "decisions"}


def _print_progress(progress) -> None:
    if progress.stage in ("push", "pull", "upload"):
        count = f"{progress.done}/{progress.total}" if progress.total else str(progress.done)
        print(f"{progress.stage} {count}", flush=True)


def _sync_once(engine, store, stall_s: float | None) -> int:
    from app.sync.engine import STALL_S, StallWatch

    print(waiting_line(store), flush=True)
    engine.on_progress = _print_progress
    with StallWatch(engine, stall_s or STALL_S):
        report = engine.run_once()
    print(report.summary())
    for received in report.reference:  # "catalogue:3": a newer version is now in force here
        kind, _, version = received.partition(":")
        print(f"received the server's {kind}, version {version} (in force on this device)")
    if not report.busy:
        print(waiting_line(store), flush=True)
    for error in report.errors:
        print(f"error: {error}", file=sys.stderr)
    return 0 if report.ok else 1


def _sync_forever(engine, args: argparse.Namespace) -> int:
    from app.sync.scheduler import SyncScheduler

    scheduler = SyncScheduler(
        engine, interval_s=args.interval, probe_interval_s=args.probe_interval
    )
    stop = threading.Event()
    scheduler.add_listener(lambda status: _print_status(status, stop))
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    scheduler.start()
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        scheduler.shutdown(timeout=10)
    return 3 if scheduler.status.revoked else 0


def _print_status(status, stop: threading.Event) -> None:
    if status.running:
        print("syncing…", flush=True)
    elif status.last_report is not None and status.last_run_at is not None:
        print(f"{status.last_run_at:%H:%M:%S} {status.last_report.summary()}", flush=True)
    if status.last_error:
        print(f"error: {status.last_error}", file=sys.stderr, flush=True)
    if status.revoked:
        stop.set()
