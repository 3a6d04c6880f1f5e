"""What the auditor's and the supervisor's screens show and allow, on the real encrypted store."""

from __future__ import annotations

from app.domain import audit as A
from app.i18n import set_language
from app.views.audit_models import (
    LOCAL_WORKS,
    AuditFormPresenter,
    AuditWardsPresenter,
    home_route,
    parse_number,
    parse_position,
    role_of,
    role_routes,
    route_allowed,
    workspaces,
)
from app.views.audit_views import role_destinations
from app.views.position import Position, PositionProvider
from app.views.review_models import ReviewDetailPresenter, ReviewListPresenter, compliance
from tests.support import aio

WARD = "00004"  # Phường Ba Đình
AUDITOR = "Kiểm tra viên Hà"
JPEG = b"\xff\xd8\xff\xe0 a photo \xff\xd9"


def test_roles_decide_the_destinations() -> None:
    routes = {
        role: [d[0] for d in role_destinations(role)]
        for role in (None, "officer", "auditor", "supervisor", "admin")
    }
    assert routes == {
        None: [],  # a local store set up before the first run asked: the officer's work
        "officer": [],
        "auditor": ["/audits"],
        "supervisor": ["/reviews", "/oversight"],
        "admin": ["/reviews", "/oversight"],
    }
    assert workspaces("admin").review_role == "admin"
    assert workspaces(None).review_role == ""
    assert role_routes("auditor") == ("/audits", "/sync", "/settings")
    assert role_routes("supervisor") == ("/reviews", "/oversight", "/sync", "/settings")
    assert (
        role_routes(None)
        == role_routes("officer")
        == ("/dashboard", "/dossiers", "/receive", "/sync", "/settings")
    )
    assert not route_allowed("auditor", "/dossiers/abc") and route_allowed("auditor", "/audits/x")
    assert not route_allowed("supervisor", "/receive") and not route_allowed("officer", "/audits")


def test_a_local_store_works_as_the_role_chosen_at_first_run() -> None:
    assert role_of({"role": "auditor", "local_role": "supervisor"}) == "auditor"  # enrolled
    assert role_of({"local_role": "supervisor"}) == "supervisor"
    assert role_of({}) is None
    assert LOCAL_WORKS == ("officer", "auditor", "supervisor")


def test_ward_list_shows_scope_and_state_and_opening_creates_then_resumes(store) -> None:
    presenter = AuditWardsPresenter(store)
    assert len(presenter.load()) == 126  # a local store without a ward: all of Hanoi
    store.settings.set("wards", [WARD, "00008"])
    rows = presenter.load()
    assert [(r.ward_code, r.state_label, r.score) for r in rows] == [
        (WARD, "Chưa khảo sát", "—"),
        ("00008", "Chưa khảo sát", "—"),
    ]
    assert [r.ward_name for r in presenter.load("ba dinh")] == ["Phường Ba Đình"]
    first = presenter.open(WARD, AUDITOR)
    assert presenter.open(WARD, AUDITOR) == first  # resumed, not a second audit
    assert presenter.load()[0].state_label == "Bản nháp"


def test_form_sections_controls_validation_and_live_score(store) -> None:
    audit_id = AuditWardsPresenter(store).open(WARD, AUDITOR)
    form = AuditFormPresenter(store, audit_id)
    state = form.load()
    tpl = A.template(A.LATEST_TEMPLATE)
    assert [s.id for s in state.sections] == [s.id for s in tpl.sections]
    assert state.editable and not state.can_submit and state.total == "0,0"
    assert state.section.progress == "đã trả lời 0/7"
    kinds = {i.id: i.kind for i in state.items}
    assert kinds["premises.building_photo"] == "photo" and kinds["premises.ups"] == "yes_no"

    form.go_section(1)  # equipment: numbers with target and unit, a choice
    items = {i.id: i for i in form.load().items}
    computers = items["equipment.computers_per_staff"]
    assert (computers.target, computers.unit, computers.required) == ("1", "máy/người", True)
    assert [o for o, _ in items["equipment.licensed_os"].options] == ["all", "most", "some", "none"]
    assert (
        form.answer("equipment.computers_per_staff", "nhiều") == "Giá trị không đúng kiểu (cần số)"
    )
    assert form.answer("equipment.computers_per_staff", "-2") == (
        "Giá trị ngoài khoảng cho phép: 0 - 10 máy/người"
    )
    assert form.answer("equipment.computers_per_staff", "") is None  # empty stays empty
    assert form.answer("equipment.computers_per_staff", "0,5") is None
    assert form.answer("equipment.licensed_os", "most") is None
    state = form.load()
    items = {i.id: i for i in state.items}
    assert items["equipment.computers_per_staff"].value == 0.5
    assert items["equipment.computers_per_staff"].value_text == "0,5"
    assert items["equipment.computers_per_staff"].score == "0,5"
    assert state.sections[1].answered == 2 and state.sections[1].score != "0,0"
    assert state.total != "0,0" and not state.compliant
    assert "Mục bắt buộc chưa đạt mức tối đa: Số máy tính trên mỗi cán bộ, công chức" in (
        state.warnings
    )


