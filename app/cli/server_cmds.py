"""`commune api ...` (run or migrate the central API) and `commune admin ...` (users, devices)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from app.cli.common import data_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    _register_api(subparsers)
    _register_admin(subparsers)


def _add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        metavar="URL",
        help="database URL, e.g. postgresql://user:pw@host/db (default: COMMUNE_DATABASE_URL, "
        "else a SQLite file in the data folder)",
    )


def _add_key_file(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--key-file",
        metavar="PATH",
        help="the server data key ring, kept apart from the database (default: "
        "COMMUNE_SERVER_KEY_FILE, else keys/server.key in the data folder; made 0600 on first "
        "start). COMMUNE_SERVER_KEY (base64 keys, comma-separated, first seals) overrides it",
    )


def _register_api(subparsers: argparse._SubParsersAction) -> None:
    api = subparsers.add_parser(
        "api",
        help="run the central API server",
        description="Run the central API (FastAPI on uvicorn). Migrations are applied at start.",
    )
    _add_db(api)
    _add_key_file(api)
    api.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    api.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    api.add_argument(
        "--workers",
        type=int,
        default=1,
        help="uvicorn worker processes (PostgreSQL for more than 1)",
    )
    api.add_argument("--log-level", default="warning", help="uvicorn log level (default warning)")
    api.add_argument(
        "--forwarded-allow-ips",
        metavar="IPS",
        help="comma-separated addresses or networks of load balancers whose X-Forwarded-For "
        "is trusted as the client address, e.g. 10.0.0.0/8 (default: "
        "COMMUNE_FORWARDED_ALLOW_IPS, else none: the header is ignored)",
    )
    api.add_argument(
        "--production",
        action="store_true",
        help="production settings (also COMMUNE_ENV=production): no /docs, /redoc or "
        "/openapi.json (COMMUNE_DOCS=1 keeps them), /metrics only with COMMUNE_METRICS_TOKEN",
    )
    api.add_argument(
        "--keep-alive",
        type=int,
        default=75,
        help="seconds an idle client connection stays open (default 75, above typical load "
        "balancer idle timeouts, so the balancer closes first)",
    )
    api.set_defaults(handler=run_api)
    actions = api.add_subparsers(dest="api_command", metavar="ACTION")
    migrate = actions.add_parser(
        "migrate",
        help="apply database migrations and exit",
        description="Upgrade the central database schema to the latest Alembic revision.",
    )
    _add_db(migrate)
    migrate.set_defaults(handler=run_migrate)

    reseal = actions.add_parser(
        "reseal",
        help="seal plain personal fields and attachments, and move every envelope to the "
        "current server data key",
        description="Seal what an older server stored plain, and re-seal every sealed field "
        "and attachment under the first (current) key of the ring. Run it after a rotation; "
        "then older keys can be removed from the ring.",
    )
    _add_db(reseal)
    _add_key_file(reseal)
    reseal.set_defaults(handler=run_reseal)

    rotate = actions.add_parser(
        "rotate-key",
        help="put a new server data key first in the key file and re-seal everything with it",
        description="Generate a new server data key, put it first in the key file (older keys "
        "stay, so they still open), then re-seal every record and attachment with it. Stop "
        "the API first: a running server does not know the new key until it restarts. With "
        "--retire-old the older keys are removed from the file once everything is re-sealed.",
    )
    _add_db(rotate)
    _add_key_file(rotate)
    rotate.add_argument(
        "--retire-old",
        action="store_true",
        help="remove the older keys from the key file after the re-seal succeeded",
    )
    rotate.set_defaults(handler=run_rotate_key)

    backup = actions.add_parser(
        "backup",
        help="write a sealed backup of the central database",
        description="A consistent copy (SQLite online backup, or pg_dump for PostgreSQL) sealed "
        "with the backup key; nothing in the file is readable without it.",
    )
    _add_db(backup)
    backup.add_argument("--out", type=Path, required=True, help="backup file to write")
    _add_backup_key(backup, created=True)
    backup.set_defaults(handler=run_backup)

    restore = actions.add_parser(
        "restore",
        help="restore a sealed backup into the central database (stop the API first)",
        description="Open a sealed backup with the backup key and load it into the database "
        "(SQLite backup API, or pg_restore --clean for PostgreSQL).",
    )
    _add_db(restore)
    restore.add_argument("file", type=Path, help="the sealed backup file")
    _add_backup_key(restore, created=False)
    restore.set_defaults(handler=run_restore)


def _register_admin(subparsers: argparse._SubParsersAction) -> None:
    admin = subparsers.add_parser(
        "admin",
        help="manage users and devices of the central API",
        description="Administer the central database directly (users, enrolment, devices).",
    )
    actions = admin.add_subparsers(dest="admin_command", metavar="ACTION", required=True)

    user = actions.add_parser(
        "create-user",
        help="create a user with a role and ward scope",
        description="Create a user. Officers and auditors need ward codes; '*' means all wards "
        "(supervisors and admins only).",
    )
    user.add_argument("username", help="login name")
    user.add_argument(
        "--role",
        required=True,
        choices=("officer", "auditor", "supervisor", "admin"),
        help="what the user does",
    )
    user.add_argument(
        "--wards", required=True, help="comma-separated ward codes, e.g. 00070,00073, or *"
    )
    user.add_argument(
        "--password-stdin",
        action="store_true",
        help="read a desktop login password from the first line of stdin",
    )
    _add_db(user)
    user.set_defaults(handler=run_create_user)

    code = actions.add_parser(
        "enrol-code",
        help="print a one-time enrolment code for a user's device",
        description="Issue a one-time, expiring code that enrols one device for the user.",
    )
    code.add_argument("--user", required=True, help="the username the device will act for")
    code.add_argument(
        "--ttl-minutes", type=int, default=60, help="minutes the code stays valid (default 60)"
    )
    _add_db(code)
    code.set_defaults(handler=run_enrol_code)

    revoke = actions.add_parser(
        "revoke-device",
        help="revoke a device: its next request is refused",
        description="Revoke a device (lost tablet). Its token is refused from the next request "
        "with 401 device_revoked, and the app then erases its local keys.",
    )
    revoke.add_argument("device_id", help="the device id (see list-devices)")
    _add_db(revoke)
    revoke.set_defaults(handler=run_revoke)

    devices = actions.add_parser(
        "list-devices",
        help="list enrolled devices and desktop sessions",
        description="List devices: id, user, kind, code slot, revoked, last pull cursor.",
    )
    _add_db(devices)
    devices.set_defaults(handler=run_list_devices)

    from app.cli import catalogue_cmds, recovery_cmds

    recovery_cmds.register_admin(actions, _add_db)
    catalogue_cmds.register_admin(actions, _add_db)


def _add_backup_key(parser: argparse.ArgumentParser, *, created: bool) -> None:
    made = ", made on first use" if created else ""
    parser.add_argument(
        "--key-file",
        type=Path,
        help=f"the 32-byte backup key (default: COMMUNE_BACKUP_KEY_FILE, else backup.key in the "
        f"data folder{made}); keep a copy away from the server and the backups",
    )


def _backup_key_path(args: argparse.Namespace) -> Path:
    chosen = args.key_file or os.environ.get("COMMUNE_BACKUP_KEY_FILE")
    return Path(chosen) if chosen else data_dir(args) / "backup.key"


def run_backup(args: argparse.Namespace) -> int:
    from app.cli import CliError
    from server.core import backup

    try:
        size = backup.backup(
            settings_for(args).db_url, args.out, backup.load_or_create_key(_backup_key_path(args))
        )
    except backup.BackupError as exc:
        raise CliError(str(exc), exit_code=1) from exc
    print(f"sealed backup written to {args.out} ({size} bytes)")
    return 0


def run_restore(args: argparse.Namespace) -> int:
    from app.cli import CliError
    from server.core import backup

    if not args.file.is_file():
        raise CliError(f"{args.file}: no such file")
    try:
        key = backup.load_key(_backup_key_path(args))
        backup.restore(args.file, settings_for(args).db_url, key)
    except backup.BackupError as exc:
        raise CliError(str(exc), exit_code=1) from exc
    print(f"restored {args.file} into the database")
    return 0


def settings_for(args: argparse.Namespace):
    """Settings from COMMUNE_* variables, with the data folder, database and flags given."""
    from server.core.config import Settings

    url = getattr(args, "db", None) or os.environ.get("COMMUNE_DATABASE_URL") or ""
    production = True if getattr(args, "production", False) else None
    key_file = getattr(args, "key_file", None) or os.environ.get("COMMUNE_SERVER_KEY_FILE")
    return Settings.from_env(
        data_dir=data_dir(args),
        database_url=url,
        production=production,
        server_key_file=Path(key_file) if key_file else None,
    )


def _forwarded_allow_ips(args: argparse.Namespace) -> str:
    """The proxies whose X-Forwarded-For is believed: only those an operator names (uvicorn's
    own default would trust 127.0.0.1, e.g. any process on the host)."""
    chosen = args.forwarded_allow_ips
    if chosen is None:
        chosen = os.environ.get("COMMUNE_FORWARDED_ALLOW_IPS", "")
    return ",".join(part.strip() for part in chosen.split(",") if part.strip())


def _engine(args: argparse.Namespace):
    from server import migrate
    from server.core.db import engine_for

    engine = engine_for(settings_for(args))
    migrate.upgrade(engine)
    return engine


def _api_errors(fn):
    def wrapper(args: argparse.Namespace) -> int:
        from app.cli import CliError
        from server.errors import ApiError

        try:
            return fn(args)
        except ApiError as exc:
            raise CliError(f"{exc.code}: {exc.message}") from exc

    return wrapper


def run_api(args: argparse.Namespace) -> int:
    import uvicorn

    settings = settings_for(args)
    proxies = _forwarded_allow_ips(args)
    options = {
        "host": args.host,
        "port": args.port,
        "log_level": args.log_level,
        "timeout_keep_alive": args.keep_alive,
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": proxies or None,
    }
    if args.workers > 1:
        if settings.production:
            os.environ["COMMUNE_ENV"] = "production"
        os.environ["COMMUNE_DATA_DIR"] = str(settings.data_dir)
        if settings.database_url:
            os.environ["COMMUNE_DATABASE_URL"] = settings.database_url
        os.environ["COMMUNE_SERVER_KEY_FILE"] = str(settings.key_file)
        from uvicorn.supervisors import Multiprocess

        from server import migrate
        from server.core.db import engine_for
        from server.services import at_rest
        from server.storage import LocalDiskStore

        at_rest.prepare(settings)
        engine = engine_for(settings)
        migrate.upgrade(engine)
        at_rest.seal_on_start(engine, LocalDiskStore(settings.blobs_dir))
        engine.dispose()
        os.environ["COMMUNE_MIGRATE_ON_START"] = "0"
        config = uvicorn.Config(
            "server.main:app_from_env", factory=True, workers=args.workers, **options
        )
        sock = config.bind_socket()  # bound here: connections queue until a worker takes them
        _announce(sock.getsockname())
        Multiprocess(config, target=uvicorn.Server(config).run, sockets=[sock]).run()
        return 0
    from server.core.runtime import tune_gc
    from server.main import create_app

    app = create_app(settings)
    tune_gc()
    _serve_announced(uvicorn.Config(app, **options))
    return 0


def _announce(address: tuple) -> None:
    """One line when the API listens, with its address (scripts and tests wait for it)."""
    host, port = address[0], address[1]
    host = f"[{host}]" if ":" in host else host
    print(f"commune api ready on http://{host}:{port}", flush=True)


def _serve_announced(config) -> None:
    """uvicorn's server, printing the ready line once it listens."""
    import uvicorn

    class AnnouncingServer(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            await super().startup(sockets)
            if self.started and self.servers:
                _announce(self.servers[0].sockets[0].getsockname())

    AnnouncingServer(config).run()


def run_migrate(args: argparse.Namespace) -> int:
    from server import migrate

    engine = _engine(args)
    print(f"schema at revision {migrate.current_revision(engine)}")
    return 0


def run_reseal(args: argparse.Namespace) -> int:
    report = _reseal(settings_for(args))
    print(
        f"sealed with key {report.key_id}: {report.records} records, {report.blobs} "
        f"attachments, {report.partials} partial uploads rewritten"
    )
    return 0


def _reseal(settings):
    from server import migrate
    from server.core.db import engine_for
    from server.services import at_rest
    from server.storage import LocalDiskStore

    at_rest.prepare(settings)
    engine = engine_for(settings)
    try:
        migrate.upgrade(engine)
        report = at_rest.seal_all(engine, LocalDiskStore(settings.blobs_dir), reseal=True)
        at_rest.record_reseal(engine, report)
        return report
    finally:
        engine.dispose()


def run_rotate_key(args: argparse.Namespace) -> int:
    from app.cli import CliError
    from server.core import sealing

    settings = settings_for(args)
    if os.environ.get(sealing.KEY_ENV, "").strip():
        raise CliError(
            f"the key comes from {sealing.KEY_ENV}: put a new key first in it (one from "
            "`python -c 'import os,base64;print(base64.b64encode(os.urandom(32)).decode())'`), "
            "keep the old one after it, restart the API and run `commune api reseal`"
        )
    path = settings.key_file
    old = sealing.read_key_file(path) if path.exists() else []
    new = sealing.new_key()
    sealing.write_key_file(path, [new, *old])
    report = _reseal(settings)
    if args.retire_old:
        sealing.write_key_file(path, [new])
    print(
        f"new key {sealing.key_id(new)} is current; {report.records} records, {report.blobs} "
        f"attachments, {report.partials} partial uploads re-sealed"
        + ("; older keys removed" if args.retire_old else "; older keys kept in the ring")
    )
    return 0


@_api_errors
def run_create_user(args: argparse.Namespace) -> int:
    from app.cli import CliError
    from server.services import identity

    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if len(password) < 8:
            raise CliError("the password needs at least 8 characters")
    wards = [w for w in args.wards.split(",") if w.strip()]
    user = identity.create_user(_engine(args), args.username, args.role, wards, password)
    print(f"created {user.username} ({user.role}) wards={','.join(user.wards)}")
    return 0


@_api_errors
def run_enrol_code(args: argparse.Namespace) -> int:
    from server.services import identity

    code = identity.create_enrol_code(_engine(args), args.user, args.ttl_minutes)
    print(code)
    return 0


@_api_errors
def run_revoke(args: argparse.Namespace) -> int:
    from server.services import identity

    device = identity.revoke_device(_engine(args), args.device_id)
    print(f"revoked {device.id}")
    return 0


@_api_errors
def run_list_devices(args: argparse.Namespace) -> int:
    from server.services import identity

    print("device_id\tuser\tkind\tslot\trevoked\tlast_pull\tname")
    for device, user in identity.list_devices(_engine(args)):
        slot = "" if device.code_slot is None else device.code_slot
        print(
            f"{device.id}\t{user}\t{device.kind}\t{slot}\t{'yes' if device.revoked else 'no'}"
            f"\t{device.last_pull_cursor}\t{device.name}"
        )
    return 0
