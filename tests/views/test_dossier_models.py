from __future__ import annotations

import datetime as dt

from app.domain.calendar import WorkingCalendar, vn_date
from app.domain.codes import LOCAL_SEQUENCES, parse_code
from app.domain.status import DossierStatus
from app.storage import DossierQuery
from app.views.dossier_models import (
    OPEN,
    DossierDetailPresenter,
    DossierListPresenter,
    ReceiveForm,
    actions_for,
    dashboard_tiles,
)
from app.views.format import datetime_text, status_text
from tests.views.conftest import TODAY
from tests.views.seed import WARD, seed

OFFICER = "Trần Văn Nam"
OPEN_STATUS_NAMES = {status_text(s) for s in (1, 2, 4, 5, 6)}


def filled_form(name: str = "Nguyễn Thị Hương") -> ReceiveForm:
    form = ReceiveForm()
    [proc] = [p for p in ReceiveForm.search("dang ky lai khai sinh") if p.code == "1.004884"]
    form.choose(proc.code)
    form.applicant_name = name
    form.applicant_id_number = "001190012345"
    form.applicant_phone = "0912 345 678"
    return form


def test_procedure_search_ignores_diacritics_and_fills_the_checklist() -> None:
    found = ReceiveForm.search("dang ky lai khai sinh")
    assert found[0].name == "Thủ tục đăng ký lại khai sinh"
    assert len(ReceiveForm.search("")) > 0
    form = filled_form()
    names = [line.name for line in form.documents]
    assert names == [d.name for d in form.procedure.required_documents]
    first = form.documents[0]
    assert (first.originals, first.copies) == (first.required_originals, first.required_copies)


def test_the_fee_is_shown_at_intake_as_the_slip_prints_it() -> None:
    form = ReceiveForm()
    assert form.fee_lines() == []  # no procedure yet
    form.choose("2.000635")  # a copy of a civil-status extract: a fee per copy
    amount, note = form.fee_lines()
    assert amount == "Phí, lệ phí: 8.000 đồng"
    assert note.startswith("8.000 đồng/bản sao trích lục")
    form.choose("1.001193")  # birth registration: free when on time, said in the note
    amount, note = form.fee_lines()
    assert amount == "Phí, lệ phí: 0 đồng" and note.startswith("Miễn lệ phí khi đăng ký đúng hạn")


def test_validation_names_each_bad_field() -> None:
    form = ReceiveForm()
    assert not form.validate()
    assert set(form.errors) == {"procedure", "applicant_name"}
    form = filled_form()
    form.applicant_id_number = "12345"
    form.applicant_phone = "abc"
    form.documents[0].originals = form.documents[0].copies = 0
    assert not form.validate()
    assert set(form.errors) == {"applicant_id_number", "applicant_phone", "documents"}
    form.documents[0].received = False  # not received: no count needed
    form.applicant_id_number, form.applicant_phone = "001190012345", "0912345678"
    assert form.validate()


def test_submit_issues_a_code_and_the_previewed_appointment(store) -> None:
    form = filled_form()
    form.documents[1].received = False
    today = dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=7))).date()
    preview = form.appointment(today, WorkingCalendar())
    dossier = form.submit(store.dossiers, WARD, OFFICER)
    assert dossier is not None
    # a store that never enrolled issues from the numbers no enrolled device's slot covers
    assert parse_code(dossier.code).sequence in LOCAL_SEQUENCES
    assert dossier.appointment_date == preview
    assert dossier.applicant_name == "Nguyễn Thị Hương"
    # the proxy letter (third) is conditional: unticked from the start, so not received
    assert [d.name for d in dossier.documents] == [form.documents[0].name]


def test_submit_reports_what_the_record_rules_refuse(store) -> None:
    """The service checks the whole record with the server's rules; the form shows why."""
    form = filled_form()
    assert form.submit(store.dossiers, "99999", OFFICER) is None  # no such ward
    assert "unknown_ward" in form.errors["form"]
    assert store.dossiers.list(DossierQuery()).total == 0


