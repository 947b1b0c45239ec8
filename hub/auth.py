"""Who may call the hub's HTTP API: bearer tokens for people (by role) and for gates.

The one place a bearer token is read from a request (the websocket route uses the same
parser, :func:`sync.hub_route.bearer_token`). Roles: ``viewer`` reads, ``supervisor`` also
revokes and resolves conflicts, ``admin`` also imports, enrols gates and manages keys and
tokens. A gate's own token may only post its own journal and read its own manifest.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Depends, Request

from hub.errors import Forbidden, Unauthorized
from hub.store import HubStore, Principal
from sync.hub_route import bearer_token


def store_of(request: Request) -> HubStore:
    return request.app.state.store  # type: ignore[no-any-return]


def bearer(request: Request) -> str:
    token = bearer_token(request.headers)
    if token is None:
        raise Unauthorized("missing bearer token (Authorization: Bearer …)", code="missing_token")
    return token


async def principal_for(store: HubStore, token: str, role: str = "viewer") -> Principal:
    p = await store.authenticate(token)
    if p is None:
        raise Unauthorized("unknown or revoked token", code="bad_token")
    if not p.may(role):
        raise Forbidden(f"this needs the {role} role; the token has {p.role}", code="role_required")
    return p


def require(role: str) -> Callable[[Request], Awaitable[Principal]]:
    async def dep(request: Request) -> Principal:
        return await principal_for(store_of(request), bearer(request), role)
    return dep


viewer: Any = Depends(require("viewer"))
supervisor: Any = Depends(require("supervisor"))
admin: Any = Depends(require("admin"))


async def gate_auth(request: Request, gate_id: str) -> HubStore:
    """The store, once the request's bearer token is shown to be ``gate_id``'s own."""
    store = store_of(request)
    authed = await store.authenticate_gate(bearer(request))
    if authed is None:
        raise Unauthorized("unknown or revoked gate token", code="bad_gate_token")
    if authed != gate_id:
        raise Forbidden(f"this token belongs to gate {authed!r}", code="wrong_gate")
    return store
