"""The sans-I/O gate ⇄ hub sessions: the whole protocol state machine, in one place.

Neither session touches a socket, a clock or a database. The owner (a transport plus the
gate agent or hub service) feeds them decoded messages (or raw frames) and the time, and
gets back *events* to act on; the messages to send pile up in an outbox drained with
:meth:`frames_to_send` / :meth:`messages_to_send`, as in the ``websockets`` core.

Everything that moves a session from one state to another is in the two tables below
(:data:`GATE_ACCEPTS`, :data:`HUB_ACCEPTS`) and the ``_on_*`` handlers right after them.
A message that is malformed, unknown or not allowed in the current state is the peer's
fault: it is counted, answered with an ``error`` message and otherwise ignored; after
``max_errors`` of them the session asks its owner to close (:class:`CloseWanted`).

Durability contract (see ``docs/protocol.md``):
* The gate sends journal entries in consecutive batches, at most ``max_in_flight`` batches
  unacked; the hub acks the highest seq it holds with no gap below it. An ack that does not
  come within ``ack_timeout_s`` makes the gate go back to the last ack and re-send
  (go-back-N; the hub stores idempotently on ``(gate_id, seq)``).
* On every ``hello_reply`` the gate restarts from what the hub says it holds. If that is
  less than the gate had seen acked, or the hub epoch changed, the hub lost data: the gate
  reports :class:`HubRolledBack` and re-sends from there, unasked.
"""
from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sync import messages as m
from sync.errors import LocalProtocolError, RemoteProtocolError
from tickets.entry import EntryKind, JournalEntry, Passage
from tickets.model import TicketRecord, Zone
from tickets.policy import EntryPolicy


def _coalesce_admits(messages: list[m.Message]) -> list[m.Message]:
    """Runs of consecutive remote admits become one ``remote_admits`` (order kept)."""
    out: list[m.Message] = []
    run: list[m.RemoteAdmit] = []
    for msg in messages:
        if isinstance(msg, m.RemoteAdmit):
            run.append(msg)
            continue
        if run:
            out.append(run[0] if len(run) == 1 else m.RemoteAdmits(tuple(run)))
            run = []
        out.append(msg)
    if run:
        out.append(run[0] if len(run) == 1 else m.RemoteAdmits(tuple(run)))
    return out


def remote_admit_for(gate_id: str, entry: JournalEntry) -> m.RemoteAdmit | None:
    """What to fan out to the other gates for a newly stored journal entry, if anything:
    an admit (scan or manual), or the undo of one whose passage timed out."""
    if entry.ticket_id is None:
        return None
    if entry.admitted:
        return m.RemoteAdmit(entry.ticket_id, gate_id, entry.at, entry.direction, entry.seq)
    if entry.kind is EntryKind.PASSAGE and entry.passage is Passage.NOT_PASSED and entry.ref_seq is not None:
        return m.RemoteAdmit(entry.ticket_id, gate_id, entry.at, entry.direction, entry.ref_seq, not_passed=True)
    return None


def choose_version(gate_min: int, gate_max: int, hub_min: int, hub_max: int) -> int | None:
    """The highest version both ranges contain, or ``None`` when they do not overlap."""
    top = min(gate_max, hub_max)
    return top if top >= max(gate_min, hub_min) else None


# =========================================================================== events
@dataclass(frozen=True, slots=True)
class HelloAccepted:
    """Gate: the hub speaks ``version`` with us; the link is up (mode ONLINE once synced)."""

    version: int
    hub_epoch: str
    hub_seq: int
    replica_sync: str
    event: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Incompatible:
    """Gate: no common protocol version. Stay OFFLINE, keep admitting, retry later."""

    reason: str
    hub_min: int
    hub_max: int


@dataclass(frozen=True, slots=True)
class HubRolledBack:
    """Gate: the hub holds less of our journal than it once acked (restored from a backup),
    or its epoch changed. Raise it to a human; the session re-sends from ``hub_held + 1``."""

    hub_held: int
    acked_before: int
    epoch_before: str | None
    epoch_now: str


@dataclass(frozen=True, slots=True)
class NeedResend:
    """Gate: journal upload restarts at ``from_seq`` (after a rollback or a lost ack)."""

    from_seq: int


@dataclass(frozen=True, slots=True)
class JournalAcked:
    """Gate: the hub holds every entry up to ``high_water``. Persist it. Entries up to
    ``backed_up`` are inside a completed hub backup: only those may ever be pruned."""

    high_water: int
    backed_up: int


@dataclass(frozen=True, slots=True)
class SnapshotStarted:
    """Gate: a full replica follows. Open a staging transaction. While applying it, a ticket
    this gate knows to be revoked must stay revoked (see :func:`sync.merge.merge_ticket`)."""

    seq: int
    total_rows: int
    reason: str


@dataclass(frozen=True, slots=True)
class ApplySnapshotBatch:
    """Gate: apply these rows (upsert) in one transaction; report progress."""

    index: int
    rows: tuple[TicketRecord, ...]
    zones: tuple[Zone, ...]
    policies: tuple[EntryPolicy, ...]
    done_rows: int
    total_rows: int
    #: the hub's entry state per row (same order; empty from a hub that sends none)
    states: tuple[m.TicketState | None, ...] = ()


