"""The gate agent's side of sync: a :class:`sync.backend.GateOwner` over its replica and journal.

The websocket client (:class:`sync.gate_client.GateClient`) calls these methods; each one
commits before returning, so a crash between two messages leaves a consistent replica with
the cursor it reflects. Nothing here waits on the decision path, and the decision never
waits on this.
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gate_agent.files import tighten
from gate_agent.logs import gate_context, register_secret
from gate_agent.manifest_sync import RETRY_S, ManifestSync
from sync import messages as m
from sync.backend import HelloFacts
from sync.gate_client import GateClient, backoff
from sync.merge import merge_state, merge_ticket
from tickets.entry import JournalEntry
from tickets.keys import KeyRing
from tickets.model import Direction, EntryState, TicketRecord, TicketStatus, Zone
from tickets.policy import EntryPolicy, record_passage
from tickets.pretix import PretixEvent

if TYPE_CHECKING:
    from gate_agent.agent import GateAgent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GateCredentials:
    """What enrolment left on the gate: who it is, its token, where the hub is."""

    gate_id: str
    token: str
    hub_url: str

    @classmethod
    def load(cls, path: Path) -> GateCredentials | None:
        try:
            tighten(path)  # the token: owner-only, even if copied over by hand
            d = json.loads(path.read_text(encoding="utf-8"))
            return cls(str(d["gate_id"]), str(d["token"]), str(d["hub_url"]))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            log.error("gate credentials %s unreadable (%s): run `gatehouse gate enroll` again", path, exc)
            return None


def ws_url(hub_url: str) -> str:
    """``https://hub:8443`` → ``wss://hub:8443/ws/gate`` (and http → ws)."""
    url = hub_url.rstrip("/")
    if url.startswith("https://"):
        url = "wss://" + url[len("https://"):]
    elif url.startswith("http://"):
        url = "ws://" + url[len("http://"):]
    return url if url.endswith("/ws/gate") else url + "/ws/gate"


