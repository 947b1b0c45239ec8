"""The hub's errors: each maps to one HTTP status and a stable machine code.

Every error the API returns is JSON ``{"error": {"code": ..., "message": ...}}``; the code is
stable (clients and tests branch on it), the message is for people. Raised by the store and
the importer as well as by routes, so the CLI reports the same codes as the API.
"""
from __future__ import annotations

from typing import Any

from tickets.errors import GatehouseError


class HubError(GatehouseError):
    """Root of hub errors. ``status`` is the HTTP status, ``code`` the stable machine code."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.extra = extra

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        body.update(self.extra)
        return {"error": body}


class BadInput(HubError, ValueError):
    status = 400
    code = "bad_input"


class Unauthorized(HubError, PermissionError):
    status = 401
    code = "unauthorized"


class Forbidden(HubError, PermissionError):
    status = 403
    code = "forbidden"


class NotFound(HubError, LookupError):
    status = 404
    code = "not_found"


class Conflict(HubError):
    """The request contradicts the current state (e.g. revoking an already revoked ticket)."""

    status = 409
    code = "conflict"


class TooLarge(HubError):
    status = 413
    code = "too_large"


class NotInitialised(HubError, FileNotFoundError):
    """The data directory has no hub in it (run ``gatehouse hub init``)."""

    status = 500
    code = "not_initialised"
