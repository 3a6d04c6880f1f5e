"""dossier_fact.id_term: the ward-wide duplicate check

`id_term` is the keyed term of a dossier's ID number under its ward's key
(app/domain/duplicates.py); the check answers with the dossier's code (0008). The terms need
the server data key, which migrations do not hold: the API fills them at its first start after
this migration (`server.services.duplicates.index_on_start`, once per data key).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("dossier_fact", sa.Column("id_term", sa.String(32), nullable=True))
    op.create_index("ix_dossier_fact_ward_term", "dossier_fact", ["ward_code", "id_term"])


def downgrade() -> None:
    op.drop_index("ix_dossier_fact_ward_term", table_name="dossier_fact")
    with op.batch_alter_table("dossier_fact") as batch:
        batch.drop_column("id_term")
