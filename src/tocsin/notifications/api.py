"""Notification routes: contact methods, notification rules, deliveries of an incident,
one-click actions and Twilio's inbound SMS webhook."""

from __future__ import annotations

import hmac
import uuid
from html import escape
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse

from tocsin.auth.models import User
from tocsin.auth.permissions import require_team_reader
from tocsin.auth.users import require_self_or_admin
from tocsin.errors import Forbidden, InvalidInput, NotFound
from tocsin.incidents.detail import find_incident
from tocsin.incidents.lifecycle import Action, IllegalTransition, IncidentNotFound
from tocsin.notifications.actions import (
    IncidentSummary,
    LinkUsed,
    act_on_link,
    answer_sms_reply,
    find_incident_summary,
    link_was_used,
    may_act,
    twilio_signature,
)
from tocsin.notifications.contacts import (
    add_contact_method,
    change_contact_method,
    check_verification_code,
    find_contact_method,
    list_contact_methods,
    remove_contact_method,
    send_test_message,
    send_verification_code,
)
from tocsin.notifications.downgrade import find_paging_preference, set_paging_preference
from tocsin.notifications.history import incident_deliveries
from tocsin.notifications.history import with_attempts as _with_attempts
from tocsin.notifications.links import BadLink, read_link
from tocsin.notifications.models import ContactMethod, Delivery, DeliveryStatus
from tocsin.notifications.rules import add_rule, list_rules, reachability_warnings, remove_rule
from tocsin.notifications.schemas import (
    ContactMethodIn,
    ContactMethodList,
    ContactMethodOut,
    ContactMethodUpdate,
    DeliveryList,
    DeliveryOut,
    PagingPreferenceIn,
    PagingPreferenceOut,
    QueuedOut,
    RuleIn,
    RuleList,
    RuleOut,
    VerifyIn,
    check_address,
)
from tocsin.realtime.events import StreamEvent
from tocsin.web import CurrentUser, DbSession, Now, State

router = APIRouter(tags=["notifications"])

USER_PREFIX = "/api/v1/users/{user_id}"


class UserNotFound(NotFound):
    def __init__(self, user_id: uuid.UUID) -> None:
        super().__init__(f"user {user_id} not found")


async def get_editable_user(user_id: uuid.UUID, session: DbSession, principal: CurrentUser) -> User:
    """The user whose notification settings are addressed: themselves, or anyone for admins."""
    require_self_or_admin(principal, user_id)
    user = await session.get(User, user_id)
    if user is None:
        raise UserNotFound(user_id)
    return user


EditableUser = Annotated[User, Depends(get_editable_user)]


async def get_contact_method(
    method_id: uuid.UUID, user: EditableUser, session: DbSession
) -> ContactMethod:
    return await find_contact_method(session, user.id, method_id)


OwnContactMethod = Annotated[ContactMethod, Depends(get_contact_method)]


async def _warnings(session: DbSession, user: User) -> list[str]:
    return reachability_warnings(
        await list_rules(session, user.id), await list_contact_methods(session, user.id), user.email
    )


# Contact methods


@router.get(f"{USER_PREFIX}/contact-methods", response_model=ContactMethodList)
async def list_user_contact_methods(user: EditableUser, session: DbSession) -> ContactMethodList:
    """The user's contact methods, and warnings about how reachable they are."""
    methods = await list_contact_methods(session, user.id)
    return ContactMethodList(
        items=[ContactMethodOut.model_validate(m) for m in methods],
        warnings=await _warnings(session, user),
    )


@router.post(f"{USER_PREFIX}/contact-methods", status_code=201, response_model=ContactMethodOut)
async def create_contact_method(
    body: ContactMethodIn, user: EditableUser, session: DbSession, state: State, now: Now
) -> ContactMethodOut:
    """Add a contact method; a verification code is sent to it at once."""
    method = await add_contact_method(
        session, body, user_id=user.id, settings=state.settings, now=now
    )
    out = ContactMethodOut.model_validate(method)
    await session.commit()
    return out


@router.get(f"{USER_PREFIX}/contact-methods/{{method_id}}", response_model=ContactMethodOut)
async def get_user_contact_method(method: OwnContactMethod) -> ContactMethodOut:
    return ContactMethodOut.model_validate(method)


@router.patch(f"{USER_PREFIX}/contact-methods/{{method_id}}", response_model=ContactMethodOut)
async def update_contact_method(
    body: ContactMethodUpdate, method: OwnContactMethod, session: DbSession, state: State, now: Now
) -> ContactMethodOut:
    """Rename it, or change its address (which needs verifying again)."""
    if body.address is not None:
        check_address(method.kind, body.address)
    await change_contact_method(
        session, method, name=body.name, address=body.address, settings=state.settings, now=now
    )
    out = ContactMethodOut.model_validate(method)
    await session.commit()
    return out