def test_list_searches_without_diacritics_filters_and_marks_overdue(store) -> None:
    seed(store, 40, today=TODAY, moves=6)
    target = filled_form("Nguyễn Thị Hương Giang").submit(store.dossiers, WARD, OFFICER)
    lister = DossierListPresenter(store.dossiers, lambda: TODAY)
    lister.filters.status = None  # "Tất cả trạng thái"
    everything = lister.load()
    assert everything.total == 41 and everything.shown == 41 and not everything.has_more
    dates = [r.appointment for r in everything.rows]
    as_dates = [dt.datetime.strptime(d, "%d/%m/%Y").date() for d in dates]
    assert as_dates == sorted(as_dates)  # by appointment date
    assert any(r.overdue for r in everything.rows) and not all(r.overdue for r in everything.rows)
    assert all(r.timeliness == "Quá hạn" for r in everything.rows if r.overdue)

    lister.filters.search = "huong giang"
    found = lister.load()
    assert [r.id for r in found.rows] == [target.id]
    assert found.summary == "Hiển thị 1/1 hồ sơ"
    for typed in (target.code.lower(), target.code[-11:], target.code[-4:]):  # code, its tails
        lister.filters.search = f" {typed} "
        assert target.id in {r.id for r in lister.load().rows}, typed

    lister.filters.search = ""
    lister.filters.overdue = True
    overdue = lister.load()
    assert overdue.total > 0 and all(r.overdue for r in overdue.rows)

    lister.filters.overdue = False
    lister.filters.status = int(DossierStatus.IN_PROCESS)
    in_process = lister.load()
    assert in_process.total > 0 and {r.status for r in in_process.rows} == {"Đang xử lý"}


def test_the_default_list_is_the_open_work_queue_overdue_first(store) -> None:
    seed(store, 60, today=TODAY, moves=25)
    lister = DossierListPresenter(store.dossiers, lambda: TODAY)
    assert lister.filters.status == OPEN
    assert lister.status_choices()[0] == (OPEN, "Đang giải quyết")
    every = DossierListPresenter(store.dossiers, lambda: TODAY)
    every.filters.status = None
    everything = every.load(more=True)  # all 60 (two pages)
    open_ids = {r.id for r in everything.rows if r.status in OPEN_STATUS_NAMES}
    assert 0 < len(open_ids) < everything.total  # the seed closed some

    queue = lister.load(more=True)
    assert {r.id for r in queue.rows} == open_ids and queue.total == len(open_ids)
    dates = [dt.datetime.strptime(r.appointment, "%d/%m/%Y").date() for r in queue.rows]
    assert dates == sorted(dates)
    overdue = [r.overdue for r in queue.rows]
    assert any(overdue) and overdue == sorted(overdue, reverse=True)  # overdue ones first


def test_list_pages_with_show_more(store) -> None:
    seed(store, 60, today=TODAY)
    lister = DossierListPresenter(store.dossiers, lambda: TODAY)
    first = lister.load()
    assert (first.shown, first.total, first.has_more) == (50, 60, True)
    more = lister.load(more=True)
    assert (more.shown, more.has_more) == (60, False)


def test_detail_offers_only_allowed_moves_and_keeps_a_timeline(store) -> None:
    dossier = filled_form().submit(store.dossiers, WARD, OFFICER)
    detail = DossierDetailPresenter(store.dossiers, dossier.id, lambda: TODAY)
    state = detail.load()
    assert [a.to_status for a in state.actions] == [4, 5, 7, 8]
    assert ("Mã hồ sơ", dossier.code) in state.facts
    start = next(a for a in state.actions if a.to_status == 4)
    assert detail.apply(start, note="Chuyển phòng Tư pháp", actor=OFFICER) is None
    state = detail.load()
    assert [a.label for a in state.actions] == [
        "Yêu cầu bổ sung",
        "Chờ nghĩa vụ tài chính",
        "Công dân rút hồ sơ",
        "Dừng xử lý",
        "Hoàn thành xử lý",
    ]
    assert state.timeline[0].title == "Đã tiếp nhận » Đang xử lý"
    assert state.timeline[0].note == "Chuyển phòng Tư pháp"
    assert state.timeline[0].actor == f"Cán bộ: {OFFICER}"
    assert state.timeline[-1].actor == f"Cán bộ: {OFFICER}"  # the receipt names its officer

    supplement = next(a for a in state.actions if a.needs_date)
    assert (
        detail.apply(supplement, new_date="31/02/2026") == "Ngày hẹn mới không hợp lệ (dd/mm/yyyy)"
    )
    assert detail.apply(supplement, new_date="01/01/2020") == "Ngày hẹn mới phải sau hôm nay"
    assert detail.apply(supplement, new_date="15/12/2026", note="Thiếu tờ khai") is None
    state = detail.load()
    assert state.dossier.appointment_date == dt.date(2026, 12, 15)
    assert "hẹn trả mới 15/12/2026" in state.timeline[0].note


