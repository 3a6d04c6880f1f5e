"""device tokens expire; a refresh token renews them

device.token_expires_at: when the bearer token stops working. device.refresh_hash (unique) and
device.refresh_expires_at: the refresh token that renews it at /auth/refresh, until it has gone
unused too long. Tokens issued before this revision have no refresh token: they keep working
for a grace period of 30 days from the upgrade, after which the device enrols (or logs in) again.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

GRACE = dt.timedelta(days=30)


def upgrade() -> None:
    with op.batch_alter_table("device") as batch_op:
        batch_op.add_column(sa.Column("token_expires_at", sa.DateTime(timezone=True)))
        batch_op.add_column(sa.Column("refresh_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("refresh_expires_at", sa.DateTime(timezone=True)))
        batch_op.create_unique_constraint("uq_device_refresh_hash", ["refresh_hash"])
    device = sa.table("device", sa.column("token_expires_at", sa.DateTime(timezone=True)))
    op.execute(device.update().values(token_expires_at=dt.datetime.now(dt.UTC) + GRACE))


def downgrade() -> None:
    with op.batch_alter_table("device") as batch_op:
        batch_op.drop_constraint("uq_device_refresh_hash", type_="unique")
        batch_op.drop_column("refresh_expires_at")
        batch_op.drop_column("refresh_hash")
        batch_op.drop_column("token_expires_at")
