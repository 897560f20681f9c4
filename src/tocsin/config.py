"""Settings, read from TOCSIN_* environment variables."""

from __future__ import annotations

import secrets
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path("var")


class Settings(BaseSettings):
    """Everything an operator can set; each field is TOCSIN_<NAME> in the environment."""

    model_config = SettingsConfigDict(env_prefix="TOCSIN_", extra="ignore")

    database_url: str = Field(
        default=f"sqlite+aiosqlite:///{DEFAULT_DATA_DIR / 'tocsin.db'}",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///path or postgresql+asyncpg://...",
    )
    host: str = "127.0.0.1"
    port: int = 8080
    log_level: str = "info"
    # Signs one-click links and other tokens. A random key per process is safe for a laptop
    # but breaks links across restarts and nodes, so production sets it.
    secret_key: str = Field(default_factory=lambda: secrets.token_urlsafe(32))
    public_url: str = ""
    max_body_bytes: int = 512 * 1024
    # Group commit: how many ingest requests one transaction may carry.
    ingest_batch_max: int = 64
    db_pool_size: int = 10

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def base_url(self) -> str:
        """The URL people and tools reach this server on, used in links we hand out."""
        if self.public_url:
            return self.public_url.rstrip("/")
        return f"http://{self.host}:{self.port}"
