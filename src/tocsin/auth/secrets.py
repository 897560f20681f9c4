"""Secret tokens (API keys, session keys, integration keys) and password hashes.

Keys are random, shown once, and stored only as SHA-256: a key has 256 bits of entropy, so a
fast hash is enough and lets the lookup be a unique-index probe on the hash, which leaks
nothing about the key through timing. Passwords are low-entropy and get Argon2id (argon2-cffi),
whose parameters travel inside each hash, so raising them re-hashes a password at its next
login. Hashes from before Argon2 (scrypt) still verify and are replaced at that login too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
_SCRYPT_PREFIX = "scrypt$"

# argon2-cffi's defaults are RFC 9106's low-memory profile (Argon2id, t=3, m=64 MiB, p=4).
PASSWORD_HASHER = PasswordHasher()


def new_token(prefix: str) -> str:
    """A new random token such as `tk_6Q3...`, the prefix telling people what it is."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def display_prefix(token: str) -> str:
    """The first characters of a token, safe to show so people can tell keys apart."""
    return token[:10]


def hash_password(password: str) -> str:
    """An Argon2id hash with its parameters and salt inside. CPU-heavy: call off the loop."""
    return PASSWORD_HASHER.hash(password)


@dataclass(frozen=True)
class PasswordCheck:
    matches: bool
    # The stored hash is scrypt, or Argon2 with weaker parameters than today's: store anew.
    needs_rehash: bool = False


def check_password(password: str, stored: str | None) -> PasswordCheck:
    """Whether the password matches the stored hash. CPU-heavy: call off the event loop."""
    if not stored:
        return PasswordCheck(False)
    if stored.startswith(_SCRYPT_PREFIX):
        return PasswordCheck(_scrypt_matches(password, stored), needs_rehash=True)
    try:
        PASSWORD_HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return PasswordCheck(False)
    return PasswordCheck(True, needs_rehash=PASSWORD_HASHER.check_needs_rehash(stored))


def verify_password(password: str, stored: str | None) -> bool:
    return check_password(password, stored).matches


def _scrypt_matches(password: str, stored: str) -> bool:
    try:
        _, salt_b64, digest_b64 = stored.split("$", 2)
        salt = base64.b64decode(salt_b64)
        expected = base64.b64decode(digest_b64)
    except ValueError:
        return False
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P)
    return hmac.compare_digest(digest, expected)


def scrypt_hash(password: str) -> str:
    """A hash as Tocsin stored passwords before Argon2id; kept to test the upgrade path."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P)
    return (
        _SCRYPT_PREFIX + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()
    )
