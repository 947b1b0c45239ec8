"""Against a real pretix: its secrets, its signed tickets and its own check-in, decided at real gates.

The first run on a machine installs pretix into its own virtualenv and migrates its
database (minutes); later runs start from the kept copy (seconds).
"""
from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from gatehouse.peers.pretix import measure_redeem_rate
from gatehouse.venue import Venue
from tickets.barcode import JOURNAL_KEY_PREFIX, barcode_key
from tickets.entry import EntryKind
from tickets.errors import CredentialError
from tickets.model import TicketRecord, TicketStatus
from tickets.pretix import PretixEvent, is_sig1_shaped, read_signed

from .pretix import (
    NORTH,
    SETUP_TIMEOUT_S,
    SINGLE,
    SOUTH,
    PretixPeer,
    StandaloneGate,
    standalone_gate,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(SETUP_TIMEOUT_S)]

RANDOM_ALPHABET = set("abcdefghjkmnpqrstuvwxyz23456789")  # pretix's random generator


def mapping(peer: PretixPeer) -> PretixEvent:
    """The signed event's info as the hub will send it: pretix's keys, products → zones."""
    ev = peer.signed
    north, south = ev.standing.variations
    return PretixEvent.from_wire({
        "public_keys": peer.api.sig1_keys(ev.slug),
        "products": [
            {"item": ev.standing.item, "variation": north, "zone_id": NORTH, "policy_id": SINGLE},
            {"item": ev.standing.item, "variation": south, "zone_id": SOUTH, "policy_id": SINGLE},
            {"item": ev.vip.item, "variation": None, "zone_id": NORTH, "policy_id": SINGLE},
        ],
    })


def secrets_of(order: dict[str, object]) -> list[str]:
    return [str(p["secret"]) for p in order["positions"]]  # type: ignore[attr-defined]


def test_an_order_made_in_pretix_has_random_secrets(pretix_peer: PretixPeer) -> None:
    ev = pretix_peer.random
    order = pretix_peer.order(ev, [(ev.standing.item, ev.standing.variations[0]), (ev.vip.item, None)])
    a, b = secrets_of(order)
    assert a != b and len(a) == len(b) == 32 and set(a + b) <= RANDOM_ALPHABET
    assert not is_sig1_shaped(a)


def test_a_pretix_signed_secret_verifies_offline_with_the_key_from_pretix_api(pretix_peer: PretixPeer) -> None:
    ev = pretix_peer.signed
    north = ev.standing.variations[0]
    order = pretix_peer.order(ev, [(ev.standing.item, north), (ev.vip.item, None)])
    standing, vip = secrets_of(order)
    assert is_sig1_shaped(standing) and set(standing) <= set(string.ascii_letters + string.digits + "+/=")
    keys = mapping(pretix_peer).public_keys
    assert len(keys) == 1
    got = read_signed(standing, keys)
    assert (got.item, got.variation, got.subevent) == (ev.standing.item, north, 0)
    assert re.fullmatch(r"[A-Za-z0-9]{9}", got.seed) and got.valid_from is None and got.valid_until is None
    assert read_signed(vip, keys).item == ev.vip.item

    refused = 0
    data = standing.encode("ascii")
    for bit in range(len(data) * 8):
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(CredentialError) as info:
            read_signed(flipped.decode("latin-1"), keys)
        assert info.value.reason in ("MALFORMED", "FORGED")
        refused += 1
    assert refused == len(data) * 8


async def test_a_pretix_random_secret_imported_into_the_hub_is_admitted_then_already_used(
        pretix_peer: PretixPeer, tmp_path: Path) -> None:
    ev = pretix_peer.random
    order = pretix_peer.order(ev, [(ev.standing.item, ev.standing.variations[0])] * 3)
    exported = [p for p in pretix_peer.api.positions(ev.slug) if p["order"] == order["code"]]
    assert len(exported) == 3
    venue = await Venue.create(tmp_path, tickets_per_zone=1)
    try:
        async with venue.hub.admin_client() as c:
            rows = [{"number": p["secret"], "zone": "North", "holder": f"pretix {order['code']}-{p['positionid']}"}
                    for p in exported]
            r = await c.post("/api/v1/tickets/import?format=json", json=rows)
            r.raise_for_status()
        gate = await venue.add_gate("north-1", ["North"])
        await venue.online(gate)
        first = exported[0]["secret"]
        assert await gate.scan(first) == "ADMIT"
        assert await gate.scan(first) == "ALREADY_USED"
        assert await gate.scan(exported[1]["secret"]) == "ADMIT"
    finally:
        await venue.close()


