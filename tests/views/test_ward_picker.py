"""The settings screen's ward picker: searched by typing over the 126 Hanoi wards, diacritics
optional; a local store may pick any of them, an enrolled user only one of their own."""

from __future__ import annotations

import pytest

from app.domain.text import fold
from app.views.lock_model import WARD_MATCHES_SHOWN, ward_options
from app.views.sync_models import SettingsPresenter
from app.views.ward_picker import WardPicker
from tests.support import aio
from tests.views.fake_page import FakePage, texts

BA_DINH, NGOC_HA, DONG_DA = "00004", "00008", "00235"


@pytest.fixture(scope="module")
def hanoi() -> list[tuple[str, str]]:
    return ward_options()


def names(matches: list[tuple[str, str]]) -> list[str]:
    return [name for _, name in matches]


def test_typing_without_diacritics_finds_the_ward(hanoi) -> None:
    assert len(hanoi) == 126
    picker = WardPicker(hanoi)
    assert names(picker.type("ba dinh")) == ["Phường Ba Đình"]
    assert names(picker.type("BA ĐÌNH")) == ["Phường Ba Đình"]  # case and marks alike
    assert names(picker.type("  hoan   kiem ")) == ["Phường Hoàn Kiếm"]  # spaces collapsed
    assert "Phường Đống Đa" in names(picker.type("dong da"))  # đ folds to d
    assert names(picker.type(BA_DINH)) == ["Phường Ba Đình"]  # a code works too
    assert picker.type("khong co noi nay") == []


def test_many_matches_are_cut_to_a_few_buttons(hanoi) -> None:
    picker = WardPicker(hanoi)
    every_xa = [n for _, n in hanoi if fold(n).startswith("xa ")]
    assert len(every_xa) > WARD_MATCHES_SHOWN
    shown = names(picker.type("Xã"))
    assert len(shown) == WARD_MATCHES_SHOWN and set(shown) <= set(every_xa)
    assert names(picker.type("dinh")) == [  # every ward holding "đình"/"định"/"đỉnh", in order
        "Phường Ba Đình", "Phường Định Công", "Phường Khương Đình", "Phường Xuân Đỉnh",
        "Xã Vân Đình",
    ]
    assert picker.type("") == hanoi[:WARD_MATCHES_SHOWN]  # nothing typed: the first few


def test_choosing_only_among_the_offered_wards(hanoi) -> None:
    picker = WardPicker(hanoi, chosen="99999")
    assert picker.chosen is None and picker.chosen_text == ""  # an unknown ward is not shown
    picker.choose(NGOC_HA)
    assert picker.chosen_text == "Đã chọn: Phường Ngọc Hà"
    with pytest.raises(ValueError):
        picker.choose("99999")
    assert picker.chosen == NGOC_HA


def test_a_local_store_picks_any_hanoi_ward(store) -> None:
    store.settings.set("ward_code", BA_DINH)
    settings = SettingsPresenter(store)
    picker = settings.ward_picker()
    assert picker is not None and len(picker.options) == 126 and picker.chosen == BA_DINH
    settings.set_ward(DONG_DA)
    assert store.settings.get("ward_code") == DONG_DA
    with pytest.raises(ValueError):
        settings.set_ward("99999")
    assert store.settings.get("ward_code") == DONG_DA


def test_an_enrolled_user_picks_among_their_own_wards_only(store) -> None:
    store.settings.set("device_token", "token")
    store.settings.set("wards", [BA_DINH])
    settings = SettingsPresenter(store)
    assert settings.ward_picker() is None  # one ward: nothing to choose
    store.settings.set("wards", ["*"])
    assert settings.ward_picker() is None  # every ward (a supervisor): no device ward to pick
    store.settings.set("wards", [BA_DINH, NGOC_HA])
    store.settings.set("ward_code", BA_DINH)
    picker = settings.ward_picker()
    assert picker is not None and [c for c, _ in picker.options] == [BA_DINH, NGOC_HA]
    assert names(picker.type("ngoc ha")) == ["Phường Ngọc Hà"]
    with pytest.raises(ValueError):
        settings.set_ward(DONG_DA)  # a Hanoi ward, but not the user's
    settings.set_ward(NGOC_HA)
    assert store.settings.get("ward_code") == NGOC_HA


def test_settings_screen_searches_and_saves_the_ward(store, data_dir) -> None:
    """The view on a fake page: typing narrows the buttons, tapping one saves the ward."""
    from app.views.app import CommuneApp
    from app.views.lock_model import StorageGateway
    from app.views.other_views import SettingsScreen

    store.settings.set("ward_code", BA_DINH)

    async def scenario() -> None:
        page = FakePage(width=800)
        app = CommuneApp(page, StorageGateway(data_dir))  # type: ignore[arg-type]
        app.store = store
        screen = SettingsScreen(app)
        body = await screen.build()
        view = screen.ward_view
        assert view is not None and "Đã chọn: Phường Ba Đình" in texts(body)
        view.search.value = "dong da"
        await view.search.on_change(None)
        buttons = view.matches.controls
        assert [b.content for b in buttons] == ["Phường Đống Đa"]
        await buttons[0].on_click(None)
        assert store.settings.get("ward_code") == DONG_DA
        assert view.chosen.value == "Đã chọn: Phường Đống Đa"
        view.search.value = "khong co"
        await view.search.on_change(None)
        assert texts(view.matches) == ["Không có xã/phường phù hợp."]

    aio.run(scenario())
