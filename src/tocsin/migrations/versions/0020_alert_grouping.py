"""Alert grouping: a service's (or integration's) group_by keys and window, and the group an
incident holds.

New nullable columns, or columns with server defaults, and one index only: safe to apply
while processes of the previous release run (they never read the new columns; a service or
integration they create gets no grouping, as before).

Revision ID: 0020
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0020"
down_revision = "0017"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("services") as batch:
        batch.add_column(sa.Column("group_by", JSON, nullable=False, server_default="[]"))
        batch.add_column(
            sa.Column("group_window_seconds", sa.Integer(), nullable=False, server_default="300")
        )
    with op.batch_alter_table("integrations") as batch:
        batch.add_column(sa.Column("group_by", JSON, nullable=True))
        batch.add_column(sa.Column("group_window_seconds", sa.Integer(), nullable=True))
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("group_key", sa.String(length=128), nullable=True))
        # Ingest finds a group's active incident by key and status, once per batch.
        batch.create_index("ix_incidents_group_key_status", ["group_key", "status"])


def downgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.drop_index("ix_incidents_group_key_status")
        batch.drop_column("group_key")
    with op.batch_alter_table("integrations") as batch:
        batch.drop_column("group_window_seconds")
        batch.drop_column("group_by")
    with op.batch_alter_table("services") as batch:
        batch.drop_column("group_window_seconds")
        batch.drop_column("group_by")