def test_photo_evidence_through_the_attachment_service(store) -> None:
    audit_id = AuditWardsPresenter(store).open(WARD, AUDITOR)
    form = AuditFormPresenter(store, audit_id)
    assert form.add_photo("premises.ups", JPEG, "ups.jpg", "image/jpeg", None) == (
        "Trả lời mục này trước khi thêm ảnh hoặc ghi chú"
    )
    assert form.answer("premises.ups", True) is None
    state = form.load()
    ups = {i.id: i for i in state.items}["premises.ups"]
    assert ups.problem == "Cần ảnh minh chứng cho câu trả lời này" and ups.score == "0,0"
    assert any("UPS" in w for w in state.warnings)
    assert form.add_photo("premises.ups", JPEG, "ups.jpg", "image/jpeg", None) is None
    assert (
        form.add_photo("premises.building_photo", JPEG + b"2", "tru-so.jpg", "image/jpeg", None)
        is None
    )
    state = form.load()
    items = {i.id: i for i in state.items}
    assert items["premises.ups"].photos == 1 and items["premises.ups"].problem == ""
    assert items["premises.ups"].score == "1,0"
    assert items["premises.building_photo"].answered and state.photo_count == 2
    stored = store.attachments.list(audit_id)
    assert sorted(a.filename for a in stored) == ["tru-so.jpg", "ups.jpg"]
    assert store.audits.get(audit_id).answers["premises.ups"].photos == [
        next(a.sha256 for a in stored if a.filename == "ups.jpg")
    ]
    assert form.note("premises.ups", "  UPS 2 kVA, lưu điện 30 phút ") is None
    assert store.audits.get(audit_id).answers["premises.ups"].note == "UPS 2 kVA, lưu điện 30 phút"


def test_position_typed_or_from_a_provider_and_notes(store) -> None:
    form = AuditFormPresenter(store, AuditWardsPresenter(store).open(WARD, AUDITOR))
    assert form.load().position == "Chưa có vị trí"
    assert form.set_typed_position("21,0341", "abc") == "Vĩ độ và kinh độ phải là số (độ thập phân)"
    assert form.set_typed_position("121", "105.8") is not None
    assert form.set_typed_position("21,0341", "105.8142") is None
    assert form.load().position == "21.034100, 105.814200"

    class FakeGps(PositionProvider):
        available = True

        async def locate(self) -> Position | None:
            return Position(21.0368, 105.8346, accuracy_m=8.4)

    found = aio.run(FakeGps().locate())
    form.set_position(found)
    assert form.load().position == "21.036800, 105.834600 (sai số khoảng 8 m)"
    assert aio.run(PositionProvider().locate()) is None and not PositionProvider.available
    form.set_notes("  Phòng máy chung với kho lưu trữ ")
    assert form.load().audit.notes == "Phòng máy chung với kho lưu trữ"
    assert parse_number("1.5") == 1.5 and parse_number("12") == 12 and parse_number("x") is None
    assert parse_position("", "1")[0] is None


def fill_required(form: AuditFormPresenter, good: bool = True) -> None:
    """A good audit answers every scored item in full, with its photos; a weak one only the
    required items, at their worst."""
    tpl = A.template(A.LATEST_TEMPLATE)
    for item in tpl.items():
        if item.kind == "text" or not (item.required or good):
            continue
        if item.kind == "photo":
            form.add_photo(item.id, JPEG + item.id.encode(), f"{item.id}.jpg", "image/jpeg", None)
            continue
        if item.kind == "yes_no":
            value: object = good
        elif item.kind == "number":
            value = item.target if good else 0
        else:
            value = item.options[0 if good else -1].id
        assert form.answer(item.id, value) is None, item.id
        if good and item.photo_required:
            form.add_photo(item.id, JPEG + item.id.encode(), f"{item.id}.jpg", "image/jpeg", None)


