"""Issue 10, defects 2 and 8 (websocket part): what one misbehaving gate can send costs at most
its own session, never the hub.

Before: ``hello`` then 5–10 ``snapshot_request`` frames back to back wedged the hub's read
view ("replica sync failed: cannot start a transaction within a transaction"): an API revoke
was committed but ``GET /api/v1/tickets/N`` still said valid and no gate received it,
``/healthz`` froze, and a newly registered gate got 404 on ``POST /enroll`` — until restart.
A journal entry with ``at: NaN`` closed the socket with 1011 instead of an answered error, and
``at: 1e308`` was stored.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.faults.harness import (
    TIMEOUT_S,
    RawGate,
    enrol_gate,
    hub_api,
    hub_cli,
    hub_seq,
    measure,
    new_hub,
    online,
    scan,
)

pytestmark = [pytest.mark.timed, pytest.mark.slow, pytest.mark.timeout(600)]


def test_a_gate_flooding_snapshot_requests_costs_only_its_own_session(tmp_path: Path) -> None:
    hub = new_hub(tmp_path, zones={"North": 3000})
    gate = None
    raw = None
    try:
        gate = enrol_gate(hub, tmp_path, "North 1")
        online(gate)
        north = next(z["zone_id"] for z in hub_api(hub).get("/api/v1/zones").json() if z["name"] == "North")
        raw = RawGate(hub, "Flooder", [north]).connect()
        reply = raw.hello()
        assert reply["replica_sync"] == "snapshot"
        for i in range(8):  # back to back, while the first snapshot streams
            raw.send({"type": "snapshot_request", "reason": f"again {i}"})
        reader = threading.Thread(target=raw.drain, daemon=True)
        reader.start()

        with hub_api(hub) as c:
            seq_before = hub_seq(hub)
            r = c.post("/api/v1/tickets/N0005/revoke")
            r.raise_for_status()
            started = time.monotonic()
            seq = hub_seq(hub)
            assert seq > seq_before, "/healthz does not move with the change log"
            assert c.get("/api/v1/tickets/N0005").json()["status"] == "revoked"
            took = measure("API revoke during a snapshot flood → other gate", started,
                           lambda: gate.status()["cursor"] >= seq)
            assert scan(gate, "N0005")["reason"] == "REVOKED"
            # /healthz moves with the log, gate high-waters keep being stored
            assert scan(gate, "N0006")["reason"] == "ADMIT"
            last = gate.status()["journal_last_seq"]
            measure("gate journal stored during the flood", time.monotonic(),
                    lambda: next(g for g in c.get("/api/v1/gates").json()
                                 if g["gate_id"] == gate.gate_id)["high_water"] >= last)
            # a gate registered with the CLI now can still enrol
            token = hub_cli(hub, "enroll-gate", "Late gate", "--zones", "North").stdout.strip().splitlines()[-1]
            r = httpx.post(hub.url + "/api/v1/enroll", json={"token": token.strip()}, timeout=TIMEOUT_S)
            assert r.status_code == 200, r.text
        assert took < TIMEOUT_S
        hub_log = (hub.data / "hub-test.log").read_text(errors="replace")
        assert "within a transaction" not in hub_log
        assert "snapshot request ignored" in hub_log, "the repeated requests were neither served nor refused"
        # the flooder itself got (at least) one whole snapshot
        raw_done = [f for f in raw.received if f["type"] == "snapshot_end"]
        if not raw_done:
            raw.close()
            reader.join(TIMEOUT_S)
        assert any(f["type"] == "snapshot_end" for f in raw.received) or raw.closed is not None
    finally:
        if raw is not None:
            raw.close()
        if gate is not None:
            gate.stop()
        hub.stop()


def test_a_journal_entry_at_nan_is_answered_bad_field_and_the_socket_stays_open(tmp_path: Path) -> None:
    hub = new_hub(tmp_path, zones={"North": 3})
    raw = None
    try:
        raw = RawGate(hub, "Odd gate").connect()
        raw.hello()

        def entry(seq: int, at: str) -> str:
            # written by hand: json.dumps would refuse NaN or write it its own way
            return ('{"type":"journal_batch","entries":[{"gate_id":"' + raw.gate_id + f'","seq":{seq},"at":{at},'
                    f'"kind":"scan","nonce":"{seq:016x}","reason":"UNKNOWN","direction":"in","mode":"ONLINE",'
                    '"cursor":0}]}')

        for bad in ("NaN", "Infinity", "1e308", "-1"):
            raw.send(entry(1, bad))
            err = raw.expect(lambda f: f["type"] == "error", TIMEOUT_S)
            assert err["code"] == "bad_field" and err["fatal"] is False, err
            raw.received.clear()
        raw.send({"type": "ping", "nonce": 7})  # the socket is still open and answering
        raw.expect(lambda f: f["type"] == "pong" and f["nonce"] == 7)
        raw.send(entry(1, f"{time.time():.3f}"))  # a good entry is still stored
        ack = raw.expect(lambda f: f["type"] == "journal_ack")
        assert ack["high_water"] == 1
        with hub_api(hub) as c:
            stored = c.get("/api/v1/validations", params={"gate_id": raw.gate_id}).json()
        assert [v["seq"] for v in stored] == [1]
    finally:
        if raw is not None:
            raw.close()
        hub.stop()
