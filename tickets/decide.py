"""The decision: one scan in, one verdict out. Pure — time is an argument, no I/O.

Checks run in this order; the first that fails gives the verdict:

1. gate closed (by command or outside its opening windows)       GATE_CLOSED
2. the bytes parse as a credential                                MALFORMED
3. a signed credential verifies with a key we hold                FORGED
4. it is for this event                                           UNKNOWN
5. the replica knows the ticket (or the signature vouches for it) UNKNOWN
6. not revoked, not replaced by a newer credential                REVOKED / SUPERSEDED
7. a rotating code is current                                     STALE_CODE
8. inside its validity window                                     NOT_YET_VALID / EXPIRED
9. its zone may enter at this gate                                WRONG_GATE
10. the entry policy allows another entry                         ALREADY_USED / ALREADY_INSIDE /
                                                                  ANTI_PASSBACK_WAIT
→ ADMIT, ADMIT_REENTRY or ADMIT_ON_SIGNATURE

Exits (``Direction.OUT``) are never refused for a readable ticket: people must be able to
leave. An exit of an unreadable or unknown code is refused so staff can look at it.

Any code that is not a gatehouse credential is a *barcode*: looked up by its
:func:`~tickets.barcode.barcode_key` (so a code read back in another letter case is found),
then — only for a ticket whose barcode is its number — by number. A ticket number read
from a manifest does not open the gate for a ticket that has a secret barcode. A barcode
not in the replica that is shaped like a pretix signed secret is verified with the event's
pretix keys (:mod:`tickets.pretix`): ADMIT_ON_SIGNATURE with the zone and entry policy its
pretix product maps to, or FORGED / MALFORMED. Verdicts carry the ticket's number, never
the barcode.
"""
from __future__ import annotations

from tickets import credential as cred
from tickets import pretix
from tickets.barcode import barcode_key, provisional_ticket_id
from tickets.errors import CredentialError
from tickets.model import (
    CredentialKind,
    Direction,
    EntryState,
    GatePolicy,
    ReplicaView,
    Scan,
    TicketRecord,
    TicketStatus,
    Verdict,
)
from tickets.policy import STRICTEST, evaluate_entry
from tickets.reasons import Reason
from tickets.rotating import check_code


def decide(scan: Scan, view: ReplicaView, policy: GatePolicy, now: float) -> Verdict:
    if is_closed(policy, now):
        return _refuse(Reason.GATE_CLOSED, scan, detail="gate closed")
    try:
        credential = cred.read(scan.payload, policy.keyring)
    except CredentialError as exc:
        return _refuse(Reason(exc.reason), scan, detail=exc.detail)

    if isinstance(credential, cred.LegacyNumber | cred.ForeignCode):
        return _decide_barcode(scan, view, policy, now, credential)

    fields = credential.fields
    kind = CredentialKind.ROTATING if fields.rotating else CredentialKind.SIGNED
    if fields.event_id != policy.event_id:
        return _refuse(Reason.UNKNOWN, scan, detail=f"credential for event {fields.event_id}",
                       kind=kind, ticket_id=fields.ticket_id)
    record = view.ticket_by_id(fields.ticket_id)

    if record is not None and record.status is TicketStatus.REVOKED:
        return _refuse(Reason.REVOKED, scan, record=record, kind=kind, serial=fields.serial)
    if record is not None and (fields.serial < record.serial or record.status is TicketStatus.SUPERSEDED):
        return _refuse(Reason.SUPERSEDED, scan, record=record, kind=kind, serial=fields.serial,
                       detail=f"credential serial {fields.serial}, current {record.serial}")

    if fields.rotating:
        secret = record.rotating_secret if record is not None else None
        if secret is None:
            return _refuse(Reason.UNKNOWN, scan, kind=kind, ticket_id=fields.ticket_id, serial=fields.serial,
                           detail="rotating ticket not in replica: its live code cannot be checked")
        if credential.code is None:
            return _refuse(Reason.STALE_CODE, scan, record=record, kind=kind, serial=fields.serial,
                           detail="rotating ticket shown without its live code")
        if not check_code(secret, credential.code, now, policy.rotating_window_steps):
            return _refuse(Reason.STALE_CODE, scan, record=record, kind=kind, serial=fields.serial,
                           detail="live code outside its time window")

    on_signature = False
    if record is None or fields.serial > record.serial:
        # The signature vouches for a ticket (or revision) the replica has not seen yet.
        if not policy.allow_admit_on_signature:
            return _refuse(Reason.UNKNOWN, scan, kind=kind, ticket_id=fields.ticket_id, serial=fields.serial,
                           detail="not in replica and this event does not admit on signature")
        on_signature = True
        record = TicketRecord(
            ticket_id=fields.ticket_id,
            number=record.number if record is not None else "",
            zone_id=fields.zone_id,
            policy_id=fields.policy_id,
            valid_from=fields.valid_from,
            valid_until=fields.valid_until,
            serial=fields.serial,
            holder=record.holder if record is not None else "",
            seat=record.seat if record is not None else "",
        )
    return _check_record(scan, view, policy, now, record, kind, serial=fields.serial, on_signature=on_signature)