def test_completion_needs_the_result_and_a_returned_dossier_shows_when_and_if_in_time(
    store,
) -> None:
    dossier = filled_form().submit(store.dossiers, WARD, OFFICER)
    detail = DossierDetailPresenter(store.dossiers, dossier.id, lambda: TODAY)
    detail.apply(next(a for a in detail.load().actions if a.to_status == 4), actor=OFFICER)
    complete = next(a for a in detail.load().actions if a.takes_result)
    assert detail.apply(complete, result="  ", actor=OFFICER) == (
        "Nhập kết quả giải quyết (số quyết định, giấy tờ đã cấp…)"
    )
    assert detail.load().dossier.status == DossierStatus.IN_PROCESS
    assert detail.apply(complete, result="Trích lục khai sinh số 12/2026", actor="") is None
    state = detail.load()
    assert state.timeline[0].actor == "Cán bộ: không ghi tên"
    assert not any(label == "Ngày trả kết quả" for label, _ in state.facts)
    assert detail.apply(state.actions[0], actor=OFFICER) is None  # returned to the citizen
    facts = dict(detail.load().facts)
    returned = detail.load().dossier.returned_at
    assert facts["Kết quả"] == "Trích lục khai sinh số 12/2026"
    assert facts["Ngày trả kết quả"].startswith(datetime_text(returned))
    # finished today (the machine's day) against an appointment days ahead: early
    assert facts["Ngày trả kết quả"].endswith("· Trước hạn"), facts["Ngày trả kết quả"]
    assert "Ngày có kết quả" in facts


def test_a_second_receive_for_the_same_person_warns_and_the_choice_is_in_the_history(
    store,
) -> None:
    first = filled_form().submit(store.dossiers, WARD, OFFICER)
    again = filled_form("Nguyễn Thị Hương")
    assert again.submit(store.dossiers, WARD, OFFICER) is None
    warning = again.errors["duplicate"]
    received_in_vietnam = vn_date(first.received_at).strftime("%d/%m/%Y")
    assert f"{first.code} ({received_in_vietnam})" in warning
    assert "Số CCCD này đang có hồ sơ chưa giải quyết xong" in warning
    assert store.dossiers.list(DossierQuery()).total == 1  # nothing saved yet
    second = again.submit(store.dossiers, WARD, OFFICER, go_on=True)
    assert second is not None and second.code != first.code
    [event] = store.dossiers.history(second.id)
    assert event.note.startswith("Cán bộ vẫn tiếp nhận dù đã được cảnh báo trùng")
    assert first.code in event.note
    timeline = DossierDetailPresenter(store.dossiers, second.id, lambda: TODAY).load().timeline
    assert first.code in timeline[0].note
    other = filled_form()
    other.applicant_id_number = "001190054321"
    assert other.submit(store.dossiers, WARD, OFFICER) is not None  # another person: no warning


def test_closed_dossiers_offer_nothing() -> None:
    assert actions_for(int(DossierStatus.RETURNED)) == []
    assert [a.to_status for a in actions_for(int(DossierStatus.COMPLETED))] == [10]


def test_dashboard_tiles(store) -> None:
    seed(store, 30, today=TODAY, moves=9)
    tiles = {tile.key: tile for tile in dashboard_tiles(store.dossiers.dashboard(TODAY))}
    assert [tiles[k].label for k in tiles] == [
        "Tiếp nhận hôm nay",
        "Sắp đến hạn",
        "Quá hạn",
        "Tỷ lệ đúng hạn",
    ]
    assert tiles["overdue"].alert == (int(tiles["overdue"].value) > 0)
    assert tiles["on_time_rate"].value.endswith("%")


def test_due_this_week_and_procedure_filters(store) -> None:
    from app.views.dossier_models import ListFilters

    assert ListFilters(due_this_week=True).query_args(TODAY)["due_within_days"] == 5  # Tue->Sun
    seed(store, 30, today=TODAY, days_back=3)
    lister = DossierListPresenter(store.dossiers, lambda: TODAY)
    lister.filters.due_this_week = True
    due = lister.load()
    assert 0 < due.total < 30
    sunday = TODAY + dt.timedelta(days=5)
    for row in due.rows:
        day = dt.datetime.strptime(row.appointment, "%d/%m/%Y").date()
        assert TODAY <= day <= sunday and not row.overdue
    lister.filters.due_this_week = False
    code = store.dossiers.list(DossierQuery(), offset=0, limit=1).items[0].procedure_code
    lister.filters.procedure_code = code
    same = lister.load()
    assert same.total >= 1
    assert {store.dossiers.get(r.id).procedure_code for r in same.rows} == {code}


