"""Shared by the adapter tests: integrations of a given type wired to Payments' service, and
short ways to look at what ingest made of a payload."""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import count_rows
from tests.factories import IntegrationRef, World, make_integration
from tocsin.clock import FrozenClock
from tocsin.integrations.models import IntegrationType


async def integration_of(
    engine: AsyncEngine,
    clock: FrozenClock,
    world: World,
    type: IntegrationType,
    **settings: Any,
) -> IntegrationRef:
    """An integration of `type` whose alerts go to Payments' service."""
    settings.setdefault("dedup_window_minutes", 7 * 24 * 60)
    return await make_integration(
        engine,
        clock.now(),
        name=f"{type.value} integration",
        type=type,
        default_service_id=world.service,
        **settings,
    )


async def incident(client: AsyncClient, world: World, incident_id: str) -> Any:
    response = await client.get(
        f"/api/v1/incidents/{incident_id}", headers=world.cast.admin.headers
    )
    assert response.status_code == 200, response.text
    return response.json()


async def incidents(client: AsyncClient, world: World) -> list[Any]:
    response = await client.get("/api/v1/incidents?limit=500", headers=world.cast.admin.headers)
    assert response.status_code == 200, response.text
    items: list[Any] = response.json()["items"]
    return items


async def stored(engine: AsyncEngine) -> tuple[int, int]:
    """(alerts, incidents) in the database."""
    return await count_rows(engine, "alerts"), await count_rows(engine, "incidents")


def later(clock: FrozenClock, seconds: float = 60) -> None:
    clock.advance(timedelta(seconds=seconds))


def self_signed_certificate(
    *, organisation: str, now: datetime, ip: str | None = None
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A fresh RSA key and a self-signed certificate issued to (and by) `organisation`."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, ip or organisation),
        ]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365 * 20))
    )
    if ip is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
            critical=False,
        )
    return key, builder.sign(key, hashes.SHA256())


def write_pem(
    directory: Path, key: rsa.RSAPrivateKey, certificate: x509.Certificate
) -> tuple[Path, Path]:
    key_path, cert_path = directory / "key.pem", directory / "cert.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path
