"""``gatehouse bench ingest``: validation ingest rate from many simulated gates, and import rate.

A real hub runs in its own process (``gatehouse hub serve`` under uvicorn on 127.0.0.1);
N simulated gates, each with its own enrolled token, push journal batches through the
hub's ingest path (HTTP ``POST /api/v1/gates/{id}/journal`` until the websocket sync
lands) for a fixed time. Entries are a realistic mix: admits of imported tickets (so the
conflict check runs), refusals and passage outcomes.

Reported: sustained ``validations_per_s`` (entries stored / wall time), ``ingest_p99_ms``
(one batch round trip, client side), and ``import_rows_per_s`` for a generated CSV.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from hub.importer import import_tickets
from hub.store import db_path, init_hub
from tickets.entry import EntryKind, JournalEntry, Passage

READY_TIMEOUT_S = 30.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gates", type=int, default=200, help="simulated gates pushing at once")
    parser.add_argument("--batch", type=int, default=10, help="journal entries per batch")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of sustained ingest")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="offered validations/s over all gates (0: each gate pushes as fast as it is answered)")
    parser.add_argument("--import-rows", type=int, default=200_000, help="rows in the generated CSV import")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data directory")


def _progress(msg: str) -> None:
    print(f"[bench ingest] {msg}", file=sys.stderr, flush=True)


def _csv(rows: int) -> bytes:
    zones = ("North", "South", "East", "West")
    lines = ["number,holder,zone,seat,policy,external_id"]
    lines += [f"B{i:08d},Holder {i},{zones[i % 4]},R{i % 50}-{i % 30},{'single' if i % 5 else 'reentry'},x{i}"
              for i in range(1, rows + 1)]
    return ("\n".join(lines) + "\n").encode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="gatehouse-bench-ingest-"))
    data = tmp / "hub"
    try:
        admin = init_hub(data, event_id=1, name="bench")
        _progress(f"importing {args.import_rows:,} generated rows")
        report = import_tickets(db_path(data), _csv(args.import_rows), "csv")
        if report.error_count:
            raise RuntimeError(f"generated import had {report.error_count} errors: {report.errors[:3]}")
        import_rate = report.rows / report.seconds
        _progress(f"import: {import_rate:,.0f} rows/s")
        port = _free_port()
        log_file = (tmp / "hub.log").open("wb")
        server = subprocess.Popen(
            [sys.executable, *os.environ.get("GATEHOUSE_BENCH_PY_ARGS", "").split(), "-m", "gatehouse", "hub", "serve", "--data", str(data), "--port", str(port)],
            # the hub logs every conflict: into a file, never an unread pipe that would fill and block it
            stdout=subprocess.DEVNULL, stderr=log_file,
        )
        try:
            result = asyncio.run(_drive("127.0.0.1", port, admin, args, report.created))
        finally:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            log_file.close()
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            _progress(f"kept {tmp}")
    return {
        "gates": args.gates, "batch": args.batch, "duration_s": args.duration, "offered_rate_per_s": args.rate,
        **result,
        "import_rows": args.import_rows, "import_rows_per_s": round(import_rate, 1),
        "cpu_count": os.cpu_count(),
    }


async def _drive(host: str, port: int, admin: str, args: argparse.Namespace, tickets: int) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=f"http://{host}:{port}", timeout=60.0) as client:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            try:
                if (await client.get("/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("hub did not start")
            await asyncio.sleep(0.1)
        auth = {"Authorization": f"Bearer {admin}"}
        gates: list[tuple[str, str]] = []
        _progress(f"enrolling {args.gates} gates")
        for i in range(args.gates):
            g = (await client.post("/api/v1/gates", json={"name": f"bench {i}"}, headers=auth)).json()
            token = (await client.post("/api/v1/enroll", json={"token": g["enrolment_token"]})).json()["token"]
            gates.append((g["gate_id"], token))
        latencies: list[float] = []
        stored = 0
        errors = 0
        start = time.monotonic()
        stop = start + args.duration

        async def gate(gate_id: str, token: str, seed: int) -> None:
            nonlocal stored, errors
            rng = random.Random(seed)
            # each gate admits its own run of tickets; about 1 in 200 admits re-uses another
            # gate's ticket, so the conflict check finds real double admits
            own = iter(range(seed * max(1, tickets // args.gates), 10**12, 1))
            # a lean HTTP/1.1 keep-alive client: the load generator must not be what limits
            # the figure (httpx costs more CPU per request than the hub's ingest does)
            reader, writer = await asyncio.open_connection(host, port)
            writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            head = (f"POST /api/v1/gates/{gate_id}/journal HTTP/1.1\r\nHost: {host}\r\n"
                    f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n")
            seq = 0
            interval = args.gates * args.batch / args.rate if args.rate > 0 else 0.0
            next_at = time.monotonic() + rng.random() * interval
            try:
                while time.monotonic() < stop:
                    if interval:
                        # paced: a gate sends its batch on schedule, as its scans happen
                        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                        next_at += interval
                    batch = []
                    for _ in range(args.batch):
                        seq += 1
                        batch.append(_entry(rng, gate_id, seq, tickets, next(own)).to_wire())
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

        _progress(f"{args.gates} gates pushing batches of {args.batch} for {args.duration:.0f} s")
        await asyncio.gather(*(gate(g, t, i) for i, (g, t) in enumerate(gates)))
        elapsed = time.monotonic() - start
        metrics = (await client.get("/metrics")).text
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    conflicts = next((float(line.split()[1]) for line in metrics.splitlines()
                      if line.startswith("gatehouse_hub_conflicts_open ")), 0.0)
    return {
        "validations_per_s": round(stored / elapsed, 1),
        "ingest_p50_ms": round(p(0.50), 2),
        "ingest_p99_ms": round(p(0.99), 2),
        "batches_count": len(latencies),
        "stored_count": stored,
        "errors_count": errors,
        "conflicts_count": int(conflicts),
    }


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


def _entry(rng: random.Random, gate_id: str, seq: int, tickets: int, own: int) -> JournalEntry:
    now = time.time()
    roll = rng.random()
    if roll < 0.75:
        tid = rng.randint(1, tickets) if rng.random() < 0.005 else 1 + own % tickets
        return JournalEntry(gate_id, seq, now, EntryKind.SCAN, reason="ADMIT", ticket_id=tid,
                            zone_id=1 + tid % 4, raw=b"GH1:" + b"A" * 150, passage=Passage.PENDING)
    if roll < 0.9:
        return JournalEntry(gate_id, seq, now, EntryKind.PASSAGE, ref_seq=max(1, seq - 1), passage=Passage.PASSED)
    return JournalEntry(gate_id, seq, now, EntryKind.SCAN, reason=rng.choice(("UNKNOWN", "FORGED", "ALREADY_USED")),
                        raw=b"junk")
