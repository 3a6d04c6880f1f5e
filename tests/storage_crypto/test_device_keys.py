"""Keystore first; without one, only a secret that resists 10 years of 16 cores offline."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import pytest

from app.storage.errors import WeakSecretWithoutKeystore
from app.storage.keys import (
    SECRET_FILE,
    FileSecretStore,
    KeySettings,
    KeyVault,
    argon2id,
    use_platform_secret_store,
)
from app.storage.secret_strength import (
    GUESS_SECONDS_FLOOR,
    keyspace,
    offline_guesses,
    required_keyspace,
)
from app.storage.secure_storage import FletSecureStorageBridge, SecureStorageSecretStore

PASSPHRASE = "bốn con mèo đen ngủ"


def test_the_accepted_keyspace_outlasts_ten_years_of_sixteen_cores_at_the_measured_cost():
    production = KeySettings()
    started = time.perf_counter()
    argon2id(
        b"a guess", b"0123456789abcdef", production.argon2_time_cost,
        production.argon2_memory_cost, production.argon2_parallelism,
    )
    measured = time.perf_counter() - started  # one guess on one core of this machine
    needed = offline_guesses(10, measured, cores=16)
    accepted_floor = required_keyspace(10, production.argon2_time_cost,
                                       production.argon2_memory_cost)
    # The floor assumes a core faster than this one, so it asks for more than the measurement.
    assert measured >= GUESS_SECONDS_FLOOR
    assert accepted_floor >= needed
    # At 0.05 s a guess: 10 y * 31,557,600 s * 16 / 0.05 ≈ 1.01e11 guesses, about 36.6 bits.
    assert 1.0e11 < accepted_floor < 1.02e11


@pytest.mark.parametrize(
    ("secret", "accepted"),
    [
        ("123456", False),
        ("2468", False),
        ("1234567890", False),  # ten digits: 1e10
        ("12345678901", False),  # eleven digits: 1e11 < 1.01e11
        ("123456789012", True),  # twelve digits: 1e12 (the count is about shape)
        ("mèo mèo mèo mèo mèo", False),  # one word repeated is one word
        ("con mèo đen", False),  # three words: 2048^3 ≈ 8.6e9
        ("con mèo đen 2468", True),  # three words and four digits ≈ 8.6e13
        (PASSPHRASE, True),
        ("Password1", False),
    ],
)
def test_which_secrets_a_folder_without_keystore_accepts(secret: str, accepted: bool) -> None:
    need = required_keyspace(10, 3, 64 * 1024)
    assert (keyspace(secret) >= need) is accepted


def test_a_short_pin_is_refused_without_a_keystore_and_nothing_is_left(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    vault = KeyVault(folder, KeySettings(), secret_store=FileSecretStore(folder))
    assert not vault.has_keystore()
    with pytest.raises(WeakSecretWithoutKeystore) as err:
        vault.create("123456")
    assert "không có kho khóa" in str(err.value) and "no OS keystore" in str(err.value)
    assert not vault.exists() and not (folder / SECRET_FILE).exists()


def test_a_passphrase_is_accepted_and_a_weak_new_one_refused_without_spending(tmp_path: Path):
    folder = tmp_path / "d"
    cheap = KeySettings.for_tests(offline_years=10.0, base_delay_s=0.0)
    vault = KeyVault(folder, cheap, secret_store=FileSecretStore(folder))
    data_key = vault.create(PASSPHRASE)
    assert "offline_years" not in json.loads(vault.key_path.read_text())["settings"]  # default
    with pytest.raises(WeakSecretWithoutKeystore):
        KeyVault(folder).change_pin(PASSPHRASE, "135790")
    assert KeyVault(folder).unlock(PASSPHRASE) == data_key


class FakeKeystore:
    """Stands in for the Android Keystore / iOS Keychain behind flet-secure-storage."""

    def __init__(self) -> None:
        self.items: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        return self.items.get(key)

    def set(self, key: str, value: str) -> None:
        self.items[key] = value

    def remove(self, key: str) -> None:
        self.items.pop(key, None)


class FakeAsyncSecureStorage(FakeKeystore):
    """flet_secure_storage.SecureStorage's shape: async get/set/remove on the page's loop."""

    async def get(self, key: str) -> str | None:  # type: ignore[override]
        return self.items.get(key)

    async def set(self, key: str, value: str) -> None:  # type: ignore[override]
        self.items[key] = value

    async def remove(self, key: str) -> None:  # type: ignore[override]
        self.items.pop(key, None)


def test_mobile_secure_storage_holds_the_secret_and_a_short_pin_is_fine(tmp_path: Path) -> None:
    keystore = FakeKeystore()
    use_platform_secret_store(SecureStorageSecretStore(keystore))
    try:
        folder = tmp_path / "d"
        vault = KeyVault(folder, KeySettings.for_tests(offline_years=10.0))
        assert vault.has_keystore()
        data_key = vault.create("2468")  # a keystore holds the secret: a PIN is enough
        assert not (folder / SECRET_FILE).exists()
        assert json.loads(vault.key_path.read_text())["secret_store"] == "secure-storage"
        assert any(k.endswith("/attempts") for k in keystore.items)
        assert KeyVault(folder).unlock("2468") == data_key
        KeyVault(folder).destroy()
        assert keystore.items == {}
    finally:
        use_platform_secret_store(None)


def test_the_flet_bridge_calls_the_async_storage_from_a_worker_thread() -> None:
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()
    try:
        storage = FakeAsyncSecureStorage()
        store = SecureStorageSecretStore(FletSecureStorageBridge(storage, loop, timeout_s=5))
        store.put("s1", b"\x01" * 32)
        store.put_anchor("s1", 7)
        assert store.get("s1") == b"\x01" * 32 and store.get_anchor("s1") == 7
        store.delete("s1")
        assert storage.items == {}
    finally:
        loop.call_soon_threadsafe(loop.stop)
        runner.join(5)
        loop.close()
