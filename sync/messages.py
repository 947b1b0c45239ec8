"""Every message of the gate ⇄ hub protocol, with its schema and its wire codec.

A message is a frozen dataclass. On the wire it is one JSON object with a ``"type"`` key
naming it; the other keys are its fields (see ``docs/protocol.md`` for the table). From
protocol v2 on, a sender may instead send a *binary* frame holding the same JSON object
compressed with zlib (used for large snapshot batches and delta lists); a v1 peer is never
sent one.

Decoding is total: :func:`decode` either returns a message or raises
:class:`~sync.errors.RemoteProtocolError` with a stable ``code`` (``malformed``,
``unknown_type``, ``bad_field``, ``too_large``). It never raises anything else, whatever
the bytes. Unknown *extra* keys are ignored, so a later minor revision may add optional
fields without breaking older peers; a missing or mistyped required field is refused.
"""
from __future__ import annotations

import base64
import binascii
import itertools
import json
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sync.errors import RemoteProtocolError
from tickets.barcode import KEY_BYTES as BARCODE_KEY_BYTES
from tickets.entry import JournalEntry
from tickets.model import TicketRecord, TicketStatus, Zone
from tickets.policy import EntryKind, EntryPolicy, Passback

#: Protocol versions this code speaks. v2 adds zlib-compressed binary frames for large
#: messages and the ``compressed`` flag in ``hello``. v3 adds ``entry`` changes (another
#: gate's admit, exit or not-passed, in the change log, so a gate that was away catches up
#: on entry state too), ``end_seq`` on ``deltas`` (the cursor moves past changes not meant for
#: this gate) and ``cursor_token`` in ``hello`` (the hub notices when its log lost the change
#: the gate's cursor names). Ticket rows may carry ``state`` and ``barcode_key`` in any
#: version (older peers ignore unknown keys).
MIN_VERSION = 1
MAX_VERSION = 3
#: Replica schema version: the shape of ticket rows, zones and policies on the wire.
SCHEMA_VERSION = 1
#: Largest frame (compressed or not) we accept, and largest decompressed JSON.
MAX_FRAME_BYTES = 16 * 1024 * 1024
MAX_JSON_BYTES = 64 * 1024 * 1024
#: Messages whose JSON is at least this long go compressed when v2 is negotiated.
COMPRESS_MIN_BYTES = 4096


# --------------------------------------------------------------------------- field checks
def _bad(name: str, why: str) -> RemoteProtocolError:
    return RemoteProtocolError("bad_field", f"{name}: {why}")


def _int(d: Mapping[str, Any], name: str, *, minimum: int | None = 0, default: Any = ...) -> int:
    if name not in d:
        if default is ...:
            raise _bad(name, "missing")
        return default  # type: ignore[no-any-return]
    v = d[name]
    if isinstance(v, bool) or not isinstance(v, int):
        raise _bad(name, f"expected an integer, got {type(v).__name__}")
    if minimum is not None and v < minimum:
        raise _bad(name, f"must be >= {minimum}")
    return v


def _opt_int(d: Mapping[str, Any], name: str) -> int | None:
    if d.get(name) is None:
        return None
    return _int(d, name, minimum=None)


def _num(d: Mapping[str, Any], name: str, default: Any = ...) -> float:
    if name not in d:
        if default is ...:
            raise _bad(name, "missing")
        return default  # type: ignore[no-any-return]
    v = d[name]
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise _bad(name, f"expected a number, got {type(v).__name__}")
    return float(v)


def _str(d: Mapping[str, Any], name: str, default: Any = ..., *, nonempty: bool = False) -> str:
    if name not in d:
        if default is ...:
            raise _bad(name, "missing")
        return default  # type: ignore[no-any-return]
    v = d[name]
    if not isinstance(v, str):
        raise _bad(name, f"expected a string, got {type(v).__name__}")
    if nonempty and not v:
        raise _bad(name, "must not be empty")
    return v


def _opt_str(d: Mapping[str, Any], name: str) -> str | None:
    if d.get(name) is None:
        return None
    return _str(d, name)


def _bool(d: Mapping[str, Any], name: str, default: bool = False) -> bool:
    v = d.get(name, default)
    if not isinstance(v, bool):
        raise _bad(name, "expected true or false")
    return v


