"""What the sync layer needs from each side's owner, as Protocols.

``HubBackend`` is implemented by the hub's store (``hub/store.py``, via a thin adapter) and
by :class:`sync.memory.MemoryHubBackend` for tests and the benchmark. ``GateOwner`` is
implemented by the gate agent (its journal and replica stores) and by test owners. Neither
side's database is touched by ``sync/``: everything goes through these methods.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sync.messages import (
    Change,
    EntryEvent,
    TicketState,
    change_from_wire,
    policy_from_wire,
    ticket_state_from_wire,
    zone_from_wire,
)
from tickets.entry import JournalEntry
from tickets.model import TicketRecord, Zone
from tickets.policy import EntryPolicy


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What storing a batch did: the gate's gap-free high water, the newly stored entries to
    fan out to the other gates (``admits``: admitted scans and manual admits, plus passage
    entries ``not_passed`` that undo one), and how many conflicts were recorded."""

    high_water: int
    admits: tuple[JournalEntry, ...] = ()
    conflicts: int = 0
    backed_up: int = 0


@dataclass(frozen=True, slots=True)
class SnapshotPage:
    """One page of the ticket table, read in one transaction at hub seq ``seq``.

    Zones and policies come with every page (they are small). ``next_after`` is the
    ``after_ticket_id`` of the next page, or None on the last page. The first page's ``seq``
    is the snapshot's: every page is at least that new, and the changes after it are sent
    once the snapshot ends (re-applying a change a page already reflects is harmless).
    """

    seq: int
    zones: tuple[Zone, ...]
    policies: tuple[EntryPolicy, ...]
    tickets: tuple[TicketRecord, ...]
    next_after: int | None
    #: tickets in the whole snapshot, for progress (0: unknown)
    total_rows: int = 0
    #: each ticket's entry state as the hub knows it (same order; empty: the backend keeps none)
    states: tuple[TicketState | None, ...] = ()


@dataclass(frozen=True, slots=True)
class ChangePage:
    """What one read of the change log returned for gates: the changes meant for gates, and
    where the read ended (``end_seq``, with the token of that change), past the changes only
    hub processes need."""

    changes: tuple[Change, ...]
    end_seq: int
    end_token: str | None = None


class HubBackend(Protocol):
    """The hub's store as the websocket route sees it. All methods are coroutines."""

    async def authenticate_gate(self, token: str) -> str | None:
        """The gate id this token belongs to, or None (unknown or revoked)."""

    async def journal_high_water(self, gate_id: str) -> int:
        """Highest journal seq of this gate stored with no gap below it (0: none)."""

    async def ingest(self, gate_id: str, entries: Sequence[JournalEntry]) -> IngestResult:
        """Store entries idempotently on (gate_id, seq); a re-sent seq with another nonce is a
        conflict to record, never a silent overwrite."""

    async def current_seq(self) -> int:
        """The hub's latest change seq."""

    async def changes_since(self, cursor: int, limit: int) -> list[Change]:
        """Changes with seq > cursor, ascending, at most ``limit``."""

    async def snapshot_rows(self, after_ticket_id: int, limit: int) -> SnapshotPage:
        """Tickets with id > after_ticket_id, ascending id, at most ``limit`` (keyset paging)."""

    async def event_info(self) -> dict[str, Any]:
        """The event the gates serve (id, name, public keys...), sent in hello_reply."""

    async def hub_epoch(self) -> str:
        """Changes whenever the hub's database is replaced (restore): gates resync on a change."""


@dataclass(frozen=True, slots=True)
class HelloFacts:
    """What a gate owner reports at connection time (mirrors :class:`sync.session.GateFacts`)."""

    cursor: int
    acked_high_water: int
    journal_seq: int
    hub_epoch: str | None = None
    #: the token of the change at ``cursor`` (from the v3 hub that sent it)
    cursor_token: str | None = None


