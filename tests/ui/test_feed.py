"""The dashboard's API and live feed without a browser: auth, what a journal entry becomes,
and bounded queues for slow browsers."""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from hub.dashboard import CLIENT_QUEUE, _Client, classify
from hub.store import Principal, init_hub
from tests.conftest import TIMEOUT_S
from tests.hub.conftest import Hub, start_hub
from tickets.entry import EntryKind, JournalEntry


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    admin = init_hub(tmp_path / "hub", event_id=7, name="Cup final")
    h = start_hub(tmp_path / "hub", admin)
    yield h
    await asyncio.to_thread(h.stop)


async def setup_gate(hub: Hub) -> tuple[str, str, str]:
    """A viewer token and an enrolled gate: (viewer, gate_id, gate_token)."""
    async with httpx.AsyncClient(base_url=hub.url, headers={"Authorization": f"Bearer {hub.admin}"},
                                 timeout=TIMEOUT_S) as c:
        viewer = (await c.post("/api/v1/tokens", json={"name": "wall screen", "role": "viewer"})).json()["token"]
        enrol = (await c.post("/api/v1/gates", json={"name": "West 3", "zones": []})).json()
        body = (await c.post("/api/v1/enroll", json={"token": enrol["enrolment_token"]})).json()
    return viewer, body["gate_id"], body["token"]


def entries(gate_id: str) -> list[dict[str, Any]]:
    now = time.time()
    kinds = [
        (EntryKind.MODE, "MANIFEST", "ONLINE->MANIFEST: scanner down: lens fogged"),
        (EntryKind.EVENT, "MANIFEST", "scanner: fault: lens fogged"),
        (EntryKind.EVENT, "MANIFEST", "turnstile_passage: in manual_release"),
        (EntryKind.EVENT, "MANIFEST", "hub_rolled_back: hub held 40, we had 52 acked"),
    ]
    return [JournalEntry(gate_id, i + 1, now + i / 1000, kind, mode=mode, detail=detail).to_wire()
            for i, (kind, mode, detail) in enumerate(kinds)]


async def test_summary_api_needs_a_viewer_token(hub: Hub) -> None:
    viewer, _gate, gate_token = await setup_gate(hub)
    async with httpx.AsyncClient(base_url=hub.url, timeout=TIMEOUT_S) as c:
        missing = await c.get("/api/v1/dashboard")
        assert missing.status_code == 401 and missing.json()["error"]["code"] == "missing_token"
        as_gate = await c.get("/api/v1/dashboard", headers={"Authorization": f"Bearer {gate_token}"})
        assert as_gate.status_code == 401 and as_gate.json()["error"]["code"] == "bad_token"
        ok = await c.get("/api/v1/dashboard", headers={"Authorization": f"Bearer {viewer}"})
        assert ok.status_code == 200 and ok.json()["role"] == "viewer"
        page = await c.get("/")
        assert page.status_code == 200 and "dashboard.js" in page.text
        assert "http://" not in page.text and "https://" not in page.text  # no CDN: the control room may be offline


async def test_a_gates_mode_and_cause_come_from_its_latest_mode_entry_and_passages_are_not_alerts(hub: Hub) -> None:
    viewer, gate_id, gate_token = await setup_gate(hub)
    async with httpx.AsyncClient(base_url=hub.url, timeout=TIMEOUT_S) as c:
        r = await c.post(f"/api/v1/gates/{gate_id}/journal", json={"entries": entries(gate_id)},
                         headers={"Authorization": f"Bearer {gate_token}"})
        assert r.status_code == 200 and r.json()["stored"] == 4
        s = (await c.get("/api/v1/dashboard", headers={"Authorization": f"Bearer {viewer}"})).json()
    gate = next(g for g in s["gates"] if g["gate_id"] == gate_id)
    assert gate["mode"] == "MANIFEST" and gate["mode_cause"] == "scanner down: lens fogged"
    assert gate["connected"] is False and gate["manifest_pdf"].endswith(f"/gates/{gate_id}/manifest.pdf")
    titles = [(a["severity"], a["title"]) for a in s["alerts"]]
    assert titles == [("alarm", "Hub rolled back: gate re-sending its journal"), ("alarm", "Scanner fault"),
                      ("warn", "Mode MANIFEST")]


