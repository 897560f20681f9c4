"""What others may see of a contact method and of a failed send.

A contact address is often a secret in itself: a webhook or Apprise URL carries the token
that lets anyone post to it, a phone number is personal. Teammates see that a delivery went
out and how (the kind and the last four characters: "sms …0100"); only its owner and admins
see the address. A failed send's error is kept short and plain: no reply bodies, no URLs,
no tokens or addresses, since it is shown on the incident's timeline to the whole team.
"""

from __future__ import annotations

import re

from tocsin.notifications.models import ContactKind

ERROR_LIMIT = 200
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://\S+")
_EMAIL = re.compile(r"[^\s@<>()\"',;:]+@[^\s@<>()\"',;:]+")
_PHONE = re.compile(r"\+?[0-9][0-9 ()-]{6,}[0-9]")
# Long runs of token characters with letters and digits: API keys, signed tokens, ids.
_TOKEN = re.compile(r"(?=[\w-]*[0-9])(?=[\w-]*[A-Za-z])[\w-]{20,}", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def mask_address(kind: ContactKind, address: str) -> str:
    """The kind and the last four characters: enough to tell two methods apart."""
    tail = address[-4:] if len(address) >= 8 else ""
    return f"{kind.value} …{tail}"


def short_error(text: str | None) -> str | None:
    """An error fit to store and show: one line, at most ERROR_LIMIT characters, with URLs,
    email addresses, phone numbers and token-like strings replaced by what they were."""
    if text is None:
        return None
    clean = _CONTROL.sub(" ", text)
    clean = _URL.sub("<url>", clean)
    clean = _EMAIL.sub("<address>", clean)
    clean = _TOKEN.sub("<redacted>", clean)
    clean = _PHONE.sub("<number>", clean)
    clean = " ".join(clean.split())
    if len(clean) > ERROR_LIMIT:
        clean = clean[: ERROR_LIMIT - 1] + "…"
    return clean
