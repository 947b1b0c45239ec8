from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from tickets import credential
from tickets.keys import KeyRing, SigningKey, generate_key
from tickets.model import EntryState, GatePolicy, TicketRecord, Zone
from tickets.policy import EntryPolicy

NOW = 1_780_000_000.0
EVENT = 42


@dataclass
class DictView:
    """An in-memory ReplicaView for pure tests."""

    tickets: dict[int, TicketRecord] = field(default_factory=dict)
    states: dict[int, EntryState] = field(default_factory=dict)

    def add(self, record: TicketRecord) -> TicketRecord:
        self.tickets[record.ticket_id] = record
        return record

    def ticket_by_id(self, ticket_id: int) -> TicketRecord | None:
        return self.tickets.get(ticket_id)

    def ticket_by_number(self, number: str) -> TicketRecord | None:
        return next((t for t in self.tickets.values() if t.number == number), None)

    def ticket_by_barcode_key(self, key: bytes) -> TicketRecord | None:
        hits = [t for t in self.tickets.values() if t.barcode_key == key]
        return min(hits, key=lambda t: t.status == "valid", default=None)

    def entry_state(self, ticket_id: int) -> EntryState:
        return self.states.get(ticket_id, EntryState())


@pytest.fixture(scope="session")
def key() -> SigningKey:
    return generate_key(7)


@pytest.fixture(scope="session")
def other_key() -> SigningKey:
    return generate_key(8)


@pytest.fixture
def policy(key: SigningKey) -> GatePolicy:
    return make_policy(key)


def make_policy(key: SigningKey, **overrides: object) -> GatePolicy:
    base: dict[str, object] = dict(
        gate_id="N1",
        event_id=EVENT,
        keyring=KeyRing([key.verify_key]),
        zones={1: Zone(1, "North", frozenset({"N1", "N2"})), 2: Zone(2, "South", frozenset({"S1", "S2"}))},
        entry_policies={
            1: EntryPolicy.preset(1, "single"),
            2: EntryPolicy.preset(2, "reentry"),
            3: EntryPolicy.preset(3, "unlimited"),
            4: EntryPolicy.preset(4, "passback_hard"),
            5: EntryPolicy.preset(5, "passback_soft"),
            6: EntryPolicy.preset(6, "passback_timed", wait_s=600),
        },
    )
    base.update(overrides)
    return GatePolicy(**base)  # type: ignore[arg-type]


def record(ticket_id: int = 1, **kw: object) -> TicketRecord:
    base: dict[str, object] = dict(
        ticket_id=ticket_id, number=f"T{ticket_id:06d}", zone_id=1, policy_id=1,
        valid_from=NOW - 3600, valid_until=NOW + 3600,
    )
    base.update(kw)
    return TicketRecord(**base)  # type: ignore[arg-type]


def signed(key: SigningKey, rec: TicketRecord, *, serial: int | None = None, event: int = EVENT,
           rotating: bool = False, zone: int | None = None) -> bytes:
    fields = credential.CredentialFields(
        key_id=key.key_id, event_id=event, ticket_id=rec.ticket_id, zone_id=rec.zone_id if zone is None else zone,
        policy_id=rec.policy_id, valid_from=int(rec.valid_from), valid_until=int(rec.valid_until),
        serial=rec.serial if serial is None else serial, rotating=rotating,
    )
    return credential.issue(key, fields).encode()
