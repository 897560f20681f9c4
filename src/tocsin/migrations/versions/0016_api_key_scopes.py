"""API keys get a scope (read, respond, full), an optional team and an optional expiry.

Existing keys keep `full` (the server default), no team and no expiry, so they work as
before. New nullable columns and a defaulted one: safe to apply while processes of the
previous release run (they never read the new columns, and their inserts get `full`).

Revision ID: 0016
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(
            sa.Column(
                "scope",
                sa.Enum("read", "respond", "full", name="keyscope", native_enum=False, length=16),
                nullable=False,
                server_default="full",
            )
        )
        batch.add_column(sa.Column("team_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_foreign_key(
            batch.f("fk_api_keys_team_id_teams"), "teams", ["team_id"], ["id"], ondelete="CASCADE"
        )


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_constraint(batch.f("fk_api_keys_team_id_teams"), type_="foreignkey")
        batch.drop_column("expires_at")
        batch.drop_column("team_id")
        batch.drop_column("scope")