@dataclass(frozen=True, slots=True)
class SnapshotFinished:
    """Gate: the snapshot is complete. Commit it and store ``cursor`` (and its ``token``)."""

    cursor: int
    total_rows: int
    token: str | None = None
    #: the hub epoch this snapshot belongs to: persist it now, not before (a gate that
    #: adopted a restored hub's epoch and then lost the link mid-snapshot would be answered
    #: with deltas from a cursor that names a change the restored hub never had)
    hub_epoch: str | None = None


@dataclass(frozen=True, slots=True)
class SnapshotAborted:
    """Gate: a snapshot batch went missing; discard the staging data, a new snapshot follows."""

    reason: str


@dataclass(frozen=True, slots=True)
class ApplyDeltas:
    """Gate: apply these changes in one transaction and store ``cursor`` with them."""

    changes: tuple[m.Change, ...]
    cursor: int
    #: v3: the token of the change at ``cursor`` (store it with the cursor)
    token: str | None = None


@dataclass(frozen=True, slots=True)
class RemoteAdmitted:
    """Gate: a ticket passed at another gate; update its entry state in the replica."""

    ticket_id: int
    gate_id: str
    at: float
    direction: str
    gate_seq: int
    #: the earlier admit (gate_id, gate_seq) did not pass: undo it, the ticket stays valid
    not_passed: bool = False


@dataclass(frozen=True, slots=True)
class CommandReceived:
    """Gate: a control-room command. ``known`` is False for a name this gate does not know
    (it must refuse, not guess)."""

    command: m.Command
    known: bool


@dataclass(frozen=True, slots=True)
class PeerError:
    """Either side: the peer reported a problem with something we sent."""

    code: str
    detail: str
    fatal: bool


@dataclass(frozen=True, slots=True)
class ProtocolViolation:
    """Either side: the peer sent something we refused (malformed, unknown, out of place).
    Counted in ``errors``; log it."""

    code: str
    detail: str


@dataclass(frozen=True, slots=True)
class CloseWanted:
    """Either side: the owner should close the connection (dead link, too many errors,
    incompatible). The gate reconnects later with backoff."""

    reason: str


@dataclass(frozen=True, slots=True)
class HelloReceived:
    """Hub: a gate said hello. Gather the hub's facts and call :meth:`HubSession.answer_hello`."""

    hello: m.Hello
    version: int | None


@dataclass(frozen=True, slots=True)
class SnapshotNeeded:
    """Hub: stream a full snapshot (``begin_snapshot`` / ``snapshot_batch`` / ``end_snapshot``)."""

    reason: str


@dataclass(frozen=True, slots=True)
class CatchUpNeeded:
    """Hub: send ``changes_since(from_seq)`` pages with ``send_changes`` until empty, then ``caught_up``."""

    from_seq: int


@dataclass(frozen=True, slots=True)
class StoreEntries:
    """Hub: store these journal entries idempotently, then call ``entries_stored``."""

    entries: tuple[JournalEntry, ...]


GateEvent = (HelloAccepted | Incompatible | HubRolledBack | NeedResend | JournalAcked | SnapshotStarted
             | ApplySnapshotBatch | SnapshotFinished | SnapshotAborted | ApplyDeltas | RemoteAdmitted
             | CommandReceived | PeerError | ProtocolViolation | CloseWanted)
HubEvent = (HelloReceived | SnapshotNeeded | CatchUpNeeded | StoreEntries | PeerError | ProtocolViolation
            | CloseWanted)


# =========================================================================== state tables
class GateState(StrEnum):
    DISCONNECTED = "disconnected"  # no link; connect() sends hello
    HELLO_SENT = "hello_sent"  # waiting for hello_reply
    SNAPSHOT = "snapshot"  # receiving a full replica
    LIVE = "live"  # replica current; deltas and remote admits flow
    INCOMPATIBLE = "incompatible"  # no common version: owner closes, stays OFFLINE, retries later


class HubState(StrEnum):
    AWAIT_HELLO = "await_hello"
    HELLO_RECEIVED = "hello_received"  # owner is gathering facts for the reply
    SNAPSHOT = "snapshot"  # streaming a snapshot
    CATCHING_UP = "catching_up"  # sending changes_since pages
    LIVE = "live"  # pushes flow as they happen
    CLOSED = "closed"  # incompatible or fatal


_ALWAYS = frozenset({"ping", "pong", "error"})
_HUB_TO_GATE_SYNCED = frozenset({"hello_reply", "snapshot_begin", "snapshot_batch", "snapshot_end", "deltas",
                                 "journal_ack", "remote_admit", "remote_admits", "command"}) | _ALWAYS

