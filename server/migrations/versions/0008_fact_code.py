"""dossier_fact.code: the dossier's code, for the lists behind the overdue and late figures

A supervisor's snapshot lists the dossiers behind a ward's overdue and late figures by their
code (Circular 01/2018; it names the dossier, not a person). Reading it from each record's JSON
cost over a second for 100,000 dossiers on PostgreSQL; the projection now holds it. Existing
facts get it from their records here.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("dossier_fact", sa.Column("code", sa.String(40), nullable=True))
    conn = op.get_bind()
    rows = conn.execute(
        sa.text("SELECT entity_id, fields FROM record WHERE entity = 'dossier'")
    ).all()
    facts = sa.table("dossier_fact", sa.column("entity_id"), sa.column("code"))
    update = (
        facts.update()
        .where(facts.c.entity_id == sa.bindparam("p_id"))
        .values(code=sa.bindparam("p_code"))
    )
    batch = []
    for entity_id, fields in rows:
        stored = json.loads(fields) if isinstance(fields, str) else fields
        code = (stored.get("code") or {}).get("value") if isinstance(stored, dict) else None
        if isinstance(code, str):
            batch.append({"p_id": entity_id, "p_code": code[:40]})
        if len(batch) >= 5000:
            conn.execute(update, batch)
            batch = []
    if batch:
        conn.execute(update, batch)


def downgrade() -> None:
    with op.batch_alter_table("dossier_fact") as table:
        table.drop_column("code")
