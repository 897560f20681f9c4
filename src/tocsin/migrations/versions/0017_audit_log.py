"""The audit log: one row per created, changed or deleted configuration object.

A new table only: safe to apply while processes of the previous release run (they write
no audit rows, so changes made through them are missing from the log until they restart).

Revision ID: 0017
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0017"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_entries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_user_id", sa.Uuid(), nullable=True),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("via_id", sa.Uuid(), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("object_type", sa.String(length=64), nullable=False),
        sa.Column("object_id", sa.String(length=200), nullable=False),
        sa.Column("team_id", sa.Uuid(), nullable=True),
        sa.Column(
            "changes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_entries")),
    )
    op.create_index("ix_audit_entries_at_id", "audit_entries", ["at", "id"])
    op.create_index("ix_audit_entries_object", "audit_entries", ["object_type", "object_id", "at"])
    op.create_index("ix_audit_entries_actor", "audit_entries", ["actor_user_id", "at"])


def downgrade() -> None:
    op.drop_table("audit_entries")
