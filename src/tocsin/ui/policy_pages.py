"""/policies and /policies/{id}: escalation policies, an ordered levels editor, and a
Simulate panel showing the dry run of `POST /api/v1/simulate` for a sample payload.

Reads and changes go through `escalation/policies.py` with the API's schemas (`PolicyCreate`,
`PolicyUpdate`, `SimulateIn`) and permission checks; the dry run is `simulate_as`, the
function behind `/api/v1/simulate`. Another team's policy is a 404 page.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from tocsin.auth.permissions import find_team_role, require_team_manager
from tocsin.errors import Forbidden, InvalidInput, TocsinError
from tocsin.escalation.choices import (
    level_targets,
    routing_keys_of_policy,
    simulation_integrations,
)
from tocsin.escalation.models import EscalationLevel, EscalationPolicy, TargetType
from tocsin.escalation.policies import (
    PolicyNotFound,
    change_policy,
    create_policy_from_body,
    delete_policy,
    list_visible_policies,
    load_levels,
)
from tocsin.escalation.schemas import LevelIn, PolicyCreate, PolicyUpdate, SimulateIn
from tocsin.escalation.simulate import Simulation, simulate_as
from tocsin.incidents.choices import Choice, user_names, visible_teams
from tocsin.integrations.models import IntegrationType
from tocsin.teams.models import TeamRole
from tocsin.ui.clockface import zone_named
from tocsin.ui.pages import SignedIn, Viewer, list_links, page_router, readable_on_page, render
from tocsin.ui.schedule_pages import local_instant, text_of
from tocsin.web import DbSession, Now, State

router = page_router()

PAGE_SIZE = 50
# A level row left blank adds nothing; one blank row is offered under the others.
BLANK_ROWS = 1
MAX_ROWS = 40


async def _readable(
    session: AsyncSession, viewer: Viewer, policy_id: uuid.UUID
) -> EscalationPolicy:
    """The policy if the viewer may read it; another team's is 'not found' on a page."""
    return await readable_on_page(session, viewer, EscalationPolicy, policy_id, PolicyNotFound)


async def _writable(
    session: AsyncSession, viewer: Viewer, policy_id: uuid.UUID
) -> EscalationPolicy:
    policy = await _readable(session, viewer, policy_id)
    await require_team_manager(session, viewer.principal, policy.team_id)
    return policy


async def _may_manage(session: AsyncSession, viewer: Viewer, team_id: uuid.UUID) -> bool:
    if viewer.is_admin:
        return True
    return await find_team_role(session, viewer.principal, team_id) == TeamRole.MANAGER


async def _manageable_teams(session: AsyncSession, viewer: Viewer) -> list[Choice]:
    teams = await visible_teams(session, viewer.principal)
    return [team for team in teams if await _may_manage(session, viewer, team.id)]


# --- the list ------------------------------------------------------------------------------


async def _list_context(
    session: AsyncSession, viewer: Viewer, cursor: str | None
) -> dict[str, Any]:
    policies, next_cursor = await list_visible_policies(
        session, viewer.principal, limit=PAGE_SIZE, cursor=cursor
    )
    levels = await load_levels(session, [policy.id for policy in policies])
    teams = {team.id: team.name for team in await visible_teams(session, viewer.principal)}
    return {
        "title": "Escalation policies",
        "rows": [
            {"policy": policy, "team": teams.get(policy.team_id, ""), "levels": levels[policy.id]}
            for policy in policies
        ],
        **list_links("/policies?", cursor, next_cursor),
        "create_teams": await _manageable_teams(session, viewer),
    }