def test_submit_only_when_required_items_are_answered(store) -> None:
    form = AuditFormPresenter(store, AuditWardsPresenter(store).open(WARD, AUDITOR))
    state = form.load()
    assert not state.can_submit
    assert state.blockers[0] == "Chưa trả lời mục bắt buộc: Ảnh trụ sở và Bộ phận Một cửa"
    assert state.blockers[-1].startswith("… và ") and len(state.blockers) == 6
    assert form.submit() == state.blockers[0]
    assert store.audits.get(form.audit_id).review_state == "draft"
    fill_required(form)
    state = form.load()
    assert state.can_submit and state.blockers == [] and state.compliant
    assert form.submit() is None
    state = form.load()
    assert not state.editable and state.state_label == "Đã gửi duyệt" and not state.can_submit
    assert state.blockers == ["Phiếu ở trạng thái Đã gửi duyệt, không gửi duyệt được"]
    assert form.answer("network.backup_link", True) is not None  # refused: submitted


def submitted_audit(store, ward: str, good: bool) -> str:
    form = AuditFormPresenter(store, AuditWardsPresenter(store).open(ward, AUDITOR))
    fill_required(form, good)
    assert form.submit() is None
    return form.audit_id


def test_review_list_filter_and_compliance_summary(store) -> None:
    good = submitted_audit(store, WARD, good=True)
    weak = submitted_audit(store, "00008", good=False)
    AuditWardsPresenter(store).open("00025", AUDITOR)  # a draft: not the supervisor's yet
    presenter = ReviewListPresenter(store)
    rows, summary = presenter.load()
    assert {r.audit_id for r in rows} == {good, weak}
    assert all(r.state_label == "Đã gửi duyệt" for r in rows)
    assert summary.wards == 2 and summary.compliant == 1
    counts = dict(summary.counts)
    assert counts["Đã gửi duyệt"] == 2 and counts["Đã duyệt"] == 0 and "Bản nháp" not in counts
    means = dict(summary.sections)
    assert list(means)[0] == "Trụ sở, phòng máy" and len(means) == 6
    ReviewDetailPresenter(store, weak, "supervisor", "gs.binh").decide(
        "changes_requested", "Bổ sung sao lưu"
    )
    presenter.state = "changes_requested"
    rows, summary = presenter.load()
    assert [r.audit_id for r in rows] == [weak]
    assert dict(summary.counts)["Yêu cầu chỉnh sửa"] == 1  # the summary ignores the filter
    assert "Yêu cầu chỉnh sửa" in [text for _, text in ReviewListPresenter.state_choices()]
    set_language("en")
    assert compliance(store.audits.list()).sections[0][0] == "Premises and server room"


def test_review_detail_is_read_only_and_offers_only_allowed_decisions(store) -> None:
    audit_id = submitted_audit(store, WARD, good=True)
    detail = ReviewDetailPresenter(store, audit_id, "supervisor", "gs.binh")
    state = detail.load()
    assert [d.target for d in state.decisions] == [
        "has_issues",
        "changes_requested",
        "approved",
        "rejected",
    ]
    assert [d.label for d in state.decisions] == [
        "Đánh dấu có vấn đề",
        "Yêu cầu chỉnh sửa",
        "Duyệt",
        "Không chấp nhận",
    ]
    view, lines = state.sections[0]
    assert view.label == "Trụ sở, phòng máy"
    by_label = {line.label: line for line in lines}
    assert by_label["Có bộ lưu điện (UPS) cho máy chủ và thiết bị mạng"].answer == "Có"
    assert by_label["Có bộ lưu điện (UPS) cho máy chủ và thiết bị mạng"].photos == 1
    tpl = A.template(A.LATEST_TEMPLATE)
    assert state.photo_count == sum(i.photo_required for i in tpl.items()) and state.compliant
    assert ("Người khảo sát", AUDITOR) in state.facts and state.warnings == []
    weak = ReviewDetailPresenter(store, submitted_audit(store, "00008", good=False), "admin", "x")
    assert "Mục bắt buộc chưa đạt mức tối đa: Có tường lửa tại điểm kết nối Internet" in (
        weak.load().warnings
    )
    assert ReviewDetailPresenter(store, audit_id, "", "an").load().decisions == []  # no role


