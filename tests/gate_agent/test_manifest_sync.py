"""A real gate agent pulling its manifest and stewards from a real hub (uvicorn on 127.0.0.1).

The hub runs on its own thread (tests.hub.conftest.start_hub); the gate agent runs in the
test's event loop with a simulated scanner and turnstile and real SQLite files, connected
by the real sync link (websocket) and the real manifest puller (HTTP).
"""
from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from firmware_bridge.sim import SimTurnstile
from gate_agent.agent import GateAgent
from gate_agent.config import GateConfig, config_from_dict, load_config
from gate_agent.manifest import ManifestStore
from gate_agent.manifest_sync import ManifestFetchError, ManifestSync
from gate_agent.modes import Mode
from gate_agent.sync_link import GateCredentials, SyncLink, attach_sync, fixed_delays
from hub.store import init_hub
from scanners.sim import SimScanner
from tests.conftest import TIMEOUT_S, eventually
from tests.hub.conftest import Hub, start_hub
from tickets.entry import EntryKind
from tickets.errors import ConfigError
from tickets.model import Direction

#: tickets per zone in the test event (small: the 60,000-row path is the hub's benchmark)
PER_ZONE = 30


@dataclass
class Venue:
    hub: Hub
    admin: httpx.Client
    zones: dict[str, int]

    def gate(self, name: str, zones: list[str]) -> GateCredentials:
        r = self.admin.post("/api/v1/gates", json={"name": name, "zones": [self.zones[z] for z in zones]})
        assert r.status_code == 200, r.text
        with self.hub.client() as anon:
            body = anon.post("/api/v1/enroll", json={"token": r.json()["enrolment_token"]}).json()
        return GateCredentials(body["gate_id"], body["token"], self.hub.url)

    def steward(self, steward_id: str, name: str, pin: str) -> None:
        r = self.admin.post("/api/v1/stewards", json={"steward_id": steward_id, "name": name, "pin": pin,
                                                      "replace": True})
        assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Venue]:
    data = tmp_path_factory.mktemp("hub")
    token = init_hub(data, event_id=11, name="Manifest Derby")
    hub = start_hub(data, token)
    admin = hub.client(token)
    zones = {name: int(admin.post("/api/v1/zones", json={"name": name}).json()["zone_id"])
             for name in ("North", "South")}
    lines = [f"{zone[0]}{i:04d},{zone},single,Fan {zone} {i}" for zone in zones for i in range(PER_ZONE)]
    r = admin.post("/api/v1/tickets/import", content=("number,zone,policy,holder\n" + "\n".join(lines)).encode())
    assert r.status_code == 200 and not r.json()["errors"], r.text
    yield Venue(hub, admin, zones)
    admin.close()
    hub.stop()


@dataclass
class RunningGate:
    agent: GateAgent
    link: SyncLink
    turnstile: SimTurnstile
    creds: GateCredentials

    @property
    def puller(self) -> ManifestSync:
        assert self.link.manifest_sync is not None
        return self.link.manifest_sync


@pytest.fixture
async def gate_factory(tmp_path: Path) -> AsyncIterator[object]:
    running: list[RunningGate] = []

    async def make(creds: GateCredentials, *, refresh_s: float = 300.0) -> RunningGate:
        cfg = GateConfig(gate_id=creds.gate_id, data_dir=tmp_path / creds.gate_id, status_port=0,
                         passage_timeout_s=0.5, manifest_refresh_s=refresh_s)
        turnstile = SimTurnstile()
        agent = GateAgent(cfg, scanner=SimScanner(), turnstile=turnstile, serve_status=False)
        await agent.start()
        link = await attach_sync(agent, credentials=creds, reconnect_delays=fixed_delays(0.05), manifest_retry_s=0.05)
        assert link is not None
        g = RunningGate(agent, link, turnstile, creds)
        running.append(g)
        return g

    yield make
    for g in running:
        await g.link.close()
        await g.agent.stop()


async def test_gate_pulls_its_zones_manifest_when_the_link_comes_online(venue: Venue, gate_factory) -> None:  # type: ignore[no-untyped-def]
    g = await gate_factory(venue.gate("Pull North", ["North"]))
    result = await asyncio.wait_for(g.puller.wait_refreshed(1), TIMEOUT_S)
    assert result.downloaded and result.rows == PER_ZONE
    store = g.agent.manifest
    assert store is not None
    info = await store.info()
    assert (info.rows, info.hub_seq) == (PER_ZONE, result.hub_seq)
    (hit,) = await store.search("N0007")
    assert hit.row.holder == "Fan North 7"
    assert await store.search("S0007") == []  # another zone's ticket is not on this gate's manifest


