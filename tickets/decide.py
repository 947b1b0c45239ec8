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
"""
from __future__ import annotations

from tickets import credential as cred
from tickets.errors import CredentialError
from tickets.model import (
    CredentialKind,
    Direction,
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

    if isinstance(credential, cred.LegacyNumber):
        record = view.ticket_by_number(credential.number)
        if record is None:
            return _refuse(Reason.UNKNOWN, scan, detail=f"number {credential.number!r} not in replica",
                           kind=CredentialKind.LEGACY, number=credential.number)
        return _check_record(scan, view, policy, now, record, CredentialKind.LEGACY, serial=None, on_signature=False)

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
) -> Verdict:
    if record.status is TicketStatus.REVOKED:
        return _refuse(Reason.REVOKED, scan, record=record, kind=kind, serial=serial)
    if record.status is TicketStatus.SUPERSEDED:
        return _refuse(Reason.SUPERSEDED, scan, record=record, kind=kind, serial=serial)

    state = view.entry_state(record.ticket_id)
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
        return _refuse(reason, scan, record=record, kind=kind, serial=serial, policy=policy)
    return _verdict(reason, scan, policy, record, kind, serial, flags=flags)


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
    number: str | None = None,
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
        ticket_number=(record.number or None) if record is not None else number,
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