def test_decisions_need_a_comment_except_approval_and_follow_the_state(store) -> None:
    audit_id = submitted_audit(store, WARD, good=True)
    detail = ReviewDetailPresenter(store, audit_id, "supervisor", "gs.binh")
    assert detail.decide("changes_requested", "  ") == "Cần ghi ý kiến cho quyết định này"
    assert detail.decide("submitted", "x") == (
        "Quyết định này không được phép ở trạng thái hiện tại"
    )
    assert detail.decide("has_issues", "Tường lửa chưa cấu hình") is None
    state = detail.load()
    assert state.state_label == "Có vấn đề"
    assert [d.target for d in state.decisions] == ["changes_requested", "approved", "rejected"]
    assert state.comments[0].endswith("gs.binh · Có vấn đề: Tường lửa chưa cấu hình")
    assert detail.decide("approved", "") is None
    state = detail.load()
    assert state.state_label == "Đã duyệt" and state.decisions == []
    # The auditor sees the comments on the form, read-only once approved.
    form = AuditFormPresenter(store, audit_id).load()
    assert not form.editable and len(form.comments) == 2


def test_each_role_starts_on_its_own_work() -> None:
    assert home_route("auditor") == "/audits"
    assert home_route("supervisor") == home_route("admin") == "/reviews"
    assert home_route("officer") == home_route(None) == "/dossiers"


def test_a_refused_entry_stays_on_screen_marked_and_the_saved_answer_is_kept(store) -> None:
    form = AuditFormPresenter(store, AuditWardsPresenter(store).open(WARD, AUDITOR))
    form.go_section(1)
    assert form.answer("equipment.computers_per_staff", "0,8") is None
    assert form.answer("equipment.computers_per_staff", "nhiều") is not None
    computers = {i.id: i for i in form.load().items}["equipment.computers_per_staff"]
    assert computers.refused and computers.value_text == "nhiều"  # as typed, not the old 0,8
    assert computers.problem == "Giá trị không đúng kiểu (cần số)"
    assert store.audits.get(form.audit_id).answers["equipment.computers_per_staff"].value == 0.8
    form.go_section(0)
    form.go_section(1)  # still there after moving between sections
    assert {i.id: i for i in form.load().items}["equipment.computers_per_staff"].refused
    form.discard_refused("equipment.computers_per_staff")
    computers = {i.id: i for i in form.load().items}["equipment.computers_per_staff"]
    assert not computers.refused and computers.value_text == "0,8" and computers.problem == ""
    assert form.answer("equipment.computers_per_staff", "") is not None  # clearing is refused
    assert form.answer("equipment.computers_per_staff", "1") is None
    assert not {i.id: i for i in form.load().items}["equipment.computers_per_staff"].refused


def test_number_ranges_come_from_the_template(store) -> None:
    form = AuditFormPresenter(store, AuditWardsPresenter(store).open(WARD, AUDITOR))
    assert form.answer("equipment.digital_signature_pct", "150") == (
        "Giá trị ngoài khoảng cho phép: 0 - 100 %"
    )
    assert form.answer("equipment.digital_signature_pct", "100") is None
    assert form.answer("network.bandwidth_mbps", "250000") is not None  # over the threshold
    assert form.answer("network.bandwidth_mbps", "300") is None
    form.go_section(1)
    items = {i.id: i for i in form.load().items}
    assert items["equipment.digital_signature_pct"].range == "Khoảng cho phép: 0 - 100 %"
    assert items["equipment.computers_recent_pct"].range == "Khoảng cho phép: 0 - 100 %"
    tpl = A.template(A.LATEST_TEMPLATE)
    percent = [i for i in tpl.items() if i.unit == "%"]
    assert percent and all(i.maximum == 100 for i in percent)
    assert A.validate_answer(tpl, "equipment.computers_recent_pct", {"value": 100.5}) == (
        "out_of_range"
    )  # the same rule the server applies


def test_submit_summary_names_what_is_missing_refused_or_warned(store) -> None:
    form = AuditFormPresenter(store, AuditWardsPresenter(store).open(WARD, AUDITOR))
    summary = form.submit_summary()
    assert not summary.can_confirm and summary.blockers[0].startswith("Chưa trả lời mục bắt buộc")
    fill_required(form, good=False)  # everything required answered, at its worst
    form.answer("equipment.computers_recent_pct", "nhiều")
    summary = form.submit_summary()
    assert summary.blockers == [
        "Giá trị chưa lưu ở «Tỷ lệ máy tính sử dụng dưới 5 năm»: «nhiều» (sửa lại hoặc bỏ)"
    ]
    assert form.submit() == summary.blockers[0]
    assert store.audits.get(form.audit_id).review_state == "draft"
    form.discard_refused("equipment.computers_recent_pct")
    summary = form.submit_summary()
    assert summary.can_confirm and summary.warnings  # weak answers: warned, may still go
    assert any(w.startswith("Mục bắt buộc chưa đạt mức tối đa") for w in summary.warnings)
    assert form.submit() is None


