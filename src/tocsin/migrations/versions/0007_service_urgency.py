"""Service urgency: a service may make all its incidents page as high or as low urgency.

Existing services keep today's behaviour through the server default `severity_based`
(critical and high severities page as high urgency, the rest as low). A plain string column
like the other enums, so adding a value later needs no type change on PostgreSQL.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode keeps SQLite happy; adding a NOT NULL column with a constant default is a
    # plain ALTER TABLE there, so the table is not rebuilt.
    with op.batch_alter_table("services", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "urgency",
                sa.Enum(
                    "severity_based",
                    "high",
                    "low",
                    name="serviceurgency",
                    native_enum=False,
                    length=20,
                ),
                nullable=False,
                server_default="severity_based",
            )
        )
