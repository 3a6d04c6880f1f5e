"""Tables of the central database (SQLModel). The schema itself is owned by the migrations."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

ALL_WARDS = "*"  # a ward scope holding this sees every ward
# 64-bit on PostgreSQL; SQLite autoincrements only an INTEGER primary key (the rowid).
BIG_ID = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class User(SQLModel, table=True):
    __tablename__ = "app_user"
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=100, unique=True)
    password_hash: str | None = Field(default=None, max_length=200)
    role: str = Field(max_length=20)  # officer | auditor | supervisor | admin
    wards: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    disabled: bool = False
    created_at: dt.datetime = Field(default_factory=utcnow)


class EnrolCode(SQLModel, table=True):
    __tablename__ = "enrol_code"
    id: int | None = Field(default=None, primary_key=True)
    code_hash: str = Field(max_length=64, unique=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    expires_at: dt.datetime
    used_at: dt.datetime | None = None
    created_at: dt.datetime = Field(default_factory=utcnow)


class Device(SQLModel, table=True):
    __tablename__ = "device"
    id: str = Field(primary_key=True, max_length=40)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    name: str = Field(default="", max_length=200)
    kind: str = Field(default="tablet", max_length=20)  # tablet (enrolled) | desktop (login)
    token_hash: str = Field(max_length=64, unique=True)
    token_expires_at: dt.datetime | None = None  # None: issued before revision 0005, expired
    # The refresh token (hash) renews the bearer token until refresh_expires_at (slides on use).
    refresh_hash: str | None = Field(default=None, max_length=64, unique=True)
    refresh_expires_at: dt.datetime | None = None
    revoked: bool = False
    revoked_at: dt.datetime | None = None
    code_slot: int | None = None
    wards: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    last_pull_cursor: int = Field(default=0, sa_type=BigInteger)
    last_seen_at: dt.datetime | None = None
    created_at: dt.datetime = Field(default_factory=utcnow)


class Record(SQLModel, table=True):
    """The server's state of one synced record: per field {value, hlc, changed_version}."""

    __tablename__ = "record"
    __table_args__ = (UniqueConstraint("entity", "entity_id", name="uq_record_entity"),)
    id: int | None = Field(default=None, primary_key=True)
    entity: str = Field(max_length=30)
    entity_id: str = Field(max_length=40)
    ward_code: str = Field(max_length=10, index=True)
    family: str = Field(max_length=20)  # dossier | audit: decides which roles see it
    version: int = 0
    fields: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    blob_sha256: str | None = Field(default=None, max_length=64, index=True)
    updated_at: dt.datetime = Field(default_factory=utcnow)


class ChangeLog(SQLModel, table=True):
    __tablename__ = "change_log"
    __table_args__ = (
        Index("ix_change_log_entity", "entity", "entity_id"),
        Index("ix_change_log_ward_seq", "ward_code", "seq"),  # a ward-scoped pull (0011)
    )
    seq: int | None = Field(default=None, sa_column=Column(BIG_ID, primary_key=True))
    entity: str = Field(max_length=30)
    entity_id: str = Field(max_length=40)
    ward_code: str = Field(max_length=10)
    family: str = Field(max_length=20)
    version: int
    # The device whose push wrote this change (None: written before revision 0003 without an
    # audit row, or by no device): the pull leaves a device's own changes out by it.
    device_id: str | None = Field(default=None, max_length=40)


class AppliedMutation(SQLModel, table=True):
    """One row per applied mutation: its unique id makes a replay return the stored result."""

    __tablename__ = "applied_mutation"
    mutation_id: str = Field(primary_key=True, max_length=36)
    device_id: str = Field(max_length=100)
    status: str = Field(max_length=20)
    version: int
    applied_at: dt.datetime = Field(default_factory=utcnow)


class PushBatch(SQLModel, table=True):
    """A push batch the server committed, by the id its device gave it, with the answer it
    gave (the push summary, small): a device whose answer was lost asks for it instead of
    sending the batch again (POST /sync/batches). Each device keeps its last few (see
    `server.services.sync.KEPT_BATCHES`); one that is gone is only sent again."""

    __tablename__ = "push_batch"
    __table_args__ = (UniqueConstraint("device_id", "batch_id", name="uq_push_batch_device"),)
    id: int | None = Field(default=None, sa_column=Column(BIG_ID, primary_key=True))
    device_id: str = Field(max_length=100)
    batch_id: str = Field(max_length=40)
    answer: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    committed_at: dt.datetime = Field(default_factory=utcnow)


