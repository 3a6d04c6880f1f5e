"""reference_version: the province's procedure catalogue and the working calendar, versioned

An admin publishes each (`commune procedures import --db`, `commune admin calendar --db`);
devices receive the newest by `GET /sync/reference`, and the push check honours every version
(app.domain.records.Honoured).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reference_version",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False, server_default=""),
        sa.Column("source", sa.String(300), nullable=False, server_default=""),
        sa.Column("body", sa.JSON, nullable=False),
        sa.UniqueConstraint("kind", "version", name="uq_reference_version"),
    )


def downgrade() -> None:
    op.drop_table("reference_version")
