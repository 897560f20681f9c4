"""The address that turns mail into alerts of an integration, and the integration an address
names."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from tocsin.config import Settings
from tocsin.integrations.lookup import IntegrationInfo, find_active_integration
from tocsin.integrations.models import IntegrationType


def email_address(key: str, settings: Settings) -> str:
    """The address that turns mail into alerts of the integration with this key."""
    domain = settings.smtp_inbound_domain or settings.smtp_listen_host
    return f"{key}@{domain}"


def _split_address(address: str) -> tuple[str, str]:
    local, _, domain = address.strip().strip("<>").rpartition("@")
    return local, domain


async def find_email_integration(
    conn: AsyncConnection, address: str, settings: Settings
) -> IntegrationInfo | None:
    """The active email integration this recipient address names, or None."""
    local, domain = _split_address(address)
    if not local:
        return None
    if settings.smtp_inbound_domain and domain.lower() != settings.smtp_inbound_domain.lower():
        return None
    integration = await find_active_integration(conn, local)
    if integration is None or integration.type != IntegrationType.EMAIL:
        return None
    return integration
