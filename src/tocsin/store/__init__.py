"""The store: everything that differs between SQLite and PostgreSQL, behind one set of types."""
