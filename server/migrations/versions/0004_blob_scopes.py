"""Attachments bound to the scopes that hold their bytes: blob_grant, blob_claim, blob_upload

A file was readable by anyone whose scope held an attachment record naming its hash, so naming
another ward's hash in a record of one's own ward gave its bytes away; and declaring an upload
of a stored hash answered "complete" to anyone. Now a scope (ward, family) reads a file only
through a grant, made when one of its users has sent all the bytes (or could already read them),
and every user uploads for themselves (`blob_upload`, one row per file and user, replaces
`upload`, one row per file).

Existing data: completed uploads are kept under their uploader's user; uploads in progress are
dropped (their partial files are named per user now) and start again from offset 0. Each
attachment record's creator (its first change in audit_log) gets a grant for the record's scope
if that user completed the upload of the file, otherwise a claim that becomes a grant once they
send it.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_upload = sa.table(
    "upload",
    sa.column("sha256", sa.String),
    sa.column("size", sa.BigInteger),
    sa.column("complete", sa.Boolean),
    sa.column("device_id", sa.String),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
_device = sa.table("device", sa.column("id", sa.String), sa.column("user_id", sa.Integer))
_record = sa.table(
    "record",
    sa.column("entity", sa.String),
    sa.column("entity_id", sa.String),
    sa.column("ward_code", sa.String),
    sa.column("family", sa.String),
    sa.column("blob_sha256", sa.String),
)
_audit = sa.table(
    "audit_log",
    sa.column("id", sa.BigInteger),
    sa.column("user_id", sa.Integer),
    sa.column("action", sa.String),
    sa.column("entity", sa.String),
    sa.column("entity_id", sa.String),
)


def upgrade() -> None:
    blob_upload = op.create_table(
        "blob_upload",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("device_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"]),
        sa.PrimaryKeyConstraint("sha256", "user_id"),
    )
    blob_grant = op.create_table(
        "blob_grant",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("ward_code", sa.String(length=10), nullable=False),
        sa.Column("family", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256", "ward_code", "family"),
    )
    blob_claim = op.create_table(
        "blob_claim",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("ward_code", sa.String(length=10), nullable=False),
        sa.Column("family", sa.String(length=20), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"]),
        sa.PrimaryKeyConstraint("sha256", "ward_code", "family", "user_id"),
    )
    _carry_over(op.get_bind(), blob_upload, blob_grant, blob_claim)
    op.drop_table("upload")


def _carry_over(conn, blob_upload, blob_grant, blob_claim) -> None:
    now = dt.datetime.now(dt.UTC)
    done = conn.execute(
        sa.select(_upload.c.sha256, _upload.c.size, _upload.c.device_id, _upload.c.created_at,
                  _device.c.user_id)
        .join(_device, _device.c.id == _upload.c.device_id)
        .where(_upload.c.complete.is_(True))
    ).all()
    uploaded = {(sha, user) for sha, _size, _dev, _at, user in done}
    if done:
        conn.execute(
            blob_upload.insert(),
            [
                {"sha256": sha, "user_id": user, "size": size, "offset": size, "complete": True,
                 "device_id": dev, "created_at": at}
                for sha, size, dev, at, user in done
            ],
        )
    first_change = (
        sa.select(_audit.c.entity_id, sa.func.min(_audit.c.id).label("first"))
        .where(_audit.c.action == "change", _audit.c.entity == "attachment")
        .group_by(_audit.c.entity_id)
        .subquery()
    )
    named = conn.execute(
        sa.select(_record.c.blob_sha256, _record.c.ward_code, _record.c.family, _audit.c.user_id)
        .join(first_change, first_change.c.entity_id == _record.c.entity_id)
        .join(_audit, _audit.c.id == first_change.c.first)
        .where(_record.c.entity == "attachment", _record.c.blob_sha256.is_not(None))
    ).all()
    grants, claims = set(), set()
    for sha, ward, family, user in named:
        if (sha, user) in uploaded:
            grants.add((sha, ward, family))
        elif user is not None:
            claims.add((sha, ward, family, user))
    if grants:
        conn.execute(
            blob_grant.insert(),
            [{"sha256": s, "ward_code": w, "family": f, "created_at": now} for s, w, f in grants],
        )
    if claims:
        conn.execute(
            blob_claim.insert(),
            [
                {"sha256": s, "ward_code": w, "family": f, "user_id": u, "created_at": now}
                for s, w, f, u in claims
            ],
        )


def downgrade() -> None:
    op.create_table(
        "upload",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("device_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256"),
    )
    op.execute(
        """
        INSERT INTO upload (sha256, size, "offset", complete, device_id, created_at)
        SELECT sha256, MIN(size), MIN(size), true, MIN(device_id), MIN(created_at)
        FROM blob_upload WHERE complete GROUP BY sha256
        """
    )
    op.drop_table("blob_claim")
    op.drop_table("blob_grant")
    op.drop_table("blob_upload")
