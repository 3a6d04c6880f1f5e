"""The web app with the two device parts tests may stand in for: a camera whose capture is a
small JPEG, and a position provider with a fixed fix in Hanoi. Run as
`python tests/browser/audit_app.py --port N` with COMMUNE_DATA_DIR set."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import flet as ft  # noqa: E402

from app.views.app import ASSETS_DIR, make_main  # noqa: E402
from app.views.position import Position, PositionProvider  # noqa: E402
from tests.browser.camera_app import StandInCamera  # noqa: E402

FIX = Position(21.0368, 105.8346, accuracy_m=8.4)  # near the Ba Đình ward office


class StandInPosition(PositionProvider):
    available = True

    async def locate(self) -> Position | None:
        return FIX


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    data_dir = Path(os.environ["COMMUNE_DATA_DIR"])
    ft.run(
        make_main(data_dir, camera=StandInCamera(), position=StandInPosition()),
        view=ft.AppView.WEB_BROWSER,
        host="127.0.0.1",
        port=args.port,
        no_cdn=True,
        assets_dir=str(ASSETS_DIR),
    )


if __name__ == "__main__":
    main()
