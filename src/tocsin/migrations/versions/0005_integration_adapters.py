"""Integration adapters: per-integration options, templates and rate limit; the payload log
behind the debug view; change events; delivery ids already seen (SNS retries).

The new integration types need no schema change: the type column is a plain string.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    # batch mode so SQLite, which cannot add columns with defaults freely, rebuilds the table.
    with op.batch_alter_table("integrations") as batch:
        batch.add_column(sa.Column("options", JSON, nullable=False, server_default="{}"))
        batch.add_column(sa.Column("templates", JSON, nullable=False, server_default="{}"))
        batch.add_column(sa.Column("rate_limit_per_minute", sa.Integer(), nullable=True))
    op.create_table(
        "integration_payloads",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("integration_id", sa.Uuid(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("content_type", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("body_truncated", sa.Boolean(), nullable=False),
        sa.Column("mapping", JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["integrations.id"],
            name=op.f("fk_integration_payloads_integration_id_integrations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_integration_payloads")),
    )
    op.create_index(
        "ix_integration_payloads_integration_received",
        "integration_payloads",
        ["integration_id", "received_at"],
    )
    op.create_table(
        "change_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("integration_id", sa.Uuid(), nullable=True),
        sa.Column("service_id", sa.Uuid(), nullable=True),
        sa.Column("summary", sa.String(length=1024), nullable=False),
        sa.Column("source", sa.String(length=512), nullable=False),
        sa.Column("happened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("custom_details", JSON, nullable=False),
        sa.Column("links", JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["integrations.id"],
            name=op.f("fk_change_events_integration_id_integrations"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["services.id"],
            name=op.f("fk_change_events_service_id_services"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_events")),
    )
    op.create_index("ix_change_events_service_at", "change_events", ["service_id", "received_at"])
    op.create_index(op.f("ix_change_events_integration_id"), "change_events", ["integration_id"])
    op.create_table(
        "inbound_deliveries",
        sa.Column("integration_id", sa.Uuid(), nullable=False),
        sa.Column("delivery_id", sa.String(length=200), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["integrations.id"],
            name=op.f("fk_inbound_deliveries_integration_id_integrations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "integration_id", "delivery_id", name=op.f("pk_inbound_deliveries")
        ),
    )
    op.create_index(
        op.f("ix_inbound_deliveries_received_at"), "inbound_deliveries", ["received_at"]
    )