def _decide_barcode(scan: Scan, view: ReplicaView, policy: GatePolicy, now: float,
                    code: cred.LegacyNumber | cred.ForeignCode) -> Verdict:
    key = barcode_key(code.text)
    signed_shape = pretix.is_sig1_shaped(code.text)
    kind = CredentialKind.PRETIX if signed_shape else CredentialKind.LEGACY
    record = view.ticket_by_barcode_key(key)
    if record is None and isinstance(code, cred.LegacyNumber):
        record = view.ticket_by_number(code.number)
        if record is not None and record.barcode_key is not None:
            # The number is printed on manifests; only the secret barcode opens the gate.
            return _refuse(Reason.UNKNOWN, scan, kind=kind,
                           detail="a ticket number, not the ticket's barcode: check it on the manifest")
    if record is not None:
        # A pretix ticket admitted on its signature before the hub sent it was tracked under
        # its provisional id: that entry counts too.
        alias = provisional_ticket_id(key) if signed_shape else None
        return _check_record(scan, view, policy, now, record, kind, serial=None, on_signature=False,
                             alias_id=alias)
    if signed_shape:
        return _decide_pretix_signed(scan, view, policy, now, code.text, key)
    return _refuse(Reason.UNKNOWN, scan, kind=kind, detail=f"code not in replica (barcode key {key.hex()[:8]})")


def _decide_pretix_signed(scan: Scan, view: ReplicaView, policy: GatePolicy, now: float, text: str,
                          key: bytes) -> Verdict:
    info = policy.pretix
    kind = CredentialKind.PRETIX
    if info is None or not info.public_keys:
        return _refuse(Reason.UNKNOWN, scan, kind=kind,
                       detail="pretix signed code not in replica, and this event has no pretix key")
    try:
        ticket = pretix.read_signed(text, info.public_keys)
    except CredentialError as exc:
        return _refuse(Reason(exc.reason), scan, kind=kind, detail=exc.detail)
    what = f"pretix item {ticket.item} variation {ticket.variation}"
    if not policy.allow_admit_on_signature:
        return _refuse(Reason.UNKNOWN, scan, kind=kind,
                       detail=f"{what} not in replica and this event does not admit on signature")
    if info.subevent is not None and ticket.subevent != info.subevent:
        return _refuse(Reason.UNKNOWN, scan, kind=kind,
                       detail=f"{what} is for pretix date {ticket.subevent}, this event is {info.subevent}")
    product = info.product(ticket.item, ticket.variation)
    if product is None:
        return _refuse(Reason.UNKNOWN, scan, kind=kind, detail=f"{what} is not mapped to a zone")
    valid_from = ticket.valid_from if ticket.valid_from is not None else info.valid_from
    valid_until = ticket.valid_until if ticket.valid_until is not None else info.valid_until
    record = TicketRecord(
        ticket_id=provisional_ticket_id(key),
        number="",
        zone_id=product.zone_id,
        policy_id=product.policy_id,
        valid_from=float("-inf") if valid_from is None else float(valid_from),
        valid_until=float("inf") if valid_until is None else float(valid_until),
        barcode_key=key,
    )
    return _check_record(scan, view, policy, now, record, kind, serial=None, on_signature=True, detail=what)


def merge_states(a: EntryState, b: EntryState) -> EntryState:
    """One ticket's entry state recorded under two ids: the most entries, the latest movements,
    and inside or not as the latest movement left it."""
    if b == EntryState():
        return a
    if a == EntryState():
        return b

    def latest(s: EntryState) -> float:
        return max(s.last_entry_at or float("-inf"), s.last_exit_at or float("-inf"))

    def newest(x: float | None, y: float | None) -> float | None:
        return y if x is None else x if y is None else max(x, y)

    return EntryState(
        entries=max(a.entries, b.entries),
        inside=(a if latest(a) >= latest(b) else b).inside,
        last_entry_at=newest(a.last_entry_at, b.last_entry_at),
        last_exit_at=newest(a.last_exit_at, b.last_exit_at),
    )


