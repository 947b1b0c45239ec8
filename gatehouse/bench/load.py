"""``gatehouse bench load``: a whole venue against one hub, at a paced scanning rate.

A real hub process (``gatehouse hub serve`` on 127.0.0.1, its SQLite store holding
``--tickets`` imported tickets) and ``--gates`` gates connected over ``/ws/gate``:

* ``--real-gates`` of them are real gate agents (``gate_agent.GateAgent`` with a simulated
  scanner and turnstile, their own SQLite replica and journal, synced by snapshot first):
  simulated fans present real signed credentials, the gate decides, unlocks, the fan walks
  through. Their decision time (decide + journal commit, ``Decision.decided_in_s``) is what
  ``decide_p99_ms`` reports: the figure a fan feels while the hub is loaded.
* the rest are lightweight gates (:class:`gatehouse.bench.kit.LightGate`: a real websocket
  client with an in-memory journal) journaling a realistic mix at the same paced rate.

Every gate scans at ``--scan-rate`` per second (default 0.5: a turnstile passes a fan every
two seconds at best, so this is every lane saturated at once) for ``--duration`` seconds.
Meanwhile ``--probes`` admits are timed from one lightweight gate to every other one
(``fanout_p99_ms``), and the hub's memory is sampled (``hub_rss_mb``: the largest VmRSS).
``ingest_p99_ms`` is, at the lightweight gates, from an entry handed to the gate client to
the hub's ack of it; ``validations_per_s`` is journal entries newly stored at the hub (its
own counter) over the window.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from gatehouse.bench.kit import (
    EntryMix,
    Hub,
    LightGate,
    cpu_s,
    load_average,
    pct,
    progress,
    rss_mb,
    start_light_gates,
    until,
)
from gatehouse.venue import Gate, Venue
from tickets.reasons import Reason

ZONES = ("North", "South", "East", "West")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gates", type=int, default=200, help="gates connected to the hub (default 200)")
    parser.add_argument("--real-gates", type=int, default=4,
                        help="how many of them are real gate agents with a simulated scanner and turnstile (default 4)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of scanning (default 30)")
    parser.add_argument("--scan-rate", type=float, default=0.5, help="scans per second at each gate (default 0.5)")
    parser.add_argument("--tickets", type=int, default=60_000, help="tickets at the hub (default 60000)")
    parser.add_argument("--probes", type=int, default=20, help="admits timed to every other gate (default 20)")


def _progress(msg: str) -> None:
    progress("load", msg)


def run(args: argparse.Namespace) -> dict[str, Any]:
    if not 0 <= args.real_gates <= args.gates or args.gates < 2 or args.duration <= 0 or args.scan_rate <= 0:
        raise SystemExit("bench load: need --gates >= 2, 0 <= --real-gates <= --gates, positive --duration "
                         "and --scan-rate")
    light = args.gates - args.real_gates
    needed = 2 * light * (args.scan_rate * args.duration + 10) + args.probes + 1000 * max(1, args.real_gates)
    if args.tickets < needed:
        raise SystemExit(f"bench load: --tickets must be at least {int(needed)} for this rate and duration")
    tmp = Path(tempfile.mkdtemp(prefix="gatehouse-bench-load-"))
    load_before = load_average()
    try:
        hub = Hub.create(tmp, name="load")
        _progress(f"importing {args.tickets:,} tickets (setup)")
        hub.import_csv(args.tickets)
        hub.start()
        try:
            result = asyncio.run(_drive(hub, tmp, args))
        finally:
            hub.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"gates": args.gates, "real_gates": args.real_gates, "duration_s": args.duration,
            "scan_rate_per_gate_per_s": args.scan_rate, "offered_rate_per_s": round(args.scan_rate * args.gates, 1),
            "tickets": args.tickets, **result, "cpu_count": os.cpu_count(),
            "load_average_before": round(load_before, 2), "load_average_after": round(load_average(), 2)}


async def _ingested(hub: Hub) -> int:
    async with hub.process.admin_client() as c:
        metrics = (await c.get("/metrics")).text
    return int(next((float(line.split()[1]) for line in metrics.splitlines()
                     if line.startswith("gatehouse_hub_ingested_entries_total ")), 0.0))


async def _drive(hub: Hub, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    light_count = args.gates - args.real_gates
    # ticket blocks: the light gates' mix from 1, probes and the real gates' fans at the top
    probe_first = args.tickets - 1000 * max(1, args.real_gates) - args.probes
    fans_first = probe_first + args.probes
    mix_tickets = probe_first - 1

    venue = Venue(tmp, hub.process)
    async with hub.process.admin_client() as c:
        zones = (await c.get("/api/v1/zones")).json()
        venue.zones = {z["name"]: z["zone_id"] for z in zones}
        per_gate = min(1000, int(args.scan_rate * args.duration) + 5)
        _progress(f"fetching credentials for the real gates' fans ({args.real_gates} × {per_gate})")
        credentials: list[list[str]] = []
        for k in range(args.real_gates):
            base = fans_first + 1000 * k
            texts = []
            for tid in range(base, base + per_gate):
                r = await c.get(f"/api/v1/tickets/{tid}/credential")
                r.raise_for_status()
                texts.append(str(r.json()["text"]))
            credentials.append(texts)

    _progress(f"starting {args.real_gates} real gate agents (each syncs the {args.tickets:,}-ticket replica)")
    real: list[Gate] = []
    for k in range(args.real_gates):
        real.append(await venue.add_gate(f"real {k}", list(venue.zones)))
    await venue.online(*real)
    decide_s: list[float] = []
    reasons: dict[str, int] = {}
    for gate in real:
        _time_decisions(gate, decide_s)

    _progress(f"enrolling and connecting {light_count} lightweight gates")
    ids = await hub.enrol(light_count, prefix="light")
    seq, epoch = hub.replica_position()
    light = [LightGate(gid, token, hub.ws_url, cursor=seq, epoch=epoch, record_acks=True) for gid, token in ids]
    probe_ids = set(range(probe_first, probe_first + args.probes))
    for lg in light:
        lg.watch_admits = probe_ids
    connect_s = await start_light_gates(light)
    _progress(f"{light_count} lightweight gates online in {connect_s:.1f} s; scanning for {args.duration:.0f} s "
              f"at {args.scan_rate}/s per gate")

    stored0 = await _ingested(hub)
    cpu0 = cpu_s(hub.pid)
    rss_peak = rss_mb(hub.pid)
    start = time.perf_counter()
    stop = start + args.duration
    interval = 1.0 / args.scan_rate
    fanout: list[float] = []

    async def light_gate(g: LightGate, mix: EntryMix, k: int) -> None:
        next_at = start + interval * k / args.gates
        while next_at < stop:
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            g.append(mix)
            next_at += interval

    async def real_gate(g: Gate, texts: list[str], k: int) -> None:
        rng = random.Random(k)
        next_at = start + interval * k / max(1, args.real_gates)
        used: list[str] = []
        while next_at < stop:
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            next_at += interval
            if used and rng.random() < 0.1:  # a fan tries again with a ticket already used
                text = rng.choice(used)
            elif texts:
                text = texts.pop()
                used.append(text)
            else:
                break
            reason = await g.scan(text)
            reasons[reason] = reasons.get(reason, 0) + 1

    # a probe admit is of zone 1: it is fanned out to the gates of zone 1
    peers = hub.zone_peers(light) or list(light)

    async def probes() -> None:
        rng = random.Random(7)
        gap = args.duration / (args.probes + 1)
        for i, tid in enumerate(sorted(probe_ids)):
            await asyncio.sleep(max(0.0, start + gap * (i + 1) - time.perf_counter()))
            src = rng.choice(peers)
            t = time.perf_counter()
            src.admit(tid)
            others = [g for g in peers if g is not src]
            try:
                await until(lambda tid=tid, others=others: all(tid in o.admit_at for o in others),  # type: ignore[misc]
                            30, "fan-out", step_s=0.01)
            except TimeoutError:
                _progress(f"probe admit {tid} did not reach every gate within 30 s")
            fanout.extend((g.admit_at[tid] - t) for g in others if tid in g.admit_at)

    async def sample_rss() -> None:
        nonlocal rss_peak
        while time.perf_counter() < stop:
            rss_peak = max(rss_peak, rss_mb(hub.pid))
            await asyncio.sleep(1.0)

    mixes = [EntryMix(g.name, i, light_count, mix_tickets) for i, g in enumerate(light)]
    await asyncio.gather(
        probes(), sample_rss(),
        *(light_gate(g, mix, k) for k, (g, mix) in enumerate(zip(light, mixes, strict=True))),
        *(real_gate(g, credentials[k], k) for k, g in enumerate(real)),
    )
    elapsed = time.perf_counter() - start
    hub_cpu = cpu_s(hub.pid) - cpu0
    rss_peak = max(rss_peak, rss_mb(hub.pid))
    handed = sum(len(g.journal) for g in light)
    try:
        await until(lambda: sum(g.acked for g in light) >= handed, 30, "the last acks", step_s=0.05)
    except TimeoutError:
        _progress("some entries were still unacked 30 s after the window")
    stored = await _ingested(hub) - stored0
    unacked = handed - sum(g.acked for g in light)
    for lg in light:
        await lg.stop()
    await venue.close()
    latencies = [x for g in light for x in g.ack_latencies_s]
    _progress(f"{stored:,} entries stored in {elapsed:.1f} s; hub CPU {hub_cpu:.1f} s, RSS peak {rss_peak:.0f} MB")
    return {
        "validations_per_s": round(stored / elapsed, 1),
        "ingest_p50_ms": round(pct(latencies, 0.5) * 1000, 2),
        "ingest_p99_ms": round(pct(latencies, 0.99) * 1000, 2),
        "fanout_p50_ms": round(pct(fanout, 0.5) * 1000, 2),
        "fanout_p99_ms": round(pct(fanout, 0.99) * 1000, 2),
        "fanout_samples_count": len(fanout),
        "fanout_gates_count": len(peers) - 1,
        "decide_p50_ms": round(pct(decide_s, 0.5) * 1000, 3),
        "decide_p99_ms": round(pct(decide_s, 0.99) * 1000, 3),
        "decide_max_ms": round(max(decide_s, default=0.0) * 1000, 3),
        "decisions_count": len(decide_s),
        "admitted_count": sum(n for r, n in reasons.items() if Reason(r).admits),
        "refused_count": sum(n for r, n in reasons.items() if not Reason(r).admits),
        "unacked_count": unacked,
        "hub_rss_mb": round(rss_peak, 1),
        "hub_cpu_s": round(hub_cpu, 2), "hub_cpu_ratio": round(hub_cpu / elapsed, 3),
        "connect_all_s": round(connect_s, 3),
    }


def _time_decisions(gate: Gate, out: list[float]) -> None:
    """Record every decision's own time (decide + journal commit) at a real gate."""
    agent = gate.agent
    decide = agent.handle_scan

    async def timed(scan: Any) -> Any:
        decision = await decide(scan)
        out.append(decision.decided_in_s)
        return decision

    agent.handle_scan = timed  # type: ignore[method-assign]