#: Which message types the gate accepts in each state. Anything else is a violation.
GATE_ACCEPTS: dict[GateState, frozenset[str]] = {
    GateState.DISCONNECTED: frozenset(),
    # A command may come before the reply: the hub can queue one while it answers.
    GateState.HELLO_SENT: frozenset({"hello_reply", "command"}) | _ALWAYS,
    GateState.SNAPSHOT: _HUB_TO_GATE_SYNCED,
    GateState.LIVE: _HUB_TO_GATE_SYNCED,
    GateState.INCOMPATIBLE: _ALWAYS,
}
#: Message types dropped quietly (counted in ``ignored``, not a violation): they answer an
#: earlier hello whose reply we have not seen (lost or overtaken), and the hub will answer
#: our hello again.
GATE_IGNORES: dict[GateState, frozenset[str]] = {
    GateState.DISCONNECTED: frozenset(),
    GateState.HELLO_SENT: _HUB_TO_GATE_SYNCED - {"hello_reply", "command"},
    GateState.SNAPSHOT: frozenset(),
    GateState.LIVE: frozenset(),
    GateState.INCOMPATIBLE: _HUB_TO_GATE_SYNCED,
}
#: Gate transitions: (state, what happened) -> new state.
GATE_TRANSITIONS: dict[tuple[GateState, str], GateState] = {
    (GateState.DISCONNECTED, "connect"): GateState.HELLO_SENT,
    (GateState.HELLO_SENT, "hello_reply:snapshot"): GateState.SNAPSHOT,
    (GateState.HELLO_SENT, "hello_reply:deltas"): GateState.LIVE,
    (GateState.HELLO_SENT, "hello_reply:incompatible"): GateState.INCOMPATIBLE,
    (GateState.SNAPSHOT, "hello_reply:snapshot"): GateState.SNAPSHOT,  # a repeated hello
    (GateState.SNAPSHOT, "hello_reply:deltas"): GateState.LIVE,
    (GateState.LIVE, "hello_reply:snapshot"): GateState.SNAPSHOT,
    (GateState.LIVE, "hello_reply:deltas"): GateState.LIVE,
    (GateState.SNAPSHOT, "snapshot_end"): GateState.LIVE,
    (GateState.LIVE, "snapshot_begin"): GateState.SNAPSHOT,
    (GateState.SNAPSHOT, "snapshot_begin"): GateState.SNAPSHOT,
}

HUB_ACCEPTS: dict[HubState, frozenset[str]] = {
    HubState.AWAIT_HELLO: frozenset({"hello"}) | _ALWAYS,
    HubState.HELLO_RECEIVED: frozenset({"hello"}) | _ALWAYS,
    HubState.SNAPSHOT: frozenset({"hello", "journal_batch", "snapshot_request", "catch_up"}) | _ALWAYS,
    HubState.CATCHING_UP: frozenset({"hello", "journal_batch", "snapshot_request", "catch_up"}) | _ALWAYS,
    HubState.LIVE: frozenset({"hello", "journal_batch", "snapshot_request", "catch_up"}) | _ALWAYS,
    HubState.CLOSED: frozenset(),
}
#: While a new hello is being answered, what the gate sent under the previous answer is
#: dropped quietly: the new reply restarts upload and replica sync from the hub's facts.
HUB_IGNORES: dict[HubState, frozenset[str]] = {
    HubState.AWAIT_HELLO: frozenset(),
    HubState.HELLO_RECEIVED: frozenset({"journal_batch", "snapshot_request", "catch_up"}),
    HubState.SNAPSHOT: frozenset(),
    HubState.CATCHING_UP: frozenset(),
    HubState.LIVE: frozenset(),
    HubState.CLOSED: frozenset({"hello", "journal_batch", "snapshot_request", "catch_up"}) | _ALWAYS,
}
HUB_TRANSITIONS: dict[tuple[HubState, str], HubState] = {
    **{(s, "hello"): HubState.HELLO_RECEIVED for s in HubState if s is not HubState.CLOSED},
    (HubState.HELLO_RECEIVED, "answer:incompatible"): HubState.CLOSED,
    (HubState.HELLO_RECEIVED, "answer:snapshot"): HubState.SNAPSHOT,
    (HubState.HELLO_RECEIVED, "answer:deltas"): HubState.CATCHING_UP,
    **{(s, "snapshot_request"): HubState.SNAPSHOT
       for s in (HubState.SNAPSHOT, HubState.CATCHING_UP, HubState.LIVE)},
    **{(s, "catch_up"): HubState.CATCHING_UP for s in (HubState.CATCHING_UP, HubState.LIVE)},
    (HubState.SNAPSHOT, "end_snapshot"): HubState.CATCHING_UP,
    (HubState.CATCHING_UP, "caught_up"): HubState.LIVE,
}


# =========================================================================== shared base
@dataclass(slots=True)
class SessionConfig:
    """Tunables. Times are seconds on the owner's clock (any monotonic clock)."""

    min_version: int = m.MIN_VERSION
    max_version: int = m.MAX_VERSION
    schema_version: int = m.SCHEMA_VERSION
    batch_size: int = 500
    max_in_flight: int = 4
    ack_timeout_s: float = 10.0
    reply_timeout_s: float = 10.0
    heartbeat_interval_s: float = 5.0
    heartbeat_timeout_s: float = 15.0
    max_errors: int = 20
    #: v2: messages with at least this much JSON go as zlib binary frames
    compress_min_bytes: int = m.COMPRESS_MIN_BYTES


