"""The decision, one rule per test. Time is passed in; nothing here does I/O."""
from __future__ import annotations

import dataclasses

import pytest

from tickets import credential, rotating
from tickets.decide import decide
from tickets.keys import SigningKey
from tickets.model import Direction, EntryState, GatePolicy, Scan, TicketStatus
from tickets.reasons import MESSAGES, Reason

from .conftest import NOW, DictView, make_policy, record, signed


def scan(payload: bytes, direction: Direction = Direction.IN) -> Scan:
    return Scan(payload, "qrcode", "test", NOW, direction)


def run(view: DictView, policy: GatePolicy, payload: bytes, now: float = NOW, direction: Direction = Direction.IN):  # type: ignore[no-untyped-def]
    return decide(scan(payload, direction), view, policy, now)


def test_every_reason_has_a_short_staff_message() -> None:
    assert set(MESSAGES) == set(Reason)
    assert all(0 < len(m) <= 80 for m in MESSAGES.values())


def test_valid_signed_ticket_in_replica_is_admitted(key: SigningKey, policy: GatePolicy) -> None:
    view = DictView()
    rec = view.add(record(1, holder="Ada", seat="N-12-3"))
    v = run(view, policy, signed(key, rec))
    assert v.reason is Reason.ADMIT and v.admitted
    assert (v.ticket_id, v.zone_name, v.holder, v.seat) == (1, "North", "Ada", "N-12-3")


def test_legacy_number_in_replica_is_admitted(policy: GatePolicy) -> None:
    view = DictView()
    view.add(record(5, number="4006381333931"))
    assert run(view, policy, b"4006381333931").reason is Reason.ADMIT


def test_legacy_number_not_in_replica_is_unknown(policy: GatePolicy) -> None:
    assert run(DictView(), policy, b"4006381333931").reason is Reason.UNKNOWN


def test_valid_signature_not_in_replica_is_admitted_on_signature(key: SigningKey, policy: GatePolicy) -> None:
    v = run(DictView(), policy, signed(key, record(77)))
    assert v.reason is Reason.ADMIT_ON_SIGNATURE and v.ticket_id == 77


def test_valid_signature_not_in_replica_is_unknown_when_event_forbids_admit_on_signature(key: SigningKey) -> None:
    policy = make_policy(key, allow_admit_on_signature=False)
    assert run(DictView(), policy, signed(key, record(77))).reason is Reason.UNKNOWN


def test_signed_ticket_with_newer_serial_than_replica_is_admitted_on_signature(key: SigningKey, policy: GatePolicy) -> None:
    view = DictView()
    rec = view.add(record(3, serial=1))
    assert run(view, policy, signed(key, rec, serial=2)).reason is Reason.ADMIT_ON_SIGNATURE


def test_ticket_used_on_signature_is_refused_the_second_time(key: SigningKey, policy: GatePolicy) -> None:
    view = DictView(states={77: EntryState(entries=1, inside=True, last_entry_at=NOW - 5)})
    assert run(view, policy, signed(key, record(77))).reason is Reason.ALREADY_USED


def test_bad_signature_is_forged(key: SigningKey, other_key: SigningKey, policy: GatePolicy) -> None:
    impostor = dataclasses.replace(other_key, key_id=key.key_id)
    assert run(DictView(), policy, signed(impostor, record(1))).reason is Reason.FORGED


def test_garbage_is_malformed(policy: GatePolicy) -> None:
    v = run(DictView(), policy, b"\x00\x01garbage\xff")
    assert v.reason is Reason.MALFORMED and not v.admitted and v.detail


def test_credential_for_another_event_is_unknown(key: SigningKey, policy: GatePolicy) -> None:
    assert run(DictView(), policy, signed(key, record(1), event=99)).reason is Reason.UNKNOWN


def test_revoked_ticket_is_refused(key: SigningKey, policy: GatePolicy) -> None:
    view = DictView()
    rec = view.add(record(1, status=TicketStatus.REVOKED))
    assert run(view, policy, signed(key, rec)).reason is Reason.REVOKED
    assert run(view, policy, rec.number.encode()).reason is Reason.REVOKED


def test_credential_older_than_the_replica_serial_is_superseded(key: SigningKey, policy: GatePolicy) -> None:
    view = DictView()
    rec = view.add(record(1, serial=3))
    v = run(view, policy, signed(key, rec, serial=2))
    assert v.reason is Reason.SUPERSEDED and "serial 2" in v.detail


