from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from app.storage import DossierQuery, open_store
from app.views.sync_models import SettingsPresenter, conflict_choices, sync_indicator
from tests.views.conftest import PIN
from tests.views.seed import pull_conflict, push_all, requests


@dataclass
class Summary:
    pending: int = 0
    conflicts: int = 0
    rejected: int = 0
    last_synced_at: dt.datetime | None = None


@dataclass
class Status:
    online: bool | None = None
    running: bool = False
    last_error: str | None = None


def test_indicator_states() -> None:
    local = sync_indicator(Summary(pending=3), None, enrolled=False)
    assert (local.text, local.can_sync_now) == ("Chỉ lưu trên máy", False)
    offline = sync_indicator(Summary(pending=2), Status(online=False))
    assert offline.text == "Mất kết nối · Chờ gửi 2 · Chưa đồng bộ" and offline.tone == "offline"
    running = sync_indicator(Summary(), Status(online=True, running=True))
    assert running.text.startswith("Đang đồng bộ…") and not running.can_sync_now
    at = dt.datetime(2026, 11, 24, 3, 5, tzinfo=dt.UTC)  # 10:05 in Hanoi
    clean = sync_indicator(Summary(last_synced_at=at), Status(online=True))
    assert (clean.text, clean.tone) == ("Đồng bộ lúc 10:05 24/11/2026", "ok")
    conflicted = sync_indicator(Summary(conflicts=1, last_synced_at=at), Status(online=True))
    assert "Xung đột 1" in conflicted.text and conflicted.tone == "error"
    failing = sync_indicator(Summary(), Status(online=True, last_error="ServerError: 503"))
    assert failing.text.startswith("Lỗi đồng bộ") and failing.can_sync_now


def test_conflict_shows_both_values_and_the_choice_is_written(store) -> None:
    store.dossiers.receive_many(requests(1, today=dt.date(2026, 11, 24)))
    push_all(store)
    [dossier] = store.dossiers.list(DossierQuery()).items
    pull_conflict(store, dossier.id, mine="Ghi chú của tôi", theirs="Ghi chú máy khác")
    describe = {("dossier", dossier.id): f"{dossier.code} · {dossier.applicant_name}"}
    [choice] = conflict_choices(store.sync.open_conflicts(), lambda e, i: describe[(e, i)])
    assert choice.title == f"Hồ sơ {dossier.code} · {dossier.applicant_name}"
    assert choice.field == "Ghi chú"
    assert [text for text, _ in choice.options] == [
        "Đang giữ: Ghi chú máy khác",
        "Giá trị khác: Ghi chú của tôi",
    ]
    store.sync.resolve_conflict(choice.conflict_id, choice.options[1][1])
    assert store.sync.open_conflicts() == []
    assert store.dossiers.get(dossier.id).notes == "Ghi chú của tôi"


def test_settings_round_trip_and_pin_change(store, data_dir) -> None:
    settings = SettingsPresenter(store)
    state = settings.load()
    assert (state.language, state.auto_lock_minutes, state.enrolled) == ("vi", 5, False)
    settings.set_language("en")
    settings.set_auto_lock(15)
    assert settings.set_server_url("ftp://x") == "Địa chỉ phải bắt đầu bằng http:// hoặc https://"
    assert settings.set_server_url("https://mot-cua.example.vn/") is None
    refused = settings.set_server_url("http://10.0.0.5:8000")  # clear text to another machine
    assert refused is not None and "không mã hoá" in refused
    state = settings.load()
    assert (state.language, state.auto_lock_minutes, state.server_url) == (
        "en",
        15,
        "https://mot-cua.example.vn",
    )
    assert settings.change_pin(PIN, "135", "135") == "Mã PIN cần ít nhất 6 ký tự"
    assert settings.change_pin("000000", "135790", "135790").startswith("Không đổi được mã PIN")
    assert settings.change_pin(PIN, "135790", "135790") is None
    store.close()
    open_store(data_dir, "135790").close()
    assert [m for m, _ in SettingsPresenter.auto_lock_choices()][0] == 0


def test_a_rejected_record_warns_in_the_indicator() -> None:
    at = dt.datetime(2026, 11, 24, 3, 5, tzinfo=dt.UTC)
    refused = sync_indicator(Summary(rejected=4, last_synced_at=at), Status(online=True))
    assert refused.text == "Máy chủ từ chối một số dữ liệu · Đồng bộ lúc 10:05 24/11/2026"
    assert refused.tone == "warn"


def test_dossiers_outside_a_scope_are_counted_by_ward(store) -> None:
    """Every page is read: 501 in scope and 3 at two other wards, past one counting page."""
    from app.views import sync_models

    store.dossiers.receive_many(requests(501, today=dt.date(2026, 11, 24)))  # Ba Đình, 00004
    for i, ward in enumerate(["00070", "00070", "00008"]):
        [one] = requests(1, today=dt.date(2026, 11, 24), seed=100 + i)
        store.dossiers.receive_many([one.model_copy(update={"ward_code": ward})])
    settings = SettingsPresenter(store)
    assert sync_models.COUNT_PAGE < 504
    found = settings.outside_scope(["00004"])
    assert found is not None and found.count == 3 and len(found.wards) == 2
    assert "00070" not in found.wards and "00008" not in found.wards  # names, not codes
    assert found.notice.startswith("3 hồ sơ trên máy này được tiếp nhận tại ")
    assert all(name in found.notice for name in found.wards)
    assert settings.outside_scope(["00008", "00004"]).count == 2  # type: ignore[union-attr]
    assert settings.outside_scope(["00004", "00008", "00070"]) is None
    assert settings.outside_scope(["*"]) is None  # a scope of every ward


def test_a_refusal_reads_as_the_officer_expects() -> None:
    from app.views.dossier_models import rejection_text

    assert rejection_text("ward_out_of_scope") == "bị từ chối: ngoài phạm vi"
    assert rejection_text("role_not_permitted") == "bị từ chối: role_not_permitted"
    assert rejection_text(None) == "bị từ chối: rejected"