class _Session:
    """What both sides share: the outbox, error counting, heartbeats, frame decoding."""

    _accepts: dict[Any, frozenset[str]]
    _ignores: dict[Any, frozenset[str]]

    def __init__(self, config: SessionConfig | None = None) -> None:
        self.config = config or SessionConfig()
        self.version: int | None = None
        self.errors = 0
        self.ignored = 0
        self.received = 0
        self._outbox: list[m.Message] = []
        self._last_received = 0.0
        self._last_ping = 0.0
        self._ping_nonce = itertools.count(1)
        self._peer_compresses = False
        self.state: Any = None

    # ---- output
    def messages_to_send(self) -> list[m.Message]:
        out, self._outbox = self._outbox, []
        return out

    def frames_to_send(self) -> list[str | bytes]:
        """The outbox as wire frames (zlib binary for large messages only on v2 with a peer that reads them).

        On v2, remote admits that piled up since the last flush go as one ``remote_admits``."""
        v2 = (self.version or 1) >= 2
        compress = v2 and self._peer_compresses
        limit = self.config.compress_min_bytes
        messages = self.messages_to_send()
        if v2 and sum(isinstance(msg, m.RemoteAdmit) for msg in messages) > 1:
            messages = _coalesce_admits(messages)
        return [m.encode(msg, compress=compress, min_bytes=limit) for msg in messages]

    def _send(self, msg: m.Message) -> None:
        self._outbox.append(msg)

    # ---- input
    def receive_frame(self, frame: str | bytes, now: float) -> list[Any]:
        """Decode one frame and handle it. Bad bytes become a counted violation, never an exception."""
        try:
            msg = m.decode(frame)
        except RemoteProtocolError as exc:
            self._last_received = now
            return self._violation(exc.code, exc.detail)
        return self.receive(msg, now)

    def receive(self, msg: m.Message, now: float) -> list[Any]:
        """Handle one decoded message; returns the events for the owner."""
        self._last_received = now
        self.received += 1
        if msg.type not in self._accepts[self.state]:
            if msg.type in self._ignores[self.state]:
                self.ignored += 1
                return []
            return self._violation("unexpected", f"{msg.type} not allowed in state {self.state}")
        if isinstance(msg, m.Ping):
            self._send(m.Pong(msg.nonce, self._pong_seq()))
            return []
        if isinstance(msg, m.Error):
            return [PeerError(msg.code, msg.detail, msg.fatal)] + ([CloseWanted(f"peer: {msg.code}")] if msg.fatal else [])
        try:
            return list(getattr(self, f"_on_{msg.type}")(msg, now))
        except RemoteProtocolError as exc:
            return self._violation(exc.code, exc.detail)

    def _violation(self, code: str, detail: str) -> list[Any]:
        self.errors += 1
        events: list[Any] = [ProtocolViolation(code, detail)]
        if self.errors >= self.config.max_errors:
            self._send(m.Error(code, f"too many protocol errors ({self.errors}); last: {detail}", fatal=True))
            events.append(CloseWanted(f"too many protocol errors: {code}"))
        else:
            self._send(m.Error(code, detail))
        return events

    def _pong_seq(self) -> int:
        return 0

    def _on_pong(self, msg: m.Pong, now: float) -> list[Any]:
        return []

    def _heartbeat(self, now: float) -> list[Any]:
        cfg = self.config
        if now - self._last_received >= cfg.heartbeat_timeout_s:
            return [CloseWanted(f"heartbeat: nothing heard for {now - self._last_received:.1f} s")]
        if now - self._last_received >= cfg.heartbeat_interval_s and now - self._last_ping >= cfg.heartbeat_interval_s:
            self._last_ping = now
            self._send(m.Ping(next(self._ping_nonce)))
        return []


# =========================================================================== gate
@dataclass(frozen=True, slots=True)
class GateFacts:
    """What the gate owner knows from its durable stores when a connection starts."""

    cursor: int
    acked_high_water: int
    journal_seq: int
    hub_epoch: str | None = None
    #: the token of the change at ``cursor`` (v3), so the hub can tell whether its log still holds it
    cursor_token: str | None = None


@dataclass(slots=True)
class _InFlight:
    last_seq: int
    sent_at: float


