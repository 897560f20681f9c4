"""The signed-in person's own settings at /profile: name and time zone, contact methods
(added, verified by a code, tested, removed), notification rules, the personal calendar
link and API keys (each shown once when made). Each form calls the domain function that
the matching /api/v1/users/{me}/... route calls, with the viewer as the user, so a page can
change nothing of anyone else. Changing the password is /profile/password (auth_pages)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from zoneinfo import available_timezones

from fastapi import Form, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth.models import KeyScope
from tocsin.auth.schemas import ApiKeyCreate, UserUpdate
from tocsin.auth.users import (
    change_user,
    find_user,
    list_api_keys,
    make_api_key,
    refuse_fields_out_of_reach,
    revoke_api_key,
)
from tocsin.errors import InvalidInput, TocsinError
from tocsin.notifications.contacts import (
    add_contact_method,
    check_verification_code,
    find_contact_method,
    list_contact_methods,
    remove_contact_method,
    send_test_message,
    send_verification_code,
)
from tocsin.notifications.models import ContactKind, Urgency
from tocsin.notifications.rules import add_rule, list_rules, reachability_warnings, remove_rule
from tocsin.notifications.schemas import ContactMethodIn, RuleIn, VerifyIn
from tocsin.schedules import calendar
from tocsin.ui.forms import Refusal, refusal, render_form
from tocsin.ui.integration_pages import NO_STORE
from tocsin.ui.pages import SignedIn, Viewer, page_router
from tocsin.web import DbSession, Now, State

router = page_router()

KINDS = [
    (ContactKind.EMAIL.value, "Email"),
    (ContactKind.SMS.value, "SMS"),
    (ContactKind.VOICE.value, "Voice call"),
    (ContactKind.CHAT.value, "Chat (Apprise URL: Slack, Teams, ntfy…)"),
    (ContactKind.WEBHOOK.value, "Webhook"),
]
URGENCIES = [(u.value, u.value.capitalize()) for u in Urgency]
ZONES = sorted(available_timezones())
SCOPES = [
    (KeyScope.FULL.value, "Full: everything you may do"),
    (KeyScope.RESPOND.value, "Respond: read and act on incidents"),
    (KeyScope.READ.value, "Read only"),
]
DONE = {
    "saved": "Your settings are saved.",
    "method-added": "Contact method added: a code is on its way to it. Enter it below.",
    "verified": "Contact method verified: notification rules may use it now.",
    "code-sent": "A new code is on its way; the previous one no longer works.",
    "test-sent": "A test message is on its way.",
    "method-removed": "Contact method removed, with the rules that used it.",
    "rule-added": "Notification rule added.",
    "rule-removed": "Notification rule removed.",
    "calendar-revoked": "Calendar link revoked: calendars subscribed to it no longer update.",
    "key-revoked": "API key revoked: it stopped working at once.",
}


async def _profile_page(
    request: Request,
    viewer: Viewer,
    session: AsyncSession,
    *,
    done: str = "",
    refused: Refusal | None = None,
    form: dict[str, Any] | None = None,
    shown_once: dict[str, str] | None = None,
) -> Response:
    user = await find_user(session, viewer.user_id)
    methods = await list_contact_methods(session, user.id)
    rules = await list_rules(session, user.id)
    keys, _ = await list_api_keys(session, user.id, limit=100, cursor=None)
    token = await calendar.find_token_status(await session.connection(), user.id)
    return render_form(
        request,
        "profile/profile.html",
        {
            "title": "Profile",
            "user": user,
            "methods": methods,
            "method_names": {m.id: m.name for m in methods},
            "rules": rules,
            "warnings": reachability_warnings(rules, methods, user.email),
            "keys": keys,
            "calendar_token": token,
            "kinds": KINDS,
            "zones": ZONES,
            "scopes": SCOPES,
            "urgencies": URGENCIES,
            "done": DONE.get(done, ""),
            "form": form or {},
            "shown_once": shown_once or {},
        },
        refused,
        headers=NO_STORE if shown_once else None,
    )


@router.get("/profile")
async def profile_page(
    request: Request,
    viewer: SignedIn,
    session: DbSession,
    done: Annotated[str, Query()] = "",
) -> Response:
    return await _profile_page(request, viewer, session, done=done)


async def _refused(
    request: Request,
    viewer: Viewer,
    session: AsyncSession,
    exc: ValidationError | TocsinError,
    form: dict[str, Any] | None = None,
    renames: dict[str, str] | None = None,
) -> Response:
    await session.rollback()
    return await _profile_page(request, viewer, session, refused=refusal(exc, renames), form=form)


def _saved(done: str, anchor: str) -> Response:
    return RedirectResponse(f"/profile?done={done}#{anchor}", status_code=303)


@router.post("/profile")
async def profile_save(
    request: Request,
    viewer: SignedIn,
    session: DbSession,
    now: Now,
    name: Annotated[str, Form()] = "",
    time_zone: Annotated[str, Form()] = "",
) -> Response:
    """Name and time zone, as PATCH /api/v1/users/{me}."""
    try:
        body = UserUpdate(name=name, time_zone=time_zone)
        changes = body.model_dump(exclude_unset=True)
        refuse_fields_out_of_reach(viewer.principal, viewer.user_id, set(changes))
        user = await find_user(session, viewer.user_id)
        await change_user(session, user, changes, now=now)
    except (ValidationError, TocsinError) as exc:
        return await _refused(request, viewer, session, exc, {"name": name, "time_zone": time_zone})
    await session.commit()
    return _saved("saved", "account")


# Contact methods

METHOD_FIELDS = {"name": "method_name", "address": "address", "kind": "kind"}


@router.post("/profile/contact-methods")
async def method_add(
    request: Request,
    viewer: SignedIn,
    session: DbSession,
    now: Now,
    state: State,
    kind: Annotated[str, Form()] = "",
    method_name: Annotated[str, Form()] = "",
    address: Annotated[str, Form()] = "",
) -> Response:
    """As POST /api/v1/users/{me}/contact-methods: stored unverified, a code sent at once."""
    form = {"kind": kind, "method_name": method_name, "address": address}
    try:
        body = ContactMethodIn.model_validate(
            {"kind": kind, "name": method_name, "address": address}
        )
        await add_contact_method(
            session, body, user_id=viewer.user_id, settings=state.settings, now=now
        )
    except (ValidationError, TocsinError) as exc:
        return await _refused(request, viewer, session, exc, form, METHOD_FIELDS)
    await session.commit()
    return _saved("method-added", "contact-methods")


@router.post("/profile/contact-methods/{method_id}/verify")
async def method_verify(
    request: Request,
    method_id: uuid.UUID,
    viewer: SignedIn,
    session: DbSession,
    now: Now,
    state: State,
    code: Annotated[str, Form()] = "",
) -> Response:
    """As POST .../contact-methods/{id}/verify; a wrong code counts against the limit."""
    renames = {"code": f"code-{method_id}"}
    try:
        method = await find_contact_method(session, viewer.user_id, method_id)
        body = VerifyIn(code=code.strip())
        if not await check_verification_code(
            session, method, body.code, settings=state.settings, now=now
        ):
            # Keep the count of wrong codes, or guessing would cost nothing.
            await session.commit()
            raise InvalidInput("wrong code", field="code")
    except (ValidationError, TocsinError) as exc:
        return await _refused(request, viewer, session, exc, {}, renames)
    await session.commit()
    return _saved("verified", "contact-methods")


@router.post("/profile/contact-methods/{method_id}/resend")
async def method_resend(
    request: Request,
    method_id: uuid.UUID,
    viewer: SignedIn,
    session: DbSession,
    now: Now,
    state: State,
) -> Response:
    try:
        method = await find_contact_method(session, viewer.user_id, method_id)
        if method.verified_at is None:
            await send_verification_code(session, method, settings=state.settings, now=now)
    except TocsinError as exc:
        return await _refused(request, viewer, session, exc)
    await session.commit()
    return _saved("code-sent", "contact-methods")


@router.post("/profile/contact-methods/{method_id}/test")
async def method_test(
    request: Request,
    method_id: uuid.UUID,
    viewer: SignedIn,
    session: DbSession,
    now: Now,
    state: State,
) -> Response:
    """As POST .../contact-methods/{id}/test: verified methods only, within hourly limits."""
    try:
        method = await find_contact_method(session, viewer.user_id, method_id)
        await send_test_message(session, method, settings=state.settings, now=now)
    except TocsinError as exc:
        return await _refused(request, viewer, session, exc)
    await session.commit()
    return _saved("test-sent", "contact-methods")


@router.post("/profile/contact-methods/{method_id}/remove")
async def method_remove(
    request: Request, method_id: uuid.UUID, viewer: SignedIn, session: DbSession
) -> Response:
    try:
        method = await find_contact_method(session, viewer.user_id, method_id)
        await remove_contact_method(session, method)
    except TocsinError as exc:
        return await _refused(request, viewer, session, exc)
    await session.commit()
    return _saved("method-removed", "contact-methods")


# Notification rules


@router.post("/profile/rules")
async def rule_add(
    request: Request,
    viewer: SignedIn,
    session: DbSession,
    now: Now,
    urgency: Annotated[str, Form()] = "",
    delay_minutes: Annotated[str, Form()] = "",
    contact_method_id: Annotated[str, Form()] = "",
) -> Response:
    """As POST /api/v1/users/{me}/notification-rules: one of your verified methods."""
    form = {
        "urgency": urgency,
        "delay_minutes": delay_minutes,
        "contact_method_id": contact_method_id,
    }
    try:
        body = RuleIn.model_validate({k: v.strip() for k, v in form.items()})
        await add_rule(session, body, user_id=viewer.user_id, now=now)
    except (ValidationError, TocsinError) as exc:
        return await _refused(request, viewer, session, exc, form)
    await session.commit()
    return _saved("rule-added", "rules")


@router.post("/profile/rules/{rule_id}/remove")
async def rule_remove(
    request: Request, rule_id: uuid.UUID, viewer: SignedIn, session: DbSession
) -> Response:
    try:
        await remove_rule(session, viewer.user_id, rule_id)
    except TocsinError as exc:
        return await _refused(request, viewer, session, exc)
    await session.commit()
    return _saved("rule-removed", "rules")


# The calendar link and API keys: shown in the answer to the form that made them, once.


@router.post("/profile/calendar")
async def calendar_issue(
    request: Request, viewer: SignedIn, session: DbSession, now: Now, state: State
) -> Response:
    """A new calendar link, as POST /api/v1/users/{me}/calendar-token; the previous link
    stops working."""
    token, _ = await calendar.issue_calendar_token(
        await session.connection(), viewer.user_id, now=now
    )
    await session.commit()
    url = calendar.user_calendar_url(state.settings.public_url, viewer.user_id, token)
    return await _profile_page(request, viewer, session, shown_once={"calendar_url": url})


@router.post("/profile/calendar/revoke")
async def calendar_revoke(request: Request, viewer: SignedIn, session: DbSession) -> Response:
    await calendar.revoke_calendar_token(await session.connection(), viewer.user_id)
    await session.commit()
    return _saved("calendar-revoked", "calendar")


@router.post("/profile/api-keys")
async def api_key_create(
    request: Request,
    viewer: SignedIn,
    session: DbSession,
    now: Now,
    key_name: Annotated[str, Form()] = "",
    scope: Annotated[str, Form()] = KeyScope.FULL.value,
) -> Response:
    """As POST /api/v1/users/{me}/api-keys: the key is in this answer only."""
    form = {"key_name": key_name, "scope": scope}
    try:
        body = ApiKeyCreate.model_validate({"name": key_name, "scope": scope})
        row, key = await make_api_key(
            session, viewer.principal, user_id=viewer.user_id, body=body, now=now
        )
    except (ValidationError, TocsinError) as exc:
        return await _refused(request, viewer, session, exc, form, {"name": "key_name"})
    await session.commit()
    return await _profile_page(
        request, viewer, session, shown_once={"api_key": key, "api_key_name": row.name}
    )


@router.post("/profile/api-keys/{key_id}/revoke")
async def api_key_revoke(
    request: Request, key_id: uuid.UUID, viewer: SignedIn, session: DbSession, now: Now
) -> Response:
    try:
        await revoke_api_key(session, user_id=viewer.user_id, key_id=key_id, now=now)
    except TocsinError as exc:
        return await _refused(request, viewer, session, exc)
    await session.commit()
    return _saved("key-revoked", "api-keys")