def test_an_unreadable_pulled_dossier_is_one_marked_line_on_every_screen(store) -> None:
    from app.domain.hlc import Clock
    from app.domain.mutations import Change, FieldValue
    from app.views.dossier_models import UnreadableRow

    seed(store, 3, today=TODAY)
    stamp = Clock("server-side").now()
    fields = {  # a dossier pushed without its appointment date, as another device pulls it
        "code": "000.00.04.H26-261120-0901",
        "procedure_code": "1.000894",
        "ward_code": WARD,
        "applicant_name": "Lê Văn Bình",
        "channel": 1,
        "status": 2,
        "received_at": "2026-11-20T02:00:00+00:00",
    }
    change = Change(
        seq=1,
        entity="dossier",
        entity_id="bad-1",
        ward_code=WARD,
        version=1,
        fields={k: FieldValue(value=v, hlc=stamp) for k, v in fields.items()},
    )
    store.sync.apply_pull_page([change], next_cursor=1)

    state = DossierListPresenter(store.dossiers, lambda: TODAY).load()  # open dossiers
    assert state.shown == state.total == 3
    [line] = state.unreadable
    assert line.id == "bad-1" and line.title == "Hồ sơ không đọc được"
    assert "000.00.04.H26-261120-0901" in line.detail
    assert "appointment_date:missing" in line.detail and "Lê Văn Bình" not in line.detail

    detail = DossierDetailPresenter(store.dossiers, "bad-1", lambda: TODAY).load_any()
    assert isinstance(detail, UnreadableRow) and detail.title == "Hồ sơ không đọc được"
    tiles = {tile.key: tile for tile in dashboard_tiles(store.dossiers.dashboard(TODAY))}
    assert tiles["unreadable"].value == "1" and tiles["unreadable"].alert
    from app.views.sync_models import sync_indicator

    assert "1 bản ghi không đọc được" in sync_indicator(store.sync.summary()).text


def test_a_dossier_found_ward_wide_warns_and_an_unanswered_check_is_said(store) -> None:
    from app.domain.models import WardDuplicate

    elsewhere = WardDuplicate(
        code="000.00.70.H26-261201-0007", received_day=dt.date(2026, 12, 1), ward_code=WARD
    )
    asked: list[tuple[str, str]] = []

    def server_finds(procedure: str, number: str) -> list[WardDuplicate]:
        asked.append((procedure, number))
        return [elsewhere]

    form = filled_form()
    assert form.submit(store.dossiers, WARD, OFFICER, ward_check=server_finds) is None
    assert "000.00.70.H26-261201-0007 (01/12/2026)" in form.errors["duplicate"]
    assert asked == [("1.004884", "001190012345")]
    saved = form.submit(store.dossiers, WARD, OFFICER, go_on=True, ward_check=server_finds)
    assert saved is not None and len(asked) == 1  # going on does not ask again
    [event] = store.dossiers.history(saved.id)
    assert elsewhere.code in event.note
    assert form.ward_note() == ""

    silent = filled_form("Trần Văn Bình")
    silent.applicant_id_number = "001190099999"
    assert silent.submit(store.dossiers, WARD, OFFICER, ward_check=lambda p, n: None) is not None
    assert silent.ward_note().startswith("Không kiểm tra được toàn phường")
    local_only = filled_form("Lê Văn Cường")
    local_only.applicant_id_number = "001190088888"
    assert local_only.submit(store.dossiers, WARD, OFFICER) is not None
    assert local_only.ward_note() == ""  # not enrolled: there is no ward-wide check to miss


def test_digitisation_is_set_per_paper_at_intake_and_with_the_result(store) -> None:
    from app.domain.status import Digitisation as D

    form = filled_form()
    form.documents[0].digitised = D.DIGITISED
    saved = form.submit(store.dossiers, WARD, OFFICER)
    assert saved is not None
    assert saved.documents[0].digitised is D.DIGITISED
    assert all(doc.digitised is D.NOT_DIGITISED for doc in saved.documents[1:])
    detail = DossierDetailPresenter(store.dossiers, saved.id, lambda: TODAY)
    start = next(a for a in detail.load().actions if a.to_status == DossierStatus.IN_PROCESS)
    assert detail.apply(start, actor=OFFICER) is None
    complete = next(a for a in detail.load().actions if a.takes_result)
    assert detail.apply(complete, result="Trích lục số 3", result_digitised=2, actor="") is None
    facts = dict(detail.load().facts)
    assert facts["Số hoá kết quả"] == "Tái sử dụng dữ liệu số hoá"


def test_the_register_exported_from_the_app_holds_every_dossier(store) -> None:
    """"Xuất sổ": form 06 as XLSX bytes with one row per dossier of the store, named by day."""
    import io

    from openpyxl import load_workbook

    from app.views.dossier_models import register_export

    store.settings.set("ward_code", WARD)
    seed(store, 7, today=TODAY)
    seeded = list(store.dossiers.everything())
    done = register_export(store, TODAY)
    assert done.file_name == "so-theo-doi-ho-so-20261124.xlsx"
    assert done.count == len(seeded) == 7 and done.kept_aside == 0
    sheet = load_workbook(io.BytesIO(done.data)).active
    assert sheet["A1"].value == "Mẫu số 06"
    codes = {row[1] for row in sheet.iter_rows(min_row=5, values_only=True)}
    assert codes == {d.code for d in seeded}
