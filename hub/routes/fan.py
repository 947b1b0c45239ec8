"""The fan's ticket page (rotating codes computed on the phone) and its data."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse

from hub import credentials
from hub.auth import store_of
from hub.errors import Conflict, NotFound
from hub.routes import API, errors
from hub.routes.languages import page_language
from i18n import tag_of
from tickets.rotating import STEP_S

router = APIRouter()
Opaque = Annotated[str, Path(min_length=1, max_length=64)]


async def fan_data_for(request: Request, opaque: str) -> dict[str, Any]:
    store = store_of(request)
    t = await store.ticket_by_opaque(opaque)
    if t["status"] != "valid":
        raise Conflict(f"this ticket is {t['status']}", code="ticket_not_valid")
    key = await store.signing_key()
    meta = await store.meta()
    zone = next((z["name"] for z in await store.zones() if z["zone_id"] == t["zone_id"]), "")
    return {"static": credentials.credential_text(key, int(meta["event_id"]), t),
            "secret": t["rotating_secret"], "step_s": STEP_S, "event": meta.get("event_name", ""),
            "holder": t["holder"], "seat": t["seat"], "zone": zone, "number": t["number"], "serial": t["serial"]}


@router.get(f"{API}/fan/{{opaque}}", tags=["fan"], responses=errors(404, 409, 422, 503))
async def fan_data(opaque: Opaque, request: Request) -> dict[str, Any]:
    return await fan_data_for(request, opaque)


@router.get("/t/{opaque}", response_class=HTMLResponse, include_in_schema=False)
async def fan_page(opaque: Opaque, request: Request) -> HTMLResponse:
    """The fan's ticket page, in ``?lang=`` or the phone's own language."""
    from hub.fanpage import render_fan_page

    lang = page_language(request)
    # the page depends on the phone's languages: a cache must not hand it to another phone
    headers = {"Content-Language": tag_of(lang), "Vary": "Accept-Language"}
    try:
        data = await fan_data_for(request, opaque)
    except (NotFound, Conflict) as exc:
        return HTMLResponse(render_fan_page(None, error=exc.message, lang=lang), status_code=exc.status,
                            headers=headers)
    return HTMLResponse(render_fan_page(data, lang=lang), headers=headers)
