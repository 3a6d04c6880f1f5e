"""`commune api ...` (run or migrate the central API) and `commune admin ...` (users, devices)."""

from __future__ import annotations

import argparse
import os
import sys

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


def _register_api(subparsers: argparse._SubParsersAction) -> None:
    api = subparsers.add_parser(
        "api",
        help="run the central API server",
        description="Run the central API (FastAPI on uvicorn). Migrations are applied at start.",
    )
    _add_db(api)
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
        "is trusted as the client address, e.g. 10.0.0.0/8, or * (default: "
        "FORWARDED_ALLOW_IPS, else 127.0.0.1)",
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


def settings_for(args: argparse.Namespace):
    from server.core.config import Settings

    url = getattr(args, "db", None) or os.environ.get("COMMUNE_DATABASE_URL") or ""
    return Settings(data_dir=data_dir(args), database_url=url)


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
    options = {
        "host": args.host,
        "port": args.port,
        "log_level": args.log_level,
        "timeout_keep_alive": args.keep_alive,
        "forwarded_allow_ips": args.forwarded_allow_ips,
    }
    if args.workers > 1:
        os.environ["COMMUNE_DATA_DIR"] = str(settings.data_dir)
        if settings.database_url:
            os.environ["COMMUNE_DATABASE_URL"] = settings.database_url
        from uvicorn.supervisors import Multiprocess

        from server import migrate
        from server.core.db import engine_for

        migrate.upgrade(engine_for(settings))
        os.environ["COMMUNE_MIGRATE_ON_START"] = "0"
        config = uvicorn.Config(
            "server.main:app_from_env", factory=True, workers=args.workers, **options
        )
        sock = config.bind_socket()  # bound here: connections queue until a worker takes them
        _announce(sock.getsockname())
        Multiprocess(config, target=uvicorn.Server(config).run, sockets=[sock]).run()
        return 0
    from server.main import create_app

    _serve_announced(uvicorn.Config(create_app(settings), **options))
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
