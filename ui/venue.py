"""A small venue on one machine: a real hub (uvicorn on 127.0.0.1) and real gate agents
(simulated scanner and turnstile) synced to it over the real gate websocket.

Used by the browser tests (``tests/ui``) and by ``python -m ui.screenshots``. Everything
goes through the hub's public API, as an operator would: zones, a ticket import, tokens,
gate registration and enrolment; the gates take their replica from the hub's snapshot.

It differs from :class:`gatehouse.venue.Venue` (the harness of the demo, the benchmarks and
the integration tests) in one way: the hub runs inside this process (uvicorn on a thread),
so the page tests and screenshots can drive the gates' clock (:class:`VenueClock`). Its
waits and its timeout are the suite's own (``gatehouse.venue.eventually``, ``TIMEOUT_S``).
"""
from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from firmware_bridge.sim import SimTurnstile
from gate_agent.agent import GateAgent
from gate_agent.config import GateConfig
from gate_agent.enrolment import seed_replica
from gate_agent.sync_link import GateCredentials, SyncLink, attach_sync, fixed_delays
from gatehouse.venue import TIMEOUT_S, eventually, fetch_all
from hub.app import create_app
from hub.store import init_hub
from scanners.sim import SimScanner
from tickets.model import Direction
from tickets.reasons import Reason


