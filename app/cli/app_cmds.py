"""`commune app`: the Flet client, as a desktop window or (with --web) served to a browser."""

from __future__ import annotations

import argparse
import importlib.util
import os
import socket

from app.cli.common import data_dir

DEFAULT_WEB_PORT = 8550


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "app",
        help="open the app (desktop window, or --web to serve it to a browser on this machine)",
        description="Opens the officer app on the local encrypted store. The PIN is asked on "
        "screen. --web serves the web build offline (no CDN) on 127.0.0.1 and prints its URL.",
    )
    parser.add_argument(
        "--web", action="store_true", help="serve the web build on 127.0.0.1 instead of a window"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_WEB_PORT,
        help=f"port for --web (default {DEFAULT_WEB_PORT}; 0 picks a free one)",
    )
    parser.set_defaults(handler=cmd_app)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cmd_app(args: argparse.Namespace) -> int:
    import flet as ft

    from app.runtime import tune_gc
    from app.views.app import ASSETS_DIR, make_main

    tune_gc()  # as the packaged app (main.py) does
    folder = data_dir(args)
    folder.mkdir(parents=True, exist_ok=True)
    main = make_main(folder)
    if not args.web:
        if importlib.util.find_spec("flet_desktop") is None:
            from app.cli import CliError

            raise CliError(
                "the desktop window needs the 'desktop' extra (flet-desktop); "
                "use `commune app --web` to open it in a browser instead"
            )
        ft.run(main, assets_dir=str(ASSETS_DIR))
        return 0
    port = args.port or _free_port()
    # A headless machine forces web mode anyway; this also keeps Flet from opening a browser.
    os.environ.setdefault("FLET_FORCE_WEB_SERVER", "true")
    print(f"http://127.0.0.1:{port}/", flush=True)
    ft.run(
        main,
        view=ft.AppView.WEB_BROWSER,
        host="127.0.0.1",
        port=port,
        no_cdn=True,
        assets_dir=str(ASSETS_DIR),
    )
    return 0
