"""The pages' languages: message catalogues for the browser (``/i18n/<tag>.json``).

The fan page (``/t/…``, :mod:`hub.routes.fan`) picks its language from ``?lang=`` or the
phone's ``Accept-Language`` with :func:`page_language`.
"""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

import i18n
from hub.errors import NotFound
from hub.routes import errors

router = APIRouter()
Tag = Annotated[str, Path(min_length=1, max_length=35)]


def page_language(request: Request) -> str:
    """``?lang=`` if gatehouse speaks it, else the best match for the browser's languages."""
    return i18n.normalize(request.query_params.get("lang")) or i18n.negotiate(request.headers.get("accept-language"))


@router.get("/i18n/{tag}.json", tags=["languages"], responses=errors(404, 422))
async def catalogue(tag: Tag, request: Request) -> Response:
    """A language's messages for the pages (``auto``: the best for the browser's languages)."""
    code = i18n.negotiate(request.headers.get("accept-language")) if tag == "auto" else i18n.normalize(tag)
    if code is None:
        raise NotFound(f"no catalogue for language {tag!r} (en, zh-Hans, ru, kk)", code="unknown_language")
    return Response(i18n.catalogue_json(code), media_type="application/json",
                    headers={"Cache-Control": "no-cache", "Content-Language": i18n.tag_of(code)})
