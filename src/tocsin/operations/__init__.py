"""Running Tocsin: the process registry, `tocsin status`, SQLite backups, the settings reference."""
