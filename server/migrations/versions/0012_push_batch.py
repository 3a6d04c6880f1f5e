"""push_batch: each device's last push batches, by the id the device gave, with their answers

A device whose push answer was lost (a cut link) asks which of its batches were committed and
gets their answers (POST /sync/batches) instead of sending them again: two whole batches can
then be in flight and a cut still resends at most one (issue 13). Written in the transaction
that applies the batch; each device keeps only its last few.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "push_batch",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("device_id", sa.String(100), nullable=False),
        sa.Column("batch_id", sa.String(40), nullable=False),
        sa.Column("answer", sa.JSON, nullable=False),
        sa.Column("committed_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("device_id", "batch_id", name="uq_push_batch_device"),
    )


def downgrade() -> None:
    op.drop_table("push_batch")
