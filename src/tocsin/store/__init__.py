"""The store: every difference between SQLite and PostgreSQL lives in this package, behind
functions named for what they do, so that domain code never asks which database it is on.

- `schema`: the declarative Base, ids, and column types stored differently per backend.
- `engine`: engines and session factories tuned per backend.
- `inline`: SQLite transactions run inline (its single writer held briefly).
- `quickreads`: the ingest path's point reads, straight on the driver.
- `queue`: the due-row queue: claiming, leasing, parking and releasing due rows of every kind.
"""
