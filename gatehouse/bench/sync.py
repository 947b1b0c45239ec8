"""``gatehouse bench sync``: revocation propagation, admit fan-out, backlog drain and snapshot
time, over real websockets on 127.0.0.1.

The hub runs in its own process, so its work does not share an event loop with the gates:

* ``--backend hub`` (default): the real hub (``gatehouse hub serve``, its SQLite store in a
  temporary directory, ``/ws/gate`` mounted by ``hub.sync_adapter``), with the tickets imported
  before it serves (setup, not timed). Revocations go through the hub's HTTP API.
* ``--backend memory``: uvicorn + the gate route over :class:`sync.memory.MemoryHubBackend`
  (the protocol and transport alone, without the store's cost).

The ``--gates`` gates are lightweight: real :class:`sync.gate_client.GateClient` websockets in
this process with in-memory owners (:mod:`gatehouse.bench.kit`). Phases:

1. revocation: revoke a ticket at the hub; time until every connected gate has applied it
   (``--revocations`` times; p50/p99 over every gate of every revocation).
2. fan-out: one gate admits a ticket; time until every other gate has heard of it.
3. drain: a gate with ``--drain`` queued journal entries connects; time until all are acked.
4. snapshot: a gate with an empty replica connects to a hub holding ``--snapshot-tickets``
   tickets; time until its snapshot is applied. With ``--backend hub`` this gate is a real
   gate agent (its SQLite replica applies every batch: ``snapshot_1m_s``), and a lightweight
   gate is timed too (``snapshot_wire_s``: the hub's paging and the wire alone).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sync import messages as m
from sync import session as s
from tickets.entry import EntryKind, JournalEntry
from tickets.model import TicketRecord, Zone
from tickets.policy import EntryPolicy

SMALL_TICKETS = 2000


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=("hub", "memory"), default="hub",
                   help="hub: the real hub process and its SQLite store (default); memory: the in-memory backend")
    p.add_argument("--gates", type=int, default=200, help="connected gates (default 200)")
    p.add_argument("--revocations", type=int, default=30, help="revocations to time (default 30)")
    p.add_argument("--admits", type=int, default=30, help="admits to fan out (default 30)")
    p.add_argument("--drain", type=int, default=10_000, help="queued entries to drain (default 10000)")
    p.add_argument("--snapshot-tickets", type=int, default=1_000_000, help="snapshot size (default 1000000)")


def _ticket(i: int) -> TicketRecord:
    return TicketRecord(ticket_id=i, number=f"{i:012d}", zone_id=1, policy_id=1, valid_from=0.0,
                        valid_until=4e9, holder="", seat=f"B{i % 40}-R{i % 30}-S{i % 50}")


# --------------------------------------------------------------------------- hub process
def _hub_main(port: int, gates: int) -> None:
    """Entry point of the hub subprocess."""
    import uvicorn
    from fastapi import FastAPI

    from sync.hub_route import add_gate_route
    from sync.memory import MemoryHubBackend

    backend = MemoryHubBackend({"event_id": 1, "name": "bench"})
    names = [f"b{i}" for i in range(gates)] + ["drain", "snap"]
    backend.set_zone(Zone(1, "all", frozenset(names)))
    backend.set_policy(EntryPolicy.preset(1, "single"))
    backend.add_tickets_bulk([_ticket(i) for i in range(1, SMALL_TICKETS + 1)])
    for n in names:
        backend.add_gate(n, f"tok-{n}")
    app = FastAPI()
    registry = add_gate_route(app, backend, snapshot_page=5000)

    @app.get("/bench/health")
    async def health() -> dict[str, Any]:
        return {"connected": len(registry.connections),
                "live": sum(1 for c in registry.connections.values() if c.session.live)}

    @app.post("/bench/revoke/{ticket_id}")
    async def revoke(ticket_id: int) -> dict[str, int]:
        return {"pushed": registry.push_changes([backend.revoke(ticket_id, "bench")])}

    @app.post("/bench/seed/{n}")
    def seed(n: int) -> dict[str, int]:  # a plain def: FastAPI runs it in a thread
        backend.add_tickets_bulk([_ticket(i) for i in range(SMALL_TICKETS + 1, n + 1)])
        backend.snapshot_rows_now(0, 1)  # build the paging index now, not on the first request
        return {"tickets": len(backend.s.tickets)}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", ws="websockets-sansio",
                ws_max_size=m.MAX_FRAME_BYTES, ws_ping_interval=None)


# --------------------------------------------------------------------------- gate side
def bench_gate(name: str, url: str, journal: list[JournalEntry] | None = None,
              config: s.SessionConfig | None = None) -> Any:
    """A gate for the in-memory hub: a lightweight gate whose token the memory backend accepts."""
    from gatehouse.bench.kit import LightGate

    return LightGate(name, f"tok-{name}", url, journal=journal, config=config)


def _quick() -> Iterator[float]:
    from sync.gate_client import backoff

    return backoff(0.2, 2.0, 2.0)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q * (len(values) - 1))))]


def _progress(msg: str) -> None:
    print(f"bench sync: {msg}", file=sys.stderr, flush=True)


async def _until(pred: Any, within_s: float, what: str) -> None:
    deadline = time.perf_counter() + within_s
    while not pred():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.002)


async def _bench(args: argparse.Namespace, port: int) -> dict[str, Any]:
    import httpx

    base = f"http://127.0.0.1:{port}"
    url = f"ws://127.0.0.1:{port}/ws/gate"
    result: dict[str, Any] = {"gates": args.gates, "backend": "memory", "revocations": args.revocations,
                              "admits": args.admits, "drain_entries": args.drain,
                              "snapshot_tickets": args.snapshot_tickets}
    async with httpx.AsyncClient(base_url=base, timeout=120) as http:
        await _until_ready(http)
        cfg = s.SessionConfig(heartbeat_interval_s=10.0, heartbeat_timeout_s=60.0)
        gates = [bench_gate(f"b{i}", url, config=cfg) for i in range(args.gates)]
        t0 = time.perf_counter()
        for g in gates:
            g.start()
        for g in gates:
            await asyncio.wait_for(g.online.wait(), 120)
        result["connect_all_s"] = round(time.perf_counter() - t0, 3)
        _progress(f"{args.gates} gates online in {result['connect_all_s']} s")

        lat: list[float] = []
        for k in range(args.revocations):
            tid = 1 + k
            t = time.perf_counter()
            await http.post(f"/bench/revoke/{tid}")
            await _until(lambda tid=tid: all(tid in g.revoked_at for g in gates), 30, "revocation")
            lat.extend((g.revoked_at[tid] - t) * 1000 for g in gates)
        result["revocation_p50_ms"] = round(_pct(lat, 0.5), 2)
        result["revocation_p99_ms"] = round(_pct(lat, 0.99), 2)
        _progress(f"revocation p99 {result['revocation_p99_ms']} ms")

        lat = []
        for k in range(args.admits):
            tid = 1000 + k
            src = gates[k % len(gates)]
            t = time.perf_counter()
            src.admit(tid)
            others = [g for g in gates if g is not src]
            await _until(lambda tid=tid, others=others: all(tid in g.admit_at for g in others), 30, "fan-out")
            lat.extend((g.admit_at[tid] - t) * 1000 for g in others)
        result["fanout_p50_ms"] = round(_pct(lat, 0.5), 2)
        result["fanout_p99_ms"] = round(_pct(lat, 0.99), 2)
        _progress(f"fan-out p99 {result['fanout_p99_ms']} ms")

        for g in gates:  # free the CPU for the throughput phases
            await g.stop()

        backlog = [JournalEntry("drain", i, time.time(), EntryKind.SCAN, reason="ADMIT",
                                ticket_id=1 + i % SMALL_TICKETS) for i in range(1, args.drain + 1)]
        drain = bench_gate("drain", url, backlog)
        drain.cursor, drain.epoch = 0, None
        t = time.perf_counter()
        drain.start()
        await asyncio.wait_for(drain.acked_event.wait(), 300)
        result["drain_10k_s" if args.drain == 10_000 else "drain_s"] = round(time.perf_counter() - t, 3)
        result["drain_entries_per_s"] = round(args.drain / (time.perf_counter() - t))
        await drain.stop()
        _progress(f"drained {args.drain} entries in {round(time.perf_counter() - t, 3)} s (incl. its initial snapshot)")

        _progress(f"loading {args.snapshot_tickets} tickets at the hub")
        await http.post(f"/bench/seed/{args.snapshot_tickets}")
        snap = bench_gate("snap", url)
        t = time.perf_counter()
        snap.start()
        await asyncio.wait_for(snap.online.wait(), 600)
        elapsed = time.perf_counter() - t
        assert snap.snapshot_rows == max(args.snapshot_tickets, SMALL_TICKETS), snap.snapshot_rows
        result["snapshot_1m_s" if args.snapshot_tickets == 1_000_000 else "snapshot_s"] = round(elapsed, 3)
        result["snapshot_rows_per_s"] = round(snap.snapshot_rows / elapsed)
        await snap.stop()
        _progress(f"snapshot of {snap.snapshot_rows} rows in {round(elapsed, 3)} s")
    return result


async def _until_ready(http: Any) -> None:
    for _ in range(600):
        with contextlib.suppress(Exception):
            if (await http.get("/bench/health")).status_code == 200:
                return
        await asyncio.sleep(0.05)
    raise RuntimeError("bench hub did not start")


def run(args: argparse.Namespace) -> dict[str, Any]:
    if min(args.gates, args.revocations, args.admits, args.drain, args.snapshot_tickets) < 1:
        raise SystemExit("bench sync: --gates, --revocations, --admits, --drain and --snapshot-tickets must be positive")
    load_before = os.getloadavg()[0]
    result = _run_hub(args) if args.backend == "hub" else _run_memory(args)
    return {**result, "cpu_count": os.cpu_count(), "load_average_before": round(load_before, 2),
            "load_average_after": round(os.getloadavg()[0], 2)}


def _run_memory(args: argparse.Namespace) -> dict[str, Any]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    hub = subprocess.Popen([sys.executable, "-c", f"from gatehouse.bench.sync import _hub_main; _hub_main({port}, {args.gates})"],
                           cwd=root, env=env)
    try:
        return asyncio.run(_bench(args, port))
    finally:
        hub.terminate()
        try:
            hub.wait(10)
        except subprocess.TimeoutExpired:
            hub.kill()
            hub.wait()


# --------------------------------------------------------------------------- the real hub
def _run_hub(args: argparse.Namespace) -> dict[str, Any]:
    import shutil
    import tempfile

    from gatehouse.bench.kit import Hub

    tmp = Path(tempfile.mkdtemp(prefix="gatehouse-bench-sync-"))
    try:
        hub = Hub.create(tmp)
        # enough tickets for the snapshot and for a drain of distinct admits after the revoked ones
        tickets = max(args.snapshot_tickets, DRAIN_FIRST_TICKET + args.drain)
        _progress(f"importing {tickets:,} tickets into the hub's store (setup, not timed)")
        t = time.perf_counter()
        hub.import_csv(tickets)
        _progress(f"imported in {time.perf_counter() - t:.1f} s; starting the hub process")
        hub.start()
        try:
            result = asyncio.run(_bench_hub(args, hub, tmp, tickets))
        finally:
            hub.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return result


#: the drain admits tickets from here on (below: revoked and fanned-out tickets)
DRAIN_FIRST_TICKET = 5001


async def _bench_hub(args: argparse.Namespace, hub: Any, tmp: Path, tickets: int) -> dict[str, Any]:
    from gatehouse.bench.kit import LightGate, cpu_s, rss_mb, start_light_gates
    from gatehouse.venue import Venue, eventually
    from tickets.entry import Passage

    result: dict[str, Any] = {"gates": args.gates, "backend": "hub", "revocations": args.revocations,
                              "admits": args.admits, "drain_entries": args.drain,
                              "snapshot_tickets": args.snapshot_tickets, "hub_tickets": tickets}
    _progress(f"enrolling {args.gates + 2} gates")
    ids = await hub.enrol(args.gates + 2)
    (drain_id, drain_token), (wire_id, wire_token) = ids[-2], ids[-1]
    seq, epoch = hub.replica_position()
    # gates that already hold the replica (they synced before the doors opened): answered with deltas
    gates = [LightGate(gid, token, hub.ws_url, cursor=seq, epoch=epoch) for gid, token in ids[:args.gates]]
    result["connect_all_s"] = round(await start_light_gates(gates), 3)
    _progress(f"{args.gates} gates online in {result['connect_all_s']} s")
    cpu0 = cpu_s(hub.pid)

    lat: list[float] = []
    async with hub.process.admin_client() as http:
        for k in range(args.revocations):
            tid = 1 + k
            t = time.perf_counter()
            (await http.post(f"/api/v1/tickets/{tid}/revoke")).raise_for_status()
            await _until(lambda tid=tid: all(tid in g.revoked_at for g in gates), 30, "revocation")
            lat.extend((g.revoked_at[tid] - t) * 1000 for g in gates)
    result["revocation_p50_ms"] = round(_pct(lat, 0.5), 2)
    result["revocation_p99_ms"] = round(_pct(lat, 0.99), 2)
    result["revocation_max_ms"] = round(max(lat), 2)
    _progress(f"revocation p99 {result['revocation_p99_ms']} ms")

    lat = []
    peers = hub.zone_peers(gates) or list(gates)  # an admit of zone 1 reaches zone 1's gates
    result["fanout_gates_count"] = len(peers) - 1
    for k in range(args.admits):
        tid = 1000 + k
        src = peers[k % len(peers)]
        t = time.perf_counter()
        src.admit(tid)
        others = [g for g in peers if g is not src]
        await _until(lambda tid=tid, others=others: all(tid in g.admit_at for g in others), 30, "fan-out")
        lat.extend((g.admit_at[tid] - t) * 1000 for g in others)
    result["fanout_p50_ms"] = round(_pct(lat, 0.5), 2)
    result["fanout_p99_ms"] = round(_pct(lat, 0.99), 2)
    result["fanout_max_ms"] = round(max(lat), 2)
    _progress(f"fan-out p99 {result['fanout_p99_ms']} ms")
    result["hub_cpu_propagation_s"] = round(cpu_s(hub.pid) - cpu0, 2)

    for g in gates:  # free the CPU for the throughput phases
        await g.stop()

    # distinct admits, each followed by its passage (a fan walking through), as a gate journals
    backlog: list[JournalEntry] = []
    for i in range(args.drain):
        s_ = len(backlog) + 1
        if i % 2 == 0:
            backlog.append(JournalEntry(drain_id, s_, time.time(), EntryKind.SCAN, reason="ADMIT",
                                        ticket_id=DRAIN_FIRST_TICKET + i, zone_id=1, passage=Passage.PENDING))
        else:
            backlog.append(JournalEntry(drain_id, s_, time.time(), EntryKind.PASSAGE, ref_seq=s_ - 1,
                                        passage=Passage.PASSED))
    drain = LightGate(drain_id, drain_token, hub.ws_url, cursor=seq, epoch=epoch, journal=backlog)
    t = time.perf_counter()
    drain.start()
    await asyncio.wait_for(drain.acked_event.wait(), 300)
    elapsed = time.perf_counter() - t
    await drain.stop()
    result["drain_10k_s" if args.drain == 10_000 else "drain_s"] = round(elapsed, 3)
    result["drain_entries_per_s"] = round(args.drain / elapsed)
    _progress(f"drained {args.drain} entries in {elapsed:.3f} s (the gate already held the replica)")

    # the snapshot, first as the hub's paging and the wire alone, then into a real gate agent's replica
    wire = LightGate(wire_id, wire_token, hub.ws_url)
    t = time.perf_counter()
    wire.start()
    await asyncio.wait_for(wire.online.wait(), 600)
    elapsed = time.perf_counter() - t
    await wire.stop()
    if wire.snapshot_rows != tickets:
        raise RuntimeError(f"snapshot delivered {wire.snapshot_rows} rows, the hub holds {tickets}")
    result["snapshot_wire_s"] = round(elapsed, 3)
    _progress(f"snapshot of {wire.snapshot_rows:,} rows to a lightweight gate in {elapsed:.3f} s")

    venue = Venue(tmp, hub.process)
    rss0 = rss_mb(hub.pid)
    t = time.perf_counter()
    gate = await venue.add_gate("snapshot gate", [])
    await eventually(lambda: gate.link is not None and gate.link.client.state == "online", timeout=600,
                     what="the real gate's snapshot")
    elapsed = time.perf_counter() - t
    assert gate.agent.replica is not None
    rows = (await gate.agent.replica.info()).tickets
    await venue.stop_gate(gate)
    if rows != tickets:
        raise RuntimeError(f"the gate's replica holds {rows} tickets, the hub {tickets}")
    result["snapshot_1m_s" if args.snapshot_tickets == 1_000_000 else "snapshot_s"] = round(elapsed, 3)
    result["snapshot_rows_per_s"] = round(rows / elapsed)
    result["hub_rss_mb"] = round(max(rss0, rss_mb(hub.pid)), 1)
    _progress(f"snapshot of {rows:,} rows into a real gate agent's SQLite replica in {elapsed:.3f} s")
    return result
