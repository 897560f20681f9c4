"""Heartbeat monitors: jobs that must ping every so often, or an alert opens."""
