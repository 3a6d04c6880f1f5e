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
    assert running.text.startswith("Đang đồng bộ…") and running.can_sync_now  # queues one
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


def test_waiting_counts_what_the_user_made_and_lists_each_with_its_state(store) -> None:
    """Three dossiers with history entries are three things waiting, not their outbox rows; a
    supervisor's decision on an audit is one decision; a refused record shows the reason."""
    from app.domain import audit as A
    from app.domain.mutations import PushResult
    from app.views.sync_models import waiting_rows

    made = [store.dossiers.receive(r) for r in requests(3, today=dt.date(2026, 11, 24))]
    store.dossiers.change_status(made[0].id, 4, actor="Trần Văn Nam")
    summary = store.sync.summary()
    assert summary.pending > 3 and summary.waiting == 3
    line = sync_indicator(summary, Status(online=False))
    assert line.text.startswith("Mất kết nối · Chờ gửi 3 ·")
    push_all(store)
    audit = store.audits.create("00004", A.LATEST_TEMPLATE, "Hà")
    store.audits.set_fields(audit.id, notes="x")
    assert store.sync.summary().waiting == 1
    push_all(store)
    store.dossiers.change_status(made[1].id, 4, actor="Trần Văn Nam")
    rows = store.sync.pending_mutations(10**9)  # the dossier and its history entry
    store.sync.record_push_results(
        [
            PushResult(mutation_id=r.mutation_id, status="rejected", reason="ward_out_of_scope")
            for r in rows
        ]
    )
    store.dossiers.change_status(made[2].id, 4, actor="Trần Văn Nam")
    waiting = store.sync.waiting()
    assert [(w.entity, w.entity_id, w.state) for w in waiting] == [
        ("dossier", made[2].id, "pending"),  # queued first, oldest first; refused after
        ("dossier", made[1].id, "rejected"),
    ]
    rows = waiting_rows(waiting, last_error="offline: ConnectTimeout")
    assert rows[1].kind == "Hồ sơ" and rows[1].title == made[1].code
    assert (rows[1].state, rows[1].error) == ("Bị từ chối", "ward_out_of_scope")
    assert (rows[0].state, rows[0].error) == ("Chờ gửi", "offline: ConnectTimeout")
    assert store.sync.summary().waiting == 1  # the refused one waits for a person, not a sync


def test_a_decision_is_one_thing_waiting(store) -> None:
    from app.domain import audit as A
    from app.views.audit_models import AuditFormPresenter
    from tests.views.test_audit_models import fill_required

    audit = store.audits.create("00004", A.LATEST_TEMPLATE, "Hà")
    form = AuditFormPresenter(store, audit.id)
    fill_required(form)
    assert form.submit() is None
    push_all(store)
    store.audits.review(audit.id, "approved", "", author="gs", role="supervisor")
    waiting = store.sync.waiting()
    assert [w.entity for w in waiting] == ["audit_comment"]
    from app.views.sync_models import waiting_rows

    assert waiting_rows(waiting)[0].kind == "Quyết định duyệt"
    assert waiting_rows(waiting)[0].title == "Phường Ba Đình"


@dataclass
class RunStatus:
    online: bool | None = True
    running: bool = True
    last_error: str | None = None
    progress: object = None
    progress_at: dt.datetime | None = None
    stall_s: float = 25.0
    next_try_at: dt.datetime | None = None
    queued: bool = False


def test_a_run_shows_progress_a_silent_server_and_when_it_retries() -> None:
    from app.sync.engine import SyncProgress

    now = dt.datetime(2026, 11, 24, 3, 5, 0, tzinfo=dt.UTC)  # 10:05:00 in Hanoi
    moving = sync_indicator(
        Summary(), RunStatus(progress=SyncProgress("push", 120, 500), progress_at=now), now=now
    )
    assert moving.text.startswith("Đang gửi 120/500") and moving.can_sync_now
    quiet = RunStatus(progress=SyncProgress("pull", 0), progress_at=now, queued=True)
    later = now + dt.timedelta(seconds=12)
    text = sync_indicator(Summary(), quiet, now=later).text
    assert "Máy chủ chưa trả lời sau 12 giây · ngắt và thử lại lúc 10:05:25" in text
    assert "Sẽ đồng bộ lại ngay sau lượt này" in text
    retry = now + dt.timedelta(seconds=30)
    cut = RunStatus(online=False, running=False, last_error="offline: …", next_try_at=retry)
    text = sync_indicator(Summary(pending=2), cut, now=now).text
    assert text.startswith("Mất kết nối · Máy chủ không trả lời · thử lại lúc 10:05:30")


def test_settings_show_who_the_device_works_for() -> None:
    from app.views.sync_models import account_lines

    enrolled = {
        "device_token": "t",
        "user": "canbo.badinh",
        "role": "officer",
        "wards": ["00004", "00008"],
        "server_url": "https://api.example.vn",
    }
    assert account_lines(enrolled) == [
        ("Người dùng", "canbo.badinh"),
        ("Vai trò", "Cán bộ Một cửa"),
        ("Xã/phường phụ trách", "Phường Ba Đình, Phường Ngọc Hà"),
        ("Địa chỉ máy chủ", "https://api.example.vn"),
    ]
    local = account_lines({"local_role": "auditor", "ward_code": "00004"})
    assert local == [("Công việc trên máy này", "Kiểm tra viên"), ("Xã/phường", "Phường Ba Đình")]


def test_the_ward_picker_is_searched_without_diacritics_and_names_fit_the_work() -> None:
    from app.views.lock_model import name_label, search_wards, ward_options

    options = ward_options()
    assert [n for _, n in search_wards(options, "ba dinh")] == ["Phường Ba Đình"]
    assert [n for _, n in search_wards(options, "NGOC HA")] == ["Phường Ngọc Hà"]
    assert search_wards(options, "00025") == [("00025", "Phường Giảng Võ")]
    assert len(search_wards(options, "")) == 6 and search_wards(options, "zzz") == []
    assert name_label("officer") == "Tên cán bộ tiếp nhận"
    assert name_label("supervisor") == "Tên người duyệt"  # no "receiving officer" here
    assert name_label(None) == "Họ tên của bạn"
