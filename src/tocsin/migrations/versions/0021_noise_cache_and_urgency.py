"""Noise rules' cache stamp; urgency by support hours with adaptive downgrade; responders.

- `noise_rules_version`: one row whose stamp changes with every silence or inhibition rule
  change, so each process knows when its parsed copy is stale.
- `services.support_hours`: weekly windows in a zone; with urgency `support_hours` a new
  incident is high urgency inside them and low outside.
- `incidents.urgency`: decided when the incident opens (empty for older incidents, which keep
  being paged by severity and their service as before).
- `paging_preferences`: per user, after how many pages in an hour low-urgency pages go to a
  quiet contact method instead of the usual rules.
- `escalation_jobs.responder_user_id` / `responder_policy_id`: a timer that pages an added
  responder (a person, or an escalation policy's first level) through the worker.

New tables and nullable columns only: safe while processes of the previous release run (they
never read them). Those processes do not change the stamp when they change a silence, so run
the new release everywhere before relying on the cache.

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    stamp = op.create_table(
        "noise_rules_version",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_noise_rules_version")),
    )
    op.bulk_insert(stamp, [{"id": 1, "version": 0}])
    with op.batch_alter_table("services") as batch:
        batch.add_column(sa.Column("support_hours", JSON, nullable=True))
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("urgency", sa.String(length=10), nullable=True))
    with op.batch_alter_table("escalation_jobs") as batch:
        batch.add_column(sa.Column("responder_user_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("responder_policy_id", sa.Uuid(), nullable=True))
    op.create_table(
        "paging_preferences",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("pages_per_hour", sa.Integer(), nullable=True),
        sa.Column("quiet_contact_method_id", sa.Uuid(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_paging_preferences_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["quiet_contact_method_id"],
            ["contact_methods.id"],
            name=op.f("fk_paging_preferences_quiet_contact_method_id_contact_methods"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_paging_preferences")),
    )


def downgrade() -> None:
    op.drop_table("paging_preferences")
    with op.batch_alter_table("escalation_jobs") as batch:
        batch.drop_column("responder_policy_id")
        batch.drop_column("responder_user_id")
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("urgency")
    with op.batch_alter_table("services") as batch:
        batch.drop_column("support_hours")
    op.drop_table("noise_rules_version")
