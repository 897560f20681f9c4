"""Settings, read from TOCSIN_* environment variables."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

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
    log_format: Literal["text", "json"] = "text"
    # Signs one-click links and other tokens. A random key per process is safe for a laptop
    # but breaks links across restarts and nodes, so production sets it.
    secret_key: str = Field(default_factory=lambda: secrets.token_urlsafe(32))
    public_url: str = ""
    max_body_bytes: int = 512 * 1024
    # Group commit: how many ingest requests one transaction may carry.
    ingest_batch_max: int = 64
    db_pool_size: int = 20
    # Where an Amazon SNS signing certificate may be fetched from (regular expressions on
    # the whole URL). Only SNS's own hosts by default; tests add a loopback URL.
    sns_signing_cert_url_patterns: list[str] = Field(
        default=[r"^https://sns\.[a-zA-Z0-9\-]{3,}\.amazonaws\.com(\.cn)?/[^?#]*\.pem$"]
    )
    # Inbound email (docs/email-integration.md): an SMTP listener, off unless a port is set,
    # taking mail for <integration key>@<smtp_inbound_domain> (any domain when empty).
    smtp_listen_port: int | None = None
    smtp_listen_host: str = "127.0.0.1"
    smtp_inbound_domain: str = ""
    smtp_max_message_bytes: int = 10 * 1024 * 1024
    # [regex, severity] pairs tried on the subject in order; then headers, then keywords.
    smtp_severity_rules: list[tuple[str, str]] = Field(default_factory=list)
    # A subject matching this marks the message as a resolve; empty uses the built-in one.
    smtp_resolve_pattern: str = ""

    # Notifications (see docs/notifications.md). Email over SMTP:
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_from: str = "tocsin@localhost"
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_tls: bool = False  # implicit TLS (port 465)
    smtp_starttls: bool = False
    # SMS and voice through Twilio's REST API, or any channel registered under these names.
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_from: str = ""
    twilio_base_url: str = "https://api.twilio.com"
    sms_channel: str = "twilio_sms"
    voice_channel: str = "twilio_voice"
    # The generic HTTP SMS gateway channel (sms_channel = "http_sms"): $to and $body are
    # substituted into the template, escaped for the content type.
    http_sms_url: str = ""
    http_sms_method: str = "POST"
    http_sms_body_template: str = '{"to": "$to", "text": "$body"}'
    http_sms_content_type: str = "application/json"
    # Delivery: per-channel timeout, retries with exponential backoff, throttling per person.
    notify_timeout_seconds: float = 10.0
    notify_max_attempts: int = 5
    notify_backoff_seconds: float = 30.0
    notify_backoff_max_seconds: float = 900.0
    notify_batch_size: int = 20
    notify_burst: int = 3  # individual messages per contact method per window...
    notify_window_seconds: int = 300  # ...before the rest are bundled into one
    one_click_ttl_hours: int = 24
    verification_ttl_minutes: int = 30

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def base_url(self) -> str:
        """The URL people and tools reach this server on, used in links we hand out."""
        if self.public_url:
            return self.public_url.rstrip("/")
        return f"http://{self.host}:{self.port}"
