"""The lookups stamp: one row that triggers set to a new random value with every change to
integrations, services or escalation policies, in the changing transaction.

Each process keeps the integration and route lookups of the ingest path and checks this one
row per lookup instead of reading them again (tocsin/store/stamp.py). The triggers make every
writer, this release's or the previous one's, an importer or an operator's own SQL, change
the stamp, so a revoked key is refused by every process at its next request.

A new table and triggers only: safe while processes of the previous release run (they never
read the stamp). A SQLite migration that rebuilds one of these tables later (batch mode)
drops its triggers and must create them again.

Revision ID: 0022
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0019"
branch_labels = None
depends_on = None

TABLES = ("integrations", "services", "escalation_policies")
EVENTS = ("INSERT", "UPDATE", "DELETE")
FUNCTION = "tocsin_stamp_ingest_lookups"


def upgrade() -> None:
    stamp = op.create_table(
        "ingest_lookups_stamp",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_lookups_stamp")),
    )
    op.bulk_insert(stamp, [{"id": 1, "version": 0}])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                UPDATE ingest_lookups_stamp
                SET version = floor(random() * 9007199254740991)::bigint
                WHERE id = 1;
                RETURN NULL;
            END
            $$
            """
        )
        for table in TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_stamp_lookups"
                f" AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}"
                f" FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()"
            )
        return
    # SQLite: row triggers only, one per event.
    for table in TABLES:
        for event in EVENTS:
            op.execute(
                f"CREATE TRIGGER {table}_stamp_lookups_{event.lower()} AFTER {event} ON {table}"
                " BEGIN UPDATE ingest_lookups_stamp SET version = random() WHERE id = 1; END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_stamp_lookups ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}()")
    else:
        for table in TABLES:
            for event in EVENTS:
                op.execute(f"DROP TRIGGER IF EXISTS {table}_stamp_lookups_{event.lower()}")
    op.drop_table("ingest_lookups_stamp")
