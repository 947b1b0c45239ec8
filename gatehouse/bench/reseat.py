"""``gatehouse bench reseat``: a mass re-seating file applied while gates are connected.

A real hub process (``gatehouse hub serve`` with its SQLite store in a temporary directory)
holding ``--tickets`` generated tickets, ``--gates`` lightweight gates over the real websocket
(:mod:`gatehouse.bench.kit`, as the sync bench uses), and one ``POST /api/v1/tickets/reseat``
of ``--moves`` moves (each ticket to the next zone, a new seat, every other one a new policy).

* ``apply_s``: the request, as the operator waits for it: parse, validate the whole file
  (including the seats it would leave taken twice), apply in one transaction, list what is
  still double-sold;
* ``transaction_s``: the part of it inside the one write transaction;
* ``superseded_at_gates_p50_ms`` / ``_p99_ms`` / ``_max_ms``: for every moved ticket at every
  gate, from the commit to the gate holding the row with the new serial (from then on the
  old credential is refused SUPERSEDED there). The commit time is the change log's time
  plus the transaction's duration; hub and gates share this machine's wall clock.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gatehouse.bench.kit import (
    Hub,
    LightGate,
    cpu_s,
    load_average,
    pct,
    progress,
    rss_mb,
    self_cpu_s,
    start_light_gates,
    until,
)
from sync import messages as m

ZONES = ("North", "South", "East", "West")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--moves", type=int, default=20_000, help="moves in the file (default 20000)")
    p.add_argument("--tickets", type=int, default=60_000, help="tickets at the hub (default 60000)")
    p.add_argument("--gates", type=int, default=20, help="connected gates (default 20)")
    p.add_argument("--keep", action="store_true", help="keep the temporary hub directory")


class WatchGate(LightGate):
    """A lightweight gate that notes when each watched ticket's new serial arrived (wall clock)."""

    def __init__(self, *args: Any, watch: dict[int, int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.watch = watch  # ticket id -> the serial after the move
        self.arrived: dict[int, float] = {}

    async def apply_deltas(self, changes: Sequence[m.Change], cursor: int, token: str | None = None) -> None:
        now = time.time()
        for c in changes:
            if isinstance(c, m.TicketUpsert) and self.watch.get(c.ticket.ticket_id) == c.ticket.serial:
                self.arrived.setdefault(c.ticket.ticket_id, now)
        await super().apply_deltas(changes, cursor, token)


def move_file(moves: int) -> bytes:
    """Tickets 1..moves of :func:`gatehouse.bench.kit.tickets_csv`, each to the next zone and a new seat."""
    lines = ["number,zone,seat,policy"]
    for i in range(1, moves + 1):
        lines.append(f"B{i:08d},{ZONES[(i + 1) % len(ZONES)]},M-{i},{'reentry' if i % 2 else ''}")
    return ("\n".join(lines) + "\n").encode()


def run(args: argparse.Namespace) -> dict[str, Any]:
    if not 1 <= args.moves <= args.tickets or args.gates < 1:
        raise SystemExit("bench reseat: need 1 <= --moves <= --tickets and --gates >= 1")
    tmp = Path(tempfile.mkdtemp(prefix="gatehouse-bench-reseat-"))
    load_before = load_average()
    try:
        hub = Hub.create(tmp)
        progress("reseat", f"importing {args.tickets:,} tickets")
        hub.import_csv(args.tickets)
        hub.start()
        try:
            result = asyncio.run(_bench(hub, args))
        finally:
            hub.stop()
    finally:
        if args.keep:
            progress("reseat", f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return {"moves_count": args.moves, "tickets_count": args.tickets, "gates": args.gates, **result,
            "cpu_count": os.cpu_count(), "load_average_before": round(load_before, 2),
            "load_average_after": round(load_average(), 2)}


async def _bench(hub: Hub, args: argparse.Namespace) -> dict[str, Any]:
    progress("reseat", f"enrolling {args.gates} gates")
    ids = await hub.enrol(args.gates)
    seq, epoch = hub.replica_position()
    # tickets_csv numbers B00000001.. get ticket ids 1.. in order; each move bumps the serial to 1
    watch = {i: 1 for i in range(1, args.moves + 1)}
    gates = [WatchGate(gid, token, hub.ws_url, cursor=seq, epoch=epoch, watch=watch) for gid, token in ids]
    for g in gates:
        g.watch_admits = set()
    await start_light_gates(gates)
    progress("reseat", f"{args.gates} gates online; sending {args.moves:,} moves")
    body = move_file(args.moves)
    async with hub.process.admin_client() as c:
        c.timeout = 600
        hub_cpu0, own_cpu0 = cpu_s(hub.pid), self_cpu_s()
        t0 = time.perf_counter()
        r = await c.post("/api/v1/tickets/reseat", content=body, headers={"Content-Type": "text/csv"})
        apply_s = time.perf_counter() - t0
        r.raise_for_status()
        report = r.json()
        if report["moved"] != args.moves:
            raise RuntimeError(f"moved {report['moved']} of {args.moves}: {report['errors'][:3]}")
        changes = (await c.get("/api/v1/changes", params={"since": report["first_seq"] - 1, "limit": 1})).json()
    committed = float(changes["changes"][0]["at"]) + float(report["seconds"])
    progress("reseat", f"applied in {apply_s:.2f} s; waiting for every gate")
    await until(lambda: all(len(g.arrived) == len(watch) for g in gates), 300.0, "every gate to hold every move")
    hub_cpu, own_cpu = cpu_s(hub.pid) - hub_cpu0, self_cpu_s() - own_cpu0
    latencies_ms = [max(0.0, (t - committed) * 1000) for g in gates for t in g.arrived.values()]
    last_ms = max(latencies_ms)
    for g in gates:
        await g.stop()
    return {
        "apply_s": round(apply_s, 3), "transaction_s": round(float(report["seconds"]), 3),
        "superseded_at_gates_p50_ms": round(pct(latencies_ms, 0.50), 1),
        "superseded_at_gates_p99_ms": round(pct(latencies_ms, 0.99), 1),
        "superseded_at_gates_max_ms": round(last_ms, 1),
        "hub_rss_mb": round(rss_mb(hub.pid), 1),
        # where the CPU went from the request to the last gate: the hub process (validate, apply,
        # encode the rows once per gate) and this process (the lightweight gates decoding them)
        "hub_cpu_s": round(hub_cpu, 2), "gates_cpu_s": round(own_cpu, 2),
    }