async def test_the_live_feed_refuses_a_bad_token_and_closes(hub: Hub) -> None:
    ws_url = hub.url.replace("http://", "ws://") + "/ws/dashboard"
    async with connect(ws_url, open_timeout=TIMEOUT_S) as ws:
        await ws.send(json.dumps({"token": "guess"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT_S)) == {"type": "error", "code": "bad_token"}
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), TIMEOUT_S)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_the_live_feed_pushes_an_alert_for_each_journaled_mode_change_at_once(hub: Hub) -> None:
    viewer, gate_id, gate_token = await setup_gate(hub)
    ws_url = hub.url.replace("http://", "ws://") + "/ws/dashboard"
    async with connect(ws_url, open_timeout=TIMEOUT_S) as ws:
        await ws.send(json.dumps({"token": viewer}))
        hello = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT_S))
        assert hello == {"type": "hello", "role": "viewer", "viewer": "wall screen"}
        first = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT_S))
        assert first["type"] == "summary"
        async with httpx.AsyncClient(base_url=hub.url, timeout=TIMEOUT_S) as c:
            sent = time.monotonic()
            await c.post(f"/api/v1/gates/{gate_id}/journal", json={"entries": entries(gate_id)[:1]},
                         headers={"Authorization": f"Bearer {gate_token}"})
        got: list[dict[str, Any]] = []
        while not any(m["type"] == "summary" for m in got):
            got.append(json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT_S)))
        elapsed = time.monotonic() - sent
    alert = next(m["alert"] for m in got if m["type"] == "alert")
    assert (alert["gate_id"], alert["title"], alert["severity"]) == (gate_id, "Mode MANIFEST", "warn")
    summary = next(m["summary"] for m in got if m["type"] == "summary")
    assert next(g for g in summary["gates"] if g["gate_id"] == gate_id)["mode"] == "MANIFEST"
    assert elapsed < 1.0  # an urgent change goes out without waiting for the next periodic summary


def test_a_stuck_browser_loses_its_backlog_and_is_told_to_resync_instead_of_growing() -> None:
    client = _Client(Principal("wall", "viewer"))
    for i in range(CLIENT_QUEUE * 3):
        client.offer(json.dumps({"type": "alert", "n": i}))
    assert client.queue.qsize() <= CLIENT_QUEUE
    messages = [json.loads(client.queue.get_nowait()) for _ in range(client.queue.qsize())]
    assert messages[0]["type"] == "resync" and client.dropped > 0
    assert messages[-1]["n"] == CLIENT_QUEUE * 3 - 1  # the newest are kept


@pytest.mark.parametrize(("entry", "expected"), [
    ({"kind": "mode", "mode": "EMERGENCY", "detail": "ONLINE->EMERGENCY: fire_contact"}, ("alarm", "Mode EMERGENCY")),
    ({"kind": "mode", "mode": "ONLINE", "detail": "OFFLINE->ONLINE: connected"}, ("ok", "Back ONLINE")),
    ({"kind": "event", "mode": "ONLINE", "detail": "turnstile_forced: in forced"}, ("alarm", "Forced passage")),
    ({"kind": "event", "mode": "ONLINE", "detail": "turnstile_fault: motor_jam"}, ("alarm", "Turnstile fault")),
    ({"kind": "event", "mode": "ONLINE", "detail": "scanner: ok: recovered"}, ("ok", "Scanner working")),
    ({"kind": "event", "mode": "ONLINE", "detail": "something_new: x"}, ("info", "Something new")),
])
def test_journal_events_become_alerts_with_a_severity_and_words(entry: dict[str, Any],
                                                                 expected: tuple[str, str]) -> None:
    alert = classify({"gate_id": "g", "seq": 1, "at": 1.0, **entry})
    assert (alert["severity"], alert["title"]) == expected


def test_a_turnstile_events_direction_is_spelled_out() -> None:
    alert = classify({"gate_id": "g", "seq": 1, "at": 1.0, "kind": "event", "detail": "turnstile_forced: in forced"})
    assert alert["text"] == "forced (in)"
