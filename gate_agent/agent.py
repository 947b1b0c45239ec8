"""The gate agent: wires scanner → lane (decide, journal, turnstile) → status, sync and modes.

Nothing here decides a ticket (that is :func:`tickets.decide.decide`) and nothing here waits
on the network before a decision: sync runs beside the lanes and only feeds the replica.

Lifecycle: :meth:`GateAgent.start` opens the stores — a replica that cannot be trusted
(schema newer than this software, failed integrity check) puts the gate in MANIFEST mode
instead of stopping it — then starts the scanner, turnstile, watchdog and status tasks.
:meth:`GateAgent.stop` lets passages in flight finish and closes everything.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from gate_agent.clock import CLOCK_FILE, GateClock
from gate_agent.config import GateConfig
from gate_agent.disk import DiskGuard
from gate_agent.files import private_dir
from gate_agent.journal import Journal, JournalError
from gate_agent.lane import Decision, GateView, Lane
from gate_agent.logs import gate_context, register_secret
from gate_agent.manifest import ManifestStore, ManualResult, manual_admit
from gate_agent.modes import NEVER_SYNCED, Mode, ModeLadder, Transition
from gate_agent.passages import UnlockLog, close_quietly, resolve_pending
from gate_agent.replica import Replica, ReplicaError, ReplicaReader
from gate_agent.watchdog import SystemdNotifier, keepalive
from sync.tasks import FAILURES as TASK_FAILURES
from sync.tasks import spawn
from tickets.entry import EntryKind, JournalEntry
from tickets.keys import KeyRing
from tickets.model import Direction, GatePolicy, Scan
from tickets.policy import record_passage

if TYPE_CHECKING:
    from gate_agent.status_server import ScreenSecurity

log = logging.getLogger(__name__)


#: how often the watchdog checks replica age, free disk space and the like
WATCHDOG_INTERVAL_S = 5.0
#: how often a gate closed by a journal it cannot write checks whether it can again
JOURNAL_RETRY_S = 1.0


class GateAgent:
    def __init__(
        self,
        config: GateConfig,
        *,
        scanner: Any = None,
        turnstile: Any = None,
        clock: Callable[[], float] = time.time,
        serve_status: bool = True,
    ) -> None:
        self.config = config
        self._serve_status = serve_status
        #: the gate's time for decisions and the journal: ``clock`` corrected to the hub's
        #: (see gate_agent.clock)
        self.gate_clock = GateClock(clock, config.data_dir / CLOCK_FILE)
        self.clock: Callable[[], float] = self.gate_clock
        self.ladder = ModeLadder()
        self._scanner = scanner
        self._turnstile = turnstile
        self.replica: Replica | None = None
        self.reader: ReplicaReader | None = None
        self.journal: Journal | None = None
        self.manifest: ManifestStore | None = None
        self.lane: Lane | None = None
        self._policy: GatePolicy | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._stack = contextlib.AsyncExitStack()
        self.started_at = clock()
        self.entry_listeners: list[Callable[[JournalEntry], None]] = []
        self.mode_listeners: list[Callable[[Transition], Awaitable[None] | None]] = []
        self.last_sync_at: float | None = None
        self.backed_up_seq = 0
        self.sync_status: Callable[[], dict[str, Any]] | None = None
        self.sync_owner: Any = None
        #: the staff screen's session and refusal counters, once its server is up
        self.screen: ScreenSecurity | None = None
        self.unlocks: UnlockLog | None = None
        #: admits a crash had left without an outcome, resolved at this start
        self.resolved_at_start: list[dict[str, Any]] = []
        #: systemd's watchdog (a no-op unless run by systemd with Type=notify)
        self.notifier = SystemdNotifier()
        #: free space and the reserve that lets a full disk be recorded (see gate_agent.disk)
        self.disk: DiskGuard | None = None
        #: the current journal outage (since, cause), or None while the journal can be written
        self.journal_outage: dict[str, Any] | None = None
        #: mode transitions the journal could not take when they happened: (transition, at)
        self._unjournaled: list[tuple[Transition, float]] = []
        self.journal_failures = 0
        self._side_tasks: set[asyncio.Task[Any]] = set()

    # --- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the stores, resolve admits a crash left open, start the lane and its tasks.

        If anything fails, what was already opened is closed again before the error
        propagates: an open store keeps a worker thread that would keep the process alive
        (a gate that neither runs nor exits, which systemd cannot restart).
        """
        # Every task started here (and every log line they write) names this gate.
        with gate_context(self.config.gate_id):
            try:
                await self._start()
            except BaseException:
                await self._stop()
                raise

    async def _start(self) -> None:
        cfg = self.config
        # Pinged from the first moment: opening a large replica (its integrity check) or
        # waiting for the controller's handshake must not look like a hung agent to systemd.
        self._lane_tasks: list[asyncio.Task[Any]] = []
        self._tasks.append(spawn(
            keepalive(self.notifier, healthy=lambda: not any(t.done() for t in self._lane_tasks),
                      status=lambda: f"{self.ladder.mode}: {self.ladder.cause}" if self.ladder.cause
                      else str(self.ladder.mode)),
            "systemd-watchdog"))
        private_dir(cfg.data_dir)
        self.gate_clock.load()
        self.disk = DiskGuard(cfg.data_dir)
        self.journal = await Journal.open(cfg.journal_path, cfg.gate_id, clock=self.clock)
        self.journal.on_failure = self._journal_failed
        # The manifest has its own file so it survives a replica that cannot be trusted.
        self.manifest = await ManifestStore.open(cfg.data_dir / "manifest.sqlite3")
        entries = await self.journal.all_entries()
        await self.manifest.restore_ticks(entries)
        await self._open_replica()
        if self._turnstile is None:
            from firmware_bridge.factory import open_turnstile

            self._turnstile = open_turnstile(cfg.turnstile)
        if self._scanner is None:
            from scanners.factory import open_scanner

            self._scanner = open_scanner(cfg.scanner, clock=self.clock)
        await self._stack.enter_async_context(self._turnstile)
        if callable(getattr(self._turnstile, "passage_count", None)):
            self.unlocks = await UnlockLog.open(cfg.lane_path)
        await self._stack.enter_async_context(self._scanner)
        self.lane = Lane(
            journal=self.journal,
            replica=self.replica,  # type: ignore[arg-type]
            view=GateView(self.reader) if self.reader is not None else None,  # type: ignore[arg-type]
            policy=self.policy,
            turnstile=self._turnstile,
            ladder=self.ladder,
            cursor=self.cursor,
            passage_timeout_s=cfg.passage_timeout_s,
            clock=self.clock,
            on_entry=self._entry_appended,
            unlocks=self.unlocks,
        )
        # Before the first scan: an admit a crash left open must not be decided twice.
        await self._resolve_pending(entries)
        if not self.disk.take():
            self._close_for_journal(f"disk full: {self._disk_words()}")
        await self._transition(self.ladder.update(last_sync_at=self.last_sync_at))
        self._lane_tasks = [
            spawn(self._scan_loop(), "scan-loop"),
            spawn(self._turnstile_loop(), "turnstile-events"),
            spawn(self._watchdog(), "watchdog"),
        ]
        self._tasks.extend(self._lane_tasks)
        if self._serve_status:
            import socket

            from gate_agent.status_server import ScreenSecurity, make_server, write_session_file

            try:
                sock = socket.create_server((cfg.status_host, cfg.status_port), reuse_port=False)
            except OSError as exc:
                # The staff screen is not worth a gate that cannot admit: run without it.
                log.error("status server cannot bind %s:%s (%s); continuing without it",
                          cfg.status_host, cfg.status_port, exc)
            else:
                self.screen = ScreenSecurity(bind_host=cfg.status_host, port=sock.getsockname()[1])
                register_secret(self.screen.session)
                write_session_file(cfg.data_dir, self.screen.session)
                self.status_server = make_server(self, cfg.status_host, cfg.status_port, self.screen)
                self._tasks.append(spawn(self.status_server.serve(sockets=[sock]), "status-server"))
                self._status_socket = sock

    @property
    def status_url(self) -> str | None:
        """The staff screen's address once the status server is up (resolves port 0)."""
        sock = getattr(self, "_status_socket", None)
        if sock is None:
            return None
        host, port = sock.getsockname()[:2]
        return f"http://{host}:{port}"

    async def stop(self) -> None:
        with gate_context(self.config.gate_id):
            await self._stop()

    async def _stop(self) -> None:
        server = getattr(self, "status_server", None)
        if server is not None:
            server.should_exit = True
        for task in [*self._tasks, *self._side_tasks]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._side_tasks, return_exceptions=True)
        if self.lane is not None:
            await self.lane.drain()
        await self._stack.aclose()
        if self.reader is not None:
            self.reader.close()
        if self.replica is not None:
            await self.replica.close()
        if self.manifest is not None:
            await self.manifest.close()
        if self.journal is not None:
            await self.journal.close()
        await close_quietly(self.unlocks)

    async def _resolve_pending(self, entries: list[JournalEntry]) -> None:
        """Journal an outcome for every admit whose passage the last run never recorded
        (see :mod:`gate_agent.passages`); a counted passage also updates the entry state."""
        assert self.journal is not None
        done = await resolve_pending(entries=entries, notes=await self.unlocks.notes() if self.unlocks else [],
                                     turnstile=self._turnstile, append=self.journal.append,
                                     mode=str(self.ladder.mode), cursor=self.cursor())
        if not done:
            return
        for outcome, entry in done:
            self._entry_appended(entry)
            a = outcome.admit
            self.resolved_at_start.append({"seq": a.seq, "ticket": a.ticket_number or a.ticket_id,
                                           "passed": outcome.passed, "detail": outcome.detail})
            if outcome.passed and a.ticket_id is not None and self.reader is not None and self.replica is not None:
                state = record_passage(self.reader.entry_state(a.ticket_id), Direction(a.direction), a.at)
                await self.replica.put_entry_states({a.ticket_id: state}, journal_seq=entry.seq)
        if any(not o.passed for o, _ in done):
            await self._turnstile.lock()  # type: ignore[union-attr]
        await self.journal_event("pending_admits_resolved",
                                 f"{len(done)} admit(s) left open by a restart: "
                                 f"{sum(o.passed for o, _ in done)} passed, {sum(not o.passed for o, _ in done)} not passed")

    async def _open_replica(self) -> None:
        try:
            self.replica = await Replica.open(self.config.replica_path)
            await self.replica.integrity_check()
        except (ReplicaError, Exception) as exc:  # a broken replica must not stop the gate
            cause = exc.cause if isinstance(exc, ReplicaError) else "replica_unreadable"
            log.error("replica cannot be trusted (%s): %s — entering MANIFEST mode", cause, exc)
            if self.replica is not None:
                await self.replica.close()
            self.replica = None
            await self._transition(self.ladder.update(replica_untrusted=f"{cause}: {exc}"))
            return
        self.reader = ReplicaReader(self.config.replica_path)
        meta = self.reader.meta()
        if "synced_at" in meta:
            self.last_sync_at = float(meta["synced_at"])
        else:
            # A new or rebuilt replica knows no tickets, no revocations, no entries: deciding
            # from it would refuse every fan (or admit blind). Work from the manifest until
            # the hub's snapshot has arrived.
            await self._transition(self.ladder.update(replica_untrusted=NEVER_SYNCED))
        self.reload_policy()

    # --- policy ---------------------------------------------------------------------------
    def reload_policy(self) -> None:
        """Rebuild the gate policy from the replica (after sync changed keys, zones or policies)."""
        if self.reader is None:
            return
        meta = self.reader.meta()
        self._policy = GatePolicy(
            gate_id=self.config.gate_id,
            event_id=int(meta.get("event_id", 0)),
            keyring=self.reader.keyring(),
            zones=self.reader.zones(),
            entry_policies=self.reader.policies(),
            allow_admit_on_signature=meta.get("allow_admit_on_signature", "1") == "1",
            closed=self.ladder.mode is Mode.CLOSED,
            pretix=self.reader.pretix(),
        )

    def policy(self) -> GatePolicy:
        if self._policy is None:
            return GatePolicy(self.config.gate_id, 0, KeyRing(), {}, {})
        return self._policy

    def cursor(self) -> int:
        if self.reader is None:
            return 0
        return int(self.reader.meta().get("cursor", 0))

    # --- loops ----------------------------------------------------------------------------
    async def handle_scan(self, scan: Scan) -> Decision:
        assert self.lane is not None
        return await self.lane.handle_scan(scan)

    async def manual_admit(self, *, typed: str, steward_id: str, pin: str, override: bool = False,
                           note: str = "", direction: Direction = Direction.IN) -> ManualResult:
        """A steward admits from the manifest (see :func:`gate_agent.manifest.manual_admit`).

        Journaled before this returns; the turnstile is released only for an admit.
        """
        assert self.manifest is not None and self.journal is not None and self.lane is not None
        result = await manual_admit(
            self.manifest, self.journal, typed=typed, steward_id=steward_id, pin=pin,
            reason_for_manual=self.ladder.cause if self.ladder.mode is Mode.MANIFEST else f"{self.ladder.mode}",
            mode=str(self.ladder.mode), cursor=self.cursor(), now=self.clock(), override=override, note=note,
        )
        self._entry_appended(result.entry)
        self.lane.recent.appendleft({"seq": result.entry.seq, "at": result.entry.at, "reason": result.reason,
                                     "message": result.message, "ticket": result.entry.ticket_number,
                                     "right_gates": [], "manual": True})
        if result.admitted:
            row = result.row
            self.lane.release(result.entry, row.ticket_id if row else None, row.zone_id if row else None, direction)
        return result

    async def set_staff_manifest(self, on: bool) -> None:
        """Staff put the gate into (or take it out of) MANIFEST mode by hand."""
        await self._transition(self.ladder.update(staff_manifest=on))

    async def _scan_loop(self) -> None:
        from scanners.base import ScannerHealth

        async for item in self._scanner:  # type: ignore[union-attr]
            try:
                if isinstance(item, ScannerHealth):
                    fault = (item.detail or "fault") if item.state == "fault" else ""
                    await self.journal_event("scanner", f"{item.state}: {item.detail}")
                    await self._transition(self.ladder.update(scanner_fault=fault))
                    continue
                decision = await self.handle_scan(item)
                log.info("scan %s → %s", decision.entry.seq, decision.verdict.reason)
            except JournalError:
                pass  # refused and counted by the lane; the gate is closed (see _journal_failed)
            except Exception:
                # A bad scan must never stop the lane; the journal write failing is logged loudly.
                log.exception("scan handling failed; lane continues")

    async def _turnstile_loop(self) -> None:
        async for event in self._turnstile.events():  # type: ignore[union-attr]
            try:
                await self.journal_event(f"turnstile_{event.kind}",
                                          f"{event.direction or ''} {event.detail}".strip())
                if event.kind == "alarm":
                    await self._transition(self.ladder.update(alarm=True))
                elif event.kind == "alarm_cleared" and self.ladder.mode is Mode.EMERGENCY:
                    # Reset at the controller (or by us): leave EMERGENCY.
                    self.ladder.update(alarm=False)
                    await self._transition(self.ladder.reset_emergency())
            except Exception:
                log.exception("turnstile event handling failed")

    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(JOURNAL_RETRY_S if self.journal_outage else WATCHDOG_INTERVAL_S)
            await self.check_disk()
            await self.check_replica_age()

    # --- a journal that cannot be written (disk full) -----------------------------------
    def _journal_failed(self, exc: Exception) -> None:
        """A journal write failed (called by the journal, before it raises): close the gate now."""
        self.journal_failures += 1
        self._close_for_journal(f"journal cannot be written: {exc}")

    def _close_for_journal(self, cause: str) -> None:
        """CLOSED at once (the next scan already sees it), then put it on record: the disk
        reserve is released so the closing, the refusals and the outcomes still owed can be
        journaled and reach the hub."""
        if self.journal_outage is not None:
            return
        self.journal_outage = {"since": self.clock(), "cause": cause,
                               "refused_before": self.lane.counters["unjournaled"] if self.lane else 0}
        freed = self.disk.release() if self.disk is not None else 0
        log.error("%s — gate CLOSED: nobody is admitted off the record (released the %.1f MB disk reserve "
                  "to record this)", cause, freed / 1e6)
        self._spawn(self._transition(self.ladder.update(journal_down=cause)))

    def _disk_words(self) -> str:
        free = self.disk.free_bytes() if self.disk is not None else -1
        return f"{free / 1e6:.1f} MB free in {self.config.data_dir}" if free >= 0 else "free space unknown"

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._side_tasks.add(task)
        task.add_done_callback(self._side_task_done)

    def _side_task_done(self, task: asyncio.Task[Any]) -> None:
        self._side_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("gate task failed: %r", task.exception(), exc_info=task.exception())

    async def check_disk(self) -> None:
        """Close before the disk is full; reopen once there is room for the reserve again and the
        journal takes the record of the outage."""
        disk, lane = self.disk, self.lane
        if disk is None or lane is None:
            return
        outage = self.journal_outage
        if outage is None:
            if disk.low():
                self._close_for_journal(f"disk full: {self._disk_words()}")
            elif not disk.held():
                disk.take()
            return
        if not disk.room_to_reopen() or not disk.take():
            return
        try:
            for t, at in list(self._unjournaled):
                entry = await self.journal.append(  # type: ignore[union-attr]
                    EntryKind.MODE, mode=str(t.new), cursor=self.cursor(), at=at,
                    detail=f"{t.old}->{t.new}: {t.cause} (recorded late: the journal could not be written then)")
                self._unjournaled.pop(0)
                self._entry_appended(entry)
            late = await lane.flush_deferred()
            refused = lane.counters["unjournaled"] - outage["refused_before"]
            await self.journal_event(
                "journal_writable_again",
                f"the journal could not be written for {self.clock() - outage['since']:.1f} s ({outage['cause']});"
                f" {refused} scan(s) refused unrecorded meanwhile, {late} passage outcome(s) recorded late")
        except JournalError as exc:
            disk.release()  # still failing with room on the disk (an I/O error?): keep the room for the record
            log.error("the journal still cannot be written (%s); gate stays CLOSED", exc)
            return
        self.journal_outage = None
        log.warning("the journal can be written again (%s): reopening", self._disk_words())
        await self._transition(self.ladder.update(journal_down=""))
        self.reload_policy()

    async def check_replica_age(self) -> None:
        now = self.clock()
        too_old = self.ladder.replica_stale(now, self.config.max_replica_age_s)
        cause = self.ladder.facts.replica_untrusted
        if too_old and not cause:
            await self._transition(self.ladder.update(replica_untrusted="replica too old while offline"))
        elif not too_old and cause == "replica too old while offline":
            await self._transition(self.ladder.update(replica_untrusted=""))

    # --- modes and events -----------------------------------------------------------------
    async def synced(self, *, hub_connected: bool | None = None) -> None:
        """The replica just took data from the hub: it is current as of now.

        ``hub_connected=True`` when a whole snapshot has just arrived: the link is live, and
        saying so in the same step lets a new gate go MANIFEST → ONLINE in one transition
        (not through OFFLINE while the link's own "online" is a moment behind).
        """
        self.last_sync_at = self.clock()
        changes: dict[str, object] = {"last_sync_at": self.last_sync_at}
        if hub_connected is not None:
            changes["hub_connected"] = hub_connected
        if self.ladder.facts.replica_untrusted == NEVER_SYNCED:
            changes["replica_untrusted"] = ""
        await self._transition(self.ladder.update(**changes))
        await self.check_replica_age()

    async def set_hub_refused(self, reason: str) -> None:
        """The hub refuses this gate's token (``reason`` for the staff screen), or no longer does."""
        await self._transition(self.ladder.update(hub_refused=reason))

    async def clock_measured(self, offset_s: float, rtt_s: float) -> None:
        """The hub's clock minus ours, measured at a hello: decide on hub time from now on."""
        note = self.gate_clock.measured(offset_s, rtt_s)
        if note is None:
            return
        log.warning("clock: %s", note)
        try:
            await self.journal_event("clock_skew", note)
        except JournalError:
            pass  # the gate is closed for it; the hub measures the skew itself at each hello

    async def set_hub_connected(self, connected: bool) -> None:
        await self._transition(self.ladder.update(hub_connected=connected))
        await self.check_replica_age()

    async def emergency(self, on: bool, cause: str) -> bool:
        """Control-room or staff command. Returns False if a reset was refused (alarm still on)."""
        if on:
            await self._transition(self.ladder.emergency(cause))
            return True
        # The turnstile owns the fire contact: it refuses a reset while the contact is open.
        turnstile = self._turnstile
        await turnstile.set_emergency(False, cause)  # type: ignore[union-attr]
        if getattr(turnstile, "emergency", False):
            return False
        self.ladder.update(alarm=False)
        await self._transition(self.ladder.reset_emergency())
        return True

    async def set_closed(self, cause: str) -> None:
        await self._transition(self.ladder.update(closed=cause))
        self.reload_policy()

    async def _transition(self, t: Transition | None) -> None:
        if t is None:
            return
        log.log(logging.WARNING if t.warn else logging.INFO, "mode %s → %s (%s)", t.old, t.new, t.cause)
        if t.new is Mode.EMERGENCY and self._turnstile is not None and self.lane is not None:
            # Free egress first: people leaving matters more than the record of it.
            await self._turnstile.set_emergency(True, t.cause)
        if self.journal is not None:
            at = self.clock()
            try:
                entry = await self.journal.append(EntryKind.MODE, mode=str(t.new), cursor=self.cursor(),
                                                  detail=f"{t.old}->{t.new}: {t.cause}", at=at)
            except JournalError as exc:
                # The mode changes all the same; it is recorded (with this time) once the journal works.
                self._unjournaled.append((t, at))
                log.error("mode change %s → %s not journaled yet: %s", t.old, t.new, exc)
            else:
                self._entry_appended(entry)
        for listener in self.mode_listeners:
            result = listener(t)
            if asyncio.iscoroutine(result):
                await result

    async def journal_event(self, what: str, detail: str) -> None:
        if self.journal is None:
            return
        entry = await self.journal.append(EntryKind.EVENT, mode=str(self.ladder.mode), cursor=self.cursor(),
                                          detail=f"{what}: {detail}")
        self._entry_appended(entry)

    def _entry_appended(self, entry: JournalEntry) -> None:
        for listener in self.entry_listeners:
            listener(entry)

    # --- status ---------------------------------------------------------------------------
    async def _manifest_status(self) -> dict[str, Any]:
        if self.manifest is None:
            return {}
        info = await self.manifest.info()
        return {"hub_seq": info.hub_seq, "rows": info.rows, "generated_at": info.generated_at}

    async def status(self) -> dict[str, Any]:
        journal = self.journal
        # One reading of the last seq for both keys: an entry appended while the acked seq is
        # read must not make the backlog and the last seq disagree.
        last_seq = journal.last_seq if journal is not None else None
        backlog = last_seq - await journal.acked_seq() if journal is not None and last_seq is not None else None
        turnstile = self._turnstile
        return {
            "gate_id": self.config.gate_id,
            "mode": str(self.ladder.mode),
            "mode_cause": self.ladder.cause,
            "cursor": self.cursor(),
            "journal_last_seq": last_seq,
            "backlog": backlog,
            "last_sync_at": self.last_sync_at,
            "hub_connected": self.ladder.facts.hub_connected,
            # a copy, taken with ``recent`` and before the await below: a scan decided meanwhile
            # must not show in the counters but not in ``recent`` (a reader would take the
            # previous decision for the new one)
            "lane": dict(self.lane.counters) if self.lane is not None else {},
            "turnstile": turnstile.counters.as_dict() if turnstile is not None and hasattr(turnstile, "counters") else {},
            "recent": list(self.lane.recent) if self.lane is not None else [],
            "uptime_s": round(self.clock() - self.started_at, 1),
            "sync": self.sync_status() if self.sync_status is not None else {"state": "not enrolled"},
            "manifest": await self._manifest_status(),
            "screen": self.screen.status() if self.screen is not None else {},
            "resolved_at_start": self.resolved_at_start,
            "disk": self._disk_status(),
            "clock": self.gate_clock.status(),
            "task_failures": dict(TASK_FAILURES),
        }

    def _disk_status(self) -> dict[str, Any]:
        disk, outage = self.disk, self.journal_outage
        free = disk.free_bytes() if disk is not None else -1
        return {"free_mb": round(free / 1e6, 2) if free >= 0 else None,
                "reserve_held": disk.held() if disk is not None else False,
                "journal_failures": self.journal_failures,
                "journal_down_since": outage["since"] if outage else None,
                "journal_down_cause": outage["cause"] if outage else ""}
