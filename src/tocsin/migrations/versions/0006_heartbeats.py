"""Heartbeat monitors and the inbound email integration.

Heartbeat monitors get a table with an indexed due_at, so the worker finds late monitors in
one index range scan; email gets a table mapping Message-IDs to dedup keys, so replies thread
onto the incident their first message opened.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "heartbeat_monitors",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("service_id", sa.Uuid(), nullable=False),
        sa.Column("integration_id", sa.Uuid(), nullable=False),
        sa.Column("interval_seconds", sa.Integer(), nullable=False),
        sa.Column("grace_seconds", sa.Integer(), nullable=False),
        sa.Column(
            "severity",
            sa.Enum(
                "critical",
                "high",
                "medium",
                "low",
                "info",
                name="severity",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("key_prefix", sa.String(length=16), nullable=False),
        sa.Column(
            "state",
            sa.Enum("waiting", "up", "late", name="heartbeatstate", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("last_ping_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("late_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("incident_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["services.id"],
            name=op.f("fk_heartbeat_monitors_service_id_services"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["integrations.id"],
            name=op.f("fk_heartbeat_monitors_integration_id_integrations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_heartbeat_monitors_incident_id_incidents"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_heartbeat_monitors")),
        sa.UniqueConstraint("integration_id", name=op.f("uq_heartbeat_monitors_integration_id")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_heartbeat_monitors_key_hash")),
    )
    with op.batch_alter_table("heartbeat_monitors", schema=None) as batch_op:
        batch_op.create_index("ix_heartbeat_monitors_due_at", ["due_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_heartbeat_monitors_service_id"), ["service_id"], unique=False
        )

    op.create_table(
        "email_threads",
        sa.Column("integration_id", sa.Uuid(), nullable=False),
        sa.Column("message_id", sa.String(length=512), nullable=False),
        sa.Column("dedup_key", sa.String(length=512), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["integrations.id"],
            name=op.f("fk_email_threads_integration_id_integrations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("integration_id", "message_id", name=op.f("pk_email_threads")),
    )