async def test_a_steward_added_on_the_hub_can_admit_by_hand_at_the_gate_in_manifest_mode(
        venue: Venue, gate_factory) -> None:  # type: ignore[no-untyped-def]
    g = await gate_factory(venue.gate("Steward North", ["North"]), refresh_s=0.2)
    await asyncio.wait_for(g.puller.wait_refreshed(1), TIMEOUT_S)
    venue.steward("ST-91", "Morgan Steward", "7351")
    before = g.puller.refreshes
    await asyncio.wait_for(g.puller.wait_refreshed(before + 1), TIMEOUT_S)  # the periodic refresh
    assert g.agent.manifest is not None and "ST-91" in await g.agent.manifest.steward_ids()
    second = await asyncio.wait_for(g.puller.wait_refreshed(before + 2), TIMEOUT_S)
    assert not second.downloaded  # same hub seq: rows are not downloaded again

    await g.agent.set_staff_manifest(True)
    assert g.agent.ladder.mode is Mode.MANIFEST
    refused = await g.agent.manual_admit(typed="N0012", steward_id="ST-91", pin="0000")
    assert not refused.admitted
    ok = await g.agent.manual_admit(typed="N0012", steward_id="ST-91", pin="7351")
    assert ok.admitted and ok.row is not None and ok.row.holder == "Fan North 12"
    await eventually(lambda: "release" in g.turnstile.action_names(), what="the turnstile released")
    assert ok.entry.kind is EntryKind.MANUAL and ok.entry.staff_id == "ST-91" and ok.entry.mode == "MANIFEST"

    # the manual admit reaches the hub like any scan; a paper tick elsewhere is then a conflict
    def at_hub() -> list[dict[str, object]]:
        return [v for v in venue.admin.get("/api/v1/validations",
                                           params={"gate_id": g.creds.gate_id, "kind": "manual"}).json()
                if v["reason"] == "ADMIT"]
    await eventually(lambda: at_hub(), what="the manual admit at the hub")
    other = venue.gate("Paper North", ["North"])
    sup = venue.admin.post("/api/v1/tokens", json={"name": "sup-paper", "role": "supervisor"}).json()["token"]
    with venue.hub.client(sup) as s:
        r = s.post(f"/api/v1/gates/{other.gate_id}/paper-ticks", json={"tickets": ["N0012", "N0013"]})
    assert r.status_code == 200, r.text
    (c,) = r.json()["conflicts"]
    assert c["detail"]["pair"] == "manual+manual" and c["first"]["gate_id"] == g.creds.gate_id


async def test_a_removed_steward_is_dropped_at_the_next_refresh(venue: Venue, gate_factory) -> None:  # type: ignore[no-untyped-def]
    venue.steward("ST-GONE", "Leaving Soon", "1111")
    g = await gate_factory(venue.gate("Drop South", ["South"]))
    await asyncio.wait_for(g.puller.wait_refreshed(1), TIMEOUT_S)
    assert g.agent.manifest is not None and "ST-GONE" in await g.agent.manifest.steward_ids()
    assert venue.admin.delete("/api/v1/stewards/ST-GONE").status_code == 200
    await g.puller.refresh()
    assert "ST-GONE" not in await g.agent.manifest.steward_ids()
    refused = await g.agent.manual_admit(typed="S0001", steward_id="ST-GONE", pin="1111")
    assert not refused.admitted and refused.reason == "PIN_REFUSED"


async def test_manifest_pages_are_staged_and_swapped_in_whole(venue: Venue, tmp_path: Path) -> None:
    creds = venue.gate("Pages", ["North", "South"])
    store = await ManifestStore.open(tmp_path / "m.sqlite3")
    try:
        puller = ManifestSync(store, hub_url=venue.hub.url, gate_id=creds.gate_id, token=creds.token, page_rows=7)
        result = await puller.refresh()
        assert (result.rows, (await store.info()).rows) == (2 * PER_ZONE, 2 * PER_ZONE)
        assert [m.row.number for m in await store.search("S0029")] == ["S0029"]
    finally:
        await store.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_an_unreachable_hub_or_refused_token_keeps_the_old_manifest_and_retries(
        venue: Venue, tmp_path: Path) -> None:
    creds = venue.gate("Retry", ["North"])
    store = await ManifestStore.open(tmp_path / "m.sqlite3")
    try:
        good = ManifestSync(store, hub_url=venue.hub.url, gate_id=creds.gate_id, token=creds.token)
        await good.refresh()
        held = await store.info()
        bad = ManifestSync(store, hub_url=f"http://127.0.0.1:{_closed_port()}", gate_id=creds.gate_id,
                           token=creds.token, refresh_s=0.05, retry_s=0.01)
        bad.on_state("online")
        bad.start()
        await eventually(lambda: bad.failures >= 3, what="three failed tries")
        await bad.stop()
        assert bad.last_error is not None and (await store.info()) == held
        wrong = ManifestSync(store, hub_url=venue.hub.url, gate_id=creds.gate_id, token="not-a-gate-token")
        with pytest.raises(ManifestFetchError, match="401"):
            await wrong.refresh()
        assert (await store.info()) == held
    finally:
        await store.close()


async def test_manifest_fetching_never_holds_up_a_manual_admit(venue: Venue, gate_factory) -> None:  # type: ignore[no-untyped-def]
    venue.steward("ST-BUSY", "Busy Bee", "5555")
    g = await gate_factory(venue.gate("Busy", ["North"]), refresh_s=0.05)
    await asyncio.wait_for(g.puller.wait_refreshed(3), TIMEOUT_S)  # fetching over and over from now on
    await g.agent.set_staff_manifest(True)
    loop = asyncio.get_running_loop()
    worst = 0.0
    for number in ("N0020", "N0021", "N0022"):
        await eventually(lambda: g.turnstile.released is None, what="the turnstile locked again")
        started = loop.time()
        result = await g.agent.manual_admit(typed=number, steward_id="ST-BUSY", pin="5555", direction=Direction.IN)
        worst = max(worst, loop.time() - started)
        assert result.admitted, result
        g.turnstile.walk_through()
    assert g.puller.refreshes > 3 and worst < 2.0


def test_manifest_refresh_is_a_gate_config_key_with_sane_bounds() -> None:
    assert config_from_dict({"gate_id": "g", "data_dir": "/tmp/g"}).manifest_refresh_s == 300.0
    assert config_from_dict({"gate_id": "g", "data_dir": "/tmp/g", "manifest_refresh_s": 60}).manifest_refresh_s == 60.0
    with pytest.raises(ConfigError, match="manifest_refresh_s"):
        config_from_dict({"gate_id": "g", "data_dir": "/tmp/g", "manifest_refresh_s": 0})
    example = Path(__file__).resolve().parents[2] / "deploy" / "pi" / "gate.toml.example"
    assert load_config(example).manifest_refresh_s == 300.0
