"""recovery_key and device_escrow: the organisation's recovery public key, devices' escrows

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recovery_key",
        sa.Column("kid", sa.String(length=16), primary_key=True),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "device_escrow",
        sa.Column("device_id", sa.String(length=40), primary_key=True),
        sa.Column("kid", sa.String(length=16), nullable=False),
        sa.Column("escrow", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("device_escrow")
    op.drop_table("recovery_key")
