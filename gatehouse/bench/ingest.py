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

``--store postgres`` runs the hub on a throwaway PostgreSQL cluster (Debian's server, durable
settings: fsync and synchronous commit on) and ``--hub-procs N`` serves it from N hub processes,
the gates spread over them round robin. With N > 1 the same run first measures one process on
a fresh database (``one_proc_*`` keys, and ``procs_speedup_ratio``). While the gates stream,
probes measure what crosses processes: an admit at a gate on one process reaching its zone's
gates on the others (``fanout_p99_ms``) and a revocation made through one process reaching every
gate (``revocation_p99_ms``). ``postgres_cpu_s`` is the server's CPU in the window.
``--profile`` samples each hub process with py-spy during the window and reports where its time
goes (``hub_time_*_ratio``; the collapsed stacks are kept beside the data when ``--keep``).
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
    until,
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
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite",
                        help="the hub's database: sqlite (default) or a throwaway PostgreSQL cluster")
    parser.add_argument("--hub-procs", type=int, default=1,
                        help="hub processes serving the hub (PostgreSQL only; > 1 also measures one process)")
    parser.add_argument("--probes", type=int, default=20,
                        help="cross-process revocations and fanned-out admits timed during the window (default 20)")
    parser.add_argument("--profile", action="store_true",
                        help="sample the hub processes with py-spy during the window (where the time goes)")


