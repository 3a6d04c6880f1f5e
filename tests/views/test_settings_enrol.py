"""Settings against the real central API (a subprocess on 127.0.0.1, SQLite): a local-only store
enrols from the settings screen, a user with several wards picks one, and a new server address
reaches the running sync transport at once."""

from __future__ import annotations

from app.views.sync_bridge import SyncBridge
from app.views.sync_models import SettingsPresenter
from server.scope import OFFICER
from server.services import identity
from tests.support import aio
from tests.support.postgres import free_port
from tests.support.server_proc import sqlite_api_server  # noqa: F401  (fixture)

WARDS = ["00004", "00008"]  # Ba Đình, Ngọc Hà
PASSWORD = "mat-khau-giam-sat-2026"


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


def test_first_run_enrolment_asks_a_multi_ward_user_for_the_ward(
    tmp_path,
    sqlite_api_server,  # noqa: F811
) -> None:
    """The first-run form itself (on a fake page): enrol, pick the second ward, land on the
    list; the store keeps that ward."""

    from app.views.lock_view import FirstRun
    from tests.views.fake_page import FakePage, texts

    server = sqlite_api_server
    server.add_user("canbo.first.run", OFFICER, WARDS)
    code = identity.create_enrol_code(server.engine, "canbo.first.run", 10)

    async def scenario() -> None:
        from app.views.app import CommuneApp
        from app.views.lock_model import StorageGateway

        page = FakePage()
        app = CommuneApp(page, StorageGateway(tmp_path / "data"))  # type: ignore[arg-type]
        form = FirstRun(app)
        await form.load_wards()
        assert len(form.ward_options) == 126  # every Hanoi ward, loaded off the loop
        form.mode.value = "enrol"
        form.server.value, form.code.value = server.url, code
        form.pin.value = form.confirm.value = "con mèo đen 9753"  # no keystore here
        await form.submit(None)
        assert form.awaiting_ward is not None and app.store is None  # waiting for the choice
        assert [code for code, _ in form.ward_options] == WARDS and form.ward_row.visible
        assert form.message.value.startswith("Tài khoản này phụ trách nhiều xã/phường")
        form.ward_value = WARDS[1]
        await form.submit(None)
        assert app.store is not None and app.sync is not None  # unlocked, syncing
        assert app.store.settings.get("ward_code") == WARDS[1]
        assert "Danh sách hồ sơ" in texts(page.views[-1])
        await app._on_close(None)

    aio.run(scenario())


def test_a_refused_enrolment_code_creates_nothing_and_keeps_the_form(
    tmp_path,
    sqlite_api_server,  # noqa: F811
) -> None:
    from app.storage import store_exists
    from app.views.lock_view import FirstRun
    from tests.views.fake_page import FakePage

    async def scenario() -> None:
        from app.views.app import CommuneApp
        from app.views.lock_model import StorageGateway

        page = FakePage()
        app = CommuneApp(page, StorageGateway(tmp_path / "data"))  # type: ignore[arg-type]
        form = FirstRun(app)
        await form.load_wards()
        form.mode.value = "enrol"
        form.server.value, form.code.value = sqlite_api_server.url, "not-a-code"
        form.pin.value = form.confirm.value = "975310"
        await form.submit(None)
        assert form.message.value.startswith("Không đăng ký được: ")
        assert "Chưa tạo gì trên máy" in form.message.value
        assert app.store is None and not store_exists(tmp_path / "data")
        assert not form.button.disabled  # the user corrects the code and tries again
        await app._on_close(None)

    aio.run(scenario())


OUTSIDE_WARD = "00070"  # a ward the enrolling user does not hold


