"""The decision on barcodes (a shop's codes, legacy numbers) and pretix signed secrets."""
from __future__ import annotations

import dataclasses

import pytest

from tickets.barcode import PROVISIONAL_ID_BASE, barcode_key, journal_raw, provisional_ticket_id
from tickets.decide import decide, merge_states
from tickets.keys import SigningKey
from tickets.model import CredentialKind, Direction, EntryState, GatePolicy, Scan, TicketStatus
from tickets.pretix import PretixTicket
from tickets.reasons import Reason

from .conftest import NOW, DictView, make_policy, record, signed
from .pretix_signing import OTHER_KEY, event, sign

RANDOM_SECRET = "k7dhnx2v9qpwmb3ytf4cszr8ga6ue5jh"  # what pretix's default generator prints


def run(view: DictView, policy: GatePolicy, text: str | bytes, direction: Direction = Direction.IN):  # type: ignore[no-untyped-def]
    payload = text.encode("latin-1") if isinstance(text, str) else text
    return decide(Scan(payload, "qrcode", "test", NOW, direction), view, policy, NOW)


@pytest.fixture
def pretix_policy(key: SigningKey) -> GatePolicy:
    return make_policy(key, pretix=event())


SIGNED = sign(PretixTicket(seed="Q2w3E4r5T", item=10, variation=0))
SIGNED_SOUTH = sign(PretixTicket(seed="Z9x8C7v6B", item=11, variation=7))


# --------------------------------------------------------------------------- barcodes
def test_a_shop_barcode_is_found_by_its_key_and_the_verdict_shows_the_number(policy: GatePolicy) -> None:
    view = DictView()
    view.add(record(5, number="LRGEC-1", barcode_key=barcode_key(RANDOM_SECRET)))
    v = run(view, policy, RANDOM_SECRET)
    assert v.reason is Reason.ADMIT and v.ticket_id == 5 and v.ticket_number == "LRGEC-1"
    assert RANDOM_SECRET not in v.detail and RANDOM_SECRET not in v.message


def test_a_barcode_read_back_in_another_letter_case_is_found(policy: GatePolicy) -> None:
    view = DictView()
    view.add(record(5, barcode_key=barcode_key(RANDOM_SECRET)))
    assert run(view, policy, RANDOM_SECRET.upper()).reason is Reason.ADMIT


def test_a_barcode_with_characters_outside_ticket_numbers_is_found(policy: GatePolicy) -> None:
    code = "EVT*2026+SEAT/12=A"
    view = DictView()
    view.add(record(9, barcode_key=barcode_key(code)))
    assert run(view, policy, code).reason is Reason.ADMIT


def test_a_legacy_ticket_whose_barcode_is_its_number_is_still_found_by_number(policy: GatePolicy) -> None:
    view = DictView()
    view.add(record(5, number="4006381333931"))  # no barcode key: an old hub, or number = barcode
    assert run(view, policy, b"4006381333931").reason is Reason.ADMIT


def test_the_printed_number_of_a_ticket_with_a_secret_barcode_does_not_open_the_gate(policy: GatePolicy) -> None:
    view = DictView()
    view.add(record(5, number="LRGEC-1", barcode_key=barcode_key(RANDOM_SECRET)))
    v = run(view, policy, "LRGEC-1")
    assert v.reason is Reason.UNKNOWN and "manifest" in v.detail


def test_an_unknown_barcode_is_unknown_and_its_text_is_not_echoed(policy: GatePolicy) -> None:
    v = run(DictView(), policy, RANDOM_SECRET)
    assert v.reason is Reason.UNKNOWN and v.ticket_number is None
    assert RANDOM_SECRET not in v.detail


def test_a_revoked_barcode_is_refused_even_if_a_valid_row_shares_its_key(policy: GatePolicy) -> None:
    view = DictView()
    view.add(record(5, barcode_key=barcode_key(RANDOM_SECRET)))
    view.add(record(6, barcode_key=barcode_key(RANDOM_SECRET), status=TicketStatus.REVOKED))
    assert run(view, policy, RANDOM_SECRET).reason is Reason.REVOKED


def test_a_used_barcode_is_already_used(policy: GatePolicy) -> None:
    view = DictView(states={5: EntryState(entries=1, inside=True, last_entry_at=NOW - 60)})
    view.add(record(5, barcode_key=barcode_key(RANDOM_SECRET)))
    assert run(view, policy, RANDOM_SECRET).reason is Reason.ALREADY_USED


