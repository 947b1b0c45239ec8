"""A whole venue on one machine: a real hub process (``gatehouse hub serve`` under uvicorn on
127.0.0.1) and real gate agents (simulated scanner and turnstile) over real websockets.

Used by ``gatehouse demo``, the drill and load benchmarks, and the integration tests. The
hub is a child process so a drill (or a test) can kill it with SIGKILL and start it again.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from firmware_bridge.sim import SimTurnstile
from gate_agent.agent import GateAgent
from gate_agent.config import GateConfig
from gate_agent.sync_link import GateCredentials, SyncLink, attach_sync
from hub.store import init_hub
from scanners.sim import SimScanner
from tickets.delays import fixed
from tickets.reasons import Reason

log = logging.getLogger(__name__)

#: every wait in a venue scales from this (GATEHOUSE_TEST_TIMEOUT raises it on slow machines)
TIMEOUT_S = float(os.environ.get("GATEHOUSE_TEST_TIMEOUT", "10"))


async def eventually(condition: Callable[[], object], timeout: float = TIMEOUT_S, what: str = "condition",
                     step_s: float = 0.005) -> None:
    """Wait (yielding to the loop) until ``condition()`` is truthy; fail after ``timeout``.

    The one wait of the suite, the demo and the benchmarks (which pass a smaller ``step_s``
    when they time what they wait for). Raises TimeoutError naming ``what``.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError(f"timed out after {timeout:.1f} s waiting for {what}")
        await asyncio.sleep(step_s)

ROOT = Path(__file__).resolve().parents[1]  # the checkout holding this package
EVENT_ID = 4242


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fast_delays() -> Iterator[float]:
    """Reconnect quickly in tests (production uses exponential backoff with jitter)."""
    return fixed(0.1)


async def fetch_all(client: httpx.AsyncClient, path: str, params: dict[str, Any] | None = None) -> list[Any]:
    """Every row of a paged list endpoint: follows ``Link: <…>; rel="next"`` until the last page."""
    out: list[Any] = []
    r = await client.get(path, params=params)
    while True:
        r.raise_for_status()
        out += r.json()
        nxt = r.links.get("next", {}).get("url")
        if not nxt:
            return out
        r = await client.get(nxt)


@dataclass
class HubProcess:
    data: Path
    port: int
    admin: str
    proc: subprocess.Popen[bytes] | None = None
    #: extra ``gatehouse hub serve`` arguments, e.g. ["--protocol", "1-1"] for an older hub
    extra_args: list[str] = field(default_factory=list)
    #: several hub processes on one PostgreSQL share a data directory: each logs to its own file
    name: str = "hub"
    #: extra environment (``GATEHOUSE_DATABASE_URL`` to point one process elsewhere)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def log_path(self) -> Path:
        return self.data / ("hub-test.log" if self.name == "hub" else f"{self.name}-test.log")

    def sibling(self, name: str, port: int | None = None) -> HubProcess:
        """Another hub process serving the same hub (its database must be PostgreSQL)."""
        return HubProcess(self.data, port or free_port(), self.admin, extra_args=list(self.extra_args), name=name,
                          env=dict(self.env))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gatehouse", "hub", "serve", "--data", str(self.data), "--port", str(self.port),
             *self.extra_args],
            cwd=ROOT, stdout=log, stderr=log, env={**os.environ, **self.env},
        )
        deadline = time.monotonic() + TIMEOUT_S * 3
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"hub exited: {self.log_path.read_text()[-2000:]}")
            time.sleep(0.05)
        self.kill()  # never leave a half-started hub behind (it would outlive the test run)
        raise RuntimeError(f"hub did not start within {TIMEOUT_S * 3:.0f} s: {self.log_path.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, exactly like a crash."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        pid = self.data / "hub.pid"
        if pid.exists() and self.name == "hub":
            pid.unlink()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill()

    async def astart(self) -> None:
        """:meth:`start` off the event loop, so gates in this loop keep running meanwhile."""
        await asyncio.to_thread(self.start)

    async def agatehouse(self, *args: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(self.gatehouse, *args)

    def admin_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, headers={"Authorization": f"Bearer {self.admin}"},
                                 timeout=TIMEOUT_S)

    def gatehouse(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "gatehouse", "hub", *args, "--data", str(self.data)],
                              cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S * 3,
                              env={**os.environ, **self.env})


