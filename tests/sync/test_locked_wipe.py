"""A revoked tablet that nobody unlocks erases itself at its next contact (real API process)."""

from __future__ import annotations

from pathlib import Path

from app.storage import store_exists
from app.storage.escrow import CONTACT_FILE
from app.storage.keys import SECRET_FILE
from app.storage.services.local_store import store_destroyed
from app.views.lock_model import StorageGateway
from tests.cli.conftest import Cli


def _locked_tablet(devices, ward: str):
    officer = devices.enrol(devices.user("officer", [ward]))
    officer.store.escrow.refresh_contact()  # as at every unlock and sync
    token = officer.store.settings.get("device_token")
    officer.store.close()  # locked: the data key is gone from memory
    return officer, token


def test_a_revoked_locked_tablet_erases_itself_without_the_pin(
    devices, sync_server, ward, tmp_path: Path
) -> None:
    officer, token = _locked_tablet(devices, ward)
    folder = officer.data_dir
    contact = (folder / CONTACT_FILE).read_text()
    assert token not in contact and officer.server_device_id in contact  # never the token

    cli = Cli(tmp_path / "home")
    asked = cli("check-revoked", "--data-dir", str(folder))  # no PIN anywhere
    assert asked.code == 0 and "not revoked" in asked.out
    assert store_exists(folder)

    revoked = cli("admin", "revoke-device", officer.server_device_id, "--db", sync_server.db_url)
    assert revoked.code == 0, revoked.err
    erased = cli("check-revoked", "--data-dir", str(folder))
    assert erased.code == 0 and "was revoked" in erased.out
    assert store_destroyed(folder) and not store_exists(folder)
    assert not (folder / SECRET_FILE).exists() and not (folder / "store.db").exists()
    assert not (folder / CONTACT_FILE).exists()


def test_the_lock_screen_gateway_asks_before_the_pin(devices, sync_server, ward) -> None:
    officer, _ = _locked_tablet(devices, ward)
    gateway = StorageGateway(officer.data_dir)
    assert gateway.check_revoked() is False and gateway.exists()
    from server.services import identity

    identity.revoke_device(sync_server.engine, officer.server_device_id)
    assert gateway.check_revoked() is True
    assert not gateway.exists() and store_destroyed(officer.data_dir)


def test_a_wrong_token_hash_learns_nothing(devices, sync_server, ward) -> None:
    import httpx

    officer, _ = _locked_tablet(devices, ward)
    resp = httpx.post(f"{sync_server.url}/device-status",
                      json={"device_id": officer.server_device_id, "token_hash": "0" * 64})
    unknown = httpx.post(f"{sync_server.url}/device-status",
                         json={"device_id": "ab" * 16, "token_hash": "0" * 64})
    assert resp.status_code == unknown.status_code == 404
    assert resp.json() == unknown.json()