@router.delete(f"{USER_PREFIX}/contact-methods/{{method_id}}", status_code=204)
async def delete_contact_method(method: OwnContactMethod, session: DbSession) -> Response:
    """Remove it and the rules using it; pending deliveries to it fail instead of sending."""
    await remove_contact_method(session, method)
    await session.commit()
    return Response(status_code=204)


@router.post(
    f"{USER_PREFIX}/contact-methods/{{method_id}}/send-verification",
    status_code=202,
    response_model=None,
)
async def resend_verification(
    method: OwnContactMethod, session: DbSession, state: State, now: Now
) -> Response:
    """Send a new verification code (the previous one stops working)."""
    if method.verified_at is None:
        await send_verification_code(session, method, settings=state.settings, now=now)
        await session.commit()
    return Response(status_code=202)


@router.post(f"{USER_PREFIX}/contact-methods/{{method_id}}/verify", response_model=ContactMethodOut)
async def verify_contact_method(
    body: VerifyIn, method: OwnContactMethod, session: DbSession, state: State, now: Now
) -> ContactMethodOut:
    """Confirm the code that was sent; from then on rules may use the method."""
    if not await check_verification_code(
        session, method, body.code, settings=state.settings, now=now
    ):
        # Keep the count of wrong codes, or guessing would cost nothing.
        await session.commit()
        raise InvalidInput("wrong code", field="code")
    out = ContactMethodOut.model_validate(method)
    await session.commit()
    return out


@router.post(
    f"{USER_PREFIX}/contact-methods/{{method_id}}/test", status_code=202, response_model=QueuedOut
)
async def test_contact_method(
    method: OwnContactMethod, session: DbSession, state: State, now: Now
) -> QueuedOut:
    """Queue a test message to a verified method; follow it with GET .../deliveries/{id}.
    429 with Retry-After past the hourly limits (per method and per user)."""
    delivery_id = await send_test_message(session, method, settings=state.settings, now=now)
    await session.commit()
    return QueuedOut(delivery_id=delivery_id, status=DeliveryStatus.PENDING)


@router.get(f"{USER_PREFIX}/deliveries/{{delivery_id}}", response_model=DeliveryOut)
async def get_user_delivery(
    delivery_id: uuid.UUID, user: EditableUser, session: DbSession, principal: CurrentUser
) -> DeliveryOut:
    """One delivery to this user (a test message, say) with its attempts."""
    delivery = await session.get(Delivery, delivery_id)
    if delivery is None or delivery.user_id != user.id:
        raise NotFound(f"delivery {delivery_id} not found")
    return (await _with_attempts(session, [delivery], principal))[0]


# Notification rules


@router.get(f"{USER_PREFIX}/notification-rules", response_model=RuleList)
async def list_notification_rules(user: EditableUser, session: DbSession) -> RuleList:
    rules = await list_rules(session, user.id)
    return RuleList(
        items=[RuleOut.model_validate(r) for r in rules], warnings=await _warnings(session, user)
    )


@router.post(f"{USER_PREFIX}/notification-rules", status_code=201, response_model=RuleOut)
async def create_notification_rule(
    body: RuleIn, user: EditableUser, session: DbSession, now: Now
) -> RuleOut:
    """Add "after delay_minutes, use contact method M" for pages of one urgency."""
    rule = await add_rule(session, body, user_id=user.id, now=now)
    out = RuleOut.model_validate(rule)
    await session.commit()
    return out


@router.delete(f"{USER_PREFIX}/notification-rules/{{rule_id}}", status_code=204)
async def delete_notification_rule(
    rule_id: uuid.UUID, user: EditableUser, session: DbSession
) -> Response:
    await remove_rule(session, user.id, rule_id)
    await session.commit()
    return Response(status_code=204)


@router.get(f"{USER_PREFIX}/paging-preferences", response_model=PagingPreferenceOut)
async def get_paging_preference(user: EditableUser, session: DbSession) -> PagingPreferenceOut:
    """After how many pages in an hour low-urgency pages go to the quiet channel only."""
    found = await find_paging_preference(session, user.id)
    return PagingPreferenceOut(
        user_id=user.id,
        pages_per_hour=found.pages_per_hour if found else None,
        quiet_contact_method_id=found.quiet_contact_method_id if found else None,
    )


@router.put(f"{USER_PREFIX}/paging-preferences", response_model=PagingPreferenceOut)
async def put_paging_preference(
    body: PagingPreferenceIn, user: EditableUser, session: DbSession, now: Now
) -> PagingPreferenceOut:
    """Set both fields (a field left out is null)."""
    saved = await set_paging_preference(
        session,
        user.id,
        pages_per_hour=body.pages_per_hour,
        quiet_contact_method_id=body.quiet_contact_method_id,
        now=now,
    )
    out = PagingPreferenceOut(
        user_id=user.id,
        pages_per_hour=saved.pages_per_hour,
        quiet_contact_method_id=saved.quiet_contact_method_id,
    )
    await session.commit()
    return out


# Deliveries of an incident


