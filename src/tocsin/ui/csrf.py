"""CSRF protection for the pages: every state-changing request carries a token signed with
the server's secret key (itsdangerous) and bound to the browser's session cookie, or, before
signing in, to a random nonce cookie of the login form. A request whose token is missing or
does not match gets 403 before its handler runs, so nothing changes.

Forms send it as the hidden field `csrf_token`; scripts send it as the `X-CSRF-Token` header
(the token is in `<meta name="csrf-token">` of every page).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request
from itsdangerous import BadSignature, URLSafeSerializer

from tocsin.auth.sessions import SESSION_COOKIE
from tocsin.errors import Forbidden
from tocsin.web import get_state

LOGIN_NONCE_COOKIE = "tocsin_login"
FORM_FIELD = "csrf_token"
HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class CsrfRefused(Forbidden):
    def __init__(self) -> None:
        super().__init__(
            "this form has expired or did not come from this site; reload the page and retry"
        )


def _serializer(request: Request) -> URLSafeSerializer:
    return URLSafeSerializer(get_state(request).settings.secret_key, salt="tocsin.ui.csrf")


def _binding(request: Request, *, login_nonce: str | None = None) -> str | None:
    """What a token must be bound to: the session cookie if there is one, else the login
    form's nonce. Only a digest of the session key goes into the token."""
    session_key = request.cookies.get(SESSION_COOKIE)
    if session_key:
        return "s:" + hashlib.sha256(session_key.encode()).hexdigest()[:32]
    nonce = login_nonce or request.cookies.get(LOGIN_NONCE_COOKIE)
    return "n:" + nonce if nonce else None


def new_login_nonce() -> str:
    return secrets.token_urlsafe(16)


def csrf_token(request: Request, *, login_nonce: str | None = None) -> str:
    """The token for forms on this page; `login_nonce` is the nonce cookie being set by
    this same response, for a visitor who has none yet."""
    binding = _binding(request, login_nonce=login_nonce)
    if binding is None:
        return ""
    return str(_serializer(request).dumps(binding))


async def require_csrf(request: Request) -> None:
    """Refuse a state-changing request without a valid token (403, CsrfRefused)."""
    if request.method in SAFE_METHODS:
        return
    token = request.headers.get(HEADER)
    if token is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            value = (await request.form()).get(FORM_FIELD)
            token = value if isinstance(value, str) else None
    expected = _binding(request)
    if not token or expected is None:
        raise CsrfRefused()
    try:
        bound = _serializer(request).loads(token)
    except BadSignature as exc:
        raise CsrfRefused() from exc
    if not isinstance(bound, str) or not hmac.compare_digest(bound, expected):
        raise CsrfRefused()
