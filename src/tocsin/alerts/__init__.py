"""The Alert table, fingerprints, and the ingest pipeline."""
