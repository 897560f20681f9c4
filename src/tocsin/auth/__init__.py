"""Users, API keys, passwords and permissions."""