def test_gatehouse_credentials_are_not_looked_up_by_barcode(key: SigningKey, policy: GatePolicy) -> None:
    view = DictView()
    rec = view.add(record(1))
    text = signed(key, rec)
    view.add(record(2, barcode_key=barcode_key(text.decode()), status=TicketStatus.REVOKED))
    assert run(view, policy, text).reason is Reason.ADMIT


# --------------------------------------------------------------------------- pretix signed
def test_a_pretix_signed_ticket_not_in_the_replica_is_admitted_on_its_signature(pretix_policy: GatePolicy) -> None:
    v = run(DictView(), pretix_policy, SIGNED)
    assert v.reason is Reason.ADMIT_ON_SIGNATURE and v.kind is CredentialKind.PRETIX
    assert v.zone_id == 1 and v.zone_name == "North"
    assert v.ticket_id == provisional_ticket_id(barcode_key(SIGNED)) >= PROVISIONAL_ID_BASE
    assert v.ticket_number is None and "item 10" in v.detail


def test_a_pretix_variation_maps_to_its_own_zone(pretix_policy: GatePolicy) -> None:
    v = run(DictView(), pretix_policy, SIGNED_SOUTH)
    assert v.reason is Reason.WRONG_GATE and v.right_gates == ("S1", "S2")


def test_a_pretix_ticket_admitted_on_signature_is_refused_the_second_time(pretix_policy: GatePolicy) -> None:
    tid = provisional_ticket_id(barcode_key(SIGNED))
    view = DictView(states={tid: EntryState(entries=1, inside=True, last_entry_at=NOW - 5)})
    assert run(view, pretix_policy, SIGNED).reason is Reason.ALREADY_USED


def test_a_pretix_ticket_admitted_on_signature_stays_used_once_the_hub_sends_it(pretix_policy: GatePolicy) -> None:
    tid = provisional_ticket_id(barcode_key(SIGNED))
    view = DictView(states={tid: EntryState(entries=1, inside=True, last_entry_at=NOW - 5)})
    view.add(record(40, number="ABCDE-1", barcode_key=barcode_key(SIGNED)))
    v = run(view, pretix_policy, SIGNED)
    assert v.reason is Reason.ALREADY_USED and v.ticket_number == "ABCDE-1"


def test_a_pretix_signed_ticket_in_the_replica_is_decided_by_the_replica(pretix_policy: GatePolicy) -> None:
    view = DictView()
    view.add(record(40, number="ABCDE-1", zone_id=2, barcode_key=barcode_key(SIGNED)))
    v = run(view, pretix_policy, SIGNED)  # the replica says zone 2, not the mapping's zone 1
    assert v.reason is Reason.WRONG_GATE and v.ticket_id == 40


def test_a_revoked_pretix_signed_ticket_is_revoked_whatever_its_signature(pretix_policy: GatePolicy) -> None:
    view = DictView()
    view.add(record(41, barcode_key=barcode_key(SIGNED), status=TicketStatus.REVOKED))
    assert run(view, pretix_policy, SIGNED).reason is Reason.REVOKED


def test_a_tampered_pretix_secret_is_forged(pretix_policy: GatePolicy) -> None:
    forged = sign(PretixTicket(seed="Q2w3E4r5T", item=10), OTHER_KEY)
    assert run(DictView(), pretix_policy, forged).reason is Reason.FORGED


def test_a_broken_pretix_secret_is_malformed(pretix_policy: GatePolicy) -> None:
    assert run(DictView(), pretix_policy, "=" + SIGNED[1:].replace("A", "B")).reason in (Reason.MALFORMED, Reason.FORGED)
    assert run(DictView(), pretix_policy, "A" * 120).reason is Reason.MALFORMED


def test_a_pretix_product_with_no_zone_mapping_is_not_admitted(pretix_policy: GatePolicy) -> None:
    v = run(DictView(), pretix_policy, sign(PretixTicket(seed="P4rk1ng00", item=99)))
    assert v.reason is Reason.UNKNOWN and "not mapped" in v.detail


def test_a_pretix_ticket_for_another_date_of_a_series_is_unknown(key: SigningKey) -> None:
    policy = make_policy(key, pretix=event(subevent=3))
    assert run(DictView(), policy, sign(PretixTicket(seed="s", item=10, subevent=4))).reason is Reason.UNKNOWN
    assert run(DictView(), policy, sign(PretixTicket(seed="s", item=10, subevent=3))).admitted


