"""Incidents: the table, the lifecycle state machine, deduplication, the timeline."""
