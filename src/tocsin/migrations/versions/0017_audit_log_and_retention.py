"""The audit log (one row per created, changed or deleted configuration object), and the
running totals of rows the retention step deleted (read by /metrics on every node).

New tables only: safe to apply while processes of the previous release run (they write no
audit rows, so changes made through them are missing from the log until they restart).

Revision ID: 0017
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0017"
down_revision = "0018"
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
    counts = op.create_table(
        "retention_counts",
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("purged", sa.BigInteger(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("kind", name=op.f("pk_retention_counts")),
    )
    op.bulk_insert(
        counts,
        [
            {"kind": kind, "purged": 0}
            for kind in ("incidents", "alerts", "timeline", "pages", "deliveries", "payload_log")
        ],
    )


def downgrade() -> None:
    op.drop_table("retention_counts")
    op.drop_table("audit_entries")