def test_photos_open_and_can_be_removed(store) -> None:
    form = AuditFormPresenter(store, AuditWardsPresenter(store).open(WARD, AUDITOR))
    assert form.answer("premises.ups", True) is None
    assert form.add_photo("premises.ups", JPEG, "ups.jpg", "image/jpeg", None) is None
    ups = {i.id: i for i in form.load().items}["premises.ups"]
    (sha,) = ups.photo_ids
    assert form.photo(sha) == JPEG and form.photo("0" * 64) is None
    assert form.remove_photo("premises.ups", sha) is None
    ups = {i.id: i for i in form.load().items}["premises.ups"]
    assert ups.photo_ids == () and ups.problem == "Cần ảnh minh chứng cho câu trả lời này"


def test_notes_and_photos_need_an_answer_except_on_photo_items() -> None:
    tpl = A.template(A.LATEST_TEMPLATE)
    assert not A.annotation_allowed(tpl.item("premises.ups"), {"value": None})
    assert A.annotation_allowed(tpl.item("premises.ups"), {"value": False})
    assert A.annotation_allowed(tpl.item("premises.building_photo"), {})
    assert A.position_reason(21.0, 105.8) is None
    assert A.position_reason(91, 0) == "position_out_of_range"
    assert A.position_reason("21", 0) == "bad_position"
    assert A.position_reason(float("nan"), 0) == "bad_position"


def test_position_per_item_where_the_template_asks(store) -> None:
    form = AuditFormPresenter(store, AuditWardsPresenter(store).open(WARD, AUDITOR))
    items = {i.id: i for i in form.load().items}
    assert items["premises.building_photo"].asks_position
    assert items["premises.building_photo"].position == "Chưa có vị trí"
    assert not items["premises.ups"].asks_position and items["premises.ups"].position == ""
    here = Position(21.0368, 105.8346, accuracy_m=5)
    assert form.set_item_position("premises.building_photo", here) is None
    assert form.set_item_position("premises.ups", here) == "Mục này không cần vị trí"
    items = {i.id: i for i in form.load().items}
    assert items["premises.building_photo"].position == "21.036800, 105.834600 (sai số khoảng 5 m)"
    assert not items["premises.building_photo"].answered  # a position alone is no answer
    assert form.add_photo("premises.building_photo", JPEG, "a.jpg", "image/jpeg", None) is None
    assert (
        form.remove_photo(
            "premises.building_photo", form._current("premises.building_photo").photos[0]
        )
        is None
    )
    tpl = A.template(A.LATEST_TEMPLATE)
    bad = {"photos": [], "position": {"lat": 200, "lon": 0}}
    assert A.validate_answer(tpl, "premises.building_photo", bad) == "position_out_of_range"


def test_approving_a_failing_audit_names_what_it_passes_over_first(store) -> None:
    good = ReviewDetailPresenter(store, submitted_audit(store, WARD, good=True), "supervisor", "b")
    assert good.approval_concerns() == [] and good.needs_confirmation("approved")
    assert not good.needs_confirmation("changes_requested")
    weak = ReviewDetailPresenter(store, submitted_audit(store, "00008", False), "supervisor", "b")
    concerns = weak.approval_concerns()
    warnings = weak.load().warnings
    assert concerns[:8] == warnings[:8] and len(warnings) > 8  # capped to fit the dialog
    assert concerns[8] == f"… và {len(warnings) - 8} mục khác" and len(concerns) == 9


def test_only_a_mobile_build_offers_camera_and_position() -> None:
    """The web and desktop clients carry no device extensions: nothing is offered there."""
    import flet as ft

    from app.views.device import Camera, device_capabilities, has_device_extensions

    class Page:
        def __init__(self, platform, web: bool) -> None:
            self.platform, self.web, self.services = platform, web, []

    for page in (Page(ft.PagePlatform.LINUX, False), Page(ft.PagePlatform.ANDROID, True)):
        camera, position = device_capabilities(page)
        assert not camera.available and not position.available and page.services == []
    android = Page(ft.PagePlatform.ANDROID, False)
    assert has_device_extensions(android)
    camera, position = device_capabilities(android)
    assert camera.available and position.available and len(android.services) == 2
    assert not Camera.available
