"""change_log.device_id: the device whose push wrote each change

The pull leaves out records whose latest change the caller's own device pushed. It found that
device in audit_log, which has no index for it (a scan per pull page); the change log row the
pull already reads now names it. Rows written before this revision get it from audit_log, once.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("change_log") as batch_op:
        batch_op.add_column(sa.Column("device_id", sa.String(length=40), nullable=True))
    # UPDATE ... FROM (PostgreSQL, SQLite 3.33+): one join, not one audit_log scan per row.
    op.execute(
        """
        UPDATE change_log SET device_id = audit_log.device_id
        FROM audit_log
        WHERE audit_log.action IN ('change', 'conflict')
          AND audit_log.entity = change_log.entity
          AND audit_log.entity_id = change_log.entity_id
          AND audit_log.version = change_log.version
        """
    )


def downgrade() -> None:
    with op.batch_alter_table("change_log") as batch_op:
        batch_op.drop_column("device_id")
