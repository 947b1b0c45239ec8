"""``gatehouse bench ingest``: validation ingest rate from many simulated gates, and import rate.

A real hub runs in its own process (``gatehouse hub serve`` under uvicorn on 127.0.0.1, its
SQLite store in a temporary directory). ``--gates`` simulated gates, each with its own enrolled
token, send their journal entries to it for ``--duration`` seconds:

* ``--transport ws`` (default): through the real gate websocket (``/ws/gate``): each gate is a
  real :class:`sync.gate_client.GateClient` whose owner keeps its journal in memory (see
  :mod:`gatehouse.bench.kit`), already holding an up-to-date replica. The hub stores every
  batch and acks it, and fans every stored admit out to every other connected gate, as in
  service: that fan-out is part of what the hub's one core pays for.
* ``--transport http``: ``POST /api/v1/gates/{id}/journal`` from a lean HTTP/1.1 client.

Entries are a realistic mix (:class:`gatehouse.bench.kit.EntryMix`): admits of imported
tickets (so the conflict check runs), refusals and passage outcomes. ``--rate 0`` is closed
loop (each gate hands ``--batch`` entries to its client and hands the next ones when the hub
has acked them: the hub's capacity); ``--rate N`` paces the gates to N validations/s in total.

Reported: ``validations_per_s`` (entries acked in the window / window), ``ingest_p99_ms``
(websocket: from an entry handed to the gate client to the hub's ack of it; HTTP: one batch
round trip), ``import_rows_per_s`` (a generated CSV of ``--import-rows`` rows imported into
the hub's store before it serves), and ``hub_cpu_s`` / ``hub_cpu_ratio`` (CPU the hub process
used during the window, and as a share of one core).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
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
    self_cpu_s,
    start_light_gates,
)

#: after the window, wait this long for the entries still in flight to be acked (their latency counts)
SETTLE_S = 30.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gates", type=int, default=200, help="simulated gates sending at once (default 200)")
    parser.add_argument("--transport", choices=("ws", "http"), default="ws",
                        help="ws: the gate websocket /ws/gate (default); http: POST /api/v1/gates/{id}/journal")
    parser.add_argument("--batch", type=int, default=10,
                        help="closed loop: entries each gate hands over before waiting for their ack (default 10)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of sustained ingest (default 10)")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="offered validations/s over all gates (0: closed loop, the hub's capacity)")
    parser.add_argument("--admit-ratio", type=float, default=0.75,
                        help="share of entries that are admits, each fanned out to every other gate (default 0.75)")
    parser.add_argument("--import-rows", type=int, default=1_000_000,
                        help="rows in the generated CSV import (default 1000000)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data directory")


def _progress(msg: str) -> None:
    progress("ingest", msg)


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.gates < 1 or args.duration <= 0 or args.import_rows < 1 or args.batch < 1 or args.rate < 0 \
            or not 0 <= args.admit_ratio <= 1:
        raise SystemExit("bench ingest: --gates, --duration, --import-rows and --batch must be positive")
    tmp = Path(tempfile.mkdtemp(prefix="gatehouse-bench-ingest-"))
    load_before = load_average()
    try:
        hub = Hub.create(tmp)
        _progress(f"importing {args.import_rows:,} generated rows")
        import_rate = hub.import_csv(args.import_rows)
        _progress(f"import: {import_rate:,.0f} rows/s; starting the hub process")
        hub.start()
        try:
            drive = _drive_ws if args.transport == "ws" else _drive_http
            result = asyncio.run(drive(hub, args, args.import_rows))
        finally:
            hub.stop()
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            _progress(f"kept {tmp}")
    return {
        "gates": args.gates, "transport": args.transport, "batch": args.batch, "duration_s": args.duration,
        "offered_rate_per_s": args.rate, "admit_ratio": args.admit_ratio,
        **result,
        "import_rows": args.import_rows, "import_rows_per_s": round(import_rate, 1),
        "cpu_count": os.cpu_count(), "load_average_before": round(load_before, 2),
        "load_average_after": round(load_average(), 2),
    }


async def _conflicts(hub: Hub) -> int:
    async with hub.process.admin_client() as c:
        metrics = (await c.get("/metrics")).text
    return int(next((float(line.split()[1]) for line in metrics.splitlines()
                     if line.startswith("gatehouse_hub_conflicts_open ")), 0.0))


async def _drive_ws(hub: Hub, args: argparse.Namespace, tickets: int) -> dict[str, Any]:
    _progress(f"enrolling {args.gates} gates")
    ids = await hub.enrol(args.gates)
    seq, epoch = hub.replica_position()
    gates = [LightGate(gid, token, hub.ws_url, cursor=seq, epoch=epoch, record_acks=True) for gid, token in ids]
    for g in gates:
        g.watch_admits = set()  # count the fanned-out admits, do not time them (that is `bench sync`)
    connect_s = await start_light_gates(gates)
    _progress(f"{args.gates} gates online over /ws/gate in {connect_s:.1f} s")
    mixes = [EntryMix(g.name, i, args.gates, tickets, admit_ratio=args.admit_ratio) for i, g in enumerate(gates)]
    acked0 = sum(g.acked for g in gates)
    fanned0 = sum(g.remote_admits for g in gates)
    hub_cpu0, self_cpu0 = cpu_s(hub.pid), self_cpu_s()
    start = time.perf_counter()
    stop = start + args.duration
    interval = args.gates / args.rate if args.rate > 0 else 0.0

    async def paced(g: LightGate, mix: EntryMix, k: int) -> None:
        next_at = start + interval * k / args.gates  # spread the gates evenly over one interval
        while next_at < stop:
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            g.append(mix)
            next_at += interval

    async def closed(g: LightGate, mix: EntryMix) -> None:
        while time.perf_counter() < stop:
            g.acked_event.clear()
            for _ in range(args.batch):
                g.append(mix)
            await g.acked_event.wait()

    window: dict[str, float] = {}

    async def meter() -> None:
        """The figures at the end of the window (closed-loop gates may still be waiting for an ack)."""
        await asyncio.sleep(max(0.0, stop - time.perf_counter()))
        window.update(elapsed=time.perf_counter() - start, acked=sum(g.acked for g in gates) - acked0,
                      hub_cpu=cpu_s(hub.pid) - hub_cpu0, self_cpu=self_cpu_s() - self_cpu0,
                      fanned=sum(g.remote_admits for g in gates) - fanned0)

    mode = f"paced at {args.rate:,.0f}/s" if interval else f"closed loop, {args.batch} entries outstanding each"
    _progress(f"{args.gates} gates sending for {args.duration:.0f} s ({mode})")
    await asyncio.gather(meter(), *(paced(g, mix, k) if interval else closed(g, mix)
                                    for k, (g, mix) in enumerate(zip(gates, mixes, strict=True))))
    elapsed, acked, hub_cpu = window["elapsed"], int(window["acked"]), window["hub_cpu"]
    self_cpu, fanned = window["self_cpu"], window["fanned"]
    handed = sum(len(g.journal) for g in gates)
    deadline = time.perf_counter() + SETTLE_S
    while sum(g.acked for g in gates) < handed and time.perf_counter() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    unacked = handed - sum(g.acked for g in gates)
    hub_rss = rss_mb(hub.pid)
    for g in gates:
        await g.stop()
    latencies = [x for g in gates for x in g.ack_latencies_s]
    _progress(f"{acked:,} entries acked in {elapsed:.1f} s: {acked / elapsed:,.0f}/s; hub CPU {hub_cpu:.1f} s")
    return {
        "validations_per_s": round(acked / elapsed, 1),
        "ingest_p50_ms": round(pct(latencies, 0.50) * 1000, 2),
        "ingest_p99_ms": round(pct(latencies, 0.99) * 1000, 2),
        "ingest_max_ms": round(max(latencies, default=0.0) * 1000, 2),
        "handed_count": handed, "acked_count": acked, "unacked_count": unacked,
        "conflicts_count": await _conflicts(hub),
        "fanout_messages_per_s": round(fanned / elapsed, 1),
        "connect_all_s": round(connect_s, 3),
        "hub_cpu_s": round(hub_cpu, 2), "hub_cpu_ratio": round(hub_cpu / elapsed, 3),
        "bench_cpu_ratio": round(self_cpu / elapsed, 3), "hub_rss_mb": round(hub_rss, 1), "hub_pid": hub.pid,
    }


async def _drive_http(hub: Hub, args: argparse.Namespace, tickets: int) -> dict[str, Any]:
    _progress(f"enrolling {args.gates} gates")
    gates = await hub.enrol(args.gates)
    host, port = "127.0.0.1", hub.process.port
    latencies: list[float] = []
    stored = 0
    errors = 0
    hub_cpu0, self_cpu0 = cpu_s(hub.pid), self_cpu_s()
    start = time.monotonic()
    stop = start + args.duration

    async def gate(gate_id: str, token: str, index: int) -> None:
        nonlocal stored, errors
        mix = EntryMix(gate_id, index, args.gates, tickets, admit_ratio=args.admit_ratio)
        # a lean HTTP/1.1 keep-alive client: the load generator must not be what limits
        # the figure (httpx costs more CPU per request than the hub's ingest does)
        reader, writer = await asyncio.open_connection(host, port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        head = (f"POST /api/v1/gates/{gate_id}/journal HTTP/1.1\r\nHost: {host}\r\n"
                f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n")
        seq = 0
        interval = args.gates * args.batch / args.rate if args.rate > 0 else 0.0
        next_at = time.monotonic() + interval * index / args.gates
        try:
            while time.monotonic() < stop:
                if interval:
                    # paced: a gate sends its batch on schedule, as its scans happen
                    await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                    next_at += interval
                batch = []
                for _ in range(args.batch):
                    seq += 1
                    batch.append(mix(seq).to_wire())
                body = json.dumps({"entries": batch}).encode()
                t0 = time.perf_counter()
                writer.write(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
                status, answer = await _read_response(reader)
                latencies.append(time.perf_counter() - t0)
                if status != 200:
                    errors += 1
                    continue
                stored += json.loads(answer)["stored"]
        finally:
            writer.close()

    _progress(f"{args.gates} gates posting batches of {args.batch} for {args.duration:.0f} s")
    await asyncio.gather(*(gate(g, t, i) for i, (g, t) in enumerate(gates)))
    elapsed = time.monotonic() - start
    hub_cpu = cpu_s(hub.pid) - hub_cpu0
    self_cpu = self_cpu_s() - self_cpu0
    return {
        "validations_per_s": round(stored / elapsed, 1),
        "ingest_p50_ms": round(pct(latencies, 0.50) * 1000, 2),
        "ingest_p99_ms": round(pct(latencies, 0.99) * 1000, 2),
        "batches_count": len(latencies),
        "stored_count": stored,
        "errors_count": errors,
        "conflicts_count": await _conflicts(hub),
        "hub_cpu_s": round(hub_cpu, 2), "hub_cpu_ratio": round(hub_cpu / elapsed, 3),
        "bench_cpu_ratio": round(self_cpu / elapsed, 3), "hub_rss_mb": round(rss_mb(hub.pid), 1), "hub_pid": hub.pid,
    }


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)
