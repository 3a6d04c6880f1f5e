"""The OS-keystore path, with a small in-memory keyring backend installed for the test."""

from __future__ import annotations

import json
from pathlib import Path

import keyring
import keyring.backend
import pytest
from keyring.backends import fail

from app.storage.errors import StoreDestroyed, WrongPin
from app.storage.keys import (
    KEYRING_SERVICE,
    SECRET_FILE,
    KeyringSecretStore,
    KeySettings,
    KeyVault,
    keyring_is_usable,
)


class MemoryKeyring(keyring.backend.KeyringBackend):
    """Takes a required argument so keyring's own discovery (which constructs backends without
    arguments) can never pick it up for other tests in this process."""

    priority = 1  # type: ignore[assignment]

    def __init__(self, items: dict[tuple[str, str], str]) -> None:
        super().__init__()
        self.items = items

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.items.pop((service, username), None)


@pytest.fixture
def memory_keyring():
    previous = keyring.get_keyring()
    backend = MemoryKeyring({})
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)


def test_memory_backend_is_never_discovered() -> None:
    assert not any(isinstance(k, MemoryKeyring) for k in keyring.backend.get_all_keyring())


def test_usable_backend_detection(memory_keyring) -> None:
    assert keyring_is_usable(memory_keyring)
    assert not keyring_is_usable(fail.Keyring())


def test_vault_keeps_the_device_secret_in_the_keystore(memory_keyring, tmp_path: Path) -> None:
    vault = KeyVault(tmp_path / "d", KeySettings.for_tests())
    data_key = vault.create("2468")
    body = json.loads(vault.key_path.read_text())
    assert body["secret_store"] == KeyringSecretStore.kind
    assert (KEYRING_SERVICE, body["store_id"]) in memory_keyring.items
    assert not (vault.data_dir / SECRET_FILE).exists()
    assert KeyVault(tmp_path / "d").unlock("2468") == data_key

    vault.destroy()
    assert memory_keyring.items == {}
    assert not vault.exists()


def test_key_without_its_keystore_secret_cannot_be_opened(memory_keyring, tmp_path: Path) -> None:
    vault = KeyVault(tmp_path / "d", KeySettings.for_tests())
    vault.create("2468")
    (store_id,) = [user for _, user in memory_keyring.items if "/" not in user]
    real = memory_keyring.items[(KEYRING_SERVICE, store_id)]
    memory_keyring.items[(KEYRING_SERVICE, store_id)] = "A" * 44  # another device's secret
    # The other secret also fails the attempts counter's MAC: the last try, then erased.
    with pytest.raises((WrongPin, StoreDestroyed)):
        vault.unlock("2468")
    assert real != "A" * 44
