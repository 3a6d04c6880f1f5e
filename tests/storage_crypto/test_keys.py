from __future__ import annotations

import json
import stat
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail

from app.storage.errors import LockedOut, NoStore, StorageError, StoreDestroyed, WrongPin
from app.storage.keys import (
    KEY_FILE,
    SECRET_FILE,
    STATE_FILE,
    FileSecretStore,
    KeySettings,
    KeyVault,
)


def test_create_then_unlock_returns_the_same_random_key(make_vault) -> None:
    vault = make_vault()
    assert not vault.exists()
    data_key = vault.create("2468")
    assert vault.exists() and len(data_key) == 32
    assert make_vault().unlock("2468") == data_key
    assert data_key.hex() not in vault.key_path.read_text()


def test_unlock_without_store_is_no_store(make_vault) -> None:
    with pytest.raises(NoStore) as err:
        make_vault().unlock("2468")
    assert "Chưa có kho dữ liệu" in str(err.value)


def test_create_refuses_to_overwrite(make_vault) -> None:
    vault = make_vault()
    vault.create("2468")
    with pytest.raises(StorageError):
        vault.create("1357")


def test_wrong_pin_delays_grow_and_persist_across_processes(make_vault, clock) -> None:
    vault = make_vault()
    vault.create("2468")
    seen = []
    for expected_left in (9, 8, 7, 6):
        with pytest.raises(WrongPin) as err:
            make_vault().unlock("0000")  # a fresh vault object: as after a restart
        assert err.value.attempts_left == expected_left
        seen.append(err.value.retry_after_s)
        clock.advance(err.value.retry_after_s)
    assert seen == sorted(seen) and seen[0] < seen[1] < seen[2] < seen[3]
    assert "Sai mã PIN, còn 6 lần thử" in str(err.value) and "6 attempts left" in str(err.value)
    assert json.loads((vault.data_dir / STATE_FILE).read_text())["failures"] == 4


def test_attempt_before_the_delay_is_locked_out_without_spending(make_vault, clock) -> None:
    vault = make_vault()
    data_key = vault.create("2468")
    with pytest.raises(WrongPin) as first:
        vault.unlock("0000")
    clock.advance(first.value.retry_after_s / 2)
    for _ in range(3):
        with pytest.raises(LockedOut) as locked:
            vault.unlock("2468")  # even the right PIN waits
        assert 0 < locked.value.retry_after_s <= first.value.retry_after_s / 2
    assert "thử lại sau" in str(locked.value)
    clock.advance(first.value.retry_after_s)
    with pytest.raises(WrongPin) as second:
        vault.unlock("1111")
    assert second.value.attempts_left == 8  # the lock-outs spent nothing
    clock.advance(second.value.retry_after_s)
    assert vault.unlock("2468") == data_key
    with pytest.raises(WrongPin) as after_reset:
        vault.unlock("0000")
    assert after_reset.value.attempts_left == 9  # success reset the counter


def test_delay_is_capped(make_vault) -> None:
    settings = KeySettings.for_tests(base_delay_s=2.0, max_delay_s=10.0)
    assert [settings.delay_after(n) for n in (0, 1, 2, 3, 4, 9)] == [0, 2, 4, 8, 10, 10]


def test_max_attempts_destroys_the_key(make_vault, clock) -> None:
    vault = make_vault(max_attempts=3)
    vault.create("2468")
    for _ in range(2):
        with pytest.raises(WrongPin) as err:
            vault.unlock("0000")
        clock.advance(err.value.retry_after_s)
    with pytest.raises(StoreDestroyed):
        vault.unlock("0000")
    assert not vault.exists()
    assert not (vault.data_dir / KEY_FILE).exists() and not (vault.data_dir / SECRET_FILE).exists()
    with pytest.raises(StoreDestroyed):
        vault.unlock("2468")  # even the right PIN: the key is gone
    assert "sai mã PIN quá nhiều lần" in str(StoreDestroyed())


def test_policy_is_read_from_the_key_file_not_the_caller(make_vault, clock, tmp_path) -> None:
    make_vault(max_attempts=2).create("2468")
    lenient = make_vault(max_attempts=50)
    with pytest.raises(WrongPin) as err:
        lenient.unlock("0000")
    assert err.value.attempts_left == 1