async def test_a_pretix_barcode_is_found_by_its_key_in_any_letter_case_and_never_journaled(
        pretix_peer: PretixPeer, tmp_path: Path, gates: list[StandaloneGate]) -> None:
    ev = pretix_peer.random
    order = pretix_peer.order(ev, [(ev.standing.item, ev.standing.variations[0])] * 2)
    rows = [TicketRecord(ticket_id=100 + p["positionid"], number=f"{order['code']}-{p['positionid']}",
                         zone_id=NORTH, policy_id=SINGLE, valid_from=0.0, valid_until=4e9,
                         barcode_key=barcode_key(p["secret"]))
            for p in order["positions"]]  # as the hub will send them: the number, and the barcode's key only
    gate = await standalone_gate(tmp_path, rows, None)
    gates.append(gate)
    secret = order["positions"][0]["secret"]
    first = await gate.scan(secret.upper())
    assert (first["reason"], first["ticket"]) == ("ADMIT", f"{order['code']}-1")
    assert (await gate.scan(secret))["reason"] == "ALREADY_USED"
    assert (await gate.scan(f"{order['code']}-2"))["reason"] == "UNKNOWN"  # the printed number is not the ticket
    assert gate.agent.journal is not None
    scans = [e for e in await gate.agent.journal.all_entries() if e.kind is EntryKind.SCAN]
    assert all(e.raw.startswith(JOURNAL_KEY_PREFIX) for e in scans)
    assert not any(p["secret"].encode() in e.raw or p["secret"].upper().encode() in e.raw
                   for e in scans for p in order["positions"])
    assert scans[0].ticket_number == f"{order['code']}-1"


async def test_a_signed_ticket_sold_after_the_last_sync_is_admitted_on_its_signature_once(
        pretix_peer: PretixPeer, tmp_path: Path, gates: list[StandaloneGate]) -> None:
    ev = pretix_peer.signed
    north, south = ev.standing.variations
    info = mapping(pretix_peer)
    gate = await standalone_gate(tmp_path, [], info)  # a replica that has never seen these tickets
    gates.append(gate)
    order = pretix_peer.order(ev, [(ev.standing.item, north), (ev.standing.item, south), (ev.vip.item, None)])
    standing_north, standing_south, vip = secrets_of(order)
    assert (await gate.scan(standing_north))["reason"] == "ADMIT_ON_SIGNATURE"
    assert (await gate.scan(standing_north))["reason"] == "ALREADY_USED"
    assert (await gate.scan(vip))["reason"] == "ADMIT_ON_SIGNATURE"
    wrong = await gate.scan(standing_south)
    assert wrong["reason"] == "WRONG_GATE" and wrong["right_gates"] == ["S1"]
    tampered = standing_north[:40] + ("A" if standing_north[40] != "A" else "B") + standing_north[41:]
    assert (await gate.scan(tampered))["reason"] in ("FORGED", "MALFORMED")


async def test_a_secret_pretix_revoked_is_refused_and_its_replacement_admitted(
        pretix_peer: PretixPeer, tmp_path: Path, gates: list[StandaloneGate]) -> None:
    ev = pretix_peer.signed
    north = ev.standing.variations[0]
    order = pretix_peer.order(ev, [(ev.standing.item, north)])
    old = secrets_of(order)[0]
    pretix_peer.api.call("POST", f"/events/{ev.slug}/orders/{order['code']}/regenerate_secrets/")
    new = pretix_peer.api.call("GET", f"/events/{ev.slug}/orders/{order['code']}/")["positions"][0]["secret"]
    revoked = [r["secret"] for r in pretix_peer.api.call("GET", f"/events/{ev.slug}/revokedsecrets/?page_size=500")["results"]]
    assert new != old and old in revoked
    # pretix's revocation list arrives as revoked tickets (barcode key only)
    rows = [TicketRecord(ticket_id=500 + i, number=f"revoked-{i}", zone_id=NORTH, policy_id=SINGLE, valid_from=0.0,
                         valid_until=4e9, status=TicketStatus.REVOKED, barcode_key=barcode_key(s))
            for i, s in enumerate(revoked)]
    gate = await standalone_gate(tmp_path, rows, mapping(pretix_peer))
    gates.append(gate)
    assert read_signed(old, mapping(pretix_peer).public_keys).item == ev.standing.item  # still a valid signature
    assert (await gate.scan(old))["reason"] == "REVOKED"
    assert (await gate.scan(new))["reason"] == "ADMIT_ON_SIGNATURE"


async def test_pretix_own_online_checkin_is_measured_closed_loop(pretix_peer: PretixPeer) -> None:
    ev = pretix_peer.random
    secrets: list[str] = []
    for _ in range(6):
        secrets += secrets_of(pretix_peer.order(ev, [(ev.standing.item, ev.standing.variations[0])] * 10))
    server = pretix_peer.server
    one = await measure_redeem_rate(server.url, server.organizer, server.token, secrets[:30], ev.checkin_list,
                                    concurrency=1)
    four = await measure_redeem_rate(server.url, server.organizer, server.token, secrets[30:], ev.checkin_list,
                                     concurrency=4)
    print(f"\npretix redeem (sqlite, {server.workers} gunicorn workers): c=1 {one}\n  c=4 {four}")
    assert one["redeem_count"] == 30 and one["errors_count"] == 0 and one["redeem_per_s"] > 0
    assert four["redeem_count"] + four["errors_count"] == 30 and four["redeem_count"] > 0
    again = await measure_redeem_rate(server.url, server.organizer, server.token, secrets[:3], ev.checkin_list)
    assert again["redeem_count"] == 0 and again["errors_count"] == 3  # pretix refuses a second entry
    assert any("already_redeemed" in r for r in again["error_reasons"])
