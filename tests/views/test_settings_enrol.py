"""Settings against the real central API (a subprocess on 127.0.0.1, SQLite): a local-only store
enrols from the settings screen, a user with several wards picks one, and a new server address
reaches the running sync transport at once."""

from __future__ import annotations

from app.views.sync_bridge import SyncBridge
from app.views.sync_models import SettingsPresenter
from server.scope import OFFICER
from server.services import identity
from tests.support.postgres import free_port
from tests.support.server_proc import sqlite_api_server  # noqa: F401  (fixture)

WARDS = ["00004", "00008"]  # Ba Đình, Ngọc Hà


def test_a_local_store_enrols_from_settings_and_picks_one_of_the_users_wards(
    store,
    sqlite_api_server,  # noqa: F811
) -> None:
    server = sqlite_api_server
    server.add_user("canbo.hai.phuong", OFFICER, WARDS)
    settings = SettingsPresenter(store)
    store.settings.set("ward_code", "00070")  # chosen at first run, not in the user's scope
    assert not settings.load().enrolled

    wrong = settings.enrol(server.url, "KHONG-CO-MA-NAY")
    assert wrong.problem and wrong.problem.startswith("Không đăng ký được:")
    assert "máy chủ từ chối" in wrong.problem  # a catalogue message, not the HTTP text
    assert settings.enrol("ftp://x", "abc").problem == (
        "Cần địa chỉ máy chủ (http:// hoặc https://) và mã đăng ký"
    )

    code = identity.create_enrol_code(server.engine, "canbo.hai.phuong", 10)
    outcome = settings.enrol(server.url + "/", code)
    assert outcome.problem is None and settings.load().enrolled
    assert [c for c, _ in outcome.wards] == WARDS
    assert all(name and name != c for c, name in outcome.wards)  # names for the picker
    assert outcome.ward == WARDS[0] == store.settings.get("ward_code")  # provisional
    settings.set_ward(WARDS[1])
    assert store.settings.get("ward_code") == WARDS[1]
    try:
        settings.set_ward("00070")
    except ValueError:
        pass
    else:
        raise AssertionError("a ward outside the user's scope was accepted")


def test_a_new_server_address_retargets_the_running_sync(store) -> None:
    store.settings.set("server_url", f"http://127.0.0.1:{free_port()}")
    store.settings.set("device_token", "token-of-an-offline-device")
    bridge = SyncBridge.start_for(store)
    assert bridge is not None
    try:
        moved = f"http://127.0.0.1:{free_port()}"
        assert SettingsPresenter(store).set_server_url(moved + "/", bridge) is None
        assert store.settings.get("server_url") == moved
        assert bridge.transport.base_url == moved
        assert str(bridge.transport._client.base_url).rstrip("/") == moved
    finally:
        bridge.shutdown()
