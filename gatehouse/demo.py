"""``gatehouse demo``: a whole venue on this machine — a hub, simulated gates, fans, and the
live supervisor dashboard.

Everything is real except the hardware: the hub is ``gatehouse hub serve`` in its own
process, each gate is a full gate agent (replica, journal, sync over websockets, staff
screen) with a simulated scanner and turnstile, and simulated fans walk up to the gates.
Now and then something goes wrong (a scanner is unplugged, a ticket is cancelled at the
hub) so the dashboard has something to show.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import shutil
import signal
import sys
import time
from pathlib import Path

from sync.tasks import spawn

log = logging.getLogger(__name__)

ZONES = {"North": 15_000, "South": 15_000, "East": 12_000, "West": 12_000}
MARKER = ".gatehouse-demo"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=Path("demo-data"),
                        help="working directory for the demo's hub and gates (recreated each run)")
    parser.add_argument("--port", type=int, default=8080, help="the hub's port (dashboard)")
    parser.add_argument("--gate-port", type=int, default=8081, help="first gate staff screen port")
    parser.add_argument("--gates-per-zone", type=int, default=2)
    parser.add_argument("--tickets-per-zone", type=int, default=400)
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds (default: Ctrl-C)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_demo(args))
    except KeyboardInterrupt:
        return 0


def _prepare(data: Path) -> None:
    if data.exists():
        if not (data / MARKER).exists():
            raise SystemExit(f"{data} exists and is not a demo directory; choose another --data")
        shutil.rmtree(data)
    data.mkdir(parents=True)
    (data / MARKER).write_text("created by gatehouse demo; deleted by the next demo run\n")


async def _demo(args: argparse.Namespace) -> int:
    from gatehouse.fans import Crowd, keep_arriving
    from gatehouse.venue import Venue

    _prepare(args.data)
    say = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    say("gatehouse demo: starting the hub, importing tickets…")
    venue = await Venue.create(args.data.resolve(), zones=ZONES, tickets_per_zone=args.tickets_per_zone,
                               port=args.port, event_name="gatehouse demo — Cup final")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    tasks: list[asyncio.Task[None]] = []
    try:
        async with venue.hub.admin_client() as c:
            r = await c.post("/api/v1/tokens", json={"name": "demo control room", "role": "supervisor"})
            r.raise_for_status()
            supervisor = r.json()["token"]
        port = args.gate_port
        zone_of: dict[str, str] = {}
        for zone in ZONES:
            for i in range(1, args.gates_per_zone + 1):
                gate = await venue.add_gate(f"{zone} {i}", [zone], passage_timeout_s=4.0, status_port=port)
                zone_of[gate.gate_id] = zone
                port += 1
        say("gatehouse demo: gates enrolled; waiting for them to sync…")
        await venue.online()
        crowd = await Crowd.gather(venue)
        say("")
        say(f"  Supervisor dashboard:  {venue.hub.url}/#token={supervisor}")
        for gate in venue.gates.values():
            say(f"  Gate {gate.gate_id:<10} staff screen:  {gate.agent.status_url}/")
        say(f"  Admin token (API):     {venue.hub.admin}")
        say("")
        say("  Fans are arriving. Press Ctrl-C to stop." if args.duration is None
            else f"  Running for {args.duration:.0f} s.")
        rng = random.Random(7)
        for gate in venue.gates.values():
            tasks.append(spawn(keep_arriving(crowd, gate, zone_of[gate.gate_id],
                                             every_s=lambda: rng.uniform(0.5, 2.5), stop=stop), f"fans-{gate.gate_id}"))
        tasks.append(spawn(_incidents(venue, rng, stop), "incidents"))
        if args.duration is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), args.duration)
        else:
            await stop.wait()
    finally:
        stop.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await venue.close()
    s = crowd.stats if "crowd" in locals() else None
    if s is not None:
        say(f"gatehouse demo: {s.decisions} decisions: " + ", ".join(f"{k} {v}" for k, v in sorted(s.by_reason.items())))
    return 0


async def _incidents(venue, rng: random.Random, stop: asyncio.Event) -> None:  # type: ignore[no-untyped-def]
    """Every so often, something for the control room to see."""
    async def pause(seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
        return stop.is_set()

    while not await pause(40):
        gate = rng.choice(list(venue.gates.values()))
        log.warning("demo incident: scanner unplugged at %s", gate.gate_id)
        gate.scanner.fault("camera unplugged")
        if await pause(15):
            return
        gate.scanner.recover()
        if await pause(30):
            return
        ticket = rng.choice(venue.tickets)
        async with venue.hub.admin_client() as c:
            await c.post(f"/api/v1/tickets/{ticket['ticket_id']}/revoke", json={"reason": "demo: refunded"})
        log.warning("demo incident: ticket %s cancelled at the hub at %s", ticket["number"], time.strftime("%X"))