@dataclass
class Gate:
    gate_id: str
    agent: GateAgent
    scanner: SimScanner
    turnstile: SimTurnstile
    link: SyncLink | None = None
    walk: bool = True  # a simulated fan walks through every unlock

    async def scan(self, payload: bytes | str, *, walk: bool | None = None) -> str:
        """Present a code and return the reason the gate decided (the fan walks through an admit)."""
        walk = self.walk if walk is None else walk
        if isinstance(payload, str):
            payload = payload.encode()
        lane = self.agent.lane
        assert lane is not None and self.agent.journal is not None
        before = self.agent.journal.last_seq
        passed_before, not_passed_before = lane.counters["passed"], lane.counters["not_passed"]
        await self.scanner.feed(payload)
        await eventually(lambda: any(r["seq"] > before for r in lane.recent), what=f"decision at {self.gate_id}")
        reason = next(r["reason"] for r in lane.recent if r["seq"] > before)
        if Reason(reason).admits and walk:
            await eventually(lambda: self.turnstile.action_names().count("release") > passed_before
                             or self.turnstile.emergency, what="the unlock")
            self.turnstile.walk_through()
            await eventually(lambda: lane.counters["passed"] > passed_before
                             or lane.counters["not_passed"] > not_passed_before, what="the passage")
            if lane.counters["passed"] <= passed_before:
                # the lane's passage window closed before the fan walked (a loaded machine): the
                # gate journals it as not passed, as it would a fan who turned back
                log.warning("%s: the turnstile relocked before the fan walked through (passage timeout"
                            " %.1f s): recorded as not passed", self.gate_id, self.agent.config.passage_timeout_s)
        return str(reason)