def test_superseded_status_refuses_even_the_legacy_number(policy: GatePolicy) -> None:
    view = DictView()
    rec = view.add(record(1, status=TicketStatus.SUPERSEDED))
    assert run(view, policy, rec.number.encode()).reason is Reason.SUPERSEDED


def test_ticket_before_its_window_is_not_yet_valid(key: SigningKey, policy: GatePolicy) -> None:
    view = DictView()
    rec = view.add(record(1, valid_from=NOW + 3600, valid_until=NOW + 7200))
    assert run(view, policy, signed(key, rec)).reason is Reason.NOT_YET_VALID


def test_ticket_after_its_window_is_expired(key: SigningKey, policy: GatePolicy) -> None:
    view = DictView()
    rec = view.add(record(1, valid_from=NOW - 7200, valid_until=NOW - 3600))
    assert run(view, policy, signed(key, rec)).reason is Reason.EXPIRED


def test_validity_window_tolerates_configured_clock_skew(key: SigningKey) -> None:
    policy = make_policy(key, clock_skew_s=60)
    view = DictView()
    rec = view.add(record(1, valid_from=NOW + 30, valid_until=NOW + 3600))
    assert run(view, policy, signed(key, rec)).reason is Reason.ADMIT


def test_ticket_for_another_zone_is_wrong_gate_with_the_right_gates(key: SigningKey, policy: GatePolicy) -> None:
    view = DictView()
    rec = view.add(record(1, zone_id=2))
    v = run(view, policy, signed(key, rec))
    assert v.reason is Reason.WRONG_GATE
    assert v.right_gates == ("S1", "S2") and "S1, S2" in v.message


def test_ticket_for_a_zone_unknown_to_the_gate_is_wrong_gate(key: SigningKey, policy: GatePolicy) -> None:
    view = DictView()
    rec = view.add(record(1, zone_id=9))
    assert run(view, policy, signed(key, rec)).reason is Reason.WRONG_GATE


def test_closed_gate_refuses_every_scan(key: SigningKey) -> None:
    policy = make_policy(key, closed=True)
    view = DictView()
    rec = view.add(record(1))
    assert run(view, policy, signed(key, rec)).reason is Reason.GATE_CLOSED


def test_gate_outside_its_opening_hours_is_closed(key: SigningKey) -> None:
    policy = make_policy(key, open_windows=((NOW - 7200, NOW - 60),))
    view = DictView()
    rec = view.add(record(1))
    assert run(view, policy, signed(key, rec)).reason is Reason.GATE_CLOSED
    assert run(view, policy, signed(key, rec), now=NOW - 600).reason is Reason.ADMIT


def test_exit_of_a_known_ticket_is_always_let_out(key: SigningKey, policy: GatePolicy) -> None:
    view = DictView(states={1: EntryState(1, True, NOW - 100)})
    rec = view.add(record(1, valid_from=NOW - 7200, valid_until=NOW - 3600))  # expired: still may leave
    v = run(view, policy, signed(key, rec), direction=Direction.OUT)
    assert v.admitted and v.direction is Direction.OUT


def test_unknown_policy_id_falls_back_to_single_entry(key: SigningKey, policy: GatePolicy) -> None:
    view = DictView(states={1: EntryState(1, False, NOW - 100, NOW - 50)})
    rec = view.add(record(1, policy_id=200))
    assert run(view, policy, signed(key, rec)).reason is Reason.ALREADY_USED


# --- entry policies, one row per rule -------------------------------------------------
INSIDE = EntryState(entries=1, inside=True, last_entry_at=NOW - 60)
OUT_AFTER_EXIT = EntryState(entries=1, inside=False, last_entry_at=NOW - 3000, last_exit_at=NOW - 2000)
INSIDE_LONG_AGO = EntryState(entries=1, inside=True, last_entry_at=NOW - 3000)


