"""``gatehouse bench dashboard``: what one dashboard summary costs the hub on a matchday.

Every connected control-room browser gets a fresh summary at most once a second while scans
arrive (:mod:`hub.dashboard`): stats, each gate's mode, open conflicts, alerts, the entry
figures that make "Entries" and "Inside now" reconcile, and the kick-off forecast. Its cost
grows with what the hub has stored, so it is measured on a hub that has taken a matchday:

* a hub store (SQLite in a temporary directory, or ``--database`` PostgreSQL) with
  ``--tickets`` tickets in four stands and ``--gates`` enrolled gates (lanes);
* the matchday's journal stored through the hub's real ingest (:meth:`HubStore.ingest`,
  batches from every gate at once): ``--show-ratio`` of the ticket holders come, each an
  admit and a passage (one in a hundred does not pass), three in a hundred go out again, and
  one in twenty comes with a refused scan first; the last ``--pending`` admits still wait
  for their passage;
* then :func:`hub.dashboard.dashboard_summary` ``--repeat`` times, and each of its parts
  alone (``stats``, ``entry_figures``, ``forecast``), as the dashboard runs them.

Reported: ``summary_p50_ms`` / ``summary_p99_ms`` and ``stats_p50_ms``,
``entry_figures_p50_ms``, ``forecast_p50_ms``, with ``journal_entries_count`` (what the
journal held) and ``ingest_per_s`` (how fast the matchday was stored, for context).
"""
from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from gatehouse.bench import percentile
from gatehouse.bench.kit import load_average, progress, tickets_csv
from hub.dashboard import dashboard_summary
from hub.event_settings import write_settings
from hub.forecast_data import current_forecast, entry_figures
from hub.importer import import_tickets
from hub.store import CLI, HubStore, init_hub
from hub.store.base import rows
from tickets.entry import EntryKind, JournalEntry, Passage

ZONES = ("North", "South", "East", "West")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tickets", type=int, default=60_000, help="tickets in four stands (default 60,000)")
    parser.add_argument("--gates", type=int, default=92, help="enrolled lanes, spread over the stands (default 92)")
    parser.add_argument("--show-ratio", type=float, default=0.93, help="share of ticket holders who come (0.93)")
    parser.add_argument("--pending", type=int, default=40, help="admits still waiting for their passage (40)")
    parser.add_argument("--repeat", type=int, default=30, help="summaries timed (default 30)")
    parser.add_argument("--batch", type=int, default=200, help="journal entries per ingest batch (default 200)")
    parser.add_argument("--database", default=None,
                        help="a PostgreSQL URL to run on (an empty database); default SQLite in a temporary directory")
    parser.add_argument("--seed", type=int, default=1)


