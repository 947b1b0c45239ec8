"""Protocol errors, split like h11's: who broke the rules, us or the peer.

``LocalProtocolError``: this side tried something the protocol forbids (a bug here).
``RemoteProtocolError``: the peer sent something malformed, unknown or out of place. The
sessions never let one escape to crash the owner: they count it, answer with an ``error``
message and carry on (or close after too many).
"""
from __future__ import annotations

from tickets.errors import GatehouseError


class ProtocolError(GatehouseError, ValueError):
    """Base of sync protocol errors. ``code`` is a stable snake_case code; ``detail`` is free text."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


class LocalProtocolError(ProtocolError):
    """We were about to do something the protocol forbids (e.g. send before ``hello``)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something we cannot accept: malformed, unknown, or out of place."""


class GateRefused(GatehouseError, PermissionError):
    """The hub refused this gate's connection (bad or revoked token). ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"hub refused the gate: {reason}")
        self.reason = reason


class BackendUnavailable(GatehouseError, RuntimeError):
    """The hub's backend cannot store right now (disk full, database failing over). The entries
    are refused, not lost: the gate keeps them and re-sends. ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
