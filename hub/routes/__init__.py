"""The hub's HTTP routes, one router per concern; :func:`hub.app.create_app` includes them.

Shared here: the documented error responses every route may give (so the OpenAPI schema
lists them and API fuzzing can check them), bounded path/query types, request bodies that
refuse unknown keys and unencodable text, and keyset paging with a ``next`` link.
"""
from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, field_validator

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

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, v: Any) -> Any:
        _check_text(v)
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
