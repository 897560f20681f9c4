"""The lookups stamp: one row whose value the database itself changes, by trigger, in the same
transaction as any change to the tables that the ingest path's kept lookups read.

Every alert looks up its integration by key and its service's route. Those rows change a
few times a day and are read hundreds of times a second, so each process keeps what it read
(`quickreads.kept_first`) and, per lookup, reads only this stamp: a primary-key read of a
one-row table. When the stamp differs from the one the kept values were read under, they are
all dropped and read again. A key revoked, an integration deactivated or a service archived
by any process (or by hand in SQL) is therefore refused by every process at its next request.

Triggers rather than a call in every route that changes these tables: the API, the web UI,
importers, heartbeat monitors, migrations and an operator's own SQL are covered alike, and a
route added later cannot forget it. The value is random, not a counter, so a database
recreated under the same URL can never come back with a value a process still holds.

The table is not part of `Base.metadata`: nothing writes it but the triggers, and it must not
be emptied with the data (a missing row only turns keeping off, see `quickreads`).

Whoever rebuilds one of the stamped tables in a migration (SQLite's batch mode copies a table
to a new one and drops the old, and its triggers with it) must create its triggers again:
tests/store/test_kept_lookups.py fails at head without them.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, MetaData, Table

# The tables whose changes change the stamp (the migration that made the triggers: 0022).
STAMPED_TABLES = frozenset({"integrations", "services", "escalation_policies"})

STAMP_ROW = 1

lookups_stamp = Table(
    "ingest_lookups_stamp",
    MetaData(),
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", BigInteger, nullable=False),
)
