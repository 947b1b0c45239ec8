"""Fixtures for tests against a real pretix (see :mod:`gatehouse.peers.pretix` for the server).

One pretix per test session, started from the migrated template (installed and migrated on
first use: minutes, once per machine). Two events, both made through pretix's API:
``random`` (pretix's default random secrets) and ``signed`` (``pretix_sig1``), each with a
product with two variations, a second product, a quota and a check-in list.
"""
from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from firmware_bridge.sim import SimTurnstile
from gate_agent.agent import GateAgent
from gate_agent.config import GateConfig
from gate_agent.replica import Replica
from gatehouse.peers.pretix import PretixAPI, PretixServer, Product
from scanners.sim import SimScanner
from tests.conftest import eventually
from tickets.keys import KeyRing
from tickets.model import TicketRecord, Zone
from tickets.policy import EntryPolicy
from tickets.pretix import PretixEvent

#: generous: the first run on a fresh machine installs and migrates pretix inside the fixture
SETUP_TIMEOUT_S = 2400


@dataclass(frozen=True)
class PretixEventInfo:
    slug: str
    standing: Product  # two variations: North, South
    vip: Product  # no variations
    checkin_list: int


@dataclass
class PretixPeer:
    server: PretixServer
    api: PretixAPI
    random: PretixEventInfo
    signed: PretixEventInfo

    def order(self, event: PretixEventInfo, positions: list[tuple[int, int | None]]) -> dict[str, Any]:
        return self.api.create_order(event.slug, positions)


def _make_event(api: PretixAPI, slug: str) -> PretixEventInfo:
    api.create_event(slug, name=f"Integration cup ({slug})")
    standing = api.create_product(slug, "Standing", ["North", "South"])
    vip = api.create_product(slug, "VIP")
    api.create_quota(slug, [standing, vip], 100_000)
    return PretixEventInfo(slug, standing, vip, api.create_checkin_list(slug))


@pytest.fixture(scope="session")
def pretix_peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PretixPeer]:
    server = PretixServer(tmp_path_factory.mktemp("pretix")).start()
    try:
        api = server.api()
        random_event = _make_event(api, "random")
        signed_event = _make_event(api, "signed")
        server.set_secret_generator("signed", "pretix_sig1")
        yield PretixPeer(server, api, random_event, signed_event)
        api.close()
    finally:
        server.stop()


# --------------------------------------------------------------------------- a gate without a hub
NORTH, SOUTH = 1, 2
SINGLE = 1


@dataclass
class StandaloneGate:
    """A real gate agent (simulated scanner and turnstile) whose replica a test fills directly,
    as the hub's sync would: for what the hub does not send yet (pretix keys, barcode keys)."""

    agent: GateAgent
    scanner: SimScanner
    turnstile: SimTurnstile

    async def scan(self, payload: str | bytes, *, walk: bool = True) -> dict[str, Any]:
        data = payload.encode() if isinstance(payload, str) else payload
        lane = self.agent.lane
        assert lane is not None and self.agent.journal is not None
        before, passed = self.agent.journal.last_seq, lane.counters["passed"]
        await self.scanner.feed(data)
        await eventually(lambda: any(r["seq"] > before for r in lane.recent), what="the decision")
        row = next(r for r in lane.recent if r["seq"] > before)
        if walk and str(row["reason"]).startswith("ADMIT"):
            await eventually(lambda: self.turnstile.action_names().count("release") > passed, what="the unlock")
            self.turnstile.walk_through()
            await eventually(lambda: lane.counters["passed"] > passed, what="the passage")
        return dict(row)


async def standalone_gate(data: Path, tickets: list[TicketRecord], pretix: PretixEvent | None) -> StandaloneGate:
    cfg = GateConfig(gate_id="N1", data_dir=data, passage_timeout_s=2.0, status_port=0)
    replica = await Replica.open(cfg.replica_path)
    await replica.set_event(
        event_id=1, keyring=KeyRing(),
        zones=[Zone(NORTH, "North", frozenset({"N1"})), Zone(SOUTH, "South", frozenset({"S1"}))],
        policies=[EntryPolicy.preset(SINGLE, "single")], pretix=pretix)
    await replica.apply_tickets(tickets, cursor=1, now=time.time())  # as if the hub's snapshot had arrived
    await replica.close()
    scanner, turnstile = SimScanner(), SimTurnstile()
    agent = GateAgent(cfg, scanner=scanner, turnstile=turnstile, serve_status=False)
    await agent.start()
    return StandaloneGate(agent, scanner, turnstile)


@pytest.fixture
async def gates() -> AsyncIterator[list[StandaloneGate]]:
    """Gates started by a test, stopped after it."""
    started: list[StandaloneGate] = []
    yield started
    for g in started:
        await g.agent.stop()
