"""Process registry: every `tocsin serve` and `tocsin worker` keeps a row up to date, so
`tocsin status` can say which processes run and when each was last heard of.

A new table only: safe to apply while processes of the previous release run (they do not
know the table and never touch it).

Revision ID: 0012
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "processes",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "api", "worker", "api+worker", name="processkind", native_enum=False, length=20
            ),
            nullable=False,
        ),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=50), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_processes")),
    )