def _list(d: Mapping[str, Any], name: str, default: Any = ...) -> list[Any]:
    if name not in d:
        if default is ...:
            raise _bad(name, "missing")
        return list(default)
    v = d[name]
    if not isinstance(v, list):
        raise _bad(name, f"expected a list, got {type(v).__name__}")
    return v


def _dict(d: Mapping[str, Any], name: str, default: Any = ...) -> dict[str, Any]:
    if name not in d:
        if default is ...:
            raise _bad(name, "missing")
        return dict(default)
    v = d[name]
    if not isinstance(v, dict):
        raise _bad(name, f"expected an object, got {type(v).__name__}")
    return v


def _obj(v: Any, what: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise _bad(what, f"expected an object, got {type(v).__name__}")
    return v


# --------------------------------------------------------------------------- replica rows
def ticket_to_wire(t: TicketRecord) -> dict[str, Any]:
    """A ticket record as a JSON-ready dict (``rotating_secret`` as base64 or null).

    ``barcode_key`` (hex, 16 bytes) is sent only when the ticket has one, so a row without it
    reads the same to an older gate; absent or null means None.
    """
    d: dict[str, Any] = {
        "ticket_id": t.ticket_id,
        "number": t.number,
        "zone_id": t.zone_id,
        "policy_id": t.policy_id,
        "valid_from": t.valid_from,
        "valid_until": t.valid_until,
        "serial": t.serial,
        "status": str(t.status),
        "rotating_secret": None if t.rotating_secret is None else base64.b64encode(t.rotating_secret).decode("ascii"),
        "holder": t.holder,
        "seat": t.seat,
    }
    if t.barcode_key is not None:
        d["barcode_key"] = t.barcode_key.hex()
    return d


def state_from_wire(v: Any) -> TicketState | None:
    """A ticket row's ``state`` (the hub's entry state for it), or None when absent."""
    if v is None:
        return None
    d = _obj(v, "state")
    last_in = d.get("last_entry_at")
    last_out = d.get("last_exit_at")
    for name, value in (("last_entry_at", last_in), ("last_exit_at", last_out)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                  or value != value or abs(value) > 2**33):
            raise _bad(f"state.{name}", "expected a time or null")
    return TicketState(entries=_int(d, "entries", default=0), inside=_bool(d, "inside"),
                       last_entry_at=None if last_in is None else float(last_in),
                       last_exit_at=None if last_out is None else float(last_out),
                       state_seq=_int(d, "state_seq", default=0))


def ticket_state_from_wire(v: Any) -> tuple[TicketRecord, TicketState | None]:
    """A ticket row and the entry state it carries (snapshot rows from a v3 hub)."""
    d = _obj(v, "ticket")
    return ticket_from_wire(d), state_from_wire(d.get("state"))


def ticket_from_wire(v: Any) -> TicketRecord:
    d = _obj(v, "ticket")
    secret_b64 = _opt_str(d, "rotating_secret")
    try:
        secret = None if secret_b64 is None else base64.b64decode(secret_b64, validate=True)
        status = TicketStatus(_str(d, "status", "valid"))
    except (binascii.Error, ValueError) as exc:
        raise _bad("ticket", str(exc)) from None
    key_hex = _opt_str(d, "barcode_key")
    barcode_key = None
    if key_hex is not None:
        if len(key_hex) != 2 * BARCODE_KEY_BYTES or not all(c in "0123456789abcdefABCDEF" for c in key_hex):
            raise _bad("barcode_key", f"expected {2 * BARCODE_KEY_BYTES} hex digits")
        barcode_key = bytes.fromhex(key_hex)
    return TicketRecord(
        ticket_id=_int(d, "ticket_id", minimum=1),
        number=_str(d, "number"),
        zone_id=_int(d, "zone_id", minimum=None),
        policy_id=_int(d, "policy_id", minimum=None),
        valid_from=_num(d, "valid_from"),
        valid_until=_num(d, "valid_until"),
        serial=_int(d, "serial", default=0),
        status=status,
        rotating_secret=secret,
        holder=_str(d, "holder", ""),
        seat=_str(d, "seat", ""),
        barcode_key=barcode_key,
    )


def zone_to_wire(z: Zone) -> dict[str, Any]:
    return {"zone_id": z.zone_id, "name": z.name, "gates": sorted(z.gates), "capacity": z.capacity}


def zone_from_wire(v: Any) -> Zone:
    d = _obj(v, "zone")
    gates = _list(d, "gates", [])
    if not all(isinstance(g, str) for g in gates):
        raise _bad("zone.gates", "expected a list of gate ids")
    return Zone(zone_id=_int(d, "zone_id", minimum=None), name=_str(d, "name", ""),
                gates=frozenset(gates), capacity=_opt_int(d, "capacity"))


def policy_to_wire(p: EntryPolicy) -> dict[str, Any]:
    return {"policy_id": p.policy_id, "name": p.name, "kind": str(p.kind), "passback": str(p.passback),
            "passback_wait_s": p.passback_wait_s, "max_entries": p.max_entries}


def policy_from_wire(v: Any) -> EntryPolicy:
    d = _obj(v, "policy")
    try:
        kind = EntryKind(_str(d, "kind", "single"))
        passback = Passback(_str(d, "passback", "none"))
    except ValueError as exc:
        raise _bad("policy", str(exc)) from None
    return EntryPolicy(policy_id=_int(d, "policy_id", minimum=None), name=_str(d, "name", ""), kind=kind,
                       passback=passback,
                       passback_wait_s=_num(d, "passback_wait_s", _num(d, "wait_s", 0.0)),  # hub rows say wait_s
                       max_entries=_opt_int(d, "max_entries"))


@dataclass(frozen=True, slots=True)
class TicketState:
    """A ticket's entry state as the hub knows it; ``state_seq`` is the change seq of the last
    entry event folded in (a gate skips ``entry`` changes at or below it)."""

    entries: int = 0
    inside: bool = False
    last_entry_at: float | None = None
    last_exit_at: float | None = None
    state_seq: int = 0


# --------------------------------------------------------------------------- changes
@dataclass(frozen=True, slots=True)
class TicketUpsert:
    """A new or changed ticket (import, upgrade, transfer). Replaces the whole row."""

    seq: int
    ticket: TicketRecord
    kind = "ticket"


@dataclass(frozen=True, slots=True)
class TicketRevoke:
    """The ticket is revoked (cancelled): refuse it with REVOKED, for good."""

    seq: int
    ticket_id: int
    reason: str = ""
    kind = "revoke"


@dataclass(frozen=True, slots=True)
class TicketSupersede:
    """Credentials of ``ticket_id`` with a serial below ``serial`` are SUPERSEDED.

    ``replaced_by`` names the new ticket when the upgrade issued a different ticket id.
    """

    seq: int
    ticket_id: int
    serial: int
    replaced_by: int | None = None
    kind = "supersede"


@dataclass(frozen=True, slots=True)
class ZoneChange:
    seq: int
    zone: Zone
    kind = "zone"


@dataclass(frozen=True, slots=True)
class PolicyChange:
    seq: int
    policy: EntryPolicy
    kind = "policy"


@dataclass(frozen=True, slots=True)
class EntryEvent:
    """v3: a ticket was admitted (or exited) at gate ``gate_id`` as its journal entry
    ``gate_seq``; ``not_passed``: that admit did not pass the turnstile, so undo it."""

    seq: int
    ticket_id: int
    gate_id: str
    at: float
    direction: str = "in"
    gate_seq: int = 0
    zone_id: int | None = None
    not_passed: bool = False
    kind = "entry"


Change = TicketUpsert | TicketRevoke | TicketSupersede | ZoneChange | PolicyChange | EntryEvent


def change_to_wire(c: Change) -> dict[str, Any]:
    d: dict[str, Any] = {"kind": c.kind, "seq": c.seq}
    if isinstance(c, TicketUpsert):
        d["ticket"] = ticket_to_wire(c.ticket)
    elif isinstance(c, TicketRevoke):
        d.update(ticket_id=c.ticket_id, reason=c.reason)
    elif isinstance(c, TicketSupersede):
        d.update(ticket_id=c.ticket_id, serial=c.serial, replaced_by=c.replaced_by)
    elif isinstance(c, ZoneChange):
        d["zone"] = zone_to_wire(c.zone)
    elif isinstance(c, EntryEvent):
        d.update(ticket_id=c.ticket_id, gate_id=c.gate_id, at=c.at, direction=c.direction, gate_seq=c.gate_seq,
                 zone_id=c.zone_id, not_passed=c.not_passed)
    else:
        d["policy"] = policy_to_wire(c.policy)
    return d


def change_from_wire(v: Any) -> Change:
    d = _obj(v, "change")
    kind = _str(d, "kind")
    seq = _int(d, "seq", minimum=1)
    if kind == "ticket":
        return TicketUpsert(seq, ticket_from_wire(d.get("ticket")))
    if kind == "revoke":
        return TicketRevoke(seq, _int(d, "ticket_id", minimum=1), _str(d, "reason", ""))
    if kind == "supersede":
        return TicketSupersede(seq, _int(d, "ticket_id", minimum=1), _int(d, "serial"), _opt_int(d, "replaced_by"))
    if kind == "zone":
        return ZoneChange(seq, zone_from_wire(d.get("zone")))
    if kind == "policy":
        return PolicyChange(seq, policy_from_wire(d.get("policy")))
    if kind == "entry":
        at = _num(d, "at")
        if at != at or abs(at) > 2**33:
            raise _bad("at", "not a time")
        direction = _str(d, "direction", "in")
        if direction not in ("in", "out"):
            raise _bad("direction", "must be in or out")
        return EntryEvent(seq, _int(d, "ticket_id", minimum=1), _str(d, "gate_id", nonempty=True), at, direction,
                          _int(d, "gate_seq", default=0), _opt_int(d, "zone_id"), _bool(d, "not_passed"))
    raise _bad("change.kind", f"unknown change kind {kind!r}")


# --------------------------------------------------------------------------- messages
@dataclass(frozen=True, slots=True)
class Hello:
    """Gate → hub, first message on every connection: who I am and what I hold."""

    gate_id: str
    min_version: int
    max_version: int
    schema_version: int
    #: hub seq of the last change applied to the gate's replica (0: empty replica)
    cursor: int
    #: highest journal seq the hub has acked to this gate (before this connection)
    acked_high_water: int
    #: highest seq in the gate's own journal
    journal_seq: int
    #: the hub epoch the gate last saw (None on first contact)
    hub_epoch: str | None = None
    #: v2: the gate can read zlib-compressed binary frames
    compressed: bool = False
    #: v3: the token of the change at ``cursor`` (the hub checks its log still holds it)
    cursor_token: str | None = None
    type = "hello"


@dataclass(frozen=True, slots=True)
class HelloReply:
    """Hub → gate: the chosen version (or ``None``: incompatible) and the hub's view."""

    version: int | None
    min_version: int
    max_version: int
    #: highest journal seq of this gate the hub holds with no gap below it
    hub_held: int
    #: highest journal seq of this gate inside a completed hub backup (safe to prune)
    backed_up: int
    hub_epoch: str
    #: hub's current change sequence number
    hub_seq: int
    schema_version: int
    #: "snapshot" or "deltas": how the replica is brought up to date on this connection
    replica_sync: str = "deltas"
    #: why not compatible, or why a snapshot ("initial", "cursor_ahead", "epoch_changed", "schema")
    reason: str = ""
    event: dict[str, Any] = field(default_factory=dict)
    type = "hello_reply"


@dataclass(frozen=True, slots=True)
class SnapshotBegin:
    """Hub → gate: a full replica follows, consistent with hub seq ``seq`` or later."""

    seq: int
    total_rows: int
    reason: str = ""
    type = "snapshot_begin"


@dataclass(frozen=True, slots=True)
class SnapshotBatch:
    """Hub → gate: one page of the snapshot; ``index`` counts from 0 with no gaps."""

    index: int
    rows: tuple[TicketRecord, ...]
    zones: tuple[Zone, ...] = ()
    policies: tuple[EntryPolicy, ...] = ()
    done_rows: int = 0
    total_rows: int = 0
    #: the hub's entry state of each row (same order; None: never entered), from a hub that knows it
    states: tuple[TicketState | None, ...] = ()
    type = "snapshot_batch"


@dataclass(frozen=True, slots=True)
class SnapshotEnd:
    """Hub → gate: the snapshot is complete; the gate's cursor becomes ``seq``."""

    seq: int
    batches: int
    total_rows: int
    #: v3: the token of the change at ``seq``
    token: str | None = None
    type = "snapshot_end"


@dataclass(frozen=True, slots=True)
class SnapshotRequest:
    """Gate → hub: please (re)send a full snapshot (a batch went missing)."""

    reason: str = ""
    type = "snapshot_request"


@dataclass(frozen=True, slots=True)
class Deltas:
    """Hub → gate: changes in hub seq order. ``prev_seq`` is the seq the previous message ended at,
    so a gate notices a gap and asks to catch up instead of skipping a change."""

    prev_seq: int
    changes: tuple[Change, ...]
    #: v3: the cursor after this message (past changes not meant for this gate); None: the last change's seq
    end_seq: int | None = None
    #: v3: the token of the change at ``end_seq`` (what the gate sends back as ``cursor_token``)
    end_token: str | None = None
    type = "deltas"


@dataclass(frozen=True, slots=True)
class CatchUp:
    """Gate → hub: send every change after ``cursor`` (the gate saw a gap)."""

    cursor: int
    type = "catch_up"


@dataclass(frozen=True, slots=True)
class JournalBatch:
    """Gate → hub: consecutive journal entries of this gate, ascending seq."""

    entries: tuple[JournalEntry, ...]
    type = "journal_batch"


@dataclass(frozen=True, slots=True)
class JournalAck:
    """Hub → gate: the hub holds every entry up to ``high_water`` (and ``backed_up`` is in a backup)."""

    high_water: int
    backed_up: int = 0
    conflicts: int = 0
    type = "journal_ack"


@dataclass(frozen=True, slots=True)
class RemoteAdmit:
    """Hub → gate: a ticket was admitted (or exited) at another gate."""

    ticket_id: int
    gate_id: str
    at: float
    direction: str = "in"
    #: the journal seq at the admitting gate: (gate_id, gate_seq) identifies it
    gate_seq: int = 0
    #: True: the admit ``gate_seq`` did not pass the turnstile (timed out), so the ticket
    #: stays valid: undo what the earlier remote_admit of that (gate_id, gate_seq) did
    not_passed: bool = False
    type = "remote_admit"


@dataclass(frozen=True, slots=True)
class RemoteAdmits:
    """Hub → gate, protocol v2: several :class:`RemoteAdmit` in one frame.

    At a busy venue every admit goes to every gate of its zone; one frame per admit per
    gate is what limits a hub's throughput, so a v2 hub sends what piled up for a gate
    since its last flush as one message. A v1 gate never receives it.
    """

    admits: tuple[RemoteAdmit, ...]
    type = "remote_admits"


@dataclass(frozen=True, slots=True)
class Ping:
    """Heartbeat. Either side may send one; the peer answers with a :class:`Pong`."""

    nonce: int
    type = "ping"


@dataclass(frozen=True, slots=True)
class Pong:
    """Heartbeat answer. From the hub, ``seq`` is the last change seq it has sent this gate:
    a gate whose cursor is behind it lost a ``deltas`` message and asks to catch up."""

    nonce: int
    seq: int = 0
    type = "pong"


@dataclass(frozen=True, slots=True)
class Error:
    """Either way: what was wrong with the peer's last message. ``fatal``: the sender will close."""

    code: str
    detail: str = ""
    fatal: bool = False
    type = "error"


@dataclass(frozen=True, slots=True)
class Command:
    """Hub → gate: an order from the control room. ``name`` is open-ended so older gates
    can refuse a command they do not know instead of failing to decode it. Known names:
    ``emergency_on``, ``emergency_off``, ``close``, ``open``, ``refresh_manifest`` (stewards
    or the manifest changed: fetch them now)."""

    name: str
    reason: str = ""
    args: dict[str, Any] = field(default_factory=dict)
    command_id: str = ""
    type = "command"


KNOWN_COMMANDS = frozenset({"emergency_on", "emergency_off", "close", "open", "refresh_manifest"})

Message = (Hello | HelloReply | SnapshotBegin | SnapshotBatch | SnapshotEnd | SnapshotRequest | Deltas
           | CatchUp | JournalBatch | JournalAck | RemoteAdmit | RemoteAdmits | Ping | Pong | Error | Command)


# --------------------------------------------------------------------------- to / from dict
def to_dict(m: Message) -> dict[str, Any]:
    """The message as a JSON-ready dict with its ``type``."""
    d: dict[str, Any] = {"type": m.type}
    if isinstance(m, SnapshotBatch):
        wire_rows = [ticket_to_wire(r) for r in m.rows]
        for row, st in zip(wire_rows, m.states, strict=False):
            if st is not None:
                row["state"] = {"entries": st.entries, "inside": st.inside, "last_entry_at": st.last_entry_at,
                                "last_exit_at": st.last_exit_at, "state_seq": st.state_seq}
        d.update(index=m.index, rows=wire_rows, zones=[zone_to_wire(z) for z in m.zones],
                 policies=[policy_to_wire(p) for p in m.policies], done_rows=m.done_rows, total_rows=m.total_rows)
    elif isinstance(m, Deltas):
        d.update(prev_seq=m.prev_seq, changes=[change_to_wire(c) for c in m.changes])
        if m.end_seq is not None:
            d.update(end_seq=m.end_seq, end_token=m.end_token)
    elif isinstance(m, JournalBatch):
        d["entries"] = [e.to_wire() for e in m.entries]
    elif isinstance(m, RemoteAdmits):
        d["admits"] = [{k: v for k, v in to_dict(a).items() if k != "type"} for a in m.admits]
    else:
        for name in m.__dataclass_fields__:
            d[name] = getattr(m, name)
    return d


T = TypeVar("T")


def _remote_admit(d: dict[str, Any]) -> RemoteAdmit:
    return RemoteAdmit(_int(d, "ticket_id", minimum=1), _str(d, "gate_id", nonempty=True), _num(d, "at"),
                       _str(d, "direction", "in"), _int(d, "gate_seq", default=0), _bool(d, "not_passed"))


def _hello(d: dict[str, Any]) -> Hello:
    return Hello(gate_id=_str(d, "gate_id", nonempty=True), min_version=_int(d, "min_version", minimum=1),
                 max_version=_int(d, "max_version", minimum=1), schema_version=_int(d, "schema_version"),
                 cursor=_int(d, "cursor"), acked_high_water=_int(d, "acked_high_water"),
                 journal_seq=_int(d, "journal_seq"), hub_epoch=_opt_str(d, "hub_epoch"),
                 compressed=_bool(d, "compressed"), cursor_token=_opt_str(d, "cursor_token"))


def _hello_reply(d: dict[str, Any]) -> HelloReply:
    version = _opt_int(d, "version")
    if version is not None and version < 1:
        raise _bad("version", "must be >= 1 or null")
    sync = _str(d, "replica_sync", "deltas")
    if sync not in ("snapshot", "deltas"):
        raise _bad("replica_sync", f"unknown value {sync!r}")
    return HelloReply(version=version, min_version=_int(d, "min_version", minimum=1),
                      max_version=_int(d, "max_version", minimum=1), hub_held=_int(d, "hub_held"),
                      backed_up=_int(d, "backed_up", default=0), hub_epoch=_str(d, "hub_epoch"),
                      hub_seq=_int(d, "hub_seq"), schema_version=_int(d, "schema_version"),
                      replica_sync=sync, reason=_str(d, "reason", ""), event=_dict(d, "event", {}))


def _journal_batch(d: dict[str, Any]) -> JournalBatch:
    out = []
    for raw in _list(d, "entries"):
        try:
            out.append(JournalEntry.from_wire(_obj(raw, "entry")))
        except RemoteProtocolError:
            raise
        except (ValueError, TypeError, KeyError, binascii.Error) as exc:
            raise _bad("entries", f"bad journal entry: {exc!r}") from None
    seqs = [e.seq for e in out]
    if any(b != a + 1 for a, b in itertools.pairwise(seqs)):
        raise _bad("entries", "seqs must be consecutive and ascending")
    return JournalBatch(tuple(out))


def _snapshot_batch(d: dict[str, Any]) -> SnapshotBatch:
    pairs = [ticket_state_from_wire(r) for r in _list(d, "rows")]
    states = tuple(st for _r, st in pairs)
    return SnapshotBatch(index=_int(d, "index"), rows=tuple(r for r, _st in pairs),
                         zones=tuple(zone_from_wire(z) for z in _list(d, "zones", [])),
                         policies=tuple(policy_from_wire(p) for p in _list(d, "policies", [])),
                         done_rows=_int(d, "done_rows", default=0), total_rows=_int(d, "total_rows", default=0),
                         states=states if any(st is not None for st in states) else ())


def _command(d: dict[str, Any]) -> Command:
    return Command(name=_str(d, "name", nonempty=True), reason=_str(d, "reason", ""), args=_dict(d, "args", {}),
                   command_id=_str(d, "command_id", ""))


_DECODERS: dict[str, Callable[[dict[str, Any]], Message]] = {
    "hello": _hello,
    "hello_reply": _hello_reply,
    "snapshot_begin": lambda d: SnapshotBegin(_int(d, "seq"), _int(d, "total_rows"), _str(d, "reason", "")),
    "snapshot_batch": _snapshot_batch,
    "snapshot_end": lambda d: SnapshotEnd(_int(d, "seq"), _int(d, "batches"), _int(d, "total_rows"),
                                          _opt_str(d, "token")),
    "snapshot_request": lambda d: SnapshotRequest(_str(d, "reason", "")),
    "deltas": lambda d: Deltas(_int(d, "prev_seq"), tuple(change_from_wire(c) for c in _list(d, "changes")),
                               _opt_int(d, "end_seq"), _opt_str(d, "end_token")),
    "catch_up": lambda d: CatchUp(_int(d, "cursor")),
    "journal_batch": _journal_batch,
    "journal_ack": lambda d: JournalAck(_int(d, "high_water"), _int(d, "backed_up", default=0),
                                        _int(d, "conflicts", default=0)),
    "remote_admit": lambda d: _remote_admit(d),
    "remote_admits": lambda d: RemoteAdmits(tuple(_remote_admit(_obj(a, "admit")) for a in _list(d, "admits"))),
    "ping": lambda d: Ping(_int(d, "nonce", minimum=None)),
    "pong": lambda d: Pong(_int(d, "nonce", minimum=None), _int(d, "seq", default=0)),
    "error": lambda d: Error(_str(d, "code", nonempty=True), _str(d, "detail", ""), _bool(d, "fatal")),
    "command": _command,
}


def from_dict(d: Any) -> Message:
    """Build a message from a decoded JSON value. Raises only RemoteProtocolError."""
    if not isinstance(d, dict):
        raise RemoteProtocolError("malformed", f"a message is a JSON object, got {type(d).__name__}")
    kind = d.get("type")
    if not isinstance(kind, str):
        raise RemoteProtocolError("malformed", "message has no string 'type'")
    decoder = _DECODERS.get(kind)
    if decoder is None:
        raise RemoteProtocolError("unknown_type", f"unknown message type {kind[:40]!r}")
    try:
        return decoder(d)
    except RemoteProtocolError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError, RecursionError) as exc:
        raise RemoteProtocolError("bad_field", f"{kind}: {exc!r}") from None