def test_dossiers_outside_the_users_wards_are_told_before_saving_and_stay_rejected(
    store,
    sqlite_api_server,  # noqa: F811
) -> None:
    """A local store with dossiers received under a ward outside the user's scope: enrolling
    says how many before anything is saved; declined, the store stays local; agreed, a real
    sync sends the others, and the server's refusal marks these rejected, out of scope."""
    from app.storage import DossierQuery
    from app.sync.engine import SyncEngine
    from app.sync.transport import Transport
    from app.views.dossier_models import DossierDetailPresenter
    from app.views.sync_models import sync_indicator
    from tests.views.conftest import TODAY
    from tests.views.seed import requests, seed

    server = sqlite_api_server
    server.add_user("canbo.pham.vi", OFFICER, WARDS)
    seed(store, 3, today=TODAY)  # received at Ba Đình, one of the user's wards
    outside = [r.model_copy(update={"ward_code": OUTSIDE_WARD}) for r in requests(2, today=TODAY)]
    store.dossiers.receive_many(outside)
    store.settings.set("ward_code", OUTSIDE_WARD)
    settings = SettingsPresenter(store)

    asked = settings.enrol(
        server.url, identity.create_enrol_code(server.engine, "canbo.pham.vi", 10)
    )
    assert asked.problem is None and asked.outside is not None and asked.outside.count == 2
    assert asked.outside.notice.startswith("2 hồ sơ trên máy này được tiếp nhận tại ")
    assert "«bị từ chối: ngoài phạm vi»" in asked.outside.notice
    assert not settings.load().enrolled and store.settings.get("device_token") is None
    assert settings.cancel_enrol().startswith("Chưa đăng ký.")
    assert settings.confirm_enrol().problem == "Không có đăng ký nào đang chờ xác nhận"
    assert not settings.load().enrolled

    asked = settings.enrol(
        server.url, identity.create_enrol_code(server.engine, "canbo.pham.vi", 10)
    )
    assert asked.outside is not None and asked.outside.count == 2
    kept = settings.confirm_enrol()
    assert kept.problem is None and settings.load().enrolled
    assert kept.ward == WARDS[0] == store.settings.get("ward_code")  # the device moves ward
    with Transport.from_settings(store.settings) as transport:
        SyncEngine(store.sync, transport).run_once()

    assert dossiers_on_server(server) == 3
    everything = store.dossiers.list(DossierQuery(), offset=0, limit=10).items
    states = {d.ward_code: set() for d in everything}
    for d in everything:
        states[d.ward_code].add(d.sync_state)
    assert states == {"00004": {"synced"}, OUTSIDE_WARD: {"rejected"}}  # not moved, kept here
    refused = next(d for d in everything if d.ward_code == OUTSIDE_WARD)
    detail = DossierDetailPresenter(store.dossiers, refused.id, lambda: TODAY, store.sync).load()
    assert detail.rejected == (
        "Máy chủ không nhận hồ sơ này (bị từ chối: ngoài phạm vi); hồ sơ vẫn lưu trên máy này."
    )
    line = sync_indicator(store.sync.summary(), None, enrolled=True)
    assert "Máy chủ từ chối một số dữ liệu" in line.text and line.tone == "warn"


def dossiers_on_server(server) -> int:
    from sqlalchemy import text

    with server.engine.connect() as conn:
        sql = "SELECT COUNT(*) FROM record WHERE entity = 'dossier'"
        return conn.execute(text(sql)).scalar_one()


