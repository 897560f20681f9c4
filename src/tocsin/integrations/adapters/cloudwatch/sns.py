"""Amazon SNS message authenticity: the signing certificate must come from an allowed URL and
be issued to Amazon, and the signature must cover the message's canonical string.

The allowed URL patterns are a setting (`TOCSIN_SNS_SIGNING_CERT_URL_PATTERNS`): by default
only https://sns.<region>.amazonaws.com(.cn)/....pem, which is what SNS sends.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections import OrderedDict
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from tocsin.integrations.adapters.base import PayloadForbidden

# Keys of the canonical string, in this order, per message type (absent keys are skipped).
SIGNED_KEYS: dict[str, tuple[str, ...]] = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
SIGNED_KEYS["UnsubscribeConfirmation"] = SIGNED_KEYS["SubscriptionConfirmation"]

_CACHE_SIZE = 32
_certificates: OrderedDict[str, x509.Certificate] = OrderedDict()


def canonical_string(message: dict[str, Any]) -> bytes:
    """What SNS signs: `key\\nvalue\\n` for each signed key present, in the fixed order."""
    keys = SIGNED_KEYS[message["Type"]]
    return "".join(f"{k}\n{message[k]}\n" for k in keys if k in message).encode()


def cert_url_allowed(url: str, patterns: list[str]) -> bool:
    return urlsplit(url).path.endswith(".pem") and any(re.match(p, url) for p in patterns)


async def _fetch_certificate(url: str) -> x509.Certificate:
    cached = _certificates.get(url)
    if cached is not None:
        _certificates.move_to_end(url)
        return cached
    try:
        async with httpx.AsyncClient(timeout=10, follow_redirects=False) as http:
            response = await http.get(url)
            response.raise_for_status()
        certificate = x509.load_pem_x509_certificate(response.content)
    except (httpx.HTTPError, ValueError) as exc:
        raise PayloadForbidden(f"could not load the signing certificate: {exc}") from exc
    _certificates[url] = certificate
    while len(_certificates) > _CACHE_SIZE:
        _certificates.popitem(last=False)
    return certificate


def _check_issuer(certificate: x509.Certificate, now: datetime) -> None:
    orgs = certificate.issuer.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    if not any(str(o.value).startswith("Amazon") for o in orgs):
        raise PayloadForbidden("the signing certificate is not issued by Amazon")
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise PayloadForbidden("the signing certificate is not valid now")


async def verify_message(message: dict[str, Any], *, patterns: list[str], now: datetime) -> None:
    """Return if the message is signed by SNS; PayloadForbidden saying why not otherwise."""
    url = str(message.get("SigningCertURL", ""))
    if not cert_url_allowed(url, patterns):
        raise PayloadForbidden("SigningCertURL is not an allowed SNS certificate URL")
    version = str(message.get("SignatureVersion", ""))
    algorithm: hashes.HashAlgorithm
    if version == "1":
        algorithm = hashes.SHA1()
    elif version == "2":
        algorithm = hashes.SHA256()
    else:
        raise PayloadForbidden("SignatureVersion must be 1 or 2")
    try:
        signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PayloadForbidden("Signature is not base64") from exc
    certificate = await _fetch_certificate(url)
    _check_issuer(certificate, now)
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise PayloadForbidden("the signing certificate does not hold an RSA key")
    try:
        key.verify(signature, canonical_string(message), padding.PKCS1v15(), algorithm)
    except InvalidSignature as exc:
        raise PayloadForbidden("the SNS signature does not match the message") from exc


async def confirm_subscription(subscribe_url: str) -> None:
    """Visit SubscribeURL, which is how SNS learns we want the topic's messages."""
    try:
        async with httpx.AsyncClient(timeout=10, follow_redirects=False) as http:
            response = await http.get(subscribe_url)
            response.raise_for_status()
    except httpx.HTTPError as exc:
        raise SubscriptionNotConfirmed(str(exc)) from exc


class SubscriptionNotConfirmed(Exception):
    """SNS did not accept our confirmation; it will resend the SubscriptionConfirmation."""