# --------------------------------------------------------------------------- bytes codec
def encode(m: Message, *, compress: bool = False, min_bytes: int = COMPRESS_MIN_BYTES) -> str | bytes:
    """Encode for the wire: a JSON text frame, or (``compress``, v2 peers only) a zlib binary
    frame when the JSON is at least ``min_bytes`` long."""
    text = json.dumps(to_dict(m), separators=(",", ":"), allow_nan=False)
    if compress and len(text) >= min_bytes:
        return zlib.compress(text.encode("utf-8"), 1)
    return text


def decode(frame: str | bytes) -> Message:
    """Decode one wire frame (text: JSON; binary: zlib-compressed JSON). Total: any bad input
    raises :class:`RemoteProtocolError`, nothing else."""
    try:
        if isinstance(frame, str):
            if len(frame) > MAX_FRAME_BYTES:
                raise RemoteProtocolError("too_large", f"{len(frame)} characters")
            text = frame
        elif isinstance(frame, bytes | bytearray | memoryview):
            data = bytes(frame)
            if len(data) > MAX_FRAME_BYTES:
                raise RemoteProtocolError("too_large", f"{len(data)} bytes")
            try:
                z = zlib.decompressobj()
                raw = z.decompress(data, MAX_JSON_BYTES)
            except zlib.error as exc:
                raise RemoteProtocolError("malformed", f"binary frame is not zlib: {exc}") from None
            if z.unconsumed_tail:
                raise RemoteProtocolError("too_large", "decompressed frame exceeds the limit")
            text = raw.decode("utf-8")
        else:
            raise RemoteProtocolError("malformed", f"frame of type {type(frame).__name__}")
        value = json.loads(text)
    except RemoteProtocolError:
        raise
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise RemoteProtocolError("malformed", f"not JSON: {str(exc)[:120]}") from None
    return from_dict(value)