def test_a_pretix_signed_ticket_outside_its_own_validity_is_refused(pretix_policy: GatePolicy) -> None:
    early = sign(PretixTicket(seed="e", item=10, valid_from=int(NOW) + 7200, valid_until=int(NOW) + 9000))
    late = sign(PretixTicket(seed="l", item=10, valid_from=int(NOW) - 9000, valid_until=int(NOW) - 7200))
    assert run(DictView(), pretix_policy, early).reason is Reason.NOT_YET_VALID
    assert run(DictView(), pretix_policy, late).reason is Reason.EXPIRED


def test_event_validity_applies_to_pretix_tickets_without_their_own(key: SigningKey) -> None:
    policy = make_policy(key, pretix=event(valid_from=NOW + 7200, valid_until=NOW + 9000))
    assert run(DictView(), policy, SIGNED).reason is Reason.NOT_YET_VALID


def test_a_pretix_signed_ticket_is_unknown_at_an_event_without_pretix_keys(policy: GatePolicy) -> None:
    v = run(DictView(), policy, SIGNED)
    assert v.reason is Reason.UNKNOWN and "no pretix key" in v.detail


def test_a_pretix_signed_ticket_is_unknown_when_the_event_does_not_admit_on_signature(key: SigningKey) -> None:
    policy = make_policy(key, pretix=event(), allow_admit_on_signature=False)
    assert run(DictView(), policy, SIGNED).reason is Reason.UNKNOWN


def test_a_pretix_signed_exit_is_let_out(pretix_policy: GatePolicy) -> None:
    assert run(DictView(), pretix_policy, SIGNED, Direction.OUT).reason is Reason.ADMIT


def test_a_pretix_secret_in_another_letter_case_is_found_in_the_replica_but_never_verifies(pretix_policy: GatePolicy) -> None:
    view = DictView()
    view.add(record(40, barcode_key=barcode_key(SIGNED)))
    assert run(view, pretix_policy, SIGNED.swapcase()).reason is Reason.ADMIT
    assert run(DictView(), pretix_policy, SIGNED.swapcase()).reason in (Reason.FORGED, Reason.MALFORMED)


# --------------------------------------------------------------------------- helpers
@pytest.mark.parametrize(("a", "b", "want"), [
    (EntryState(), EntryState(1, True, 10.0), EntryState(1, True, 10.0)),
    (EntryState(1, True, 10.0), EntryState(), EntryState(1, True, 10.0)),
    # the same admit seen under both ids counts once
    (EntryState(1, True, 10.0), EntryState(1, True, 10.0), EntryState(1, True, 10.0)),
    # an exit recorded under the hub's id after an entry under the provisional one: outside
    (EntryState(1, False, 10.0, 20.0), EntryState(1, True, 10.0), EntryState(1, False, 10.0, 20.0)),
    (EntryState(2, True, 30.0, 20.0), EntryState(1, False, 10.0, 20.0), EntryState(2, True, 30.0, 20.0)),
])
def test_entry_states_under_two_ids_merge_to_the_latest_movement(a: EntryState, b: EntryState, want: EntryState) -> None:
    assert merge_states(a, b) == want


def test_the_journal_keeps_a_barcode_only_as_its_key() -> None:
    raw = journal_raw(RANDOM_SECRET.encode())
    assert raw == b"barcode_key:" + barcode_key(RANDOM_SECRET).hex().encode()
    assert RANDOM_SECRET.encode() not in raw
    assert journal_raw(SIGNED.encode()).startswith(b"barcode_key:")
    assert journal_raw(b"\xff\x00garbage").startswith(b"barcode_key:")


def test_the_journal_keeps_a_gatehouse_credential_as_read(key: SigningKey) -> None:
    text = signed(key, record(1))
    assert journal_raw(text) == text and journal_raw(b" " + text.lower()) == b" " + text.lower()


def test_provisional_ids_stay_in_their_reserved_range() -> None:
    for code in ("a", RANDOM_SECRET, SIGNED):
        assert PROVISIONAL_ID_BASE <= provisional_ticket_id(barcode_key(code)) < 2**63


def test_record_barcode_key_defaults_to_none() -> None:
    assert dataclasses.replace(record(1)).barcode_key is None