def test_the_settings_screen_asks_before_enrolling_and_the_list_marks_the_refused(
    tmp_path,
    store,
    sqlite_api_server,  # noqa: F811
) -> None:
    """The screen itself (on a fake page): the notice and its two buttons, declining, agreeing;
    after the running sync's first push the list row of a refused dossier says so."""
    import asyncio

    from app.views.app import CommuneApp
    from app.views.dossier_views import ListScreen
    from app.views.lock_model import StorageGateway
    from app.views.other_views import SettingsScreen
    from tests.views.conftest import TODAY
    from tests.views.fake_page import FakePage, texts
    from tests.views.seed import requests

    server = sqlite_api_server
    server.add_user("canbo.man.hinh", OFFICER, WARDS)
    [one] = requests(1, today=TODAY, seed=21)
    store.dossiers.receive_many([one.model_copy(update={"ward_code": OUTSIDE_WARD})])

    async def scenario() -> None:
        page = FakePage()
        app = CommuneApp(page, StorageGateway(tmp_path / "unused"))  # type: ignore[arg-type]
        app.store = store
        screen = SettingsScreen(app)
        shown = await screen.build()
        screen.server.value = server.url
        screen.code.value = identity.create_enrol_code(server.engine, "canbo.man.hinh", 10)
        await screen._enrol(None)
        assert screen.scope_row.visible and screen.enrol_button.disabled
        assert any(s.startswith("1 hồ sơ trên máy này") for s in texts(shown))
        assert app.sync is None and store.settings.get("device_token") is None
        await screen._cancel_enrol(None)
        assert not screen.scope_row.visible and not screen.enrol_button.disabled
        assert screen.enrol_message.value.startswith("Chưa đăng ký.") and app.sync is None

        screen.code.value = identity.create_enrol_code(server.engine, "canbo.man.hinh", 10)
        await screen._enrol(None)
        await screen._confirm_enrol(None)
        assert app.sync is not None and screen.ward_row.visible  # two wards: pick one
        try:
            for _ in range(300):  # the scheduler's first run pushes; at most 30 s
                if store.sync.summary().rejected:
                    break
                await asyncio.sleep(0.1)
            rows = texts(await ListScreen(app).build())
            assert any(s.endswith("· Bị từ chối") for s in rows), rows
        finally:
            await app._on_close(None)

    aio.run(scenario())


def test_a_supervisor_desktop_logs_in_and_out_from_settings(
    store,
    sqlite_api_server,  # noqa: F811
) -> None:
    """The account login beside the enrolment code: a wrong password is refused with the
    reason and keeps nothing; the right one keeps the session (marked as a desktop login);
    logging out ends it on the server and forgets its tokens here, keeping the data."""
    from server.scope import SUPERVISOR

    server = sqlite_api_server
    server.add_user("giamsat.desk", SUPERVISOR, WARDS, password=PASSWORD)
    settings = SettingsPresenter(store)
    assert settings.logout() == "Máy này không đăng nhập bằng tài khoản"

    wrong = settings.login(server.url, "giamsat.desk", "sai-mat-khau")
    assert wrong.problem == (
        "Không đăng nhập được: sai tên đăng nhập hoặc mật khẩu, hoặc tài khoản đã bị khoá"
    )
    assert not settings.load().enrolled and store.settings.get("device_token") is None
    assert settings.login(server.url, "", PASSWORD).problem == (
        "Cần địa chỉ máy chủ (http:// hoặc https://), tên đăng nhập và mật khẩu"
    )

    outcome = settings.login(server.url, " giamsat.desk ", PASSWORD)
    assert outcome.problem is None
    state = settings.load()
    assert state.enrolled and state.desktop_login
    assert ("Người dùng", "giamsat.desk") in state.account
    token = store.settings.get("device_token")
    with server.client(token) as client:
        assert client.get("/reviews").status_code == 200

    assert settings.logout() is None
    state = settings.load()
    assert not state.enrolled and not state.desktop_login
    assert store.settings.get("refresh_token") is None
    with server.client(token) as client:
        assert client.get("/reviews").status_code == 401  # ended on the server too


def test_logging_out_with_the_server_gone_keeps_the_session(store) -> None:
    store.settings.set("server_url", f"http://127.0.0.1:{free_port()}")
    store.settings.set("device_token", "token-of-a-desktop")
    store.settings.set("desktop_login", True)
    problem = SettingsPresenter(store).logout()
    assert problem and problem.startswith("Chưa đăng xuất được:")
    assert store.settings.get("device_token") == "token-of-a-desktop"
