"""The packaged app's entry (`flet build apk | linux | windows | macos`, see docs/packaging.md).

The data folder is the one the packaged app is given (`FLET_APP_STORAGE_DATA`), else
`COMMUNE_DATA_DIR`, else the platform's user data folder, as for `commune app`.
"""

from __future__ import annotations

import os
from pathlib import Path

import flet as ft

from app.views.app import ASSETS_DIR, make_main


def data_folder() -> Path:
    chosen = os.environ.get("COMMUNE_DATA_DIR") or os.environ.get("FLET_APP_STORAGE_DATA")
    if chosen:
        return Path(chosen)
    import platformdirs

    from app.cli.common import APP_NAME

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


if __name__ == "__main__":
    from app.runtime import tune_gc

    tune_gc()  # what was loaded at start kept out of the collector's passes (issue 13)
    folder = data_folder()
    folder.mkdir(parents=True, exist_ok=True)
    ft.run(make_main(folder), assets_dir=str(ASSETS_DIR))
