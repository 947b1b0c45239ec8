"""``gatehouse bench decide``: decision latency on a gate with an N-ticket replica.

Builds a replica of N tickets in a temporary directory, then feeds a realistic scan mix
through (a) ``tickets.decide`` with its replica lookups, and (b) the same plus the
durable journal commit (``synchronous=FULL``) that precedes every unlock.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gate_agent.journal import Journal
from gate_agent.replica import Replica, ReplicaReader
from gatehouse.bench import percentile
from gatehouse.bench.testdata import make_event, scan_mix
from tickets.decide import decide
from tickets.entry import EntryKind, Passage
from tickets.model import GatePolicy, Scan
from tickets.policy import record_passage


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tickets", type=int, default=1_000_000, help="replica size (default 1,000,000)")
    parser.add_argument("--scans", type=int, default=5_000, help="scans to decide (default 5,000)")
    parser.add_argument("--dir", type=Path, default=None, help="where to build the replica (default: a temp dir)")


async def _run(tickets: int, scans: int, workdir: Path) -> dict[str, Any]:
    now = time.time()
    event = make_event(tickets, now)
    t0 = time.perf_counter()
    replica = await Replica.open(workdir / "replica.sqlite3")
    await replica.set_event(event_id=event.event_id, keyring=event.keyring, zones=event.zones, policies=event.policies)

    def progress(n: int) -> None:
        print(f"\rbuilding replica: {n:,}/{tickets:,}", end="", file=sys.stderr)

    await replica.bulk_load(event.rows(), progress=progress)
    build_s = time.perf_counter() - t0
    print(f"\nreplica built in {build_s:.1f} s", file=sys.stderr)

    reader = ReplicaReader(replica.path)
    policy = GatePolicy(gate_id="G1", event_id=event.event_id, keyring=reader.keyring(), zones=reader.zones(),
                        entry_policies=reader.policies())
    journal = await Journal.open(workdir / "journal.sqlite3", "G1")
    stream = scan_mix(event, gate_zone=1, count=scans)
    decide_us: list[float] = []
    commit_us: list[float] = []
    admitted = 0
    t_start = time.perf_counter()
    for _label, payload in stream:
        scan = Scan(payload, "qrcode", "bench", now)
        t1 = time.perf_counter_ns()
        verdict = decide(scan, reader, policy, now)
        t2 = time.perf_counter_ns()
        await journal.append(
            EntryKind.SCAN, reason=str(verdict.reason), ticket_id=verdict.ticket_id, raw=payload,
            passage=Passage.PENDING if verdict.admitted else Passage.NONE, at=now,
        )
        t3 = time.perf_counter_ns()
        decide_us.append((t2 - t1) / 1000)
        commit_us.append((t3 - t1) / 1000)
        if verdict.admitted and verdict.ticket_id is not None:
            admitted += 1
            state = record_passage(reader.entry_state(verdict.ticket_id), verdict.direction, now)
            await replica.put_entry_states({verdict.ticket_id: state})
    elapsed = time.perf_counter() - t_start
    reader.close()
    await journal.close()
    await replica.close()
    return {
        "tickets": tickets,
        "scans": scans,
        "admitted_count": admitted,
        "replica_build_s": round(build_s, 2),
        "decide_p50_us": round(percentile(decide_us, 50), 1),
        "decide_p99_us": round(percentile(decide_us, 99), 1),
        "decide_max_us": round(max(decide_us), 1),
        "decide_commit_p50_us": round(percentile(commit_us, 50), 1),
        "decide_commit_p99_us": round(percentile(commit_us, 99), 1),
        "decide_commit_max_us": round(max(commit_us), 1),
        "scans_per_s": round(scans / elapsed, 1),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
        return asyncio.run(_run(args.tickets, args.scans, args.dir))
    with tempfile.TemporaryDirectory(prefix="gatehouse-bench-") as tmp:
        return asyncio.run(_run(args.tickets, args.scans, Path(tmp)))
