"""The hub's HTTP routes, one router per concern; :func:`hub.app.create_app` includes them.

Shared here: the documented error responses every route may give (so the OpenAPI schema
lists them and API fuzzing can check them), bounded path/query types, request bodies that
refuse unknown keys and unencodable text, and keyset paging with a ``next`` link.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, get_args
from urllib.parse import urlencode

from fastapi import Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

API = "/api/v1"
#: the largest id a path or query may name (a signed 64-bit column)
MAX_ID = 2**63 - 1

Id = Annotated[int, Path(ge=1, le=MAX_ID)]
Seq = Annotated[int, Query(ge=0, le=MAX_ID)]
Limit = Annotated[int, Query(ge=1, le=10_000)]


class ErrorDetail(BaseModel):
    code: str
    message: str
    model_config = ConfigDict(extra="allow")


class ErrorBody(BaseModel):
    error: ErrorDetail


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses (every error body is ``{"error": {code, message}}``)."""
    words = {400: "bad input", 401: "missing or unknown token", 403: "not allowed for this token",
             404: "not found", 409: "conflicts with the current state", 413: "too large",
             422: "request does not match the schema", 503: "the database is unavailable; retry"}
    return {s: {"model": ErrorBody, "description": words.get(s, "error")} for s in statuses}


#: what any authenticated route may answer besides 200
COMMON = errors(400, 401, 403, 422, 503)


class Body(BaseModel):
    """A request body: unknown keys refused, types strict, text storable (no lone surrogates)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @field_validator("*", mode="before")
    @classmethod
    def _integral(cls, v: Any, info: ValidationInfo) -> Any:
        # JSON has one number type: 3.0 is the integer 3 (JSON Schema says so too), while
        # strict mode still refuses "3", true and 3.5 for an integer field.
        field = cls.model_fields.get(info.field_name or "")
        return _as_ints(v) if field is not None and _wants_int(field.annotation) else v

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, v: Any) -> Any:
        _check_text(v)
        return v


def _wants_int(annotation: Any) -> bool:
    """Whether a field's type holds integers and no floats (``int``, ``list[int]``, ``int | None``)."""
    seen: set[Any] = set()

    def walk(t: Any) -> None:
        if isinstance(t, type):
            seen.add(t)
        for arg in get_args(t):
            walk(arg)

    walk(annotation)
    return int in seen and float not in seen


def _as_ints(v: Any) -> Any:
    if isinstance(v, float) and v.is_integer() and abs(v) <= MAX_ID:
        return int(v)
    if isinstance(v, list):
        return [_as_ints(x) for x in v]
    return v


def _check_text(v: Any) -> None:
    if isinstance(v, str):
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("text holds a lone surrogate (not valid Unicode)") from None
    elif isinstance(v, list | tuple):
        for item in v:
            _check_text(item)


def set_next(request: Request, response: Response, **cursor: Any) -> None:
    """Tell the client where the next page starts: an RFC 8288 ``Link: <…>; rel="next"`` header
    and ``X-Next-Cursor``. A list that stops at its limit without this header is complete."""
    params = {k: v for k, v in request.query_params.items() if k not in cursor}
    params.update({k: str(v) for k, v in cursor.items()})
    url = f"{request.url.path}?{urlencode(params)}"
    response.headers["Link"] = f'<{url}>; rel="next"'
    response.headers["X-Next-Cursor"] = urlencode({k: str(v) for k, v in cursor.items()})


#: the page size of lists the hub holds whole in memory (zones, policies, gates, stewards)
SMALL_PAGE = 1000
SmallLimit = Annotated[int, Query(ge=1, le=10_000)]


def keyset_page(request: Request, response: Response, items: Sequence[dict[str, Any]], key: str,
                after: Any, limit: int) -> list[dict[str, Any]]:
    """One page of a short list ordered by ``key``, rows after ``after``; a ``next`` link when
    more follow. For tables small enough to read whole (a venue has hundreds of gates, not
    millions), so nothing is ever cut off without saying where the rest is."""
    ordered = sorted(items, key=lambda row: row[key])
    if after is not None:
        ordered = [row for row in ordered if row[key] > after]
    page = list(ordered[:limit])
    if len(ordered) > limit:
        set_next(request, response, after=page[-1][key])
    return page