class GateOwner(Protocol):
    """The gate agent as the websocket client sees it. Apply methods are awaited in order:
    each must commit its transaction (with the new cursor) before returning."""

    async def hello_facts(self) -> HelloFacts: ...

    async def journal_after(self, seq: int, limit: int) -> list[JournalEntry]:
        """Committed journal entries with seq > ``seq``, ascending, at most ``limit``."""

    async def snapshot_started(self, seq: int, total_rows: int, reason: str) -> None: ...

    async def apply_snapshot_batch(self, rows: Sequence[TicketRecord], zones: Sequence[Zone],
                                   policies: Sequence[EntryPolicy], done_rows: int, total_rows: int,
                                   states: Sequence[Any] = ()) -> None:
        """Upsert rows into the staging replica. Never un-revoke: ``sync.merge.merge_ticket``."""

    async def snapshot_finished(self, cursor: int, token: str | None = None) -> None: ...

    async def apply_deltas(self, changes: Sequence[Change], cursor: int, token: str | None = None) -> None:
        """Apply in one transaction with the new cursor (rows: ``merge_ticket(..., from_snapshot=False)``)."""

    async def on_remote_admit(self, ticket_id: int, gate_id: str, at: float, direction: str) -> None: ...

    # Optional (called if present): the event the hub serves (id, name, public keys, zones,
    # policies, allow_admit_on_signature), from every hello reply.
    # async def on_event_info(self, event: dict[str, Any]) -> None: ...

    # Optional (called if present): the admit ``gate_seq`` at ``gate_id`` did not pass the
    # turnstile, so the ticket stays valid: undo what its on_remote_admit did.
    # async def on_remote_not_passed(self, ticket_id: int, gate_id: str, gate_seq: int) -> None: ...

    async def on_ack(self, high_water: int, backed_up: int) -> None:
        """Persist the acked high water (and what may be pruned: ``backed_up``)."""

    async def on_hub_epoch(self, epoch: str) -> None:
        """Persist the hub epoch (sent back in the next hello)."""

    async def on_command(self, name: str, reason: str, args: dict[str, Any]) -> None: ...

    async def on_state(self, state: str, detail: str) -> None:
        """Connection state for the mode ladder: "connecting", "online", "offline",
        "incompatible", "rolled_back" (the hub lost data: alert a human)."""


# ----------------------------------------------------------------------------- adapter helpers
def change_from_row(seq: int, kind: str, row: Mapping[str, Any]) -> Change:
    """A change-log row (``kind`` "ticket", "zone" or "policy" with the full row after the
    change, or "entry" with the event, as the hub store keeps them) as a protocol change.
    Raises RemoteProtocolError (``bad_field``) on a malformed row, like any decoded input."""
    if kind == "entry":
        return change_from_wire({"kind": kind, "seq": seq, **row})
    return change_from_wire({"kind": kind, "seq": seq, kind: dict(row)})


def entry_event(seq: int, row: Mapping[str, Any]) -> EntryEvent:
    ev = change_from_row(seq, "entry", row)
    assert isinstance(ev, EntryEvent)
    return ev


def snapshot_page_from_rows(seq: int, zones: Sequence[Mapping[str, Any]], policies: Sequence[Mapping[str, Any]],
                            tickets: Sequence[Mapping[str, Any]], next_after: int | None,
                            total_rows: int = 0) -> SnapshotPage:
    """A snapshot page from the row dicts a store reads (ticket rows shaped like TicketRecord,
    ``rotating_secret`` base64; zones with ``gates``; policies with ``kind``/``passback``)."""
    pairs = [ticket_state_from_wire(dict(t)) for t in tickets]
    states = tuple(st for _r, st in pairs)
    return SnapshotPage(seq, tuple(zone_from_wire(dict(z)) for z in zones),
                        tuple(policy_from_wire(dict(p)) for p in policies),
                        tuple(r for r, _st in pairs), next_after, total_rows,
                        states if any(st is not None for st in states) else ())