class VenueClock:
    """The gates' clock: the real time plus an offset (the screenshots replay a past hour)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass
class VenueGate:
    gate_id: str
    name: str
    agent: GateAgent
    scanner: SimScanner
    turnstile: SimTurnstile
    link: SyncLink | None

    @property
    def screen_url(self) -> str:
        url = self.agent.status_url
        assert url is not None, "the gate's status server is not running"
        return url

    def recent_after(self, seq: int) -> dict[str, Any] | None:
        assert self.agent.lane is not None
        return next((r for r in self.agent.lane.recent if r["seq"] > seq), None)


@dataclass
class Venue:
    url: str
    data: Path
    admin: str
    supervisor: str = ""
    viewer: str = ""
    gates: dict[str, VenueGate] = field(default_factory=dict)
    zones: dict[str, int] = field(default_factory=dict)
    clock: VenueClock = field(default_factory=VenueClock)
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None
    _credentials: dict[int, str] = field(default_factory=dict)
    _tokens: dict[str, str] = field(default_factory=dict)

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token or self.admin}"}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=TIMEOUT_S)

    async def credential(self, ticket_id: int) -> str:
        """The signed QR text of a ticket, as printed on it."""
        if ticket_id not in self._credentials:
            async with self.client() as c:
                r = await c.get(f"/api/v1/tickets/{ticket_id}/credential")
                r.raise_for_status()
                self._credentials[ticket_id] = r.json()["text"]
        return self._credentials[ticket_id]

    async def scan(self, gate_id: str, ticket_id: int | None = None, *, raw: bytes | None = None,
                   walk: bool = True) -> dict[str, Any]:
        """Present a ticket at a gate and wait for its decision (and the passage, if ``walk``)."""
        gate = self.gates[gate_id]
        assert gate.agent.journal is not None and gate.agent.lane is not None
        payload = raw if raw is not None else (await self.credential(ticket_id or 0)).encode()
        before = gate.agent.journal.last_seq
        await gate.scanner.feed(payload)
        await until(lambda: gate.recent_after(before) is not None, f"the decision at {gate_id}")
        decision = gate.recent_after(before)
        assert decision is not None
        if walk and Reason(decision["reason"]).admits:
            await until(lambda: gate.turnstile.released is not None, f"the unlock at {gate_id}")
            passed = gate.agent.lane.counters.get("passed", 0)
            gate.turnstile.walk_through(Direction.IN)
            await until(lambda: gate.agent.lane.counters.get("passed", 0) > passed,  # type: ignore[union-attr]
                        f"the passage at {gate_id}")
        return decision

    async def hub_holds(self, gate_id: str) -> int:
        async with self.client() as c:
            r = await c.get("/api/v1/gates")
            return int(next(g["high_water"] for g in r.json() if g["gate_id"] == gate_id))

    async def synced(self, gate_id: str) -> None:
        """Wait until the hub holds everything the gate has journaled."""
        gate = self.gates[gate_id]
        assert gate.agent.journal is not None
        target = gate.agent.journal.last_seq
        deadline = time.monotonic() + TIMEOUT_S
        while await self.hub_holds(gate_id) < target:
            if time.monotonic() > deadline:
                raise TimeoutError(f"hub never caught up with gate {gate_id}'s journal (seq {target})")
            await asyncio.sleep(0.02)

    async def seed_manifest(self, gate_id: str, *, steward_id: str = "st1", pin: str = "2468",
                            name: str = "Sam Steward") -> int:
        """Give a gate the manifest of its zones (from the hub's tickets) and one steward."""
        from tickets.manifest import hash_pin, make_row

        gate = self.gates[gate_id]
        assert gate.agent.manifest is not None
        async with self.client() as c:
            info = (await c.get("/api/v1/gates")).json()
            zones_of_gate = next(g["zones"] for g in info if g["gate_id"] == gate_id)
            names = {z["zone_id"]: z["name"] for z in (await c.get("/api/v1/zones")).json()}
            found = await fetch_all(c, "/api/v1/tickets", {"number": "T", "limit": 1000})
            seq = (await c.get("/healthz")).json()["current_seq"]
        rows = [make_row(7, ticket_id=t["ticket_id"], number=t["number"], holder=t["holder"], zone_id=t["zone_id"],
                         zone_name=names.get(t["zone_id"], ""), seat=t["seat"], status=t["status"])
                for t in found if t["zone_id"] in zones_of_gate]
        await gate.agent.manifest.replace_all(rows, hub_seq=seq, generated_at=time.time())
        await gate.agent.manifest.put_steward(steward_id, name, hash_pin(pin))
        return len(rows)

    async def cut(self, gate_id: str) -> None:
        """Cut a gate's link to the hub (a network partition); it goes OFFLINE and keeps deciding."""
        gate = self.gates[gate_id]
        if gate.link is not None:
            await gate.link.close()
            gate.link = None
        await until(lambda: gate.agent.ladder.mode.value != "ONLINE", f"gate {gate_id} offline")

    async def reconnect(self, gate_id: str) -> None:
        gate = self.gates[gate_id]
        assert gate.link is None and self._tokens.get(gate_id)
        gate.link = await attach_sync(gate.agent, credentials=GateCredentials(gate_id, self._tokens[gate_id], self.url),
                                      reconnect_delays=fixed_delays(0.2))

    async def stop(self) -> None:
        for gate in self.gates.values():
            if gate.link is not None:
                await gate.link.close()
            await gate.agent.stop()
        self.gates.clear()
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            await asyncio.to_thread(self._thread.join, TIMEOUT_S)


async def until(condition: Callable[[], object], what: str, timeout: float = TIMEOUT_S) -> None:
    """:func:`gatehouse.venue.eventually` with the browser tests' argument order."""
    await eventually(condition, timeout=timeout, what=what)


def serve_hub(data: Path) -> tuple[str, uvicorn.Server, threading.Thread]:
    """uvicorn on a socket bound before it starts, so clients just queue until it is up."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(256)
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(data), log_level="warning", lifespan="on", access_log=False,
                            timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="hub")
    thread.start()
    return f"http://127.0.0.1:{port}", server, thread


def ticket_csv(count: int, zones: Sequence[str]) -> str:
    """Tickets 1..count, round robin over the zones: number ``T{100000+i}``, a holder, a seat."""
    lines = ["number,zone,holder,seat"]
    for i in range(count):
        zone = zones[i % len(zones)]
        lines.append(f"T{100000 + i},{zone},Fan {i + 1},{chr(65 + i % 20)}{i // 20 + 1}")
    return "\n".join(lines) + "\n"


async def start_venue(root: Path, *, zones: Sequence[tuple[str, int]] = (("North stand", 400), ("South stand", 300)),
                      gates: Sequence[tuple[str, str]] = (("North 1", "North stand"), ("South 1", "South stand")),
                      tickets: int = 200, event_name: str = "Cup final", passage_timeout_s: float = 2.0,
                      serve_status: bool = True) -> Venue:
    """Start a hub in ``root/hub`` and one gate agent per ``(name, zone)``, all synced."""
    data = root / "hub"
    admin = init_hub(data, event_id=7, name=event_name, valid_from=time.time() - 6 * 3600)
    url, server, thread = serve_hub(data)
    venue = Venue(url, data, admin, _server=server, _thread=thread)
    try:
        async with venue.client() as c:
            for name, capacity in zones:
                r = await c.post("/api/v1/zones", json={"name": name, "capacity": capacity})
                r.raise_for_status()
                venue.zones[name] = r.json()["zone_id"]
            r = await c.post("/api/v1/tickets/import?format=csv", content=ticket_csv(tickets, [z for z, _ in zones]),
                             headers={"content-type": "text/csv"})
            r.raise_for_status()
            for role in ("supervisor", "viewer"):
                r = await c.post("/api/v1/tokens", json={"name": f"{role} on duty", "role": role})
                r.raise_for_status()
                setattr(venue, role, r.json()["token"])
            for name, zone in gates:
                r = await c.post("/api/v1/gates", json={"name": name, "zones": [venue.zones[zone]]})
                r.raise_for_status()
                r = await c.post("/api/v1/enroll", json={"token": r.json()["enrolment_token"]})
                r.raise_for_status()
                body = r.json()
                venue._tokens[body["gate_id"]] = body["token"]
                venue.gates[body["gate_id"]] = await _start_gate(
                    root, url, body, name, clock=venue.clock, passage_timeout_s=passage_timeout_s,
                    serve_status=serve_status)
            seq = (await c.get("/healthz")).json()["current_seq"]
        for gate in venue.gates.values():
            await until(_synced_and_online(gate, seq), f"gate {gate.gate_id} synced and ONLINE")
    except BaseException:
        await venue.stop()
        raise
    return venue


def _synced_and_online(gate: VenueGate, seq: int) -> Callable[[], bool]:
    return lambda: gate.agent.cursor() >= seq and gate.agent.ladder.mode.value == "ONLINE"


async def _start_gate(root: Path, url: str, enrolment: dict[str, Any], name: str, *, clock: VenueClock,
                      passage_timeout_s: float, serve_status: bool) -> VenueGate:
    gate_id = enrolment["gate_id"]
    gdir = root / "gates" / gate_id
    gdir.mkdir(parents=True, exist_ok=True)
    cfg = GateConfig(gate_id=gate_id, data_dir=gdir, hub_url=url, passage_timeout_s=passage_timeout_s,
                     status_port=0)
    await seed_replica(cfg.replica_path, enrolment["event"])
    scanner, turnstile = SimScanner(), SimTurnstile()
    agent = GateAgent(cfg, scanner=scanner, turnstile=turnstile, clock=clock, serve_status=serve_status)
    await agent.start()
    link = await attach_sync(agent, credentials=GateCredentials(gate_id, enrolment["token"], url),
                             reconnect_delays=fixed_delays(0.2))
    return VenueGate(gate_id, name, agent, scanner, turnstile, link)
