"""A keystore stand-in for the app and CLI run as subprocesses in tests.

No Secret Service runs on these machines, so a process started with
`PYTHON_KEYRING_BACKEND=tests.support.file_keyring.FileKeyring` and
`COMMUNE_TEST_KEYRING_FILE=PATH` gets this backend: the entries live in that JSON file, outside
the data folder, as a real keystore's would. keyring never discovers it on its own (it is no
entry point), and it refuses to work without the variable.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import keyring.backend
import keyring.errors

ENV = "COMMUNE_TEST_KEYRING_FILE"
BACKEND = "tests.support.file_keyring.FileKeyring"


def env_for(path: Path) -> dict[str, str]:
    """The variables that give a subprocess this keystore, kept in `path`."""
    return {"PYTHON_KEYRING_BACKEND": BACKEND, ENV: str(path)}


class FileKeyring(keyring.backend.KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def _path(self) -> Path:
        if not os.environ.get(ENV):
            raise keyring.errors.KeyringError(f"{ENV} is not set")
        return Path(os.environ[ENV])

    def _items(self) -> dict[str, str]:
        try:
            return json.loads(self._path().read_text())
        except FileNotFoundError:
            return {}

    def _save(self, items: dict[str, str]) -> None:
        path = self._path()
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(items))
        os.replace(tmp, path)

    def get_password(self, service: str, username: str) -> str | None:
        return self._items().get(f"{service}\n{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        self._save(self._items() | {f"{service}\n{username}": password})

    def delete_password(self, service: str, username: str) -> None:
        items = self._items()
        items.pop(f"{service}\n{username}", None)
        self._save(items)
