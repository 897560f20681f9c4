"""One due-row queue: the same lease columns on escalation timers, deliveries and heartbeat
monitors (`lease_owner`, `lease_until`, `attempts`, `parked_at`), claimed by one helper
(tocsin/store/queue.py).

Timers had `claimed_by` for the owner, deliveries `lease_expires_at` for the lease's end:
the new columns are added and filled from them, and the old ones are kept and still written
for one release, so processes of the previous release running during a rolling upgrade see
the new workers' leases and the new workers see theirs. The next release drops them.

Added columns only (nullable, or with a server default): safe to apply while processes of
the previous release run.

Revision ID: 0019
Revises: 0021
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0021"
branch_labels = None
depends_on = None


def _when(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=True)


def upgrade() -> None:
    op.add_column("escalation_jobs", sa.Column("lease_owner", sa.String(100), nullable=True))
    op.add_column("escalation_jobs", _when("parked_at"))
    op.execute("UPDATE escalation_jobs SET lease_owner = claimed_by WHERE claimed_by IS NOT NULL")
    op.execute(
        "UPDATE escalation_jobs SET parked_at = executed_at "
        "WHERE outcome = 'parked' AND executed_at IS NOT NULL"
    )

    op.add_column("deliveries", _when("lease_until"))
    op.add_column("deliveries", _when("parked_at"))
    op.execute(
        "UPDATE deliveries SET lease_until = lease_expires_at WHERE lease_expires_at IS NOT NULL"
    )

    op.add_column("heartbeat_monitors", sa.Column("lease_owner", sa.String(100), nullable=True))
    op.add_column("heartbeat_monitors", _when("lease_until"))
    op.add_column(
        "heartbeat_monitors",
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )
    op.add_column("heartbeat_monitors", _when("parked_at"))


def downgrade() -> None:
    with op.batch_alter_table("heartbeat_monitors") as batch:
        for column in ("parked_at", "attempts", "lease_until", "lease_owner"):
            batch.drop_column(column)
    with op.batch_alter_table("deliveries") as batch:
        for column in ("parked_at", "lease_until"):
            batch.drop_column(column)
    with op.batch_alter_table("escalation_jobs") as batch:
        for column in ("parked_at", "lease_owner"):
            batch.drop_column(column)
