"""Technical services: routing key, owning team, escalation policy, status."""
