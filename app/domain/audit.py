"""The infrastructure audit of a commune-level unit: versioned template, scoring, review states.

The sections follow the groups of Hanoi Decision 5279/QĐ-UBND (23/10/2025) on the commune
digital-transformation index (digital infrastructure, network security, digital workforce) and
the weak points a survey of the 126 Hanoi units found: premises, equipment, personnel, network,
security assessment and regular backups.

Scoring rule (deterministic, the same on device and server):
- Each item has a weight >= 0; weight 0 items (free text) are recorded but not scored.
- An item's score s is in [0, 1]:
  yes_no: True -> 1, False -> 0;
  number: value / target, capped at 1 (a number item with no target is not scored);
  choice: the score of the chosen option;
  photo: 1 when at least one photo is attached.
- Evidence: an item with `photo_required` that claims something exists (s > 0) but carries no
  photo scores 0 and is listed as failing; a "no" needs no photo.
- Numbers are >= 0 and at most the item's `maximum` (100 for a percentage) to be valid.
- An unanswered or invalid answer scores 0; if the item is required it is listed in
  `missing_required`.
- Section score = 100 * sum(w * s) / sum(w) over its scored items; total likewise over all
  items. Both rounded to 2 decimals.
- `failing_items`: answered scored items with s < 1, in template order.
- Compliant: nothing required is missing, every required scored item scores 1, and the total
  is at least COMPLIANCE_THRESHOLD.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.domain.models import SHA256_HEX

TEMPLATE_V1 = "2025.1"
COMPLIANCE_THRESHOLD = 80.0

ItemKind = Literal["yes_no", "number", "choice", "text", "photo"]
ITEM_ID = re.compile(r"^[a-z0-9_.-]+$")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Option(_Frozen):
    id: str
    label: str
    label_en: str
    score: float = Field(ge=0.0, le=1.0)


class Item(_Frozen):
    id: str = Field(pattern=ITEM_ID.pattern)
    label: str
    label_en: str
    kind: ItemKind
    required: bool = False
    weight: float = Field(default=1.0, ge=0.0)
    target: float | None = None  # numbers: the value that earns the full score ("at least")
    unit: str | None = None
    minimum: float = 0.0  # numbers: the range a value must lie in (inclusive)
    maximum: float | None = None  # numbers: the largest value that can be true (100 for a %)
    photo_required: bool = False
    asks_position: bool = False  # the answer carries where it was observed
    options: tuple[Option, ...] = ()

    @property
    def scored(self) -> bool:
        if self.kind == "text" or self.weight == 0:
            return False
        return not (self.kind == "number" and not self.target)

    def option(self, option_id: str) -> Option | None:
        return next((o for o in self.options if o.id == option_id), None)


class Section(_Frozen):
    id: str = Field(pattern=ITEM_ID.pattern)
    label: str
    label_en: str
    items: tuple[Item, ...]


class AuditTemplate(_Frozen):
    version: str
    sections: tuple[Section, ...]

    def items(self) -> list[Item]:
        return [item for section in self.sections for item in section.items]

    def item(self, item_id: str) -> Item:
        for section in self.sections:  # no list built: a push asks for each answer's item
            for item in section.items:
                if item.id == item_id:
                    return item
        raise KeyError(f"audit template {self.version} has no item {item_id!r}")

    def section_of(self, item_id: str) -> Section:
        for section in self.sections:
            if any(item.id == item_id for item in section.items):
                return section
        raise KeyError(f"audit template {self.version} has no item {item_id!r}")


class AuditScore(_Frozen):
    total: float  # 0..100
    by_section: dict[str, float]  # section id -> 0..100
    compliant: bool
    missing_required: list[str]
    failing_items: list[str]


# ---------------------------------------------------------------------------------------------
# Template 2025.1


def _yes_no(id_: str, label: str, label_en: str, **kw: Any) -> Item:
    return Item(id=id_, label=label, label_en=label_en, kind="yes_no", **kw)


PERCENT_MAX = 100.0


def _number(id_: str, label: str, label_en: str, target: float, unit: str, **kw: Any) -> Item:
    """A number item; a percentage lies in 0-100 unless the template says otherwise."""
    if unit == "%":
        kw.setdefault("maximum", PERCENT_MAX)
    return Item(
        id=id_, label=label, label_en=label_en, kind="number", target=target, unit=unit, **kw
    )


def _choice(id_: str, label: str, label_en: str, options: list[Option], **kw: Any) -> Item:
    return Item(id=id_, label=label, label_en=label_en, kind="choice", options=tuple(options), **kw)


def _opt(id_: str, label: str, label_en: str, score: float) -> Option:
    return Option(id=id_, label=label, label_en=label_en, score=score)


_PREMISES = Section(
    id="premises",
    label="Trụ sở, phòng máy",
    label_en="Premises and server room",
    items=(
        Item(
            id="premises.building_photo",
            label="Ảnh trụ sở và Bộ phận Một cửa",
            label_en="Photo of the building and the one-stop counter",
            kind="photo",
            required=True,
            weight=0.5,
            photo_required=True,
            asks_position=True,
        ),
        _yes_no(
            "premises.one_stop_area",
            "Bộ phận Một cửa có khu vực tiếp nhận, trả kết quả riêng, đủ diện tích",
            "The one-stop counter has its own, large enough intake and return area",
            required=True,
            photo_required=True,
        ),
        _yes_no(
            "premises.server_room",
            "Có phòng máy hoặc khu vực riêng đặt máy chủ, thiết bị mạng",
            "A dedicated room or area for servers and network equipment",
            required=True,
            weight=2,
            photo_required=True,
        ),
        _yes_no(
            "premises.access_control",
            "Phòng máy có khóa, kiểm soát ra vào",
            "The server room is locked and access is controlled",
        ),
        _yes_no(
            "premises.cooling",
            "Phòng máy có điều hòa nhiệt độ",
            "The server room is air-conditioned",
        ),
        _yes_no(
            "premises.fire_safety",
            "Có thiết bị phòng cháy, chữa cháy tại phòng máy",
            "Fire-fighting equipment in the server room",
            photo_required=True,
        ),
        _yes_no(
            "premises.ups",
            "Có bộ lưu điện (UPS) cho máy chủ và thiết bị mạng",
            "A UPS powers the servers and network equipment",
            required=True,
            photo_required=True,
        ),
    ),
)

_EQUIPMENT = Section(
    id="equipment",
    label="Thiết bị",
    label_en="Equipment",
    items=(
        _number(
            "equipment.computers_per_staff",
            "Số máy tính trên mỗi cán bộ, công chức",
            "Computers per staff member",
            target=1,
            unit="máy/người",
            maximum=10,  # more than ten computers a head is a typing slip
            required=True,
            weight=2,
        ),
        _number(
            "equipment.computers_recent_pct",
            "Tỷ lệ máy tính sử dụng dưới 5 năm",
            "Share of computers less than 5 years old",
            target=80,
            unit="%",
        ),
        _choice(
            "equipment.licensed_os",
            "Máy tính dùng hệ điều hành có bản quyền, còn được hỗ trợ",
            "Computers run a licensed, still supported operating system",
            [
                _opt("all", "Tất cả", "All", 1.0),
                _opt("most", "Phần lớn", "Most", 0.6),
                _opt("some", "Một số", "Some", 0.3),
                _opt("none", "Không", "None", 0.0),
            ],
            required=True,
        ),
        _yes_no(
            "equipment.scanner",
            "Bộ phận Một cửa có máy quét để số hóa hồ sơ",
            "The one-stop counter has a scanner to digitise dossiers",
            required=True,
            photo_required=True,
        ),
        _yes_no(
            "equipment.printer",
            "Bộ phận Một cửa có máy in phiếu tiếp nhận, kết quả",
            "The one-stop counter has a printer for slips and results",
        ),
        _yes_no(
            "equipment.kiosk",
            "Có thiết bị tra cứu, đánh giá mức độ hài lòng cho người dân",
            "A kiosk for citizens to look up dossiers and rate the service",
            weight=0.5,
        ),
        _number(
            "equipment.digital_signature_pct",
            "Tỷ lệ lãnh đạo, công chức được cấp chữ ký số chuyên dùng",
            "Share of leaders and officers holding an official digital signature",
            target=100,
            unit="%",
            required=True,
        ),
    ),
)

_PERSONNEL = Section(
    id="personnel",
    label="Nhân lực",
    label_en="Personnel",
    items=(
        _yes_no(
            "personnel.it_officer",
            "Có công chức phụ trách công nghệ thông tin, chuyển đổi số",
            "An officer is in charge of IT and digital transformation",
            required=True,
            weight=2,
        ),
        _choice(
            "personnel.it_qualification",
            "Trình độ của người phụ trách công nghệ thông tin",
            "Qualification of the person in charge of IT",
            [
                _opt("degree", "Đại học chuyên ngành CNTT trở lên", "IT university degree", 1.0),
                _opt("college", "Cao đẳng, trung cấp CNTT", "IT college diploma", 0.7),
                _opt("trained", "Đã qua bồi dưỡng CNTT", "Short IT training", 0.4),
                _opt("none", "Chưa qua đào tạo", "No IT training", 0.0),
            ],
            required=True,
        ),
        _number(
            "personnel.digital_skills_pct",
            "Tỷ lệ cán bộ, công chức được bồi dưỡng kỹ năng số trong năm",
            "Share of staff trained in digital skills this year",
            target=100,
            unit="%",
        ),
        _number(
            "personnel.security_awareness_pct",
            "Tỷ lệ cán bộ, công chức được phổ biến kiến thức an toàn thông tin",
            "Share of staff given information-security awareness training",
            target=100,
            unit="%",
        ),
        _yes_no(
            "personnel.community_tech_team",
            "Có Tổ công nghệ số cộng đồng hoạt động",
            "A community digital-technology team is active",
            weight=0.5,
        ),
    ),
)

_NETWORK = Section(
    id="network",
    label="Hạ tầng mạng",
    label_en="Network infrastructure",
    items=(
        _number(
            "network.bandwidth_mbps",
            "Băng thông Internet",
            "Internet bandwidth",
            target=100,
            unit="Mbps",
            maximum=100_000,
            required=True,
            weight=2,
        ),
        _yes_no(
            "network.backup_link",
            "Có đường truyền Internet dự phòng",
            "A backup Internet link",
        ),
        _yes_no(
            "network.government_wan",
            "Kết nối mạng truyền số liệu chuyên dùng của cơ quan Đảng, Nhà nước",
            "Connected to the government's dedicated data network",
            required=True,
            weight=2,
        ),
        _yes_no(
            "network.firewall",
            "Có tường lửa tại điểm kết nối Internet",
            "A firewall guards the Internet connection",
            required=True,
            weight=2,
            photo_required=True,
        ),
        _yes_no(
            "network.wifi_separated",
            "Wi-Fi có mật khẩu mạnh, mạng khách tách khỏi mạng nội bộ",
            "Wi-Fi uses a strong password and guests are kept off the internal network",
        ),
        _yes_no(
            "network.diagram",
            "Có sơ đồ mạng nội bộ được cập nhật",
            "An up-to-date diagram of the local network",
            weight=0.5,
            photo_required=True,
        ),
    ),
)

_SECURITY = Section(
    id="security",
    label="An toàn thông tin",
    label_en="Information security",
    items=(
        _yes_no(
            "security.level_approved",
            "Hồ sơ đề xuất cấp độ an toàn hệ thống thông tin đã được phê duyệt",
            "The information system's security level has been approved",
            required=True,
            weight=2,
        ),
        _choice(
            "security.last_assessment",
            "Lần kiểm tra, đánh giá an toàn thông tin gần nhất",
            "Most recent information-security assessment",
            [
                _opt("within_12m", "Trong 12 tháng qua", "Within the last 12 months", 1.0),
                _opt("within_24m", "Từ 12 đến 24 tháng trước", "12 to 24 months ago", 0.5),
                _opt("never", "Chưa từng hoặc quá 24 tháng", "Never, or over 24 months ago", 0.0),
            ],
            required=True,
            weight=2,
        ),
        _number(
            "security.antimalware_pct",
            "Tỷ lệ máy tính cài phần mềm phòng, chống mã độc có bản quyền",
            "Share of computers with licensed anti-malware",
            target=100,
            unit="%",
            required=True,
        ),
        _yes_no(
            "security.soc_connected",
            "Đã kết nối giám sát an toàn thông tin tập trung của Thành phố",
            "Connected to the city's central security monitoring (SOC)",
        ),
        _yes_no(
            "security.incident_plan",
            "Có phương án ứng cứu sự cố an toàn thông tin",
            "An information-security incident response plan exists",
            required=True,
        ),
        _yes_no(
            "security.account_policy",
            "Tài khoản dùng mật khẩu mạnh, không dùng chung",
            "Accounts use strong passwords and are not shared",
        ),
    ),
)

_BACKUPS = Section(
    id="backups",
    label="Sao lưu",
    label_en="Backups",
    items=(
        _choice(
            "backups.frequency",
            "Tần suất sao lưu dữ liệu",
            "Backup frequency",
            [
                _opt("daily", "Hằng ngày", "Daily", 1.0),
                _opt("weekly", "Hằng tuần", "Weekly", 0.8),
                _opt("monthly", "Hằng tháng", "Monthly", 0.4),
                _opt("none", "Không sao lưu định kỳ", "No regular backups", 0.0),
            ],
            required=True,
            weight=2,
        ),
        _yes_no(
            "backups.offsite",
            "Có bản sao lưu đặt ngoài trụ sở hoặc trên hạ tầng của Thành phố",
            "A backup copy is kept off site or on the city's infrastructure",
            required=True,
        ),
        _yes_no(
            "backups.restore_tested",
            "Đã thử khôi phục dữ liệu từ bản sao lưu trong 12 tháng qua",
            "A restore from backup was tested in the last 12 months",
        ),
        _yes_no(
            "backups.log",
            "Có nhật ký sao lưu",
            "A backup log is kept",
            weight=0.5,
            photo_required=True,
        ),
        Item(
            id="backups.notes",
            label="Ghi chú của kiểm tra viên",
            label_en="Auditor's notes",
            kind="text",
            weight=0,
        ),
    ),
)

TEMPLATES: dict[str, AuditTemplate] = {
    TEMPLATE_V1: AuditTemplate(
        version=TEMPLATE_V1,
        sections=(_PREMISES, _EQUIPMENT, _PERSONNEL, _NETWORK, _SECURITY, _BACKUPS),
    ),
}
LATEST_TEMPLATE = TEMPLATE_V1


def template(version: str = LATEST_TEMPLATE) -> AuditTemplate:
    try:
        return TEMPLATES[version]
    except KeyError:
        known = ", ".join(sorted(TEMPLATES))
        raise KeyError(f"unknown audit template version {version!r} (known: {known})") from None


# ---------------------------------------------------------------------------------------------
# Answers


def _value_reason(item: Item, value: Any) -> str | None:
    if item.kind == "photo":
        return None  # the photo is the answer; checked with the photos
    if value is None:
        return "missing_value"
    if item.kind == "yes_no":
        return None if isinstance(value, bool) else "wrong_type"
    if item.kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "wrong_type"
        return None if in_range(item, value) else "out_of_range"
    if item.kind == "choice":
        if not isinstance(value, str):
            return "wrong_type"
        return None if item.option(value) else "unknown_option"
    if not isinstance(value, str):
        return "wrong_type"
    return None if value.strip() else "missing_value"


def in_range(item: Item, value: float) -> bool:
    """A number item's value lies in the template's range (NaN and infinity never do)."""
    if value != value or value in (float("inf"), float("-inf")):
        return False
    return item.minimum <= value and (item.maximum is None or value <= item.maximum)


def position_reason(lat: Any, lon: Any) -> str | None:
    """None for a position in decimal degrees on Earth, else a reason code."""
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lat, lon))
    if not numbers or lat != lat or lon != lon:
        return "bad_position"
    return None if -90 <= lat <= 90 and -180 <= lon <= 180 else "position_out_of_range"


def annotation_allowed(item: Item, answer: Any) -> bool:
    """A note or a photo explains an answer, so it needs one first; on a photo item the photo
    is the answer."""
    if item.kind == "photo":
        return True
    value = answer.get("value") if isinstance(answer, dict) else getattr(answer, "value", None)
    return value is not None


def _answer_position_reason(position: Any) -> str | None:
    if position is None:
        return None
    if not isinstance(position, dict):
        return "bad_position"
    return position_reason(position.get("lat"), position.get("lon"))


def _photos_reason(photos: Any) -> str | None:
    if not isinstance(photos, list | tuple):
        return "bad_photos"
    addressed = all(isinstance(p, str) and SHA256_HEX.fullmatch(p) for p in photos)
    return None if addressed else "bad_photos"


def _raw_score(item: Item, value: Any, photos: list[str]) -> float:
    """Score before the evidence rule; assumes a valid answer."""
    if item.kind == "yes_no":
        return 1.0 if value else 0.0
    if item.kind == "number":
        return min(1.0, float(value) / item.target) if item.target else 0.0
    if item.kind == "choice":
        option = item.option(value)
        return option.score if option else 0.0
    if item.kind == "photo":
        return 1.0 if photos else 0.0
    return 0.0


def validate_answer(tpl: AuditTemplate, item_id: str, answer: Any) -> str | None:
    """None when the answer fits the item, else a reason code.

    Reason codes: unknown_item, not_an_answer, missing_value, wrong_type, out_of_range (outside
    the item's minimum..maximum), unknown_option, bad_note, bad_photos, bad_position,
    position_out_of_range, photo_missing (evidence required for a positive answer).
    """
    try:
        item = tpl.item(item_id)
    except KeyError:
        return "unknown_item"
    if isinstance(answer, BaseModel):  # e.g. models.AuditAnswer
        answer = answer.model_dump()
    if not isinstance(answer, dict):
        return "not_an_answer"
    if not isinstance(answer.get("note", ""), str | None):
        return "bad_note"
    photos = answer.get("photos") or []
    reason = (
        _photos_reason(photos)
        or _answer_position_reason(answer.get("position"))
        or _value_reason(item, answer.get("value"))
    )
    if reason:
        return reason
    if item.kind == "photo":
        return None if photos else "missing_value"
    needs_photo = item.photo_required and _raw_score(item, answer.get("value"), photos) > 0
    return "photo_missing" if needs_photo and not photos else None


def item_score(tpl: AuditTemplate, item_id: str, answer: Any) -> float | None:
    """The item's score in [0, 1]; None when unanswered or invalid (missing evidence gives 0)."""
    reason = validate_answer(tpl, item_id, answer)
    if reason == "photo_missing":
        return 0.0
    if reason:
        return None
    if isinstance(answer, BaseModel):
        answer = answer.model_dump()
    item = tpl.item(item_id)
    return _raw_score(item, answer.get("value"), answer.get("photos") or [])


def score(tpl: AuditTemplate, answers: dict[str, Any]) -> AuditScore:
    """Score an audit's answers (item id -> {"value", "note", "photos"}) by the module's rule."""
    missing: list[str] = []
    failing: list[str] = []
    required_shortfall = False
    by_section: dict[str, float] = {}
    earned_all = weight_all = 0.0
    for section in tpl.sections:
        earned = weight = 0.0
        for item in section.items:
            s = item_score(tpl, item.id, answers.get(item.id))
            if s is None and item.required:
                missing.append(item.id)
            if not item.scored:
                continue
            weight += item.weight
            earned += item.weight * (s or 0.0)
            if s is not None and s < 1.0:
                failing.append(item.id)
            required_shortfall |= item.required and (s or 0.0) < 1.0
        by_section[section.id] = round(100.0 * earned / weight, 2) if weight else 100.0
        earned_all += earned
        weight_all += weight
    total = round(100.0 * earned_all / weight_all, 2) if weight_all else 100.0
    compliant = not missing and not required_shortfall and total >= COMPLIANCE_THRESHOLD
    return AuditScore(
        total=total,
        by_section=by_section,
        compliant=compliant,
        missing_required=missing,
        failing_items=failing,
    )


# ---------------------------------------------------------------------------------------------
# Review states (supervisor workflow over a submitted audit)


class ReviewState(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    HAS_ISSUES = "has_issues"
    CHANGES_REQUESTED = "changes_requested"
    APPROVED = "approved"
    REJECTED = "rejected"


AUDITOR = "auditor"
SUPERVISOR = "supervisor"
ADMIN = "admin"
ROLES = frozenset({AUDITOR, SUPERVISOR, ADMIN})

R = ReviewState
# Who moves an audit along each edge. Admins may stand in for a supervisor, never for an auditor
# (an audit's answers are the auditor's own testimony).
_EDGE_ROLES: dict[tuple[ReviewState, ReviewState], frozenset[str]] = {
    (R.DRAFT, R.SUBMITTED): frozenset({AUDITOR}),
    (R.CHANGES_REQUESTED, R.SUBMITTED): frozenset({AUDITOR}),
    **{
        (R.SUBMITTED, target): frozenset({SUPERVISOR, ADMIN})
        for target in (R.HAS_ISSUES, R.CHANGES_REQUESTED, R.APPROVED, R.REJECTED)
    },
    **{
        (R.HAS_ISSUES, target): frozenset({SUPERVISOR, ADMIN})
        for target in (R.CHANGES_REQUESTED, R.APPROVED, R.REJECTED)
    },
}

REVIEW_TRANSITIONS: dict[ReviewState, frozenset[ReviewState]] = {
    state: frozenset(b for (a, b) in _EDGE_ROLES if a == state) for state in ReviewState
}
# States in which the auditor may still edit answers.
EDITABLE_STATES = frozenset({R.DRAFT, R.CHANGES_REQUESTED})
FINAL_STATES = frozenset({R.APPROVED, R.REJECTED})
# A ward whose latest audit is in one of these gets a new audit when it is surveyed again.
RESTART_STATES = frozenset({R.REJECTED})


def _state(value: str | ReviewState) -> ReviewState | None:
    try:
        return ReviewState(value)
    except ValueError:
        return None


def can_review_transition(current: str | ReviewState, target: str | ReviewState) -> bool:
    a, b = _state(current), _state(target)
    return a is not None and b is not None and b in REVIEW_TRANSITIONS[a]


def who_may(current: str | ReviewState, target: str | ReviewState) -> set[str]:
    """Roles allowed to move an audit from `current` to `target`; empty when the edge is refused."""
    a, b = _state(current), _state(target)
    if a is None or b is None:
        return set()
    return set(_EDGE_ROLES.get((a, b), ()))


def allowed_review_next(current: str | ReviewState, role: str | None = None) -> list[ReviewState]:
    """Next states from `current`, optionally only those `role` may choose, in enum order."""
    a = _state(current)
    if a is None:
        return []
    return [
        b
        for b in ReviewState
        if b in REVIEW_TRANSITIONS[a] and (role is None or role in who_may(a, b))
    ]


# ---------------------------------------------------------------------------------------------
# What an audit held when changes were requested (kept on the request's comment)


ANSWERS_BEFORE = "answers_before"  # audit_comment field: {item id: answer value} at the request


def answers_before(answers: dict[str, Any]) -> dict[str, Any] | None:
    """The answers' values ({item id: value}) as they stand, for a "changes requested" comment,
    so a resubmission can show old → new. None when they would not fit a JSON field's bounds
    (the resubmission then shows what changed without the old values)."""
    from app.domain.entities import json_problem

    values = {
        item_id: answer.get("value") if isinstance(answer, dict) else answer
        for item_id, answer in sorted(answers.items())
    }
    return values if json_problem(values) is None else None