def test_edited_policy_breaks_the_unlock(make_vault) -> None:
    vault = make_vault(max_attempts=3)
    vault.create("2468")
    body = json.loads(vault.key_path.read_text())
    body["settings"]["max_attempts"] = 1000
    vault.key_path.write_text(json.dumps(body))
    with pytest.raises(WrongPin):
        vault.unlock("2468")


def test_change_pin_rewraps_the_same_key(make_vault, clock) -> None:
    vault = make_vault()
    data_key = vault.create("2468")
    before = json.loads(vault.key_path.read_text())
    vault.change_pin("2468", "mật khẩu mới")
    after = json.loads(vault.key_path.read_text())
    assert after["wrapped"] != before["wrapped"] and after["salt"] != before["salt"]
    assert after["store_id"] == before["store_id"]
    assert make_vault().unlock("mật khẩu mới") == data_key
    with pytest.raises(WrongPin):
        make_vault().unlock("2468")


def test_change_pin_keeps_stored_settings_unless_new_ones_are_given(make_vault, tmp_path) -> None:
    make_vault(max_attempts=4).create("2468")
    directory = tmp_path / "data"
    KeyVault(directory, secret_store=FileSecretStore(directory)).change_pin("2468", "1357")
    assert json.loads((directory / KEY_FILE).read_text())["settings"]["max_attempts"] == 4
    make_vault(max_attempts=6).change_pin("1357", "9753")
    assert json.loads((directory / KEY_FILE).read_text())["settings"]["max_attempts"] == 6


def test_change_pin_with_wrong_old_pin_counts_and_keeps_key(make_vault, clock) -> None:
    vault = make_vault()
    data_key = vault.create("2468")
    with pytest.raises(WrongPin) as err:
        vault.change_pin("0000", "9999")
    assert err.value.attempts_left == 9
    clock.advance(err.value.retry_after_s)
    assert vault.unlock("2468") == data_key


def test_passphrase_is_unicode_normalised(make_vault) -> None:
    vault = make_vault()
    data_key = vault.create("Hương\u0301 2025".replace("\u0301", ""))  # NFC form
    decomposed = "Hu\u031bo\u031bng 2025"  # the same text typed as base letters + marks
    assert vault.unlock(decomposed) == data_key


def test_short_pin_is_refused(make_vault) -> None:
    with pytest.raises(ValueError):
        make_vault().create("12")


def test_destroy_erases_key_and_secret(make_vault) -> None:
    vault = make_vault()
    vault.create("2468")
    secret_path = vault.data_dir / SECRET_FILE
    assert secret_path.exists()
    assert stat.S_IMODE(secret_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(vault.key_path.stat().st_mode) == 0o600
    vault.destroy()
    assert not vault.exists() and not secret_path.exists()
    with pytest.raises(StoreDestroyed):
        vault.unlock("2468")
    assert len(make_vault().create("1357")) == 32  # a new store may be made afterwards


def test_missing_device_secret_stops_unlock_without_spending(make_vault) -> None:
    vault = make_vault()
    vault.create("2468")
    (vault.data_dir / SECRET_FILE).unlink()
    with pytest.raises(StorageError) as err:
        vault.unlock("2468")
    assert not isinstance(err.value, WrongPin)
    assert (
        not (vault.data_dir / STATE_FILE).exists()
        or json.loads((vault.data_dir / STATE_FILE).read_text())["failures"] == 0
    )


def test_device_secret_binds_the_key(make_vault, tmp_path: Path) -> None:
    vault = make_vault()
    vault.create("2468")
    other = make_vault(tmp_path / "other")
    other.create("2468")
    # Same PIN, but this store's key file with the other store's secret file cannot open.
    body = json.loads((other.data_dir / SECRET_FILE).read_text())
    body["store_id"] = json.loads(vault.key_path.read_text())["store_id"]
    (vault.data_dir / SECRET_FILE).write_text(json.dumps(body))
    # The other secret also fails the attempts counter's MAC: the last try, then erased.
    with pytest.raises((WrongPin, StoreDestroyed)):
        vault.unlock("2468")


def test_default_vault_falls_back_to_the_file_without_a_keystore(tmp_path: Path) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())  # what these headless machines have; never a real one
    try:
        vault = KeyVault(tmp_path / "d", KeySettings.for_tests())
        data_key = vault.create("2468")
        assert json.loads(vault.key_path.read_text())["secret_store"] == FileSecretStore.kind
        assert KeyVault(tmp_path / "d").unlock("2468") == data_key
    finally:
        keyring.set_keyring(previous)
