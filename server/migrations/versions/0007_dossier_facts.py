"""dossier_fact: the readable facts of each dossier, narrow, for oversight figures in SQL

Extracting JSON fields from every record (seven per dossier) took over 2 s for 100,000 dossiers
on SQLite; this projection holds only what the figures read (ward, procedure, status, channel,
the Vietnam day and week of receipt, the appointment day, the Vietnam day it finished) and names
nobody. The sync service keeps it up to date where records are saved; existing dossiers are
projected here.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from server.services.reports import fact_values

    facts = op.create_table(
        "dossier_fact",
        sa.Column("entity_id", sa.String(40), primary_key=True),
        sa.Column("ward_code", sa.String(10), nullable=False),
        sa.Column("procedure_code", sa.String(40), nullable=True),
        sa.Column("status", sa.Integer, nullable=True),
        sa.Column("channel", sa.Integer, nullable=True),
        sa.Column("received_day", sa.String(10), nullable=True),
        sa.Column("received_week", sa.String(10), nullable=True),
        sa.Column("appointment_day", sa.String(10), nullable=True),
        sa.Column("finished_day", sa.String(10), nullable=True),
    )
    op.create_index("ix_dossier_fact_ward_day", "dossier_fact", ["ward_code", "received_day"])
    conn = op.get_bind()
    rows = conn.execute(
        sa.text("SELECT entity_id, ward_code, fields FROM record WHERE entity = 'dossier'")
    ).all()
    batch = []
    for entity_id, ward_code, fields in rows:
        stored = json.loads(fields) if isinstance(fields, str) else fields
        row = fact_values(entity_id, ward_code, stored)
        batch.append({k: v for k, v in row.items() if k in facts.c})  # later columns: later
        if len(batch) >= 5000:
            conn.execute(facts.insert(), batch)
            batch = []
    if batch:
        conn.execute(facts.insert(), batch)


def downgrade() -> None:
    op.drop_index("ix_dossier_fact_ward_day", table_name="dossier_fact")
    op.drop_table("dossier_fact")