@pytest.mark.parametrize(
    ("rule", "policy_id", "state", "expected", "flags"),
    [
        ("single_entry_admits_the_first_time", 1, EntryState(), Reason.ADMIT, ()),
        ("single_entry_refuses_a_second_entry_even_after_exit", 1, OUT_AFTER_EXIT, Reason.ALREADY_USED, ()),
        ("reentry_refused_while_inside", 2, INSIDE, Reason.ALREADY_INSIDE, ()),
        ("reentry_allowed_after_a_recorded_exit", 2, OUT_AFTER_EXIT, Reason.ADMIT_REENTRY, ()),
        ("unlimited_admits_while_inside", 3, INSIDE, Reason.ADMIT_REENTRY, ()),
        ("passback_hard_refuses_until_exit", 4, INSIDE, Reason.ALREADY_INSIDE, ()),
        ("passback_hard_admits_after_exit", 4, OUT_AFTER_EXIT, Reason.ADMIT_REENTRY, ()),
        ("passback_soft_admits_while_inside_but_flags_it", 5, INSIDE, Reason.ADMIT_REENTRY, ("passback_soft",)),
        ("passback_timed_refuses_within_the_wait", 6, INSIDE, Reason.ANTI_PASSBACK_WAIT, ()),
        ("passback_timed_admits_after_the_wait", 6, INSIDE_LONG_AGO, Reason.ADMIT_REENTRY, ()),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_entry_policy(key: SigningKey, policy: GatePolicy, rule: str, policy_id: int, state: EntryState,
                      expected: Reason, flags: tuple[str, ...]) -> None:
    view = DictView(states={1: state})
    rec = view.add(record(1, policy_id=policy_id))
    v = run(view, policy, signed(key, rec))
    assert (v.reason, v.flags) == (expected, flags), rule


def test_reentry_capped_by_max_entries(key: SigningKey) -> None:
    from tickets.policy import EntryPolicy
    policy = make_policy(key, entry_policies={2: EntryPolicy.preset(2, "reentry", max_entries=2)})
    view = DictView(states={1: EntryState(entries=2, inside=False, last_entry_at=NOW - 10, last_exit_at=NOW - 5)})
    rec = view.add(record(1, policy_id=2))
    assert run(view, policy, signed(key, rec)).reason is Reason.ALREADY_USED


# --- rotating codes ---------------------------------------------------------------------
SECRET = b"s" * 20


def rotating_payload(key: SigningKey, rec, at: float) -> bytes:  # type: ignore[no-untyped-def]
    static = signed(key, rec, rotating=True).decode()
    return credential.with_code(static, rotating.code_at(SECRET, at)).encode()


def test_rotating_code_for_now_is_admitted(key: SigningKey, policy: GatePolicy) -> None:
    view = DictView()
    rec = view.add(record(1, rotating_secret=SECRET))
    assert run(view, policy, rotating_payload(key, rec, NOW)).reason is Reason.ADMIT


def test_rotating_code_one_step_old_is_still_accepted(key: SigningKey, policy: GatePolicy) -> None:
    view = DictView()
    rec = view.add(record(1, rotating_secret=SECRET))
    assert run(view, policy, rotating_payload(key, rec, NOW - rotating.STEP_S)).reason is Reason.ADMIT


def test_rotating_code_shown_after_its_window_is_stale(key: SigningKey, policy: GatePolicy) -> None:
    view = DictView()
    rec = view.add(record(1, rotating_secret=SECRET))
    assert run(view, policy, rotating_payload(key, rec, NOW - 3 * rotating.STEP_S)).reason is Reason.STALE_CODE


def test_rotating_ticket_without_its_code_is_stale(key: SigningKey, policy: GatePolicy) -> None:
    view = DictView()
    rec = view.add(record(1, rotating_secret=SECRET))
    assert run(view, policy, signed(key, rec, rotating=True)).reason is Reason.STALE_CODE


def test_rotating_ticket_not_in_replica_cannot_be_checked_and_is_unknown(key: SigningKey, policy: GatePolicy) -> None:
    rec = record(1, rotating_secret=SECRET)
    assert run(DictView(), policy, rotating_payload(key, rec, NOW)).reason is Reason.UNKNOWN


def test_code_appended_to_a_static_ticket_does_not_verify_as_rotating(key: SigningKey, policy: GatePolicy) -> None:
    # The ROTATING flag is signed: a static ticket with a code appended is still static.
    view = DictView()
    rec = view.add(record(1))
    v = run(view, policy, signed(key, rec) + b":ABCDEFGH")
    assert v.reason is Reason.ADMIT and v.kind is not None and v.kind.value == "signed"