class AgentSyncOwner:
    """Implements :class:`sync.backend.GateOwner` for a running :class:`GateAgent`."""

    def __init__(self, agent: GateAgent) -> None:
        self.agent = agent
        self.snapshot_progress: tuple[int, int] | None = None
        #: called with every link state (``online``, ``offline``, …), e.g. by the manifest puller
        self.state_listeners: list[Callable[[str], None]] = []
        #: called with commands the owner passes on (``refresh_manifest``: the manifest puller)
        self.command_listeners: list[Callable[[str], None]] = []
        #: why the hub refused this gate, if it did (shown on the staff screen)
        self.refusal: str | None = None

    # --- facts -------------------------------------------------------------------------
    async def hello_facts(self) -> HelloFacts:
        journal = self.agent.journal
        assert journal is not None
        replica = self.agent.replica
        epoch = await replica.get_meta("hub_epoch") if replica is not None else None
        token = await replica.get_meta("cursor_token") if replica is not None else None
        return HelloFacts(cursor=self.agent.cursor(), acked_high_water=await journal.acked_seq(),
                          journal_seq=journal.last_seq, hub_epoch=epoch, cursor_token=token or None)

    async def journal_after(self, seq: int, limit: int) -> list[JournalEntry]:
        assert self.agent.journal is not None
        return await self.agent.journal.entries_after(seq, limit)

    # --- replica -------------------------------------------------------------------------
    async def on_event_info(self, event: dict[str, Any]) -> None:
        """Keys, event id, zones and policies from the hub's hello reply."""
        replica = self.agent.replica
        if replica is None:
            return
        try:
            keyring = KeyRing.from_list(event.get("keys", []))
            zones = [m.zone_from_wire(z) for z in event.get("zones", [])]
            policies = [m.policy_from_wire(p) for p in event.get("policies", [])]
            pretix = PretixEvent.from_wire(event["pretix"]) if event.get("pretix") is not None else None
            await replica.set_event(event_id=int(event["event_id"]), keyring=keyring, zones=zones, policies=policies,
                                    allow_admit_on_signature=bool(event.get("allow_admit_on_signature", True)),
                                    pretix=pretix)
        except Exception as exc:
            log.exception("event info from the hub is unusable; keeping the replica's")
            await self.agent.journal_event("event_info_refused", f"{type(exc).__name__}: {exc}"[:300])
            return
        self.agent.reload_policy()

    async def snapshot_started(self, seq: int, total_rows: int, reason: str) -> None:
        log.warning("replica snapshot from the hub: %s rows at seq %s (%s)", total_rows, seq, reason)
        self.snapshot_progress = (0, total_rows)

    async def apply_snapshot_batch(self, rows: Sequence[TicketRecord], zones: Sequence[Zone],
                                   policies: Sequence[EntryPolicy], done_rows: int, total_rows: int,
                                   states: Sequence[m.TicketState | None] = ()) -> None:
        replica, reader = self.agent.replica, self.agent.reader
        if replica is None or reader is None:
            return
        merged = [merge_ticket(reader.ticket_by_id(r.ticket_id), r, from_snapshot=True) for r in rows]
        entry_states: dict[int, tuple[EntryState, int]] = {}
        for r, st in zip(rows, states, strict=False):
            if st is None:
                continue
            hub_state = EntryState(st.entries, st.inside, st.last_entry_at, st.last_exit_at)
            entry_states[r.ticket_id] = (merge_state(reader.entry_state(r.ticket_id), hub_state),
                                         max(st.state_seq, reader.entry_state_seq(r.ticket_id)))
        await replica.apply_tickets(merged, from_snapshot=True, zones=zones or None, policies=policies or None,
                                    entry_states=entry_states)
        self.snapshot_progress = (done_rows, total_rows)

    async def snapshot_finished(self, cursor: int, token: str | None = None) -> None:
        if self.agent.replica is None:
            return
        await self.agent.replica.apply_tickets([], cursor=cursor, meta={"cursor_token": token or ""})
        self.snapshot_progress = None
        self.agent.reload_policy()
        # The whole snapshot came over a live link: connected and current in one step.
        await self.agent.synced(hub_connected=True)

    async def apply_deltas(self, changes: Sequence[m.Change], cursor: int, token: str | None = None) -> None:
        replica, reader = self.agent.replica, self.agent.reader
        if replica is None or reader is None:
            return
        tickets: dict[int, TicketRecord] = {}
        zones: list[Zone] = []
        policies: list[EntryPolicy] = []
        states: dict[int, tuple[EntryState, int]] = {}

        def current(tid: int) -> TicketRecord | None:
            return tickets.get(tid) or reader.ticket_by_id(tid)

        for c in changes:
            if isinstance(c, m.TicketUpsert):
                tickets[c.ticket.ticket_id] = merge_ticket(current(c.ticket.ticket_id), c.ticket, from_snapshot=False)
            elif isinstance(c, m.TicketRevoke):
                rec = current(c.ticket_id) or _placeholder(c.ticket_id)
                tickets[c.ticket_id] = replace(rec, status=TicketStatus.REVOKED)
            elif isinstance(c, m.TicketSupersede):
                rec = current(c.ticket_id)
                if c.replaced_by is not None and c.replaced_by != c.ticket_id:
                    tickets[c.ticket_id] = replace(rec or _placeholder(c.ticket_id), status=TicketStatus.SUPERSEDED)
                elif rec is not None:
                    tickets[c.ticket_id] = replace(rec, serial=max(rec.serial, c.serial))
                else:
                    log.info("supersede of unknown ticket %s: waiting for its new row", c.ticket_id)
            elif isinstance(c, m.ZoneChange):
                zones.append(c.zone)
            elif isinstance(c, m.PolicyChange):
                policies.append(c.policy)
            elif isinstance(c, m.EntryEvent):
                state, seq = states.get(c.ticket_id) or (reader.entry_state(c.ticket_id),
                                                         reader.entry_state_seq(c.ticket_id))
                if c.seq <= seq or c.gate_id == self.agent.config.gate_id:
                    continue  # already folded in (a snapshot page read after it), or our own
                states[c.ticket_id] = (apply_entry_event(state, c), c.seq)
        await replica.apply_tickets(tickets.values(), cursor=cursor, from_snapshot=False,
                                    zones=zones or None, policies=policies or None, entry_states=states,
                                    meta={"cursor_token": token or ""})
        if zones or policies:
            self.agent.reload_policy()
        await self.agent.synced()

    async def on_remote_admit(self, ticket_id: int, gate_id: str, at: float, direction: str) -> None:
        reader, replica = self.agent.reader, self.agent.replica
        if reader is None or replica is None:
            return
        d = Direction.OUT if direction == "out" else Direction.IN
        await replica.put_entry_states({ticket_id: record_passage(reader.entry_state(ticket_id), d, at)})

    async def on_remote_not_passed(self, ticket_id: int, gate_id: str, gate_seq: int) -> None:
        """The other gate's admit timed out at its turnstile: the ticket is valid again."""
        reader, replica = self.agent.reader, self.agent.replica
        if reader is None or replica is None:
            return
        s = reader.entry_state(ticket_id)
        if s.entries > 0:
            await replica.put_entry_states({ticket_id: EntryState(s.entries - 1, False, s.last_entry_at, s.last_exit_at)})

    # --- journal, epoch, commands, state --------------------------------------------------
    async def on_ack(self, high_water: int, backed_up: int) -> None:
        journal = self.agent.journal
        assert journal is not None
        await journal.set_acked(high_water)
        self.agent.backed_up_seq = backed_up

    async def on_hub_epoch(self, epoch: str) -> None:
        if self.agent.replica is not None:
            await self.agent.replica.set_meta({"hub_epoch": epoch})

    async def on_command(self, name: str, reason: str, args: dict[str, Any]) -> None:
        log.warning("command from the hub: %s (%s) %s", name, reason, args)
        if name == "emergency_on":
            await self.agent.emergency(True, reason or "control room")
        elif name == "emergency_off":
            # A reset from the control room; the turnstile still refuses it while its own
            # fire contact is open (then staff reset locally once it closes).
            if not await self.agent.emergency(False, reason or "control room reset"):
                await self.agent.journal_event("emergency_reset_refused", "fire contact still open")
        elif name == "close":
            await self.agent.set_closed(reason or "closed by the control room")
        elif name == "open":
            await self.agent.set_closed("")
        elif name == "refresh_manifest":
            for listener in self.command_listeners:
                listener(name)
        else:
            log.warning("command %r not handled by this gate", name)

    async def on_state(self, state: str, detail: str) -> None:
        for listener in self.state_listeners:
            listener(state)
        if state == "rolled_back":
            # The hub lost data (restored from a backup). The client re-sends on its own;
            # this must reach a human: journal it, so the hub's own audit shows it too.
            await self.agent.journal_event("hub_rolled_back", detail)
            return
        if state == "incompatible":
            await self.agent.journal_event("hub_incompatible", detail)
        if state == "refused":
            if detail != self.refusal:
                log.error("the hub refuses this gate: %s", detail)
                await self.agent.journal_event("hub_refused", detail)
                self.refusal = detail
                await self.agent.set_hub_refused(detail)
        elif state == "online" and self.refusal is not None:
            self.refusal = None
            await self.agent.set_hub_refused("")
        await self.agent.set_hub_connected(state == "online")