class Upload(SQLModel, table=True):
    """One user's upload of one file. Each user sends the bytes themselves (their devices share
    the upload, so another tablet of the same person resumes it); nobody else's upload of the
    same file is visible to them, nor shortens theirs (see server.services.attachments)."""

    __tablename__ = "blob_upload"
    sha256: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(primary_key=True, foreign_key="app_user.id")
    size: int = Field(sa_type=BigInteger)
    offset: int = Field(default=0, sa_type=BigInteger)
    complete: bool = False
    device_id: str = Field(max_length=40)  # the device that declared or resumed it last
    created_at: dt.datetime = Field(default_factory=utcnow)


class BlobGrant(SQLModel, table=True):
    """The bytes of `sha256` reached this scope (ward and family) legitimately: someone of the
    scope sent them all, verified, or could already read them. A download needs a grant and an
    attachment record of the same scope naming the file."""

    __tablename__ = "blob_grant"
    sha256: str = Field(primary_key=True, max_length=64)
    ward_code: str = Field(primary_key=True, max_length=10)
    family: str = Field(primary_key=True, max_length=20)
    created_at: dt.datetime = Field(default_factory=utcnow)


class BlobClaim(SQLModel, table=True):
    """A user pushed an attachment record of this scope naming `sha256` before the scope held
    the bytes: it becomes a grant when that user has sent them all (or can read them)."""

    __tablename__ = "blob_claim"
    sha256: str = Field(primary_key=True, max_length=64)
    ward_code: str = Field(primary_key=True, max_length=10)
    family: str = Field(primary_key=True, max_length=20)
    user_id: int = Field(primary_key=True, foreign_key="app_user.id")
    created_at: dt.datetime = Field(default_factory=utcnow)


class AuditLog(SQLModel, table=True):
    """Append-only: every applied change and admin action. The API never updates or deletes."""

    __tablename__ = "audit_log"
    id: int | None = Field(default=None, sa_column=Column(BIG_ID, primary_key=True))
    at: dt.datetime = Field(default_factory=utcnow)
    user_id: int | None = None
    username: str = Field(default="", max_length=100)
    device_id: str | None = Field(default=None, max_length=40)
    action: str = Field(max_length=40)  # change | conflict | create_user | enrol | revoke | ...
    entity: str | None = Field(default=None, max_length=30)
    entity_id: str | None = Field(default=None, max_length=40)
    ward_code: str | None = Field(default=None, max_length=10)
    version: int | None = None
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class RecoveryKey(SQLModel, table=True):
    """The organisation's recovery public key (X25519); its private half never reaches here."""

    __tablename__ = "recovery_key"
    kid: str = Field(primary_key=True, max_length=16)
    public_key: str = Field(max_length=64)
    active: bool = True
    created_at: dt.datetime = Field(default_factory=utcnow)


class DeviceEscrow(SQLModel, table=True):
    """A device's data key sealed to the recovery key (app.storage.recovery): the latest one."""

    __tablename__ = "device_escrow"
    device_id: str = Field(primary_key=True, max_length=40)
    kid: str = Field(max_length=16)
    escrow: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_at: dt.datetime = Field(default_factory=utcnow)


class DossierFact(SQLModel, table=True):
    """The readable facts of one dossier that oversight figures count (names nobody), kept by
    the sync service where records are saved (server/services/reports.py)."""

    __tablename__ = "dossier_fact"
    __table_args__ = (
        Index("ix_dossier_fact_ward_day", "ward_code", "received_day"),
        Index("ix_dossier_fact_ward_term", "ward_code", "id_term"),
    )
    entity_id: str = Field(primary_key=True, max_length=40)
    ward_code: str = Field(max_length=10)
    procedure_code: str | None = Field(default=None, max_length=40)
    status: int | None = None
    channel: int | None = None
    received_day: str | None = Field(default=None, max_length=10)  # Vietnam day, ISO
    received_week: str | None = Field(default=None, max_length=10)  # its Monday
    appointment_day: str | None = Field(default=None, max_length=10)
    finished_day: str | None = Field(default=None, max_length=10)  # Vietnam day it finished
    code: str | None = Field(default=None, max_length=40)  # the dossier code (names no one)
    # The duplicate check (migration 0009): the keyed term of the ID number under the ward's
    # key (app/domain/duplicates.py), never the number.
    id_term: str | None = Field(default=None, max_length=32)


class ReferenceVersion(SQLModel, table=True):
    """One version of reference data an admin published (server/services/reference.py):
    `kind` "catalogue" (the province's procedures, merged onto the shipped list) or
    "calendar" (make-up working days and extra holidays). Never updated: a change is a new
    version, and the newest of a kind is the one in force."""

    __tablename__ = "reference_version"
    __table_args__ = (UniqueConstraint("kind", "version", name="uq_reference_version"),)
    id: int | None = Field(default=None, sa_column=Column(BIG_ID, primary_key=True))
    kind: str = Field(max_length=20)
    version: int
    created_at: dt.datetime = Field(default_factory=utcnow)
    created_by: str = Field(default="", max_length=100)
    source: str = Field(default="", max_length=300)  # the imported file's name
    body: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
