"""A real gate agent deciding shop barcodes and pretix signed tickets (secrets signed here the
way pretix signs them; tests/peers does the same with a real pretix)."""
from __future__ import annotations

import time
from pathlib import Path

from tests.peers.pretix import NORTH, SINGLE, StandaloneGate, standalone_gate
from tests.tickets.pretix_signing import event, sign
from tickets.barcode import JOURNAL_KEY_PREFIX, barcode_key, provisional_ticket_id
from tickets.entry import EntryKind
from tickets.model import TicketRecord
from tickets.pretix import PretixProduct, PretixTicket

SECRET = sign(PretixTicket(seed="Q2w3E4r5T", item=10))
INFO = event(products={(10, None): PretixProduct(NORTH, SINGLE)})


async def scans(gate: StandaloneGate):  # type: ignore[no-untyped-def]
    assert gate.agent.journal is not None
    return [e for e in await gate.agent.journal.all_entries() if e.kind is EntryKind.SCAN]


async def test_an_admit_on_signature_is_tracked_across_a_restart_and_after_the_hub_sends_the_ticket(
        tmp_path: Path) -> None:
    gate = await standalone_gate(tmp_path, [], INFO)
    try:
        assert (await gate.scan(SECRET))["reason"] == "ADMIT_ON_SIGNATURE"
        first = (await scans(gate))[0]
        assert first.ticket_id == provisional_ticket_id(barcode_key(SECRET)) and first.zone_id == NORTH
        assert first.raw == JOURNAL_KEY_PREFIX + barcode_key(SECRET).hex().encode() and "item 10" in first.detail
        assert (await gate.scan(SECRET, walk=False))["reason"] == "ALREADY_USED"
    finally:
        await gate.agent.stop()

    gate = await standalone_gate(tmp_path, [], INFO)  # restarted: the entry is on disk
    try:
        assert (await gate.scan(SECRET, walk=False))["reason"] == "ALREADY_USED"
        # the hub's row arrives (its own ticket id, the number, the barcode key)
        assert gate.agent.replica is not None
        await gate.agent.replica.apply_tickets(
            [TicketRecord(77, "ABCDE-1", NORTH, SINGLE, 0.0, 4e9, barcode_key=barcode_key(SECRET))],
            cursor=2, now=time.time(), from_snapshot=False)
        again = await gate.scan(SECRET, walk=False)
        assert (again["reason"], again["ticket"]) == ("ALREADY_USED", "ABCDE-1")
    finally:
        await gate.agent.stop()


async def test_a_gate_whose_event_has_no_pretix_keys_refuses_signed_codes_as_unknown(tmp_path: Path) -> None:
    gate = await standalone_gate(tmp_path, [], None)
    try:
        assert (await gate.scan(SECRET))["reason"] == "UNKNOWN"
    finally:
        await gate.agent.stop()


async def test_pretix_keys_from_the_hub_reach_the_decision_after_a_policy_reload(tmp_path: Path) -> None:
    gate = await standalone_gate(tmp_path, [], None)
    try:
        assert gate.agent.replica is not None
        policy = gate.agent.policy()
        await gate.agent.replica.set_event(event_id=1, keyring=policy.keyring, zones=policy.zones.values(),
                                           policies=policy.entry_policies.values(), pretix=INFO)
        gate.agent.reload_policy()
        assert (await gate.scan(SECRET))["reason"] == "ADMIT_ON_SIGNATURE"
    finally:
        await gate.agent.stop()


async def test_a_ticket_whose_barcode_is_its_number_is_still_admitted_by_number(tmp_path: Path) -> None:
    gate = await standalone_gate(tmp_path, [TicketRecord(5, "4006381333931", NORTH, SINGLE, 0.0, 4e9)], None)
    try:
        assert (await gate.scan("4006381333931"))["reason"] == "ADMIT"
        assert (await gate.scan("4006381333931", walk=False))["reason"] == "ALREADY_USED"
    finally:
        await gate.agent.stop()