def apply_entry_event(state: EntryState, ev: m.EntryEvent) -> EntryState:
    """Another gate's admit, exit or not-passed applied to what this gate knows of a ticket."""
    if ev.not_passed:
        # the admit did not pass the turnstile: the ticket is as before it (valid again)
        return EntryState(max(0, state.entries - 1), False, state.last_entry_at, state.last_exit_at)
    return record_passage(state, Direction.OUT if ev.direction == "out" else Direction.IN, ev.at)


def _placeholder(ticket_id: int) -> TicketRecord:
    """A row for a ticket known only by id (a revocation of a ticket not yet synced here)."""
    return TicketRecord(ticket_id=ticket_id, number="", zone_id=0, policy_id=0, valid_from=0.0, valid_until=0.0)


class SyncLink:
    """The running client task; :meth:`close` stops it."""

    def __init__(self, client: GateClient, task: asyncio.Task[None], manifest_sync: ManifestSync | None = None) -> None:
        self.client = client
        self.task = task
        self.manifest_sync = manifest_sync

    async def close(self) -> None:
        if self.manifest_sync is not None:
            await self.manifest_sync.stop()
        await self.client.stop()
        try:
            await asyncio.wait_for(self.task, 5)
        except (TimeoutError, asyncio.CancelledError):
            self.task.cancel()


async def attach_sync(agent: GateAgent, *, credentials: GateCredentials | None = None,
                      reconnect_delays: Any = backoff, manifest_retry_s: float | None = None) -> SyncLink | None:
    """Connect a started agent to its hub; None (and a log line) if the gate is not enrolled.

    Also starts the manifest puller (:class:`gate_agent.manifest_sync.ManifestSync`), driven
    by the link's state; :meth:`SyncLink.close` stops both.
    """
    with gate_context(agent.config.gate_id):  # the link's tasks and log lines name this gate
        return _attach(agent, credentials, reconnect_delays, manifest_retry_s)


def _attach(agent: GateAgent, credentials: GateCredentials | None, reconnect_delays: Any,
            manifest_retry_s: float | None) -> SyncLink | None:
    creds = credentials or GateCredentials.load(agent.config.credentials_path)
    if creds is None:
        log.warning("gate %s is not enrolled: running OFFLINE (run `gatehouse gate enroll`)", agent.config.gate_id)
        return None
    register_secret(creds.token)  # never in a log line, whatever logs it (websockets at -vv)
    url = ws_url(agent.config.hub_url or creds.hub_url)
    owner = AgentSyncOwner(agent)
    from sync.session import SessionConfig

    proto = agent.config.protocol
    session_config = SessionConfig(min_version=proto[0], max_version=proto[1]) if proto else None
    client = GateClient(url, creds.token, creds.gate_id, owner, config=session_config,
                        ca_file=str(agent.config.ca_file) if agent.config.ca_file else None,
                        reconnect_delays=reconnect_delays)
    agent.entry_listeners.append(lambda e: client.journal_appended(e.seq))
    agent.sync_status = client.status
    agent.sync_owner = owner
    puller = None
    if agent.manifest is not None:
        puller = ManifestSync(agent.manifest, hub_url=agent.config.hub_url or creds.hub_url, gate_id=creds.gate_id,
                              token=creds.token, ca_file=agent.config.ca_file,
                              refresh_s=agent.config.manifest_refresh_s,
                              retry_s=manifest_retry_s if manifest_retry_s is not None else RETRY_S)
        owner.state_listeners.append(puller.on_state)
        owner.command_listeners.append(lambda _name: puller.kick())
        puller.start()
    task = asyncio.create_task(client.run(), name="sync-client")
    return SyncLink(client, task, puller)


def fixed_delays(delay: float) -> Iterator[float]:
    while True:
        yield delay