class GateSession(_Session):
    """The gate's side. One object can serve many connections: call :meth:`connect` on each
    new link and :meth:`connection_lost` when it drops."""

    _accepts = GATE_ACCEPTS
    _ignores = GATE_IGNORES

    def __init__(self, gate_id: str, config: SessionConfig | None = None) -> None:
        super().__init__(config)
        self.gate_id = gate_id
        self.state: GateState = GateState.DISCONNECTED
        self.cursor = 0
        self.cursor_token: str | None = None
        self.acked = 0
        self.backed_up = 0
        self.journal_seq = 0
        self.hub_epoch: str | None = None
        self.retransmits = 0
        self._sent = 0  # highest journal seq sent on this connection
        self._in_flight: deque[_InFlight] = deque()
        self._hello: m.Hello | None = None
        self._hello_at = 0.0
        self._snap_seq: int | None = None
        self._snap_next: int | None = None
        self._snap_rows = 0
        self._snap_at = 0.0
        self._catch_up_at: float | None = None
        self._snap_epoch: str | None = None

    def _go(self, what: str) -> None:
        self.state = GATE_TRANSITIONS[(self.state, what)]

    # ---- owner calls
    def connect(self, facts: GateFacts, now: float) -> None:
        """A new link is up: queue ``hello`` with the owner's durable facts."""
        if self.state is not GateState.DISCONNECTED:
            raise LocalProtocolError("state", f"connect() in state {self.state}; call connection_lost() first")
        self.cursor, self.acked, self.journal_seq = facts.cursor, facts.acked_high_water, facts.journal_seq
        self.cursor_token = facts.cursor_token
        self.hub_epoch = facts.hub_epoch
        self.version = None
        self._sent, self._in_flight = self.acked, deque()
        self._last_received = self._last_ping = now
        self._hello = m.Hello(gate_id=self.gate_id, min_version=self.config.min_version,
                              max_version=self.config.max_version, schema_version=self.config.schema_version,
                              cursor=self.cursor, acked_high_water=self.acked, journal_seq=self.journal_seq,
                              hub_epoch=self.hub_epoch, compressed=self.config.max_version >= 2,
                              cursor_token=self.cursor_token if self.config.max_version >= 3 else None)
        self._send(self._hello)
        self._hello_at = now
        self._go("connect")

    def connection_lost(self) -> None:
        """The link dropped. Unacked batches will be re-sent on the next connection."""
        self.state = GateState.DISCONNECTED
        self._outbox.clear()
        self._in_flight.clear()
        self._snap_next = self._snap_seq = None

    def journal_appended(self, seq: int) -> None:
        """The journal grew to ``seq`` (committed). Upload picks it up."""
        self.journal_seq = max(self.journal_seq, seq)

    def upload_wanted(self) -> tuple[int, int] | None:
        """``(after_seq, limit)`` of journal entries the owner should fetch and pass to
        :meth:`send_journal`, or None (nothing new, not synced yet, or window full)."""
        if self.state not in (GateState.SNAPSHOT, GateState.LIVE):
            return None
        if self._sent >= self.journal_seq or len(self._in_flight) >= self.config.max_in_flight:
            return None
        return self._sent, min(self.config.batch_size, self.journal_seq - self._sent)

    def send_journal(self, entries: Sequence[JournalEntry], now: float) -> None:
        """Queue one ``journal_batch`` of the entries :meth:`upload_wanted` asked for."""
        if not entries:
            return
        if self.state not in (GateState.SNAPSHOT, GateState.LIVE):
            raise LocalProtocolError("state", f"cannot upload in state {self.state}")
        first = entries[0].seq
        if first != self._sent + 1 or any(e.seq != first + i for i, e in enumerate(entries)):
            raise LocalProtocolError("journal", f"entries must be consecutive from {self._sent + 1}")
        if any(e.gate_id != self.gate_id for e in entries):
            raise LocalProtocolError("journal", "entry of another gate")
        self._send(m.JournalBatch(tuple(entries)))
        self._sent = entries[-1].seq
        self.journal_seq = max(self.journal_seq, self._sent)
        self._in_flight.append(_InFlight(self._sent, now))

    def tick(self, now: float) -> list[GateEvent]:
        """Timers: heartbeats, lost hello, lost acks (go-back-N), a stalled snapshot."""
        if self.state is GateState.DISCONNECTED:
            return []
        events: list[GateEvent] = list(self._heartbeat(now))
        cfg = self.config
        if self.state is GateState.HELLO_SENT and now - self._hello_at >= cfg.reply_timeout_s and self._hello:
            self._send(self._hello)
            self._hello_at = now
        if self._in_flight and now - self._in_flight[0].sent_at >= cfg.ack_timeout_s:
            self.retransmits += 1
            self._in_flight.clear()
            self._sent = self.acked
            events.append(NeedResend(self.acked + 1))
        if self.state is GateState.SNAPSHOT and now - self._last_ping >= cfg.heartbeat_interval_s:
            # Applying a large snapshot, the gate reads the hub's ping only after the pages
            # queued before it, which can take longer than the hub's heartbeat timeout; its
            # own ping tells the hub meanwhile that it is alive.
            self._last_ping = now
            self._send(m.Ping(next(self._ping_nonce)))
        if self.state is GateState.SNAPSHOT and now - self._snap_at >= cfg.reply_timeout_s:
            self._snap_at = now
            self._snap_next = self._snap_seq = None
            self._send(m.SnapshotRequest("stalled"))
        return events

    # ---- handlers
    def _on_hello_reply(self, r: m.HelloReply, now: float) -> list[GateEvent]:
        if r.version is None:
            self._go("hello_reply:incompatible")
            return [Incompatible(r.reason or "no common protocol version", r.min_version, r.max_version),
                    CloseWanted("incompatible protocol version")]
        if not self.config.min_version <= r.version <= self.config.max_version:
            raise RemoteProtocolError("bad_version", f"hub chose v{r.version}, we speak "
                                      f"{self.config.min_version}..{self.config.max_version}")
        if r.hub_held > self.journal_seq:
            # The hub holds more than our journal: this gate lost its journal. Only a human can sort it out.
            raise RemoteProtocolError("journal_ahead", f"hub holds seq {r.hub_held}, our journal ends at {self.journal_seq}")
        events: list[GateEvent] = []
        self.version = r.version
        self._peer_compresses = r.version >= 2
        epoch_before = self.hub_epoch
        epoch_changed = epoch_before is not None and epoch_before != r.hub_epoch
        if r.hub_held < self.acked or epoch_changed:
            events.append(HubRolledBack(r.hub_held, self.acked, epoch_before, r.hub_epoch))
        if r.hub_held < self.journal_seq and (r.hub_held < self.acked or epoch_changed):
            events.append(NeedResend(r.hub_held + 1))
        if r.replica_sync == "deltas":
            self.hub_epoch = r.hub_epoch
        else:
            self._snap_epoch = r.hub_epoch  # adopted only once the snapshot is complete
        # The hub's word is the truth for this connection: upload from what it holds.
        if r.hub_held != self.acked or r.backed_up > self.backed_up:
            self.acked = r.hub_held
            self.backed_up = min(r.backed_up, r.hub_held)
            events.append(JournalAcked(self.acked, self.backed_up))
        self._sent, self._in_flight = self.acked, deque()
        self._go(f"hello_reply:{r.replica_sync}")
        if self.state is GateState.SNAPSHOT:
            self._snap_at = now
            self._snap_next = self._snap_seq = None
        events.insert(0, HelloAccepted(r.version, r.hub_epoch, r.hub_seq, r.replica_sync, dict(r.event)))
        return events

    def _on_journal_ack(self, a: m.JournalAck, now: float) -> list[GateEvent]:
        if a.high_water > self.journal_seq:
            raise RemoteProtocolError("bad_field", f"ack {a.high_water} beyond our journal ({self.journal_seq})")
        if a.high_water <= self.acked and a.backed_up <= self.backed_up:
            return []  # stale or duplicate
        self.acked = max(self.acked, a.high_water)
        # A late ack for batches we already gave up on (go-back-N) is still true: skip ahead.
        self._sent = max(self._sent, self.acked)
        self.backed_up = max(self.backed_up, min(a.backed_up, self.acked))
        while self._in_flight and self._in_flight[0].last_seq <= self.acked:
            self._in_flight.popleft()
        if self._in_flight:  # the window moved: restart the oldest batch's timer
            self._in_flight[0].sent_at = max(self._in_flight[0].sent_at, now)
        return [JournalAcked(self.acked, self.backed_up)]

    def _on_snapshot_begin(self, b: m.SnapshotBegin, now: float) -> list[GateEvent]:
        self._go("snapshot_begin")
        self._snap_seq, self._snap_next, self._snap_rows, self._snap_at = b.seq, 0, 0, now
        return [SnapshotStarted(b.seq, b.total_rows, b.reason)]

    def _on_snapshot_batch(self, b: m.SnapshotBatch, now: float) -> list[GateEvent]:
        if self.state is not GateState.SNAPSHOT:
            return []  # a late duplicate after the snapshot completed
        if self._snap_next is None:
            return []  # we asked for a new snapshot; wait for its begin
        if b.index != self._snap_next:
            return self._abort_snapshot(f"batch {b.index} arrived, expected {self._snap_next}")
        self._snap_next += 1
        self._snap_rows += len(b.rows)
        self._snap_at = now
        return [ApplySnapshotBatch(b.index, b.rows, b.zones, b.policies, b.done_rows, b.total_rows, b.states)]

    def _on_snapshot_end(self, e: m.SnapshotEnd, now: float) -> list[GateEvent]:
        if self.state is not GateState.SNAPSHOT or self._snap_next is None:
            return []
        if e.batches != self._snap_next or e.seq != self._snap_seq:
            return self._abort_snapshot(f"end after {self._snap_next} batches, hub sent {e.batches}")
        self._go("snapshot_end")
        self.cursor = e.seq
        self.cursor_token = e.token
        self._snap_next = self._snap_seq = None
        if self._snap_epoch is not None:
            self.hub_epoch, self._snap_epoch = self._snap_epoch, None
        return [SnapshotFinished(e.seq, self._snap_rows, e.token, self.hub_epoch)]

    def _abort_snapshot(self, why: str) -> list[GateEvent]:
        self._snap_next = self._snap_seq = None
        self._send(m.SnapshotRequest(why))
        return [SnapshotAborted(why)]

    def _on_deltas(self, d: m.Deltas, now: float) -> list[GateEvent]:
        if self.state is not GateState.LIVE:
            return []  # deltas before the snapshot ended: the pong check catches up later
        if d.prev_seq != self.cursor:
            if d.prev_seq < self.cursor and d.changes and d.changes[-1].seq <= self.cursor:
                return []  # old news (a duplicate)
            return self._ask_catch_up(now)
        seqs = [c.seq for c in d.changes]
        if any(b <= a for a, b in itertools.pairwise(seqs)) or (seqs and seqs[0] <= d.prev_seq):
            raise RemoteProtocolError("bad_field", "deltas must be in ascending seq order after prev_seq")
        if d.end_seq is not None and (d.end_seq < d.prev_seq or (seqs and d.end_seq < seqs[-1])):
            raise RemoteProtocolError("bad_field", "end_seq must not be below the changes it ends")
        end = d.end_seq if d.end_seq is not None else (seqs[-1] if seqs else d.prev_seq)
        if end <= self.cursor and not d.changes:
            return []
        self.cursor = end
        self.cursor_token = d.end_token if d.end_seq is not None else None
        self._catch_up_at = None
        return [ApplyDeltas(d.changes, self.cursor, self.cursor_token)]

    def _ask_catch_up(self, now: float) -> list[GateEvent]:
        if self._catch_up_at is None or now - self._catch_up_at >= self.config.reply_timeout_s:
            self._catch_up_at = now
            self._send(m.CatchUp(self.cursor))
        return []

    def _on_pong(self, p: m.Pong, now: float) -> list[GateEvent]:
        if self.state is GateState.LIVE and p.seq > self.cursor:
            return self._ask_catch_up(now)
        return []

    def _on_remote_admits(self, r: m.RemoteAdmits, now: float) -> list[GateEvent]:
        return [ev for a in r.admits for ev in self._on_remote_admit(a, now)]

    def _on_remote_admit(self, r: m.RemoteAdmit, now: float) -> list[GateEvent]:
        if r.gate_id == self.gate_id:
            return []  # our own admit echoed back
        return [RemoteAdmitted(r.ticket_id, r.gate_id, r.at, r.direction, r.gate_seq, r.not_passed)]

    def _on_command(self, c: m.Command, now: float) -> list[GateEvent]:
        known = c.name in m.KNOWN_COMMANDS
        if not known:
            self._send(m.Error("unknown_command", f"this gate does not know command {c.name!r}"))
        return [CommandReceived(c, known)]


