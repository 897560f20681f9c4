"""Routing: alert -> (team, escalation policy, service)."""