@router.get("/api/v1/incidents/{incident_id}/deliveries", response_model=DeliveryList)
async def list_incident_deliveries(
    incident_id: uuid.UUID, session: DbSession, user: CurrentUser
) -> DeliveryList:
    """Every notification of the incident, oldest first, each with its attempts. Members
    see where each went as kind and last four characters; the recipient and admins see the
    whole address."""
    incident = await find_incident(session, incident_id)
    if incident is None:
        raise IncidentNotFound(incident_id)
    await require_team_reader(session, user, incident.team_id)
    return DeliveryList(items=await incident_deliveries(session, incident_id, user))


# One-click links: GET only shows what would happen (mail scanners follow links), POST acts.

_VERB = {Action.ACKNOWLEDGE: "Acknowledge", Action.RESOLVE: "Resolve"}
_DONE = {Action.ACKNOWLEDGE: "acknowledged", Action.RESOLVE: "resolved"}


def _page(title: str, body: str, status_code: int = 200) -> HTMLResponse:
    html = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width'>"
        f"<title>{escape(title)}</title></head><body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status_code)


def _state_page(title: str, incident: IncidentSummary, status_code: int) -> HTMLResponse:
    return _page(
        title,
        f"<p>Incident #{incident.number}: {escape(incident.title)}</p>"
        f"<p>Status now: {escape(incident.status.value)}</p>",
        status_code,
    )


@router.get("/a/{token}", response_class=HTMLResponse, include_in_schema=False)
async def show_one_click(token: str, session: DbSession, now: Now, state: State) -> HTMLResponse:
    try:
        claim = read_link(token, secret_key=state.settings.secret_key, now=now)
    except BadLink as exc:
        return _page("Link not valid", f"<p>{escape(exc.detail)}</p>", 403)
    conn = await session.connection()
    incident = await find_incident_summary(conn, claim.incident_id)
    if incident is None:
        return _page("Incident not found", "<p>This incident no longer exists.</p>", 404)
    if await link_was_used(conn, claim):
        return _state_page("This link has been used", incident, 200)
    refusal = await may_act(conn, claim.user_id, claim.incident_id)
    if refusal is not None:
        return _page("Link not valid", f"<p>{escape(refusal)}</p>", 403)
    verb = _VERB[claim.action]
    return _page(
        f"{verb} incident #{incident.number}?",
        f"<p>{escape(incident.title)}</p><p>Status now: {escape(incident.status.value)}</p>"
        f"<form method='post'><button type='submit'>{verb} incident #{incident.number}"
        "</button></form>",
    )


@router.post("/a/{token}", response_class=HTMLResponse, include_in_schema=False)
async def do_one_click(token: str, session: DbSession, now: Now, state: State) -> HTMLResponse:
    try:
        claim = read_link(token, secret_key=state.settings.secret_key, now=now)
    except BadLink as exc:
        return _page("Link not valid", f"<p>{escape(exc.detail)}</p>", 403)
    conn = await session.connection()
    try:
        await act_on_link(conn, claim, now=now)
    except BadLink as exc:
        return _page("Link not valid", f"<p>{escape(exc.detail)}</p>", 403)
    except IncidentNotFound:
        return _page("Incident not found", "<p>This incident no longer exists.</p>", 404)
    except (LinkUsed, IllegalTransition) as exc:
        await session.rollback()
        current = await find_incident_summary(await session.connection(), claim.incident_id)
        if current is None:
            return _page("Nothing to do", f"<p>{escape(exc.detail)}.</p>", 409)
        title = "This link has been used" if isinstance(exc, LinkUsed) else "Nothing to do"
        return _state_page(title, current, 409)
    incident = await find_incident_summary(conn, claim.incident_id)
    await session.commit()
    state.hub.announce([(StreamEvent.INCIDENT_UPDATED, claim.incident_id)])
    number = incident.number if incident else "?"
    return _page(f"Incident #{number} {_DONE[claim.action]}", "<p>Thank you.</p>")


# Twilio's inbound SMS webhook: replies like "4" (acknowledge) or "6 1234" (resolve #1234).


@router.post("/api/v1/notifications/twilio/sms", include_in_schema=False)
async def twilio_inbound_sms(
    request: Request, session: DbSession, now: Now, state: State
) -> Response:
    settings = state.settings
    raw = (await request.body()).decode("utf-8", errors="replace")
    params = parse_qsl(raw, keep_blank_values=True)
    url = settings.base_url() + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    signature = request.headers.get("x-twilio-signature", "")
    if not settings.twilio_auth_token or not _same(
        twilio_signature(settings.twilio_auth_token, url, params), signature
    ):
        raise Forbidden("missing or wrong X-Twilio-Signature")
    form = dict(params)
    answer = await answer_sms_reply(
        await session.connection(), phone=form.get("From", ""), body=form.get("Body", ""), now=now
    )
    await session.commit()
    twiml = (
        "<?xml version='1.0' encoding='UTF-8'?>"
        f"<Response><Message>{escape(answer)}</Message></Response>"
    )
    return Response(twiml, media_type="application/xml")


def _same(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode())