@dataclass
class Venue:
    root: Path
    hub: HubProcess
    zones: dict[str, int] = field(default_factory=dict)
    gates: dict[str, Gate] = field(default_factory=dict)
    tickets: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    async def create(cls, root: Path, *, zones: dict[str, int] | None = None, tickets_per_zone: int = 50,
                     port: int | None = None, event_name: str = "Integration cup",
                     hub_args: list[str] | None = None, database: str | None = None) -> Venue:
        """``database``: a PostgreSQL URL for the hub (default: SQLite in the data directory)."""
        data = root / "hub"
        admin = init_hub(data, event_id=EVENT_ID, name=event_name,
                         valid_from=time.time() - 3600, valid_until=time.time() + 86_400, database=database)
        hub = HubProcess(data, port or free_port(), admin, extra_args=list(hub_args or []))
        await hub.astart()
        venue = cls(root, hub)
        async with hub.admin_client() as c:
            for name, capacity in (zones or {"North": 1000, "South": 1000}).items():
                r = await c.post("/api/v1/zones", json={"name": name, "capacity": capacity})
                r.raise_for_status()
                venue.zones[name] = r.json()["zone_id"]
            rows = [{"number": f"{zone[:1]}{i:05d}", "zone": zone, "holder": f"Fan {zone} {i}",
                     "seat": f"{zone[:1]}-{i // 20}-{i % 20}"} for zone in venue.zones for i in range(tickets_per_zone)]
            r = await c.post("/api/v1/tickets/import?format=json", json=rows)
            r.raise_for_status()
            venue.tickets = await fetch_all(c, "/api/v1/tickets", {"limit": 1000})
            if len(venue.tickets) != len(rows):
                raise RuntimeError(f"the hub lists {len(venue.tickets)} tickets, {len(rows)} were imported")
        return venue

    def ticket(self, number: str) -> dict[str, Any]:
        return next(t for t in self.tickets if t["number"] == number)

    async def credential(self, number: str) -> str:
        async with self.hub.admin_client() as c:
            r = await c.get(f"/api/v1/tickets/{self.ticket(number)['ticket_id']}/credential")
            r.raise_for_status()
            body = r.json()
            return str(body["text"])

    async def add_gate(self, name: str, zones: list[str], *, passage_timeout_s: float = 1.0,
                       status_port: int | None = None, hub_url: str | None = None,
                       protocol: tuple[int, int] | None = None, manifest_refresh_s: float = 300.0,
                       hub_urls: list[str] | None = None, clock: Callable[[], float] | None = None) -> Gate:
        """Register, enrol and start a gate. ``hub_url`` routes its sync link elsewhere (a
        :class:`gatehouse.netsim.LinkCutter`, another hub process); ``hub_urls`` gives it several
        hub addresses to fail over between; ``protocol`` narrows the versions it speaks;
        ``clock`` is the gate's clock (a replay stamps its scans in the past)."""
        async with self.hub.admin_client() as c:
            r = await c.post("/api/v1/gates", json={"name": name, "zones": [self.zones[z] for z in zones]})
            r.raise_for_status()
            enrolment = r.json()["enrolment_token"]
            r = await c.post("/api/v1/enroll", json={"token": enrolment})
            r.raise_for_status()
            body = r.json()
        gate_id, token = body["gate_id"], body["token"]
        from gate_agent.enrolment import save_enrolment, seed_replica

        data = self.root / f"gate-{gate_id}"
        link_url = hub_url or self.hub.url
        save_enrolment(data, link_url, body)
        await seed_replica(data / "replica.sqlite3", body["event"])
        cfg = GateConfig(gate_id=gate_id, data_dir=data, passage_timeout_s=passage_timeout_s,
                         status_port=status_port or 0, protocol=protocol, manifest_refresh_s=manifest_refresh_s,
                         hub_urls=tuple(hub_urls or ()))
        return await self._start_gate(cfg, GateCredentials(gate_id, token, link_url),
                                      serve_status=status_port is not None, clock=clock)

    async def _start_gate(self, cfg: GateConfig, creds: GateCredentials, *, serve_status: bool = False,
                          clock: Callable[[], float] | None = None) -> Gate:
        scanner, turnstile = SimScanner(), SimTurnstile()
        agent = GateAgent(cfg, scanner=scanner, turnstile=turnstile, serve_status=serve_status,
                          **({"clock": clock} if clock is not None else {}))
        await agent.start()
        link = await attach_sync(agent, credentials=creds, reconnect_delays=fast_delays)
        gate = Gate(cfg.gate_id, agent, scanner, turnstile, link)
        self.gates[cfg.gate_id] = gate
        return gate

    async def restart_gate(self, gate: Gate, while_stopped: Callable[[GateConfig], object] | None = None) -> Gate:
        """Stop a gate and start it again (an upgrade); ``while_stopped`` runs in between."""
        await self.stop_gate(gate)
        if while_stopped is not None:
            while_stopped(gate.agent.config)
        creds = GateCredentials.load(gate.agent.config.credentials_path)
        assert creds is not None
        return await self._start_gate(gate.agent.config, creds)

    async def stop_gate(self, gate: Gate) -> None:
        if gate.link is not None:
            await gate.link.close()
        await gate.agent.stop()

    async def online(self, *gates: Gate) -> None:
        for g in gates or tuple(self.gates.values()):
            await eventually(lambda g=g: g.agent.ladder.mode.value == "ONLINE", timeout=TIMEOUT_S * 2,
                             what=f"{g.gate_id} ONLINE")

    async def hub_count(self, gate_id: str) -> int:
        async with self.hub.admin_client() as c:
            return len(await fetch_all(c, "/api/v1/validations", {"gate_id": gate_id, "limit": 10_000}))

    async def close(self) -> None:
        for g in list(self.gates.values()):
            await self.stop_gate(g)
        self.hub.stop()


async def settle() -> None:
    await asyncio.sleep(0)
