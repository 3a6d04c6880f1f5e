"""The wrong-PIN counter cannot be reset by deleting, editing or restoring a file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import keyring
import pytest

from app.storage.errors import StoreDestroyed, WrongPin
from app.storage.keys import KEY_FILE, SECRET_FILE, STATE_FILE, KeySettings, KeyVault
from tests.storage_crypto.test_keyring_store import MemoryKeyring

PIN = "2468"


def wrong(vault: KeyVault) -> WrongPin:
    with pytest.raises(WrongPin) as err:
        vault.unlock("0000")
    return err.value


def test_a_restored_older_attempts_file_does_not_reset_the_counter(make_vault, clock) -> None:
    vault = make_vault(base_delay_s=0.0)
    vault.create(PIN)
    assert wrong(vault).attempts_left == 9
    saved = (vault.data_dir / STATE_FILE).read_bytes()  # a copy taken after one failure
    for left in (8, 7, 6):
        assert wrong(vault).attempts_left == left
    (vault.data_dir / STATE_FILE).write_bytes(saved)  # put the older copy back
    with pytest.raises(StoreDestroyed):  # seen as rolled back: only the last try remained
        vault.unlock("0000")
    assert not vault.exists()


def test_a_deleted_attempts_file_leaves_one_try(make_vault) -> None:
    vault = make_vault(base_delay_s=0.0)
    data_key = vault.create(PIN)
    wrong(vault)
    (vault.data_dir / STATE_FILE).unlink()
    assert vault.unlock(PIN) == data_key  # the right PIN still opens and resets the counter
    assert wrong(vault).attempts_left == 9
    (vault.data_dir / STATE_FILE).unlink()
    with pytest.raises(StoreDestroyed):
        vault.unlock("0000")


def test_an_edited_attempts_file_is_not_trusted(make_vault) -> None:
    vault = make_vault(base_delay_s=0.0)
    vault.create(PIN)
    for _ in range(5):
        wrong(vault)
    path = vault.data_dir / STATE_FILE
    body = json.loads(path.read_text())
    path.write_text(json.dumps(body | {"failures": 0, "serial": body["serial"] + 50}))
    with pytest.raises(StoreDestroyed):
        vault.unlock("0000")


def test_with_a_keystore_restoring_the_whole_folder_does_not_reset(tmp_path: Path) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring({}))
    try:
        folder = tmp_path / "d"
        vault = KeyVault(folder, KeySettings.for_tests(base_delay_s=0.0))
        vault.create(PIN)
        copy = tmp_path / "copy"
        shutil.copytree(folder, copy)  # the thief's (or a backup tool's) copy of every file
        for left in (9, 8, 7):
            assert wrong(vault).attempts_left == left
        for name in (KEY_FILE, STATE_FILE):
            shutil.copy2(copy / name, folder / name)
        with pytest.raises(StoreDestroyed):  # the anchor in the keystore saw the rollback
            KeyVault(folder).unlock("0000")
    finally:
        keyring.set_keyring(previous)


def test_a_kill_between_the_state_file_and_the_anchor_costs_nothing(make_vault) -> None:
    vault = make_vault(base_delay_s=0.0)
    data_key = vault.create(PIN)
    wrong(vault)
    secret_file = vault.data_dir / SECRET_FILE  # the file fallback keeps the anchor here
    anchor_before = secret_file.read_bytes()
    wrong(vault)
    secret_file.write_bytes(anchor_before)  # as if killed after the state file, before the anchor
    assert wrong(vault).attempts_left == 7  # a state newer than its anchor is a normal one
    assert vault.unlock(PIN) == data_key