@router.get("/policies")
async def policy_list(
    request: Request,
    viewer: SignedIn,
    session: DbSession,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    context = await _list_context(session, viewer, cursor)
    return render(request, "policies/list.html", {**context, "form": {}, "errors": {}})


@router.post("/policies")
async def policy_create(
    request: Request, viewer: SignedIn, session: DbSession, now: Now
) -> Response:
    """A new policy with one level (the entire team, 30 minutes), then the editor."""
    data = await request.form()
    form = {name: text_of(data, name) for name in ("team_id", "name")}
    errors: dict[str, str] = {}
    status = 422
    try:
        body = PolicyCreate.model_validate(
            {
                "team_id": form["team_id"] or None,
                "name": form["name"],
                "levels": [{"level_number": 1, "target_type": TargetType.ENTIRE_TEAM}],
            }
        )
        await require_team_manager(session, viewer.principal, body.team_id)
        created = await create_policy_from_body(session, body, now=now)
    except ValidationError as exc:
        for err in exc.errors():
            name = str(err["loc"][0]) if err.get("loc") else "form"
            message = str(err.get("msg", "")).removeprefix("Value error, ")
            errors.setdefault(f"new-{name}", message)
    except InvalidInput as exc:
        errors = {f"new-{exc.field or 'form'}": exc.detail}
    except Forbidden as exc:
        errors, status = {"new-team_id": exc.detail}, exc.status_code
    if errors:
        await session.rollback()
        context = await _list_context(session, viewer, None)
        return render(
            request,
            "policies/list.html",
            {**context, "form": form, "errors": errors},
            status_code=status,
        )
    await session.commit()
    return RedirectResponse(f"/policies/{created.policy.id}?done=created", status_code=303)


# --- one policy ----------------------------------------------------------------------------


@dataclass
class LevelRow:
    order: str
    target: str
    timeout: str
    remove: bool = False


def _target_value(level: EscalationLevel) -> str:
    if level.target_type == TargetType.ENTIRE_TEAM:
        return "entire_team"
    return f"{level.target_type.value}:{level.target_id}"


def _stored_rows(levels: list[EscalationLevel]) -> list[LevelRow]:
    return [
        LevelRow(str(index), _target_value(level), str(level.timeout_minutes))
        for index, level in enumerate(levels, start=1)
    ]


def _sent_rows(data: FormData) -> list[LevelRow]:
    raw = text_of(data, "level_rows")
    count = min(int(raw), MAX_ROWS) if raw.isdigit() else 0
    return [
        LevelRow(
            text_of(data, f"level{i}_order"),
            text_of(data, f"level{i}_target"),
            text_of(data, f"level{i}_timeout"),
            bool(text_of(data, f"level{i}_remove")),
        )
        for i in range(count)
    ]


def _levels_body(rows: list[LevelRow]) -> tuple[list[dict[str, Any]], list[int]]:
    """The kept rows in the order asked for, numbered 1..n, as the API's levels; and for each
    level the index of the form row it came from (to put a message beside it)."""
    kept = [(index, row) for index, row in enumerate(rows) if row.target and not row.remove]

    def order_of(item: tuple[int, LevelRow]) -> tuple[float, int]:
        index, row = item
        try:
            return (float(row.order), index)
        except ValueError:
            return (float(index + 1), index)

    kept.sort(key=order_of)
    levels: list[dict[str, Any]] = []
    for number, (_, row) in enumerate(kept, start=1):
        kind, _, target_id = row.target.partition(":")
        levels.append(
            {
                "level_number": number,
                "target_type": kind,
                "target_id": target_id or None,
                "timeout_minutes": row.timeout or "30",
            }
        )
    return levels, [index for index, _ in kept]


LEVEL_FIELDS = {"target_type": "target", "target_id": "target", "timeout_minutes": "timeout"}


def _policy_errors(loc: list[str], message: str, sources: list[int]) -> tuple[str, str]:
    """The form field a message about `loc` belongs beside."""
    if loc and loc[0] == "levels":
        if len(loc) > 2 and loc[1].isdigit() and int(loc[1]) < len(sources):
            row = sources[int(loc[1])]
            return f"level{row}-{LEVEL_FIELDS.get(loc[2], 'target')}", message
        return "levels", message
    return (loc[0] if loc else "form"), message


async def _policy_context(
    session: AsyncSession,
    viewer: Viewer,
    policy: EscalationPolicy,
    *,
    rows: list[LevelRow] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    levels = (await load_levels(session, [policy.id]))[policy.id]
    targets = await level_targets(session, policy.team_id)
    names = {t.value: t.name for t in [*targets.people, *targets.schedules]}
    names["entire_team"] = "Entire team"
    shown_rows = rows if rows is not None else _stored_rows(levels)
    blank = LevelRow(str(len(shown_rows) + 1), "", "30")
    teams = {team.id: team.name for team in await visible_teams(session, viewer.principal)}
    integrations = await simulation_integrations(session)
    keys = await routing_keys_of_policy(session, policy)
    generic = next((i for i in integrations if i.type == IntegrationType.GENERIC), None)
    sample = {
        "title": "Simulated: checkout error rate above 5%",
        "severity": "critical",
        "routing_key": keys[0] if keys else "your-service-routing-key",
        "source": "tocsin-simulate",
    }
    return {
        "title": policy.name,
        "policy": policy,
        "team_name": teams.get(policy.team_id, ""),
        "levels": levels,
        "target_names": names,
        "targets": targets,
        "rows": [*shown_rows, *[blank] * BLANK_ROWS],
        "settings_form": settings
        or {
            "name": policy.name,
            "description": policy.description,
            "repeat_count": str(policy.repeat_count),
            "ack_timeout_minutes": str(policy.ack_timeout_minutes or ""),
            "is_default": policy.is_default,
            "is_active": policy.is_active,
        },
        "may_manage": await _may_manage(session, viewer, policy.team_id),
        "integrations": integrations,
        "routing_keys": keys,
        "simulate_form": {
            "integration_id": str(generic.id) if generic else "",
            "payload": json.dumps(sample, indent=2),
            "at": "",
        },
    }


async def _policy_page(
    request: Request,
    session: AsyncSession,
    viewer: Viewer,
    policy: EscalationPolicy,
    *,
    status_code: int = 200,
    done: str = "",
    error: str = "",
    errors: Mapping[str, str] | None = None,
    rows: list[LevelRow] | None = None,
    settings: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Response:
    context = await _policy_context(session, viewer, policy, rows=rows, settings=settings)
    return render(
        request,
        "policies/detail.html",
        {
            **context,
            "done": done,
            "error": error,
            "errors": dict(errors or {}),
            "simulation": None,
            **(extra or {}),
        },
        status_code=status_code,
    )


@router.get("/policies/{policy_id}")
async def policy_page(
    request: Request,
    policy_id: uuid.UUID,
    viewer: SignedIn,
    session: DbSession,
    done: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    policy = await _readable(session, viewer, policy_id)
    return await _policy_page(request, session, viewer, policy, done=done)


def _settings_of(data: FormData) -> dict[str, Any]:
    return {
        "name": text_of(data, "name"),
        "description": text_of(data, "description"),
        "repeat_count": text_of(data, "repeat_count"),
        "ack_timeout_minutes": text_of(data, "ack_timeout_minutes"),
        "is_default": bool(text_of(data, "is_default")),
        "is_active": bool(text_of(data, "is_active")),
    }


@router.post("/policies/{policy_id}")
async def policy_save(
    request: Request, policy_id: uuid.UUID, viewer: SignedIn, session: DbSession, now: Now
) -> Response:
    """Settings and every level at once (PATCH /api/v1/escalation-policies/{id})."""
    policy = await _writable(session, viewer, policy_id)
    data = await request.form()
    settings = _settings_of(data)
    rows = _sent_rows(data)
    levels, sources = _levels_body(rows)
    body_values = {
        **settings,
        "repeat_count": settings["repeat_count"] or "1",
        "ack_timeout_minutes": settings["ack_timeout_minutes"] or None,
        "levels": levels,
    }
    errors: dict[str, str] = {}
    try:
        body = PolicyUpdate.model_validate(body_values)
        specs = [LevelIn.model_validate(level).spec() for level in levels]
        changes = body.model_dump(exclude_unset=True, exclude={"levels"})
        await change_policy(session, policy, changes, levels=specs, now=now)
    except ValidationError as exc:
        for err in exc.errors():
            loc = [str(part) for part in err.get("loc", ())]
            message = str(err.get("msg", "")).removeprefix("Value error, ")
            key, text = _policy_errors(loc, message, sources)
            errors.setdefault(key, text)
    except InvalidInput as exc:
        key, text = _policy_errors((exc.field or "form").split("."), exc.detail, sources)
        errors[key] = text
    if errors:
        await session.rollback()
        policy = await _readable(session, viewer, policy_id)
        return await _policy_page(
            request,
            session,
            viewer,
            policy,
            status_code=422,
            errors=errors,
            rows=rows,
            settings=settings,
        )
    await session.commit()
    return RedirectResponse(f"/policies/{policy_id}?done=saved", status_code=303)


@router.post("/policies/{policy_id}/delete")
async def policy_delete(
    request: Request, policy_id: uuid.UUID, viewer: SignedIn, session: DbSession
) -> Response:
    policy = await _writable(session, viewer, policy_id)
    try:
        await delete_policy(session, policy)
    except TocsinError as exc:
        await session.rollback()
        policy = await _readable(session, viewer, policy_id)
        return await _policy_page(
            request, session, viewer, policy, status_code=exc.status_code, error=exc.detail
        )
    await session.commit()
    return RedirectResponse("/policies", status_code=303)


@router.post("/policies/{policy_id}/simulate")
async def policy_simulate(
    request: Request,
    policy_id: uuid.UUID,
    viewer: SignedIn,
    session: DbSession,
    now: Now,
    state: State,
) -> Response:
    """The dry run of POST /api/v1/simulate for the payload typed, shown on the policy page.
    Nothing is stored or sent."""
    policy = await _readable(session, viewer, policy_id)
    data = await request.form()
    form = {name: text_of(data, name) for name in ("integration_id", "payload", "at")}
    errors: dict[str, str] = {}
    result: Simulation | None = None
    try:
        payload = json.loads(form["payload"] or "null")
    except json.JSONDecodeError as exc:
        errors["sim-payload"] = f"is not valid JSON: {exc.msg} (line {exc.lineno})"
        payload = None
    if not errors:
        at = local_instant(form["at"], zone_named(viewer.time_zone))
        values: dict[str, Any] = {
            "integration_id": form["integration_id"] or None,
            "payload": payload,
        }
        if at is not None:
            values["at"] = at
        try:
            body = SimulateIn.model_validate(values)
            async with state.read_engine.connect() as conn:
                result = await simulate_as(
                    session,
                    conn,
                    viewer.principal,
                    integration_id=body.integration_id,
                    payload=body.payload,
                    at=body.at or now,
                    settings=state.settings,
                )
        except ValidationError as exc:
            for err in exc.errors():
                loc = [str(part) for part in err.get("loc", ())]
                name = loc[0] if loc else "form"
                errors.setdefault(
                    f"sim-{name}", str(err.get("msg", "")).removeprefix("Value error, ")
                )
        except InvalidInput as exc:
            name = (exc.field or "form").split(".")[0]
            errors[f"sim-{name}"] = exc.detail
        except Forbidden as exc:
            errors["sim-form"] = exc.detail
    extra: dict[str, Any] = {}
    if result is not None:
        ids = {r.user_id for a in result.alerts for step in a.plan for r in step.recipients}
        extra["simulation"] = result
        extra["sim_names"] = await user_names(session, ids)
    context = await _policy_context(session, viewer, policy)
    context["simulate_form"] = form
    return render(
        request,
        "policies/detail.html",
        {
            **context,
            "done": "",
            "error": "",
            "errors": errors,
            "simulation": None,
            **extra,
        },
        status_code=422 if errors else 200,
    )