# =========================================================================== hub
@dataclass(frozen=True, slots=True)
class HubFacts:
    """What the hub owner looked up to answer a gate's hello."""

    hub_held: int
    hub_epoch: str
    hub_seq: int
    backed_up: int = 0
    event: dict[str, Any] = field(default_factory=dict)
    #: False: the hub's change log no longer holds the change at the gate's cursor (restored,
    #: or failed over to a standby that lacked it): the gate needs a full snapshot
    cursor_holds: bool = True


class HubSession(_Session):
    """The hub's side of one gate's connection. ``gate_id`` comes from authentication, not
    from the gate's hello (a hello naming another gate is refused)."""

    _accepts = HUB_ACCEPTS
    _ignores = HUB_IGNORES

    def __init__(self, gate_id: str, config: SessionConfig | None = None, now: float = 0.0) -> None:
        super().__init__(config)
        self.gate_id = gate_id
        self.state: HubState = HubState.AWAIT_HELLO
        self.hello: m.Hello | None = None
        self.sent_seq = 0  # the gate's cursor as far as this session has told it
        self.read_seq = 0  # how far the change log has been read for this gate (>= sent_seq)
        #: zones whose entry events this gate needs (None: all); set by the owner
        self.zones: frozenset[int] | None = None
        self.acked = 0
        self._last_received = self._last_ping = now
        self._snap_index = 0
        self._snap_rows = 0
        self._snap_seq = 0

    def _go(self, what: str) -> None:
        self.state = HUB_TRANSITIONS[(self.state, what)]

    @property
    def live(self) -> bool:
        return self.state is HubState.LIVE

    def _pong_seq(self) -> int:
        return self.sent_seq if self.state is HubState.LIVE else 0

    # ---- handlers
    def _on_hello(self, h: m.Hello, now: float) -> list[HubEvent]:
        if h.gate_id != self.gate_id:
            self._send(m.Error("wrong_gate", f"authenticated as {self.gate_id}, hello says {h.gate_id}", fatal=True))
            self.state = HubState.CLOSED
            return [ProtocolViolation("wrong_gate", h.gate_id), CloseWanted("hello for another gate")]
        self.hello = h
        self._peer_compresses = h.compressed
        self.version = choose_version(h.min_version, h.max_version, self.config.min_version, self.config.max_version)
        self._go("hello")
        return [HelloReceived(h, self.version)]

    def _on_journal_batch(self, b: m.JournalBatch, now: float) -> list[HubEvent]:
        if any(e.gate_id != self.gate_id for e in b.entries):
            raise RemoteProtocolError("wrong_gate", "journal entry of another gate")
        if not b.entries:
            return []
        return [StoreEntries(b.entries)]

    def _on_snapshot_request(self, r: m.SnapshotRequest, now: float) -> list[HubEvent]:
        self._go("snapshot_request")
        return [SnapshotNeeded(f"requested: {r.reason}")]

    def _on_catch_up(self, c: m.CatchUp, now: float) -> list[HubEvent]:
        if self.state is HubState.SNAPSHOT:
            return []  # a snapshot is on its way; it ends with a cursor
        self._go("catch_up")
        self.sent_seq = self.read_seq = c.cursor
        return [CatchUpNeeded(c.cursor)]

    # ---- owner calls
    def answer_hello(self, facts: HubFacts) -> list[HubEvent]:
        """Reply to the pending hello with the hub's facts; says how to bring the replica up to date."""
        if self.state is not HubState.HELLO_RECEIVED or self.hello is None:
            raise LocalProtocolError("state", f"answer_hello() in state {self.state}")
        h, cfg = self.hello, self.config
        if self.version is None:
            self._send(m.HelloReply(version=None, min_version=cfg.min_version, max_version=cfg.max_version,
                                    hub_held=facts.hub_held, backed_up=facts.backed_up, hub_epoch=facts.hub_epoch,
                                    hub_seq=facts.hub_seq, schema_version=cfg.schema_version,
                                    reason=f"gate speaks v{h.min_version}..v{h.max_version}, "
                                           f"hub v{cfg.min_version}..v{cfg.max_version}"))
            self._go("answer:incompatible")
            return [CloseWanted("incompatible protocol version")]
        reason = ""
        if h.schema_version != cfg.schema_version:
            reason = "schema"
        elif h.cursor == 0:
            reason = "initial"
        elif h.hub_epoch is not None and h.hub_epoch != facts.hub_epoch:
            reason = "epoch_changed"
        elif h.cursor > facts.hub_seq:
            reason = "cursor_ahead"
        elif not facts.cursor_holds:
            reason = "cursor_lost"
        self.acked = facts.hub_held
        self._send(m.HelloReply(version=self.version, min_version=cfg.min_version, max_version=cfg.max_version,
                                hub_held=facts.hub_held, backed_up=facts.backed_up, hub_epoch=facts.hub_epoch,
                                hub_seq=facts.hub_seq, schema_version=cfg.schema_version,
                                replica_sync="snapshot" if reason else "deltas", reason=reason, event=facts.event))
        if reason:
            self._go("answer:snapshot")
            return [SnapshotNeeded(reason)]
        self._go("answer:deltas")
        self.sent_seq = self.read_seq = h.cursor
        return [CatchUpNeeded(h.cursor)]

    def begin_snapshot(self, seq: int, total_rows: int, reason: str = "") -> None:
        """Start streaming a snapshot consistent with hub seq ``seq`` (read *before* the rows)."""
        self._require(HubState.SNAPSHOT, "begin_snapshot")
        self._snap_index, self._snap_rows, self._snap_seq = 0, 0, seq
        self._send(m.SnapshotBegin(seq, total_rows, reason))

    def snapshot_batch(self, rows: Sequence[TicketRecord], zones: Iterable[Zone] = (),
                       policies: Iterable[EntryPolicy] = (), total_rows: int = 0,
                       states: Sequence[m.TicketState | None] = ()) -> None:
        self._require(HubState.SNAPSHOT, "snapshot_batch")
        self._snap_rows += len(rows)
        self._send(m.SnapshotBatch(self._snap_index, tuple(rows), tuple(zones), tuple(policies),
                                   self._snap_rows, total_rows, tuple(states)))
        self._snap_index += 1

    def end_snapshot(self, token: str | None = None) -> CatchUpNeeded:
        """Finish the snapshot; the owner then catches up from its seq like after a hello."""
        self._require(HubState.SNAPSHOT, "end_snapshot")
        self._send(m.SnapshotEnd(self._snap_seq, self._snap_index, self._snap_rows,
                                 token if (self.version or 1) >= 3 else None))
        self._go("end_snapshot")
        self.sent_seq = self.read_seq = self._snap_seq
        return CatchUpNeeded(self._snap_seq)

    def send_changes(self, changes: Sequence[m.Change], end_seq: int | None = None,
                     end_token: str | None = None) -> None:
        """Send one page of ``changes_since(read_seq)`` while catching up (``end_seq``: where the
        read ended, past changes not meant for gates)."""
        self._require(HubState.CATCHING_UP, "send_changes")
        self._send_deltas(changes, end_seq, end_token)

    def caught_up(self) -> None:
        """``changes_since(sent_seq)`` came back empty: from now on pushes flow live.
        Call it with no await between the empty read and this call."""
        if self.state is HubState.CATCHING_UP:
            self._go("caught_up")

    def push_changes(self, changes: Sequence[m.Change], end_seq: int | None = None,
                     end_token: str | None = None) -> bool:
        """Push committed changes if LIVE (else the running catch-up will read them). True if sent."""
        if self.state is not HubState.LIVE:
            return False
        return self._send_deltas(changes, end_seq, end_token)

    #: a v3 gate's cursor is moved on at least this often over changes it does not need
    ADVANCE_EVERY = 2000

    def _send_deltas(self, changes: Sequence[m.Change], end_seq: int | None = None,
                     end_token: str | None = None) -> bool:
        """Send what this gate needs of ``changes`` (read up to ``end_seq``).

        Entry events go only to gates that admit the ticket's zone, never back to the gate
        they came from; a v3 gate gets them as ``entry`` changes and its cursor moves to
        ``end_seq``; an older gate gets them as ``remote_admit`` messages and its cursor stays
        on the last change it was sent (so its ``prev_seq`` check holds).
        """
        fresh = [c for c in changes if c.seq > self.read_seq]
        end = max(end_seq if end_seq is not None else (fresh[-1].seq if fresh else self.read_seq), self.read_seq)
        v3 = (self.version or 1) >= 3
        keep: list[m.Change] = []
        admits: list[m.RemoteAdmit] = []
        for c in fresh:
            if isinstance(c, m.EntryEvent):
                if c.gate_id == self.gate_id or (self.zones is not None and c.zone_id is not None
                                                 and c.zone_id not in self.zones):
                    continue
                if v3:
                    keep.append(c)
                else:
                    admits.append(m.RemoteAdmit(c.ticket_id, c.gate_id, c.at, c.direction, c.gate_seq, c.not_passed))
            else:
                keep.append(c)
        self.read_seq = end
        sent = False
        if v3:
            if keep or end - self.sent_seq >= self.ADVANCE_EVERY:
                self._send(m.Deltas(self.sent_seq, tuple(keep), end, end_token if end_seq is not None else None))
                self.sent_seq = end
                sent = True
        elif keep:
            self._send(m.Deltas(self.sent_seq, tuple(keep)))
            self.sent_seq = keep[-1].seq
            sent = True
        for a in admits:
            self._send(a)
            sent = True
        return sent

    def entries_stored(self, high_water: int, backed_up: int = 0, conflicts: int = 0) -> None:
        """The owner stored a batch; ``high_water`` is its gap-free high water for this gate."""
        if self.state in (HubState.CLOSED, HubState.AWAIT_HELLO):
            return
        self.acked = max(self.acked, high_water)
        self._send(m.JournalAck(self.acked, min(backed_up, self.acked), conflicts))

    def send_remote_admit(self, admit: m.RemoteAdmit) -> bool:
        """Fan out another gate's admit. Dropped unless the gate is synced (its replica
        will learn entry state another way: the hub's conflict report)."""
        if admit.gate_id == self.gate_id or self.state not in (HubState.LIVE, HubState.CATCHING_UP):
            return False
        self._send(admit)
        return True

    def send_command(self, command: m.Command) -> None:
        if self.state is HubState.CLOSED:
            raise LocalProtocolError("state", "session closed")
        self._send(command)

    def tick(self, now: float) -> list[HubEvent]:
        if self.state is HubState.CLOSED:
            return []
        return list(self._heartbeat(now))

    def _require(self, state: HubState, what: str) -> None:
        if self.state is not state:
            raise LocalProtocolError("state", f"{what}() in state {self.state}")
