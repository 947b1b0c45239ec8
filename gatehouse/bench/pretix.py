"""``gatehouse bench pretix``: the pretix connector against a real pretix on this machine.

Everything runs here, in one run, so the figures compare fairly:

1. a real pretix (:mod:`gatehouse.peers.pretix`: gunicorn, 2 workers, SQLite) gets an event with
   ``--positions`` admission positions, placed as orders through its own API (setup, not timed);
2. a real hub (``gatehouse hub serve``) is connected with ``gatehouse hub connect pretix``:
   ``import_rows_per_s`` is the initial import end to end (pretix's paged API, 50 orders a page,
   plus the hub's import), positions over seconds;
3. a real gate agent is online; ``--cancellations`` orders are cancelled in pretix one by one,
   with the hub told by pretix's own webhook. ``cancellation_to_gate_p99_ms``: from the hub
   committing the revocation (its change-log time) to the gate's replica holding it;
   ``pretix_cancel_to_gate_p99_ms``: from the cancel request to the gate, webhook included;
4. ``--uploads`` admits (scan + passed) are posted as one gate journal batch; ``upload_per_s``
   is how fast the hub's queue delivers them to pretix's check-in API (first claim to last done);
5. ``pretix_redeem_per_s``: pretix's own online check-in (``checkinrpc/redeem``), closed loop,
   one client, on fresh secrets of the same event — the rate a gate would get asking pretix
   for every scan.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from gatehouse.bench import percentile


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--positions", type=int, default=500, help="admission positions in pretix (setup)")
    p.add_argument("--per-order", type=int, default=10, help="positions per order")
    p.add_argument("--cancellations", type=int, default=10)
    p.add_argument("--uploads", type=int, default=200)
    p.add_argument("--redeems", type=int, default=60, help="pretix's own check-ins measured")
    p.add_argument("--workers", type=int, default=2, help="pretix gunicorn workers")


def _say(msg: str) -> None:
    print(f"[bench pretix] {msg}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> dict[str, Any]:
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    from gatehouse.peers.pretix import PretixServer, measure_redeem_rate
    from gatehouse.venue import ROOT, TIMEOUT_S, Venue, eventually
    from tickets.barcode import barcode_key
    from tickets.model import TicketStatus

    with tempfile.TemporaryDirectory(prefix="gatehouse-bench-pretix-") as tmp:
        root = Path(tmp)
        _say("starting pretix (installs and migrates on first use)")
        server = PretixServer(root / "pretix", workers=args.workers).start()
        venue = None
        try:
            api = server.api()
            slug = "bench"
            api.create_event(slug, name="Bench cup")
            standing = api.create_product(slug, "Standing", ["North", "South"])
            api.create_quota(slug, [standing], 1_000_000)
            clist = api.create_checkin_list(slug)
            north = standing.variations[0]
            total = args.positions + args.redeems
            _say(f"placing {total} positions in pretix (setup)")
            orders: list[dict[str, Any]] = []
            placed = 0
            while placed < total:
                n = min(args.per_order, total - placed)
                orders.append(api.create_order(slug, [(standing.item, north)] * n))
                placed += n
            redeem_secrets = [p["secret"] for o in orders for p in o["positions"]][-args.redeems:]

            venue = await Venue.create(root / "venue", tickets_per_zone=1)
            mapping = root / "mapping.toml"
            mapping.write_text(f'[[products]]\nitem = {standing.item}\nzone = "North"\n')
            _say("connecting the hub (initial import)")
            t0 = time.perf_counter()
            proc = await asyncio.to_thread(subprocess.run, [
                sys.executable, "-m", "gatehouse", "hub", "connect", "pretix", "--data", str(venue.hub.data),
                "--url", server.url, "--token", "-", "--organizer", server.organizer, "--event", slug,
                "--checkin-list", str(clist), "--mapping", str(mapping), "--poll-s", "600", "--retry-max-s", "2",
                "--hub-url", venue.hub.url], input=server.token + "\n", capture_output=True, text=True, cwd=ROOT)
            import_s = time.perf_counter() - t0
            if proc.returncode != 0:
                raise RuntimeError(f"gatehouse hub connect failed: {proc.stderr[-2000:]}")
            report = json.loads(proc.stdout)["import"]
            secret = next(line.split("://pretix:", 1)[1].split("@", 1)[0] for line in proc.stderr.splitlines()
                          if "/api/v1/connectors/pretix/webhook" in line)
            api.create_webhook(venue.hub.url.replace("://", f"://pretix:{secret}@") + "/api/v1/connectors/pretix/webhook")

            gate = await venue.add_gate("north-1", ["North"])
            await venue.online(gate)
            reader = gate.agent.reader
            assert reader is not None
            _say(f"{args.cancellations} cancellations through pretix's webhook")
            hub_to_gate: list[float] = []
            shop_to_gate: list[float] = []
            victims = [o for o in orders[:args.cancellations]]
            async with venue.hub.admin_client() as admin:
                since = int((await admin.get("/api/v1/event")).json()["current_seq"])
                for o in victims:
                    key = barcode_key(o["positions"][0]["secret"])
                    started = time.time()
                    await asyncio.to_thread(api.cancel_order, slug, o["code"])
                    def revoked(key: bytes = key) -> bool:
                        t = reader.ticket_by_barcode_key(key)
                        return t is not None and t.status is TicketStatus.REVOKED
                    await eventually(revoked, timeout=TIMEOUT_S * 3, what="the cancellation at the gate")
                    seen = time.time()
                    changes = (await admin.get("/api/v1/changes", params={"since": since, "limit": 10_000})).json()["changes"]
                    learned = [c["at"] for c in changes if c["kind"] == "ticket" and c["row"]["status"] == "revoked"
                               and c["row"].get("barcode_key") == key.hex()]
                    hub_to_gate.append(seen - learned[0])
                    shop_to_gate.append(seen - started)

                _say(f"{args.uploads} admits through the upload queue")
                upload_rows = await _post_admits(admin, venue, [p for o in orders[args.cancellations:]
                                                                for p in o["positions"]][:args.uploads])

                async def drained() -> list[dict[str, Any]] | None:
                    rows: list[dict[str, Any]] = []
                    after = 0
                    while True:
                        page = (await admin.get("/api/v1/connectors/pretix/uploads",
                                                params={"after": after, "limit": 1000})).json()
                        rows += page
                        if len(page) < 1000:
                            break
                        after = page[-1]["upload_id"]
                    mine = [r for r in rows if r["gate_id"] == upload_rows]
                    return mine if mine and all(r["status"] not in ("pending", "claimed") for r in mine) else None
                deadline = time.monotonic() + TIMEOUT_S * 30
                done_rows = None
                while done_rows is None and time.monotonic() < deadline:
                    await asyncio.sleep(0.5)
                    done_rows = await drained()
                if done_rows is None:
                    raise RuntimeError("the upload queue did not drain")
            ok = [r for r in done_rows if r["status"] == "done"]
            span = max(r["done_at"] for r in ok) - min(r["created_at"] for r in ok) if ok else 0.0

            _say(f"pretix's own check-in, {args.redeems} redeems")
            redeem = await measure_redeem_rate(server.url, server.organizer, server.token, redeem_secrets, clist,
                                               concurrency=1)
        finally:
            if venue is not None:
                await venue.close()
            server.stop()
    return {
        "positions_count": args.positions + args.redeems,
        "import_rows_per_s": round(int(report["created"]) / import_s, 1),
        "import_s": round(import_s, 2),
        "cancellation_to_gate_p50_ms": round(1000 * percentile(hub_to_gate, 50), 1),
        "cancellation_to_gate_p99_ms": round(1000 * percentile(hub_to_gate, 99), 1),
        "pretix_cancel_to_gate_p99_ms": round(1000 * percentile(shop_to_gate, 99), 1),
        "cancellations_count": len(hub_to_gate),
        "upload_per_s": round(len(ok) / span, 1) if span > 0 else 0.0,
        "uploads_count": len(ok),
        "uploads_refused_count": sum(r["status"] == "refused" for r in done_rows),
        "pretix_redeem_per_s": redeem["redeem_per_s"],
        "pretix_redeem_p50_ms": redeem["redeem_p50_ms"],
        "pretix_redeem_errors_count": redeem["errors_count"],
        "pretix_backend": redeem["backend"],
        "pretix_workers": args.workers,
        "load_average_1m": round(os.getloadavg()[0], 1),
    }


async def _post_admits(admin: httpx.AsyncClient, venue: Any, positions: list[dict[str, Any]]) -> str:
    """Enrol a gate and post one journal batch: an ONLINE admit and its passage per position."""
    from tickets.barcode import JOURNAL_KEY_PREFIX, barcode_key
    from tickets.entry import EntryKind, JournalEntry, Passage

    r = await admin.post("/api/v1/gates", json={"name": f"bench-{secrets.token_hex(2)}", "zones": [venue.zones["North"]]})
    r.raise_for_status()
    r = await admin.post("/api/v1/enroll", json={"token": r.json()["enrolment_token"]})
    r.raise_for_status()
    gate_id, token = r.json()["gate_id"], r.json()["token"]
    now = time.time()
    entries = []
    seq = 0
    for i, p in enumerate(positions):
        seq += 1
        raw = JOURNAL_KEY_PREFIX + barcode_key(p["secret"]).hex().encode()
        entries.append(JournalEntry(gate_id=gate_id, seq=seq, at=now + i * 0.001, kind=EntryKind.SCAN, reason="ADMIT",
                                    zone_id=venue.zones["North"], raw=raw).to_wire())
        seq += 1
        entries.append(JournalEntry(gate_id=gate_id, seq=seq, at=now + i * 0.001 + 0.5, kind=EntryKind.PASSAGE,
                                    ref_seq=seq - 1, passage=Passage.PASSED).to_wire())
    async with httpx.AsyncClient(base_url=venue.hub.url, headers={"Authorization": f"Bearer {token}"},
                                 timeout=120) as gate:
        for i in range(0, len(entries), 500):
            r = await gate.post(f"/api/v1/gates/{gate_id}/journal", json={"entries": entries[i:i + 500]})
            r.raise_for_status()
    return str(gate_id)
