"""Settings, read from TOCSIN_* environment variables.

Each setting's docstring is its documentation: `tocsin settings --markdown` turns the class
into docs/settings.md, and a test fails when that file no longer matches. A list or a
tuple is given as JSON (TOCSIN_SMTP_SEVERITY_RULES='[["db-prod", "critical"]]').
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATA_DIR = Path("var")


class Settings(BaseSettings):
    """Everything an operator can set; each field is TOCSIN_<NAME> in the environment."""

    model_config = SettingsConfigDict(
        env_prefix="TOCSIN_", extra="ignore", use_attribute_docstrings=True
    )

    database_url: str = f"sqlite+aiosqlite:///{DEFAULT_DATA_DIR / 'tocsin.db'}"
    """SQLAlchemy async URL of the database: `sqlite+aiosqlite:///path/to/tocsin.db` (one
    process, embedded) or `postgresql+asyncpg://user:password@host/dbname` (any number of
    API and worker processes)."""
    host: str = "127.0.0.1"
    """Address `tocsin serve` binds to; `0.0.0.0` to be reachable from other machines."""
    port: int = 8080
    """Port `tocsin serve` listens on."""
    log_level: str = "info"
    """Lowest level of log line written: `debug`, `info`, `warning` or `error`."""
    log_format: Literal["text", "json"] = "text"
    """`text`: one readable line per event. `json`: one JSON object a line, with `time`,
    `level`, `logger`, `message` and, where they apply, `request_id`, `incident_id`,
    `integration_id` (and `trace_id`, `span_id` while tracing)."""
    secret_key: str = Field(default_factory=lambda: secrets.token_urlsafe(32))
    """Signs one-click links and other tokens. The default, random per process, is fine on
    a laptop but breaks links across restarts and nodes: set it in production, the same on
    every process (`serve --processes`, `worker` and PostgreSQL refuse to start without
    it)."""
    public_url: str = ""
    """The URL people and tools reach Tocsin on (`https://tocsin.example.com`), used in
    links it hands out; empty means `http://<host>:<port>`."""
    max_body_bytes: int = 512 * 1024
    """Largest request body accepted; larger ones get 413 before being read."""
    ingest_batch_max: int = 64
    """Group commit: how many ingest requests one database transaction may carry."""
    db_pool_size: int = 20
    """Database connections each process keeps open (and as many more under load)."""
    sns_signing_cert_url_patterns: list[str] = Field(
        default=[r"^https://sns\.[a-zA-Z0-9\-]{3,}\.amazonaws\.com(\.cn)?/[^?#]*\.pem$"]
    )
    """Where an Amazon SNS signing certificate may be fetched from: regular expressions
    matched against the whole URL. Only SNS's own hosts by default."""
    smtp_listen_port: int | None = None
    """Inbound email (docs/email-integration.md): port of the SMTP listener that takes alerts
    by mail; off when unset."""
    smtp_listen_host: str = "127.0.0.1"
    """Address the inbound SMTP listener binds to."""
    smtp_inbound_domain: str = ""
    """Inbound mail is taken for `<integration key>@<this domain>`; any domain when empty."""
    smtp_max_message_bytes: int = 10 * 1024 * 1024
    """Largest inbound message accepted; larger ones are refused with 552."""
    smtp_severity_rules: list[tuple[str, str]] = Field(default_factory=list)
    """`[regex, severity]` pairs tried in order on an inbound subject; then headers, then
    keywords decide."""
    smtp_resolve_pattern: str = ""
    """A regular expression: an inbound subject matching it resolves instead of firing;
    empty uses the built-in markers."""
    smtp_host: str = "127.0.0.1"
    """Outgoing notification mail: SMTP server host."""
    smtp_port: int = 25
    """Outgoing notification mail: SMTP server port."""
    smtp_from: str = "tocsin@localhost"
    """Sender address of notification mail."""
    smtp_username: str = ""
    """SMTP login name, if the server wants one."""
    smtp_password: str = ""
    """SMTP password, if the server wants one."""
    smtp_tls: bool = False
    """Implicit TLS to the SMTP server (port 465)."""
    smtp_starttls: bool = False
    """STARTTLS to the SMTP server (port 587)."""
    twilio_account_sid: str = ""
    """SMS and voice through Twilio's REST API: the account SID."""
    twilio_auth_token: str = ""
    """Twilio auth token; also checks the signature of Twilio's SMS replies."""
    twilio_from: str = ""
    """The Twilio number messages and calls come from."""
    twilio_base_url: str = "https://api.twilio.com"
    """Base URL of the Twilio API (or a Twilio-compatible one)."""
    sms_channel: str = "twilio_sms"
    """Channel that sends SMS: `twilio_sms`, `http_sms` or a channel plugin's name."""
    voice_channel: str = "twilio_voice"
    """Channel that places voice calls."""
    http_sms_url: str = ""
    """The generic HTTP SMS gateway (`sms_channel = http_sms`): where to send."""
    http_sms_method: str = "POST"
    """HTTP method for the SMS gateway."""
    http_sms_body_template: str = '{"to": "$to", "text": "$body"}'
    """Body sent to the SMS gateway; `$to` and `$body` are substituted, escaped for the
    content type."""
    http_sms_content_type: str = "application/json"
    """Content type of the SMS gateway body (`application/json` or
    `application/x-www-form-urlencoded`)."""
    notify_timeout_seconds: float = 10.0
    """How long one send may take before it counts as failed."""
    notify_max_attempts: int = 5
    """Tries per notification before it is given up (parked as failed)."""
    notify_backoff_seconds: float = 30.0
    """Wait before the first retry; doubled for each further one."""
    notify_backoff_max_seconds: float = 900.0
    """Longest wait between retries."""
    notify_batch_size: int = 100
    """Notifications one worker claims at a time (claimed, sent and recorded as one batch)."""
    notify_channel_concurrency: int = 16
    """Messages one worker has in flight at once over one kind of channel (email, webhook,
    SMS...); the rest of a batch waits for a free lane. Connections are reused."""
    notify_burst: int = 3
    """Messages per contact method per window sent one by one; the rest of the window's
    are bundled into one."""
    notify_window_seconds: int = 300
    """The throttling window of `notify_burst`."""
    one_click_ttl_hours: int = 24
    """How long an acknowledge or resolve link in a notification stays valid."""
    verification_ttl_minutes: int = 30
    """How long a contact method's verification code stays valid."""
    # Verification codes and test messages cost money (SMS, calls).
    contact_sends_per_method_per_hour: int = Field(default=5, ge=1)
    """Verification codes and test messages one contact method may be sent in any hour."""
    contact_sends_per_user_per_hour: int = Field(default=10, ge=1)
    """Verification codes and test messages one user's contact methods may be sent in any
    hour, all together."""
    verification_wrong_codes_per_hour: int = Field(default=5, ge=1)
    """Wrong verification codes a contact method accepts in an hour before it answers 429."""
    outbound_allow: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Internal targets (CIDRs, host names, `.domain` for every name under it) that
    webhooks, Apprise URLs and the HTTP SMS gateway may reach; everything else must be
    public. Comma-separated or a JSON list: `10.1.2.0/24,sms.lan`."""
    session_ttl_hours: float = 7 * 24
    """How long a sign-in (browser cookie or `POST /api/v1/login` key) lasts (docs/ui.md)."""
    login_failures_per_email: int = 5
    """Failed logins for one email within the window before further tries get 429."""
    login_failures_per_address: int = 20
    """Failed logins from one client address within the window before further tries get 429."""
    login_failure_window_seconds: int = 900
    """The window over which failed logins are counted."""
    timer_max_attempts: int = Field(default=5, ge=1)
    """Tries of one escalation timer before it is parked: no longer retried, counted in
    `/metrics` and `tocsin status`, and the incident's timeline says paging is stuck.
    Serialization failures and deadlocks on PostgreSQL are retried at once and not counted."""
    access_log: bool = False
    """Write uvicorn's access log: one line per HTTP request and WebSocket handshake. Keys
    in paths and query strings (`/webhooks/ik_…`, `?token=`) are redacted, like in every
    other log line."""
    stream_recheck_seconds: float = Field(default=60.0, gt=0)
    """How often an open `/api/v1/stream` socket checks its credential and teams again, even
    without a change being announced (revocations announced in any process are acted on at
    once)."""
    retention_days: int = Field(default=400, ge=0)
    """Days a resolved or closed incident is kept, counted from when it was resolved (or
    closed); then the worker deletes it with its alerts, timeline, pages and deliveries, a
    small batch at a time. Open and acknowledged incidents are never deleted. 0 keeps
    everything."""
    payload_log_retention_days: int = Field(default=7, ge=0)
    """Days an entry of the integrations' payload log (the raw bodies kept for debugging
    mappings) is kept before the worker deletes it. 0 keeps entries (the log still keeps only
    the newest per integration)."""

    @model_validator(mode="before")
    @classmethod
    def _empty_secret_key_is_unset(cls, data: Any) -> Any:
        # TOCSIN_SECRET_KEY= (empty, as compose files leave it) must not sign with "".
        if isinstance(data, dict) and not str(data.get("secret_key", "x")).strip():
            data = {k: v for k, v in data.items() if k != "secret_key"}
        return data

    @field_validator("outbound_allow", mode="before")
    @classmethod
    def _split_allow_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @property
    def secret_key_is_set(self) -> bool:
        """Whether the operator chose the key (TOCSIN_SECRET_KEY), rather than the random
        one this process made up, which no other process shares."""
        return "secret_key" in self.model_fields_set

    def base_url(self) -> str:
        """The URL people and tools reach this server on, used in links we hand out."""
        if self.public_url:
            return self.public_url.rstrip("/")
        return f"http://{self.host}:{self.port}"
