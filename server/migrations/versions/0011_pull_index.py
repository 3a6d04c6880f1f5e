"""change_log(ward_code, seq): a ward-scoped pull reads its wards' changes after its cursor

Without it every pull of a device scoped to a few wards scanned the whole change log after
its cursor (issue 13, bench/server_load.py: 500 devices of 126 wards).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_change_log_ward_seq", "change_log", ["ward_code", "seq"])


def downgrade() -> None:
    op.drop_index("ix_change_log_ward_seq", table_name="change_log")
