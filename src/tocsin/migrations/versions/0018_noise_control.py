"""Noise control: silences, inhibition rules, maintenance windows; why an alert was
suppressed; an acknowledged incident's snooze.

New tables and nullable columns only: safe to apply while processes of the previous release
run (they never read the new columns, and store alerts with them empty).

Revision ID: 0018
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0018"
down_revision = "0011"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _when(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "silences",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("team_id", sa.Uuid(), nullable=True),
        sa.Column("matchers", JSON, nullable=False),
        _when("starts_at"),
        _when("ends_at"),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        _when("created_at"),
        _when("expired_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_silences_team_id_teams"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_silences_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_silences")),
    )
    op.create_index("ix_silences_ends_at", "silences", ["ends_at"])
    op.create_table(
        "inhibition_rules",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("team_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("source_matchers", JSON, nullable=False),
        sa.Column("target_matchers", JSON, nullable=False),
        sa.Column("equal", JSON, nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        _when("created_at"),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name=op.f("fk_inhibition_rules_team_id_teams"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_inhibition_rules_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inhibition_rules")),
    )
    op.create_table(
        "maintenance_windows",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("service_id", sa.Uuid(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        _when("starts_at", nullable=True),
        _when("ends_at", nullable=True),
        sa.Column("weekdays", JSON, nullable=True),
        sa.Column("start_time", sa.String(length=5), nullable=True),
        sa.Column("duration_minutes", sa.Integer(), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        _when("created_at"),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["services.id"],
            name=op.f("fk_maintenance_windows_service_id_services"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_maintenance_windows_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maintenance_windows")),
    )
    op.create_index(
        op.f("ix_maintenance_windows_service_id"), "maintenance_windows", ["service_id"]
    )
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("suppressed_kind", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("suppressed_by", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("suppression_reason", sa.String(length=1024), nullable=True))
        batch.create_index("ix_alerts_suppressed_by", ["suppressed_by"])
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(_when("snoozed_until", nullable=True))
        # The worker looks for due snoozes every poll.
        batch.create_index("ix_incidents_snoozed_until", ["snoozed_until"])


def downgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.drop_index("ix_incidents_snoozed_until")
        batch.drop_column("snoozed_until")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_index("ix_alerts_suppressed_by")
        batch.drop_column("suppression_reason")
        batch.drop_column("suppressed_by")
        batch.drop_column("suppressed_kind")
    op.drop_table("maintenance_windows")
    op.drop_table("inhibition_rules")
    op.drop_table("silences")