def _progress(msg: str) -> None:
    progress("ingest", msg)


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.gates < 1 or args.duration <= 0 or args.import_rows < 1 or args.batch < 1 or args.rate < 0 \
            or not 0 <= args.admit_ratio <= 1 or args.hub_procs < 1 or args.probes < 0:
        raise SystemExit("bench ingest: --gates, --duration, --import-rows, --batch and --hub-procs must be positive")
    if args.hub_procs > 1 and args.store != "postgres":
        raise SystemExit("bench ingest: --hub-procs > 1 needs --store postgres (SQLite has one writer)")
    if args.hub_procs > 1 and args.transport != "ws":
        raise SystemExit("bench ingest: --hub-procs > 1 measures the websocket path (--transport ws)")
    tmp = Path(tempfile.mkdtemp(prefix="gatehouse-bench-ingest-"))
    load_before = load_average()
    cluster = None
    try:
        if args.store == "postgres":
            from gatehouse.pgcluster import PgCluster

            _progress("starting a throwaway PostgreSQL cluster")
            # its own directory: the server runs as ``postgres`` and cannot enter ``tmp`` (0700)
            cluster = PgCluster(Path(tempfile.mkdtemp(prefix="gatehouse-bench-pg-"))).init().start()
        phases = [1, args.hub_procs] if args.hub_procs > 1 else [1]
        results = []
        for procs in phases:
            results.append(_phase(args, tmp / f"procs-{procs}", procs, cluster))
    finally:
        if cluster is not None:
            cluster.destroy()
            shutil.rmtree(cluster.root, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            _progress(f"kept {tmp}")
    result = results[-1]
    out: dict[str, Any] = {
        "gates": args.gates, "transport": args.transport, "batch": args.batch, "duration_s": args.duration,
        "offered_rate_per_s": args.rate, "admit_ratio": args.admit_ratio, "store": args.store,
        "hub_procs": args.hub_procs, **result,
    }
    if len(results) > 1:
        one = results[0]
        out.update({f"one_proc_{k}": v for k, v in one.items() if k.endswith(("_per_s", "_ms", "_ratio", "_s"))})
        out["procs_speedup_ratio"] = round(result["validations_per_s"] / max(1e-9, one["validations_per_s"]), 3)
    out.update({"import_rows": args.import_rows, "cpu_count": os.cpu_count(),
                "load_average_before": round(load_before, 2), "load_average_after": round(load_average(), 2)})
    return out


def _phase(args: argparse.Namespace, root: Path, procs: int, cluster: Any) -> dict[str, Any]:
    """One measurement on a fresh hub (and a fresh database) served by ``procs`` processes."""
    database = None
    if cluster is not None:
        database = cluster.create_database(f"ingest_{procs}")
    hub = Hub.create(root, database=database)
    _progress(f"[{procs} hub process(es)] importing {args.import_rows:,} generated rows")
    import_rate = hub.import_csv(args.import_rows)
    for i in range(1, procs):
        hub.add_process(f"hub-{i + 1}")
    _progress(f"import: {import_rate:,.0f} rows/s; starting {procs} hub process(es)")
    hub.start()
    try:
        drive = _drive_ws if args.transport == "ws" else _drive_http
        result = asyncio.run(drive(hub, args, args.import_rows, cluster, root))
    finally:
        hub.stop()
    return {**result, "import_rows_per_s": round(import_rate, 1)}


async def _conflicts(hub: Hub) -> int:
    async with hub.process.admin_client() as c:
        metrics = (await c.get("/metrics")).text
    return int(next((float(line.split()[1]) for line in metrics.splitlines()
                     if line.startswith("gatehouse_hub_conflicts_open ")), 0.0))


def _spread(hub: Hub, ids: list[tuple[str, str]], procs: int) -> list[int]:
    """The hub process each gate connects to: each zone's gates alternate over the processes
    (so an admit's fan-out crosses processes)."""
    per_zone: dict[tuple[int, ...], int] = {}
    out = []
    for gid, _t in ids:
        key = tuple(hub.gate_zones.get(gid, []))
        n = per_zone.get(key, 0)
        per_zone[key] = n + 1
        out.append(n % procs)
    return out


async def _drive_ws(hub: Hub, args: argparse.Namespace, tickets: int, cluster: Any = None,
                    root: Path | None = None) -> dict[str, Any]:
    procs = len(hub.processes)
    _progress(f"enrolling {args.gates} gates")
    ids = await hub.enrol(args.gates)
    seq, epoch = hub.replica_position()
    urls = hub.ws_urls()
    where = _spread(hub, ids, procs)
    gates = [LightGate(gid, token, urls[p], cursor=seq, epoch=epoch, record_acks=True)
             for (gid, token), p in zip(ids, where, strict=True)]
    for g in gates:
        g.watch_admits = set()  # count the fanned-out admits; only the probes' are timed
    connect_s = await start_light_gates(gates)
    _progress(f"{args.gates} gates online over /ws/gate on {procs} hub process(es) in {connect_s:.1f} s")
    # the probes use tickets the entry mix never touches (the last 2 × probes)
    mix_tickets = max(1, tickets - 2 * args.probes)
    mixes = [EntryMix(g.name, i, args.gates, mix_tickets, admit_ratio=args.admit_ratio) for i, g in enumerate(gates)]
    acked0 = sum(g.acked for g in gates)
    fanned0 = sum(g.remote_admits for g in gates)
    pids = hub.pids
    hub_cpu0, self_cpu0, pg_cpu0 = sum(cpu_s(p) for p in pids), self_cpu_s(), _pg_cpu(cluster)
    start = time.perf_counter()
    stop = start + args.duration
    interval = args.gates / args.rate if args.rate > 0 else 0.0
    spies = _start_profiles(pids, args.duration, root) if args.profile else []

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
                      hub_cpu=sum(cpu_s(p) for p in pids) - hub_cpu0, self_cpu=self_cpu_s() - self_cpu0,
                      fanned=sum(g.remote_admits for g in gates) - fanned0, pg_cpu=_pg_cpu(cluster) - pg_cpu0)

    revocation_ms: list[float] = []
    fanout_ms: list[float] = []

    async def probes() -> None:
        """Cross-process revocations and admits, spread over the window, timed to every gate."""
        if not args.probes:
            return
        step = args.duration / (args.probes + 1)
        peers = hub.zone_peers(gates) or list(gates)
        clients = [p.admin_client() for p in hub.processes]
        try:
            for k in range(args.probes):
                await asyncio.sleep(max(0.0, start + step * (k + 1) - time.perf_counter()))
                # an admit at a gate of zone 1, timed to the zone's gates on the other processes
                src = peers[k % len(peers)]
                src_proc = where[gates.index(src)]
                others = [g for g in peers if g is not src and (procs == 1 or where[gates.index(g)] != src_proc)]
                tid = tickets - k
                for g in others:
                    assert g.watch_admits is not None
                    g.watch_admits.add(tid)
                t = time.perf_counter()
                src.admit(tid)
                # a revocation through another process than the admitting gate's, timed to every gate
                rid = tickets - args.probes - k
                t_rev = time.perf_counter()
                r = await clients[(src_proc + 1) % procs].post(f"/api/v1/tickets/{rid}/revoke")
                r.raise_for_status()
                await until(lambda tid=tid, others=others: all(tid in g.admit_at for g in others), 30, "fan-out")
                fanout_ms.extend((g.admit_at[tid] - t) * 1000 for g in others)
                await until(lambda rid=rid: all(rid in g.revoked_at for g in gates), 30, "revocation")
                revocation_ms.extend((g.revoked_at[rid] - t_rev) * 1000 for g in gates)
        finally:
            for c in clients:
                await c.aclose()

    mode = f"paced at {args.rate:,.0f}/s" if interval else f"closed loop, {args.batch} entries outstanding each"
    _progress(f"{args.gates} gates sending for {args.duration:.0f} s ({mode})")
    await asyncio.gather(meter(), probes(), *(paced(g, mix, k) if interval else closed(g, mix)
                                              for k, (g, mix) in enumerate(zip(gates, mixes, strict=True))))
    elapsed, acked, hub_cpu = window["elapsed"], int(window["acked"]), window["hub_cpu"]
    self_cpu, fanned = window["self_cpu"], window["fanned"]
    handed = sum(len(g.journal) for g in gates)
    deadline = time.perf_counter() + SETTLE_S
    while sum(g.acked for g in gates) < handed and time.perf_counter() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    unacked = handed - sum(g.acked for g in gates)
    hub_rss = sum(rss_mb(p) for p in pids)
    profile = await asyncio.to_thread(_finish_profiles, spies) if spies else {}
    for g in gates:
        await g.stop()
    latencies = [x for g in gates for x in g.ack_latencies_s]
    _progress(f"{acked:,} entries acked in {elapsed:.1f} s: {acked / elapsed:,.0f}/s; hub CPU {hub_cpu:.1f} s"
              f" over {procs} process(es)")
    out = {
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
    if cluster is not None:
        out["postgres_cpu_s"] = round(window["pg_cpu"], 2)
        out["postgres_cpu_ratio"] = round(window["pg_cpu"] / elapsed, 3)
    if args.probes:
        out.update({"probes_count": args.probes,
                    "fanout_p50_ms": round(pct(fanout_ms, 0.5), 2), "fanout_p99_ms": round(pct(fanout_ms, 0.99), 2),
                    "revocation_p50_ms": round(pct(revocation_ms, 0.5), 2),
                    "revocation_p99_ms": round(pct(revocation_ms, 0.99), 2)})
    out.update(profile)
    return out


def _pg_cpu(cluster: Any) -> float:
    """CPU seconds of the PostgreSQL server: the postmaster and its live children."""
    if cluster is None:
        return 0.0
    try:
        master = int((cluster.data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended between the listing and the read: nothing to count
            continue
        pid = int(stat.parent.name)
        if pid == master or int(fields[1]) == master:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


#: where a sample's innermost Python frame lives -> the share it is counted in
PROFILE_KINDS = (
    ("db_driver", ("psycopg", "sqlalchemy", "sqlite3", "aiosqlite")),
    ("store", ("/hub/store/", "/hub/db.py", "/hub/importer.py")),
    ("feed", ("/hub/feed.py", "/hub/dashboard.py")),
    ("protocol", ("/sync/",)),
    ("transport", ("websockets", "uvicorn", "starlette", "fastapi", "h11", "httptools", "anyio")),
    ("encode", ("/json/", "msgspec", "pydantic")),
    ("domain", ("/tickets/",)),
    ("event_loop", ("asyncio", "selectors", "concurrent/futures", "threading.py")),
)


def _start_profiles(pids: list[int], duration: float, root: Path | None) -> list[tuple[Any, Path]]:
    import subprocess
    import sys

    spy = Path(sys.executable).with_name("py-spy")
    if not spy.exists():
        _progress("--profile: py-spy is not installed (pip install py-spy); no profile taken")
        return []
    out = []
    for pid in pids:
        path = (root or Path(tempfile.gettempdir())) / f"profile-{pid}.txt"
        proc = subprocess.Popen([str(spy), "record", "--pid", str(pid), "--duration", str(max(1, int(duration))),
                                 "--rate", "200", "--format", "raw", "--nonblocking", "--output", str(path)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        out.append((proc, path))
    return out


def _finish_profiles(spies: list[tuple[Any, Path]]) -> dict[str, Any]:
    """Where the hub processes' samples were: a share per kind of code, and the top functions."""
    from collections import Counter

    kinds: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    for proc, path in spies:
        try:
            _out, err = proc.communicate(timeout=120)
        except Exception:
            proc.kill()
            continue
        if proc.returncode != 0 or not path.exists():
            _progress(f"py-spy failed ({proc.returncode}): {err.decode(errors='replace')[-300:]}")
            continue
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            frames = stack.split(";")
            leaf = frames[-1]
            kind = "other"
            for frame in reversed(frames[1:]):
                hit = next((k for k, needles in PROFILE_KINDS if any(n in frame for n in needles)), None)
                if hit:
                    kind = hit
                    break
            kinds[kind] += int(count)
            leaves[leaf] += int(count)
    total = sum(kinds.values())
    if not total:
        return {}
    for leaf, n in leaves.most_common(12):
        _progress(f"profile: {100 * n / total:5.1f} %  {leaf}")
    return {"profile_samples_count": total,
            **{f"hub_time_{k}_ratio": round(kinds[k] / total, 3) for k, _n in (*PROFILE_KINDS, ("other", ()))}}


async def _drive_http(hub: Hub, args: argparse.Namespace, tickets: int, cluster: Any = None,
                      root: Path | None = None) -> dict[str, Any]:
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
