"""Request and response bodies of the API (the sync wire schema is in app.domain.mutations)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from app.domain.models import SHA256_HEX
from app.domain.mutations import WireText

Sha256 = Field(pattern=SHA256_HEX.pattern)
# Every str a client sends is WireText (no NUL characters: PostgreSQL text cannot hold them).


class EnrolRequest(BaseModel):
    code: WireText = Field(min_length=1, max_length=40)
    device_name: WireText = Field(default="", max_length=200)


class EnrolResponse(BaseModel):
    device_id: str
    token: str
    code_slot: int | None
    user: str
    role: str
    wards: list[str]
    refresh_token: str
    expires_at: str  # ISO 8601 UTC: renew the token at /auth/refresh before then


class RefreshRequest(BaseModel):
    refresh_token: WireText = Field(min_length=1, max_length=200)


class RefreshResponse(BaseModel):
    token: str
    refresh_token: str
    expires_at: str


class LoginRequest(BaseModel):
    username: WireText = Field(min_length=1, max_length=100)
    password: WireText = Field(min_length=1, max_length=500)


class LoginResponse(BaseModel):
    token: str
    device_id: str
    user: str
    role: str
    wards: list[str]
    refresh_token: str
    expires_at: str


class UploadStart(BaseModel):
    sha256: str = Sha256  # hex only, so no NUL either
    size: int = Field(ge=1)


class UploadProgress(BaseModel):
    offset: int
    complete: bool


class UploadState(BaseModel):
    offset: int
    size: int
    complete: bool


class ReviewDecision(BaseModel):
    decision: WireText = Field(min_length=1, max_length=30, description="target review state")
    comment: WireText = Field(default="", max_length=4000)


class BulkReview(ReviewDecision):
    audit_ids: list[WireText] = Field(min_length=1, max_length=500)


class AuditSummary(BaseModel):
    audit_id: str
    ward_code: str
    version: int
    review_state: str | None
    template_version: str | None
    submitted_at: str | None
    score: float | None
    auditor: str | None


class ReviewList(BaseModel):
    audits: list[AuditSummary]


class ReviewResult(BaseModel):
    audit_id: str
    status: Literal["applied", "rejected"]
    reason: str | None = None
    review_state: str | None = None
    version: int = 0
    comment_id: str | None = None


class BulkReviewResult(BaseModel):
    results: list[ReviewResult]


class UserCreate(BaseModel):
    username: WireText = Field(min_length=2, max_length=100)
    role: Literal["officer", "auditor", "supervisor", "admin"]
    wards: list[WireText] = Field(min_length=1, max_length=200)
    password: WireText | None = Field(default=None, min_length=8, max_length=500)


class UserOut(BaseModel):
    id: int
    username: str
    role: str
    wards: list[str]


class EnrolCodeRequest(BaseModel):
    username: WireText = Field(min_length=1, max_length=100)
    ttl_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)


class EnrolCodeOut(BaseModel):
    code: str
    expires_in_minutes: int


class DeviceOut(BaseModel):
    device_id: str
    user: str
    name: str
    kind: str
    code_slot: int | None
    revoked: bool
    last_pull_cursor: int
    created_at: str


class DeviceList(BaseModel):
    devices: list[DeviceOut]


class Health(BaseModel):
    status: str
    database: str


WardCode = Field(min_length=1, max_length=10, pattern=r"^[0-9A-Za-z*]+$")


class IndexKeys(BaseModel):
    """The ward keys of the caller's wards (app/domain/duplicates.py) and the data key's id."""

    key_id: str
    wards: dict[str, str]


class DuplicateCheck(BaseModel):
    procedure_code: WireText = Field(min_length=1, max_length=40)
    key_id: WireText = Field(min_length=1, max_length=40)
    # ward code -> the ID number's term under that ward's key (never the number itself)
    terms: dict[WireText, WireText] = Field(max_length=64)


class DuplicateFound(BaseModel):
    code: str
    received_day: str  # Vietnam day of receipt, ISO
    ward_code: str


class DuplicateAnswer(BaseModel):
    duplicates: list[DuplicateFound]
