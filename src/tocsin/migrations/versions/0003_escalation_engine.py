"""Escalation engine: pages, job leases, policy snapshots and worker bookkeeping.

Timers gain a kind (level timeout or acknowledgement timeout), the escalation seq they were
made for, and lease columns so a worker that dies holding one loses it. Each incident gets an
escalation state row carrying the policy as it was when the incident opened, and every person
paged is a row in `pages`, unique per escalation step so a page is never written twice.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("escalation_policies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ack_timeout_minutes", sa.Integer(), nullable=True))

    with op.batch_alter_table("escalation_jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "kind",
                sa.Enum("level", "ack_timeout", name="jobkind", native_enum=False, length=20),
                nullable=False,
                server_default="level",
            )
        )
        batch_op.add_column(
            sa.Column("escalation_seq", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column(
                "outcome",
                sa.Enum("fired", "stale", name="joboutcome", native_enum=False, length=20),
                nullable=True,
            )
        )

    op.create_table(
        "incident_escalations",
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("policy_id", sa.Uuid(), nullable=True),
        sa.Column(
            "policy_snapshot",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "state",
            sa.Enum(
                "escalating",
                "direct",
                "exhausted",
                name="escalationstate",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("repeat", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_incident_escalations_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("incident_id", name=op.f("pk_incident_escalations")),
    )

    op.create_table(
        "pages",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("level_number", sa.Integer(), nullable=True),
        sa.Column("repeat", sa.Integer(), nullable=False),
        sa.Column("escalation_seq", sa.Integer(), nullable=False),
        sa.Column(
            "via",
            sa.Enum(
                "user",
                "schedule",
                "entire_team",
                "reassign",
                name="pagevia",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("schedule_id", sa.Uuid(), nullable=True),
        sa.Column("layer_id", sa.Uuid(), nullable=True),
        sa.Column("override_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_pages_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_pages_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["escalation_jobs.id"],
            name=op.f("fk_pages_job_id_escalation_jobs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pages")),
        sa.UniqueConstraint("incident_id", "escalation_seq", "user_id", name="uq_pages_step_user"),
    )
    with op.batch_alter_table("pages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_pages_incident_created", ["incident_id", "created_at"], unique=False
        )
        batch_op.create_index("ix_pages_user_created", ["user_id", "created_at"], unique=False)
