"""Sign-in, sign-out and changing one's password, in the browser. The same domain functions
as POST /api/v1/login and /api/v1/users/me/password; the session key lives in an HttpOnly
cookie instead of the answer's body."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Form, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from tocsin.auth.login import (
    BadCredentials,
    TooManyAttempts,
    change_own_password,
    log_in,
    login_limits,
)
from tocsin.auth.schemas import LoginIn, PasswordChange
from tocsin.auth.sessions import SESSION_COOKIE, find_live_session, revoke_session
from tocsin.errors import InvalidInput
from tocsin.ui.csrf import LOGIN_NONCE_COOKIE, new_login_nonce
from tocsin.ui.pages import SignedIn, describe_errors, page_router, render, safe_next
from tocsin.web import DbSession, Now, State, client_address, get_state

router = page_router()


def _secure(request: Request) -> bool:
    return get_state(request).settings.public_url.lower().startswith("https://")


def set_session_cookie(
    response: Response, request: Request, key: str, *, expires_at: datetime, now: datetime
) -> None:
    """The session key as an HttpOnly, SameSite=Lax cookie that expires with the session
    (Secure when the public URL is https)."""
    response.set_cookie(
        SESSION_COOKIE,
        key,
        max_age=max(0, int((expires_at - now).total_seconds())),
        expires=expires_at,
        path="/",
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )


def _login_form(
    request: Request,
    *,
    next_path: str,
    email: str = "",
    error: str = "",
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    nonce = None if request.cookies.get(LOGIN_NONCE_COOKIE) else new_login_nonce()
    response = render(
        request,
        "login.html",
        {"next": next_path, "email": email, "error": error, "title": "Sign in"},
        status_code=status_code,
        headers=headers,
        login_nonce=nonce,
    )
    if nonce is not None:
        response.set_cookie(
            LOGIN_NONCE_COOKIE,
            nonce,
            max_age=3600,
            path="/",
            httponly=True,
            samesite="lax",
            secure=_secure(request),
        )
    return response


@router.get("/login")
async def login_page(
    request: Request, state: State, next_path: Annotated[str | None, Query(alias="next")] = None
) -> Response:
    """The sign-in form; a visitor already signed in goes straight on."""
    next_path = safe_next(next_path)
    key = request.cookies.get(SESSION_COOKIE)
    if key:
        async with state.read_sessions() as session:
            if await find_live_session(session, key, now=state.clock.now()) is not None:
                return RedirectResponse(next_path, status_code=303)
    return _login_form(request, next_path=next_path)


@router.post("/login")
async def login_submit(
    request: Request,
    session: DbSession,
    now: Now,
    state: State,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next_field: Annotated[str, Form(alias="next")] = "/",
) -> Response:
    next_path = safe_next(next_field)
    try:
        body = LoginIn(email=email, password=password)
    except ValidationError as exc:
        errors = describe_errors(exc.errors())
        return _login_form(
            request, next_path=next_path, email=email[:254], error=next(iter(errors.values()))
        )
    try:
        done = await log_in(
            session,
            email=body.email,
            password=body.password,
            address=client_address(request),
            now=now,
            limits=login_limits(state.settings),
        )
    except BadCredentials as exc:
        await session.commit()  # the failure counts
        return _login_form(
            request, next_path=next_path, email=email, error=exc.detail, status_code=401
        )
    except TooManyAttempts as exc:
        return _login_form(
            request,
            next_path=next_path,
            email=email,
            error=exc.detail,
            status_code=429,
            headers={"Retry-After": str(exc.retry_after)},
        )
    await session.commit()
    response = RedirectResponse(next_path, status_code=303)
    set_session_cookie(response, request, done.key, expires_at=done.session.expires_at, now=now)
    response.delete_cookie(LOGIN_NONCE_COOKIE, path="/")
    return response


@router.post("/logout")
async def logout(request: Request, viewer: SignedIn, session: DbSession, now: Now) -> Response:
    """Sign out: the session ends on the server, the cookie goes."""
    await revoke_session(session, viewer.session_id, now=now)
    await session.commit()
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return response


@router.get("/profile/password")
async def password_page(request: Request, viewer: SignedIn, done: bool = False) -> Response:
    return render(
        request,
        "password.html",
        {"title": "Change password", "errors": {}, "done": done},
    )


@router.post("/profile/password")
async def password_submit(
    request: Request,
    viewer: SignedIn,
    session: DbSession,
    now: Now,
    old_password: Annotated[str, Form()] = "",
    new_password: Annotated[str, Form()] = "",
) -> Response:
    """Same rules as POST /api/v1/users/me/password; other sessions end, this one stays."""
    errors: dict[str, str] = {}
    try:
        body = PasswordChange(old_password=old_password, new_password=new_password)
        await change_own_password(
            session,
            viewer.principal,
            old_password=body.old_password,
            new_password=body.new_password,
            now=now,
        )
    except ValidationError as exc:
        errors = describe_errors(exc.errors())
    except InvalidInput as exc:
        errors = {exc.field or "form": exc.detail}
    if errors:
        await session.rollback()
        return render(
            request,
            "password.html",
            {"title": "Change password", "errors": errors, "done": False},
            status_code=422,
        )
    await session.commit()
    return RedirectResponse("/profile/password?done=true", status_code=303)
