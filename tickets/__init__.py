"""The gatehouse domain: credentials, keys, entry policy and the pure scan decision.

Nothing in this package does I/O (key files are the one exception, in :mod:`tickets.keys`,
kept to explicit load/save functions). Start reading at :func:`tickets.decide.decide`.
"""
from __future__ import annotations

from tickets.decide import decide
from tickets.errors import GatehouseError
from tickets.model import (
    Direction,
    EntryState,
    GatePolicy,
    Scan,
    TicketRecord,
    TicketStatus,
    Verdict,
)
from tickets.policy import EntryPolicy
from tickets.reasons import Reason

__all__ = [
    "Direction",
    "EntryPolicy",
    "EntryState",
    "GatePolicy",
    "GatehouseError",
    "Reason",
    "Scan",
    "TicketRecord",
    "TicketStatus",
    "Verdict",
    "decide",
]
