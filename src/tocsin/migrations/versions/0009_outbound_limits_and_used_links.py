"""Wrong verification codes counted per hour, and one-click links that work once.

`contact_methods.verification_failures_since` starts the hour the wrong-code count belongs
to: asking for a new code no longer resets the count, the hour passing does. `used_links`
remembers each one-click link that acted, until it would have expired anyway.

Revision ID: 0009
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contact_methods", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("verification_failures_since", sa.DateTime(timezone=True), nullable=True)
        )

    op.create_table(
        "used_links",
        sa.Column("link_id", sa.String(length=64), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_used_links_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_used_links_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("link_id", name=op.f("pk_used_links")),
    )
    with op.batch_alter_table("used_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_used_links_incident_id"), ["incident_id"])
        batch_op.create_index(batch_op.f("ix_used_links_expires_at"), ["expires_at"])
