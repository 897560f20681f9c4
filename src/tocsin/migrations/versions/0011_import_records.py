"""Import ledger: the source id of every object `tocsin import` wrote, so a re-run updates it.

A new table only: safe to apply while processes of the previous release run (they never touch
it).

Revision ID: 0011
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "import_records",
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("source_id", sa.String(length=200), nullable=False),
        sa.Column("object_id", sa.Uuid(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", "kind", "source_id", name=op.f("pk_import_records")),
    )
    op.create_index(
        op.f("ix_import_records_object_id"), "import_records", ["object_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_import_records_object_id"), table_name="import_records")
    op.drop_table("import_records")
