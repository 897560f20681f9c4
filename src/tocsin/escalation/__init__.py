"""Escalation policies and levels, escalation timers, the escalation step."""
