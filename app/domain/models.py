"""Shared pydantic models: what services return and what forms submit.

Storage tables and server tables are separate; these are the shapes both sides agree on.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field, field_validator

from app.domain.calendar import vn_date
from app.domain.status import Channel, Digitisation, DossierStatus
from app.domain.timeliness import Timeliness, classify

T = TypeVar("T")


class Ward(BaseModel, frozen=True):
    code: str  # official 5-digit statistics-office code, e.g. "00070"
    name: str
    division_type: str
    province_code: str
    province_name: str


class DocumentRequirement(BaseModel, frozen=True):
    """A paper of a procedure's dossier: required in every case, or only when `condition`
    holds (the catalogue's "nếu ...", "khi ..." cases), with the originals and copies asked."""

    name: str
    originals: int = 0
    copies: int = 0
    required: bool = True
    condition: str = ""


class Procedure(BaseModel, frozen=True):
    code: str  # national procedure code, e.g. "1.001193"
    name: str
    field: str
    processing_days: int = Field(ge=0)
    required_documents: list[DocumentRequirement]
    fee: int = 0  # VND; 0 when no fee or only in some cases (see fee_note)
    fee_note: str = ""
    source: str = ""
    level: str = ""  # "xã" for the commune level (a province's import says it on every row)
    forms: list[str] = Field(default_factory=list)  # declaration forms (tờ khai) the citizen fills


class DocumentReceived(BaseModel):
    name: str = Field(min_length=1, max_length=300)
    originals: int = Field(default=0, ge=0, le=99)
    copies: int = Field(default=0, ge=0, le=99)
    # 0..3 only (a bool or any other number is refused, on the device and by the server);
    # papers stored before the field had none: not digitised.
    digitised: Digitisation = Digitisation.NOT_DIGITISED

    @field_validator("digitised", mode="before")
    @classmethod
    def _no_bool(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):  # True == 1, "1": refused
            raise ValueError("digitisation status is 0, 1, 2 or 3")
        return value


class ReceiveDossier(BaseModel):
    """What the one-stop counter form (or an import row) submits."""

    procedure_code: str
    ward_code: str
    applicant_name: str = Field(min_length=1, max_length=200)
    applicant_id_number: str = Field(default="", max_length=20)
    applicant_phone: str = Field(default="", max_length=20)
    applicant_address: str = Field(default="", max_length=500)
    channel: Channel = Channel.IN_PERSON
    documents: list[DocumentReceived] = Field(default_factory=list)
    notes: str = Field(default="", max_length=4000)
    received_at: dt.datetime | None = None  # UTC; now when empty
    code: str | None = None  # issued on the device when empty
    status: DossierStatus = DossierStatus.RECEIVED
    actor: str = ""
    # The first history event's note: the officer received it despite a duplicate warning.
    intake_note: str = Field(default="", max_length=4000)
    # A register imported past intake: when processing finished and the result was returned.
    finished_at: dt.datetime | None = None
    returned_at: dt.datetime | None = None

    @field_validator("applicant_name")
    @classmethod
    def _name_not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("applicant name is empty")
        return v.strip()

    @field_validator("applicant_id_number")
    @classmethod
    def _id_digits(cls, v: str) -> str:
        v = v.strip()
        if v and not (v.isdigit() and len(v) in (9, 12)):
            raise ValueError("national ID number must be 9 or 12 digits")
        return v


class WardDuplicate(BaseModel, frozen=True):
    """An open dossier the server found in the officer's wards (the ward-wide check): its code,
    the Vietnam day it was received and its ward, nothing else."""

    code: str
    received_day: dt.date
    ward_code: str


class OpenDuplicate(BaseModel, frozen=True):
    """An open dossier of the same procedure for the same ID number: what the counter warns of
    (its code and when it was received), never the applicant's other details."""

    id: str
    code: str
    received_at: dt.datetime


class Dossier(BaseModel):
    id: str
    code: str
    procedure_code: str
    ward_code: str
    applicant_name: str
    applicant_id_number: str = ""
    applicant_phone: str = ""
    applicant_address: str = ""
    channel: Channel
    received_at: dt.datetime
    appointment_date: dt.date
    status: DossierStatus
    documents: list[DocumentReceived] = Field(default_factory=list)
    notes: str = ""
    result: str = ""
    result_digitised: Digitisation | None = None  # set with the result at completion
    finished_at: dt.datetime | None = None
    returned_at: dt.datetime | None = None
    fee: int = 0
    version: int = 0
    sync_state: str = "pending"  # pending | synced | rejected | conflict
    sync_reason: str | None = None

    def timeliness(self, today: dt.date) -> Timeliness | None:
        # The day it finished at the counter, in Vietnam: 06:00 in Hanoi is 23:00 UTC before.
        finished = vn_date(self.finished_at) if self.finished_at else None
        return classify(self.status, self.appointment_date, finished, today)


class DossierEvent(BaseModel):
    id: str
    dossier_id: str
    at: dt.datetime
    from_status: DossierStatus | None
    to_status: DossierStatus
    actor: str = ""
    note: str = ""
    appointment_date: dt.date | None = None


class AuditAnswer(BaseModel):
    value: Any = None
    note: str = ""
    photos: list[str] = Field(default_factory=list)  # sha256 of attachments
    # Where the item was observed ({"lat", "lon", "accuracy_m"}), on items that ask for it.
    position: dict[str, float] | None = None


class Audit(BaseModel):
    id: str
    ward_code: str
    template_version: str
    review_state: str = "draft"
    auditor: str = ""
    started_at: dt.datetime
    submitted_at: dt.datetime | None = None
    position: dict[str, float] | None = None  # {"lat", "lon", "accuracy_m"}
    score: float | None = None
    notes: str = ""
    answers: dict[str, AuditAnswer] = Field(default_factory=dict)
    version: int = 0
    sync_state: str = "pending"
    sync_reason: str | None = None


# An attachment's content address: lower-case hex SHA-256 (use `fullmatch`).
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


class AttachmentMeta(BaseModel):
    id: str
    owner_entity: str
    owner_id: str
    ward_code: str
    sha256: str
    size: int
    mime: str
    filename: str = ""
    taken_at: dt.datetime | None = None
    position: dict[str, float] | None = None


class Conflict(BaseModel):
    id: str
    entity: str
    entity_id: str
    ward_code: str
    field: str
    values: list[dict[str, Any]]  # [{"value", "hlc"}], winner first
    state: str = "open"


class UnreadableRecord(BaseModel):
    """A stored record a device cannot show (see app.domain.readable), or whose sealed row
    failed to open: listed as one "unreadable record" line instead of failing the list."""

    entity: str
    id: str
    ward_code: str = ""
    code: str = ""  # the dossier code, when the record has a readable one
    reason: str  # `field:problem`, or `tampered`


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    offset: int = 0
    limit: int = 50
    # Records of this list that cannot be shown (the marked ones come with the first page).
    unreadable: list[UnreadableRecord] = Field(default_factory=list)


class Dashboard(BaseModel):
    received_today: int
    due_soon: int  # open, appointment within the next working week
    overdue: int
    on_time_rate: float | None
    unreadable: int = 0  # dossiers kept aside as unreadable, not in the figures above
