"""Schedules: schedules, layers, participants, restrictions, overrides, calendar tokens.

A schedule stores its definition only (layers with a wall-clock handoff, restriction windows
as JSON, participants and override users as rows so "which schedules is this user in" is an
index probe); shifts are always computed, never stored.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], name=op.f("fk_schedules_team_id_teams")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedules")),
        sa.UniqueConstraint("team_id", "name", name="uq_schedules_team_name"),
    )
    op.create_index(op.f("ix_schedules_team_id"), "schedules", ["team_id"], unique=False)
    op.create_table(
        "schedule_layers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("schedule_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "rotation",
            sa.Enum("hourly", "daily", "weekly", name="rotation", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("turn_length", sa.Integer(), nullable=False),
        # Local wall-clock time in the schedule's zone: deliberately without a zone.
        sa.Column("handoff", sa.DateTime(), nullable=False),
        sa.Column(
            "restrictions",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "turn_length >= 1", name=op.f("ck_schedule_layers_turn_length_positive")
        ),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["schedules.id"],
            name=op.f("fk_schedule_layers_schedule_id_schedules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule_layers")),
        sa.UniqueConstraint("schedule_id", "position", name="uq_schedule_layers_schedule_position"),
    )
    op.create_table(
        "schedule_participants",
        sa.Column("layer_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["layer_id"],
            ["schedule_layers.id"],
            name=op.f("fk_schedule_participants_layer_id_schedule_layers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_schedule_participants_user_id_users")
        ),
        sa.PrimaryKeyConstraint(
            "layer_id", "position", "user_id", name=op.f("pk_schedule_participants")
        ),
    )
    op.create_index(
        op.f("ix_schedule_participants_user_id"),
        "schedule_participants",
        ["user_id"],
        unique=False,
    )
    op.create_table(
        "schedule_overrides",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("schedule_id", sa.Uuid(), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('"end" > start', name=op.f("ck_schedule_overrides_end_after_start")),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_schedule_overrides_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["schedules.id"],
            name=op.f("fk_schedule_overrides_schedule_id_schedules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule_overrides")),
    )
    op.create_index(
        "ix_schedule_overrides_schedule_end",
        "schedule_overrides",
        ["schedule_id", "end"],
        unique=False,
    )
    op.create_table(
        "schedule_override_users",
        sa.Column("override_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["override_id"],
            ["schedule_overrides.id"],
            name=op.f("fk_schedule_override_users_override_id_schedule_overrides"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_schedule_override_users_user_id_users")
        ),
        sa.PrimaryKeyConstraint("override_id", "user_id", name=op.f("pk_schedule_override_users")),
    )
    op.create_index(
        op.f("ix_schedule_override_users_user_id"),
        "schedule_override_users",
        ["user_id"],
        unique=False,
    )
    op.create_table(
        "calendar_tokens",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_calendar_tokens_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_calendar_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_calendar_tokens_token_hash")),
    )