def run(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="gatehouse-bench-dashboard-"))
    try:
        return asyncio.run(_run(args, root))
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def _run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    rng = random.Random(args.seed)
    now = time.time()
    init_hub(root, event_id=1, name="bench", database=args.database)
    store = await HubStore.open(root)
    try:
        progress("dashboard", f"importing {args.tickets:,} tickets")
        await asyncio.to_thread(import_tickets, store.db, tickets_csv(args.tickets, ZONES), "csv")
        zone_of = {int(t): int(z) for t, z in await store.db.read(
            lambda c: rows(c, "SELECT ticket_id, zone_id FROM tickets"))}
        zones = sorted(set(zone_of.values()))
        lanes: dict[int, list[str]] = {z: [] for z in zones}
        for i in range(args.gates):
            z = zones[i % len(zones)]
            _gid, enrol, _exp = await store.create_gate(CLI, f"lane {i + 1}", [z])
            gate_id, _token = await store.enroll_gate(enrol)
            lanes[z].append(gate_id)
        await write_settings(store, CLI, {"kickoff_at": now + 15 * 60})

        journals = _matchday(rng, zone_of, lanes, now, args.show_ratio, args.pending)
        total = sum(len(j) for j in journals.values())
        progress("dashboard", f"storing a matchday journal of {total:,} entries from {args.gates} gates")
        started = time.perf_counter()
        await asyncio.gather(*(_upload(store, gate_id, entries, args.batch) for gate_id, entries in journals.items()))
        ingest_s = time.perf_counter() - started

        app = SimpleNamespace(state=SimpleNamespace(store=store, connected_gates=set(lanes[zones[0]])))
        timings: dict[str, list[float]] = {"summary": [], "stats": [], "entry_figures": [], "forecast": []}
        parts = {"summary": lambda: dashboard_summary(app),  # type: ignore[arg-type]
                 "stats": store.stats, "entry_figures": lambda: entry_figures(store),
                 "forecast": lambda: current_forecast(store)}
        progress("dashboard", f"timing {args.repeat} summaries and their parts")
        for _ in range(args.repeat):
            for name, part in parts.items():
                t0 = time.perf_counter()
                await part()
                timings[name].append((time.perf_counter() - t0) * 1000)
        entries = int(await store.db.read(lambda c: rows(c, "SELECT COUNT(*) FROM journal")[0][0]))
    finally:
        await store.close()
    return {
        "tickets": args.tickets, "gates": args.gates, "show_ratio": args.show_ratio, "repeat": args.repeat,
        "database": "postgresql" if args.database else "sqlite",
        "journal_entries_count": entries,
        "ingest_per_s": round(total / ingest_s, 1),
        "summary_p50_ms": round(percentile(timings["summary"], 50), 2),
        "summary_p99_ms": round(percentile(timings["summary"], 99), 2),
        "stats_p50_ms": round(percentile(timings["stats"], 50), 2),
        "entry_figures_p50_ms": round(percentile(timings["entry_figures"], 50), 2),
        "forecast_p50_ms": round(percentile(timings["forecast"], 50), 2),
        "load_average": round(load_average(), 2),
    }


def _matchday(rng: random.Random, zone_of: dict[int, int], lanes: dict[int, list[str]], now: float,
              show_ratio: float, pending: int) -> dict[str, list[JournalEntry]]:
    """Each gate's journal for the two and a half hours before ``now``, in its own seq order."""
    out: dict[str, list[JournalEntry]] = {g: [] for gs in lanes.values() for g in gs}
    comers = [t for t in zone_of if rng.random() < show_ratio]
    rng.shuffle(comers)
    start = now - 9000
    for i, ticket in enumerate(comers):
        zone = zone_of[ticket]
        gate = lanes[zone][i % len(lanes[zone])]
        at = start + 9000 * i / len(comers)
        journal = out[gate]
        if rng.random() < 0.05:  # a refusal first (a screenshot, the wrong gate…)
            journal.append(JournalEntry(gate, len(journal) + 1, at - 3, EntryKind.SCAN, reason="FORGED"))
        journal.append(JournalEntry(gate, len(journal) + 1, at, EntryKind.SCAN, reason="ADMIT", ticket_id=ticket,
                                    zone_id=zone))
        if i >= len(comers) - pending:
            continue  # still at the turnstile
        seq = len(journal)
        passed = rng.random() > 0.01
        journal.append(JournalEntry(gate, seq + 1, at + 2, EntryKind.PASSAGE, reason="ADMIT", ticket_id=ticket,
                                    zone_id=zone, passage=Passage.PASSED if passed else Passage.NOT_PASSED,
                                    ref_seq=seq))
        if passed and rng.random() < 0.03 and at < now - 1800:  # went home early (or to hospital)
            journal.append(JournalEntry(gate, len(journal) + 1, at + 1200, EntryKind.SCAN, reason="ADMIT",
                                        ticket_id=ticket, zone_id=zone, direction="out"))
            s = len(journal)
            journal.append(JournalEntry(gate, s + 1, at + 1202, EntryKind.PASSAGE, reason="ADMIT", ticket_id=ticket,
                                        zone_id=zone, direction="out", passage=Passage.PASSED, ref_seq=s))
    return out


async def _upload(store: HubStore, gate_id: str, entries: list[JournalEntry], batch: int) -> None:
    for i in range(0, len(entries), batch):
        await store.ingest(gate_id, entries[i:i + batch])
