"""/admin/import: moving in from PagerDuty, Opsgenie or Grafana OnCall from the browser.

An administrator uploads a saved export (what `tocsin import ... --save` writes) or enters an
API token; the page shows the dry-run report that `tocsin import` prints, and an Apply button.
The token is used for that one read and never stored or sent back to the browser: the page
carries what was read (compressed) to the Apply step instead, so applying writes exactly what
was previewed. Everything goes through the same functions as the CLI (`tocsin.importers`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import zlib
from datetime import timedelta

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeSerializer
from starlette.datastructures import UploadFile

from tocsin.errors import Forbidden
from tocsin.importers.apply import ImportOptions, run_import
from tocsin.importers.convert import BadExport
from tocsin.importers.reading import Connection, convert, fetch, parse_export
from tocsin.importers.report import Action, Report
from tocsin.importers.source import Source
from tocsin.notifications.outbound import (
    HostUnresolvable,
    OutboundRefused,
    guard_for,
    resolve_checked,
    url_host_port,
)
from tocsin.ui.pages import SignedIn, Viewer, page_router, render
from tocsin.web import get_state

router = page_router()

# An uploaded export larger than this is refused (a very large organisation's export is a few
# MB of JSON).
MAX_EXPORT_BYTES = 50 * 1024 * 1024
SOURCES = [(source.value, source.label) for source in Source]


class NotAdmin(Forbidden):
    def __init__(self) -> None:
        super().__init__("only administrators may import")


def _require_admin(viewer: Viewer) -> None:
    if not viewer.is_admin:
        raise NotAdmin()


def _sealer(request: Request) -> URLSafeSerializer:
    return URLSafeSerializer(get_state(request).settings.secret_key, salt="tocsin.ui.import")


def _seal(request: Request, source: Source, data: bytes) -> str:
    packed = base64.urlsafe_b64encode(zlib.compress(data, 6)).decode()
    return str(_sealer(request).dumps({"source": source.value, "export": packed}))


def _unseal(request: Request, sealed: str) -> tuple[Source, bytes]:
    try:
        content = _sealer(request).loads(sealed)
        return Source(content["source"]), zlib.decompress(
            base64.urlsafe_b64decode(content["export"])
        )
    except (BadSignature, KeyError, TypeError, ValueError, zlib.error) as exc:
        raise BadExport("this preview has expired or was changed; read the source again") from exc


def _page(
    request: Request,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    report: Report | None = None,
    sealed: str = "",
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "import/index.html",
        {
            "title": "Import",
            "sources": SOURCES,
            "form": form or {"source": Source.PAGERDUTY.value, "read_from": "file"},
            "errors": errors or {},
            "report": report,
            "summary": report.summary() if report else {},
            "sealed": sealed,
            "hidden_actions": {Action.UNCHANGED},
        },
        status_code=status_code,
    )


@router.get("/admin/import")
async def import_page(request: Request, viewer: SignedIn) -> Response:
    _require_admin(viewer)
    return _page(request)


@router.post("/admin/import")
async def preview_import(request: Request, viewer: SignedIn) -> Response:
    """Read the source, and show what an import would create, change or skip."""
    _require_admin(viewer)
    state = get_state(request)
    form = await request.form(max_part_size=MAX_EXPORT_BYTES)
    values = {key: str(form.get(key) or "").strip() for key in ("source", "read_from", "base_url")}
    errors: dict[str, str] = {}
    try:
        source = Source(values["source"])
    except ValueError:
        source = Source.PAGERDUTY
        errors["source"] = "choose PagerDuty, Opsgenie or Grafana OnCall"
    now = state.clock.now()
    data = b""
    if values["read_from"] == "api":
        token = str(form.get("token") or "").strip()
        if not token:
            errors["token"] = "enter the source's API token"
        errors.update(await _refused_base_url(request, values["base_url"]))
        if not errors:
            try:
                raw = await asyncio.to_thread(
                    fetch,
                    source,
                    Connection(token, base_url=values["base_url"] or None),
                    since=now,
                    until=now + timedelta(days=14),
                )
            except BadExport as exc:
                errors["token"] = str(exc)
            except Exception as exc:  # the vendor client's own errors: name them, keep going
                errors["token"] = f"could not read {source.label}: {type(exc).__name__}: {exc}"
            else:
                data = json.dumps(raw).encode()
    else:
        values["read_from"] = "file"
        upload = form.get("export")
        if not isinstance(upload, UploadFile) or not upload.filename:
            errors["export"] = "choose an export file"
        else:
            data = await upload.read(MAX_EXPORT_BYTES + 1)
            if len(data) > MAX_EXPORT_BYTES:
                errors["export"] = f"the file is larger than {MAX_EXPORT_BYTES // 2**20} MB"
            elif not data:
                errors["export"] = "the file is empty"
    if not errors:
        try:
            export = convert(source, parse_export(data))
        except BadExport as exc:
            errors["export" if values["read_from"] == "file" else "token"] = str(exc)
    if errors:
        return _page(request, form=values, errors=errors, status_code=422)
    options = ImportOptions(apply=False, now=now, base_url=state.settings.base_url())
    report = await run_import(state.sessions, export, options)
    return _page(request, form=values, report=report, sealed=_seal(request, source, data))


@router.post("/admin/import/apply")
async def apply_import(request: Request, viewer: SignedIn) -> Response:
    """Write what the preview showed; the report then has the new webhook URLs."""
    _require_admin(viewer)
    state = get_state(request)
    form = await request.form()
    try:
        source, data = _unseal(request, str(form.get("sealed") or ""))
        export = convert(source, parse_export(data))
    except BadExport as exc:
        return _page(request, errors={"form": str(exc)}, status_code=422)
    options = ImportOptions(apply=True, now=state.clock.now(), base_url=state.settings.base_url())
    report = await run_import(state.sessions, export, options)
    return _page(request, form={"source": source.value, "read_from": "file"}, report=report)


async def _refused_base_url(request: Request, base_url: str) -> dict[str, str]:
    """An error for `base_url` when the server may not reach it (the outbound guard's rules:
    no loopback or private addresses unless the operator allowed them)."""
    if not base_url:
        return {}
    if not base_url.startswith(("https://", "http://")):
        return {"base_url": "must start with https://"}
    try:
        host, port = url_host_port(base_url)
        await resolve_checked(guard_for(get_state(request).settings), host, port)
    except ValueError as exc:
        return {"base_url": str(exc)}
    except OutboundRefused as exc:
        return {"base_url": str(exc)}
    except HostUnresolvable:
        return {"base_url": "this host name does not resolve"}
    return {}