def is_closed(policy: GatePolicy, now: float) -> bool:
    if policy.closed:
        return True
    if not policy.open_windows:
        return False
    return not any(opens <= now < closes for opens, closes in policy.open_windows)


def _check_record(
    scan: Scan,
    view: ReplicaView,
    policy: GatePolicy,
    now: float,
    record: TicketRecord,
    kind: CredentialKind,
    *,
    serial: int | None,
    on_signature: bool,
    alias_id: int | None = None,
    detail: str = "",
) -> Verdict:
    if record.status is TicketStatus.REVOKED:
        return _refuse(Reason.REVOKED, scan, record=record, kind=kind, serial=serial)
    if record.status is TicketStatus.SUPERSEDED:
        return _refuse(Reason.SUPERSEDED, scan, record=record, kind=kind, serial=serial)

    state = view.entry_state(record.ticket_id)
    if alias_id is not None and alias_id != record.ticket_id:
        state = merge_states(state, view.entry_state(alias_id))
    if scan.direction is Direction.OUT:
        return _verdict(Reason.ADMIT, scan, policy, record, kind, serial, detail="exit",
                        flags=() if state.inside else ("exit_without_entry",))

    skew = policy.clock_skew_s
    if now + skew < record.valid_from:
        return _refuse(Reason.NOT_YET_VALID, scan, record=record, kind=kind, serial=serial, policy=policy)
    if now - skew >= record.valid_until:
        return _refuse(Reason.EXPIRED, scan, record=record, kind=kind, serial=serial, policy=policy)

    zone = policy.zones.get(record.zone_id)
    if zone is None or policy.gate_id not in zone.gates:
        right = tuple(sorted(zone.gates)) if zone is not None else ()
        return _refuse(Reason.WRONG_GATE, scan, record=record, kind=kind, serial=serial, policy=policy,
                       right_gates=right, detail=f"zone {record.zone_id} not admitted at {policy.gate_id}")

    entry_policy = policy.entry_policies.get(record.policy_id, STRICTEST)
    reason, flags = evaluate_entry(entry_policy, state, now)
    if reason is Reason.ADMIT and on_signature:
        reason = Reason.ADMIT_ON_SIGNATURE
    if not reason.admits:
        return _refuse(reason, scan, record=record, kind=kind, serial=serial, policy=policy, detail=detail)
    return _verdict(reason, scan, policy, record, kind, serial, flags=flags, detail=detail)


def _verdict(
    reason: Reason,
    scan: Scan,
    policy: GatePolicy,
    record: TicketRecord,
    kind: CredentialKind,
    serial: int | None,
    *,
    flags: tuple[str, ...] = (),
    detail: str = "",
) -> Verdict:
    zone = policy.zones.get(record.zone_id)
    return Verdict(
        reason=reason,
        message=reason.message,
        ticket_id=record.ticket_id,
        ticket_number=record.number or None,
        zone_id=record.zone_id,
        zone_name=zone.name if zone is not None else None,
        kind=kind,
        serial=serial,
        direction=scan.direction,
        flags=flags,
        detail=detail,
        holder=record.holder,
        seat=record.seat,
    )


def _refuse(
    reason: Reason,
    scan: Scan,
    *,
    record: TicketRecord | None = None,
    kind: CredentialKind | None = None,
    serial: int | None = None,
    policy: GatePolicy | None = None,
    right_gates: tuple[str, ...] = (),
    ticket_id: int | None = None,
    detail: str = "",
) -> Verdict:
    zone_name = None
    if record is not None and policy is not None:
        zone = policy.zones.get(record.zone_id)
        zone_name = zone.name if zone is not None else None
    message = reason.message
    if right_gates:
        message = f"{message}: use gate {', '.join(right_gates)}"
    return Verdict(
        reason=reason,
        message=message,
        ticket_id=record.ticket_id if record is not None else ticket_id,
        ticket_number=(record.number or None) if record is not None else None,
        zone_id=record.zone_id if record is not None else None,
        zone_name=zone_name,
        kind=kind,
        serial=serial,
        direction=scan.direction,
        right_gates=right_gates,
        detail=detail,
        holder=record.holder if record is not None else "",
        seat=record.seat if record is not None else "",
    )
