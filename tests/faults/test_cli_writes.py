"""Issue 10, defect 1: every hub write made from the CLI while the hub serves reaches a
running gate within 1 s.

Before the change feed, ``gatehouse hub ticket revoke`` (and import, revoke-gate, zones)
wrote to the database behind the serving hub's back: the gate's cursor stayed below the
hub's seq and it still admitted the revoked ticket 150 s later; a revoked gate's socket
stayed open and its admits were stored. Here a real hub (``gatehouse hub serve``) and a real
gate (``gatehouse gate run``, serial scanner on a pty) are driven only through the CLI, HTTP
and the scanner line; each latency (the CLI command returning → the gate holding the hub's
seq, or acting on it) is printed and listed in the run's summary.
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
import pytest

from tests.faults.harness import (
    PROMISE_S,
    TIMEOUT_S,
    HubProcess,
    enrol_gate,
    hub_api,
    hub_cli,
    hub_seq,
    keyed,
    measure,
    new_hub,
    online,
    scan,
    ticket_csv,
    wait_for,
)
from tests.gate_agent.outside import GateProcess

pytestmark = [pytest.mark.timed, pytest.mark.slow, pytest.mark.timeout(600)]

PIN = "4821"


def _caught_up(hub: HubProcess, gate: GateProcess, what: str, started: float) -> float:
    """The gate's replica cursor reaches the hub's seq (read after the command returned)."""
    target = hub_seq(hub)
    return measure(what, started, lambda: gate.status()["cursor"] >= target)


def _manifest_mode_probe(gate: GateProcess, steward: str) -> int:
    """Whether the gate knows this steward's PIN: ``/api/manifest-mode`` off (a no-op) checks it
    without journaling an admit attempt. 200: known; 403: refused."""
    with gate.api({"X-Gate-Session": gate.session()}) as c:
        return c.post("/api/manifest-mode", json={"on": False, "steward_id": steward, "pin": PIN}).status_code


def test_every_cli_write_kind_reaches_a_running_gate_within_one_second(tmp_path: Path) -> None:
    hub = new_hub(tmp_path, zones={"North": 30, "South": 5})
    gate = None
    try:
        gate = enrol_gate(hub, tmp_path, "North 1")
        online(gate)
        with hub_api(hub) as c:
            credential = {n: c.get(f"/api/v1/tickets/{n}/credential").json()["text"] for n in ("N0002", "N0003")}
        took: dict[str, float] = {}

        def write(what: str, *args: str, stdin: str | None = None) -> float:
            hub_cli(hub, *args, stdin=stdin)
            took[what] = _caught_up(hub, gate, f"cli {what} → gate cursor", time.monotonic())
            return took[what]

        # revoke / reinstate, by the printed ticket number
        assert scan(gate, "N0001")["reason"] == "ADMIT"  # nobody walks: not passed, stays valid
        write("ticket revoke", "ticket", "revoke", "N0001")
        assert scan(gate, "N0001")["reason"] == "REVOKED"
        write("ticket reinstate", "ticket", "reinstate", "N0001")
        assert scan(gate, "N0001")["reason"] == "ADMIT"

        # upgrade and transfer supersede the credential the fan holds
        write("ticket upgrade", "ticket", "upgrade", "N0002", "--seat", "N-99")
        assert scan(gate, credential["N0002"])["reason"] == "SUPERSEDED"
        write("ticket transfer", "ticket", "transfer", "N0003", "--holder", "Somebody Else")
        assert scan(gate, credential["N0003"])["reason"] == "SUPERSEDED"

        # import: tickets unknown a moment ago are admitted
        assert scan(gate, "N0031")["reason"] == "UNKNOWN"
        more = tmp_path / "more.csv"
        more.write_text("number,zone,holder,seat\n" + ticket_csv("North", 3, start=31), encoding="utf-8")
        write("import", "import", str(more))
        assert scan(gate, "N0031")["reason"] == "ADMIT"

        # a new zone, its tickets, and the gate assigned to it
        write("zone", "zone", "East")
        east = tmp_path / "east.csv"
        east.write_text("number,zone,holder,seat\n" + ticket_csv("East", 2), encoding="utf-8")
        write("import (East)", "import", str(east))
        assert scan(gate, "E0001")["reason"] == "WRONG_GATE"
        write("assign-zones", "assign-zones", gate.gate_id, "North,East")
        assert scan(gate, "E0001")["reason"] == "ADMIT"

        # a steward added at the hub can admit by hand at the gate; removed, cannot
        assert _manifest_mode_probe(gate, "st-7") == 403
        hub_cli(hub, "steward", "add", "st-7", "--name", "Sam Steward", stdin=PIN + "\n")
        took["steward add"] = measure("cli steward add → gate knows the PIN", time.monotonic(),
                                      lambda: _manifest_mode_probe(gate, "st-7") == 200)
        with gate.api({"X-Gate-Session": gate.session()}) as c:
            r = c.post("/api/manual-admit", json={"typed": "N0010", "steward_id": "st-7", "pin": PIN})
            r.raise_for_status()
            assert r.json()["admitted"] is True, r.json()
        hub_cli(hub, "steward", "remove", "st-7")
        took["steward remove"] = measure("cli steward remove → gate refuses the PIN", time.monotonic(),
                                         lambda: _manifest_mode_probe(gate, "st-7") == 403)

        # revoke-gate: the socket is closed at once, and nothing the gate admits later is stored
        refusals_before = _refusals(gate)
        hub_cli(hub, "revoke-gate", gate.gate_id)
        took["revoke-gate"] = measure("cli revoke-gate → gate's socket closed", time.monotonic(),
                                      lambda: not gate.status()["hub_connected"])
        wait_for(lambda: _refusals(gate) > refusals_before,
                 "the revoked gate's reconnection refused", TIMEOUT_S * 4)
        status = gate.status()
        assert "revoked" in (status["sync"]["last_refusal"] or ""), status["sync"]
        later = keyed(gate, "N0020")
        assert later["reason"] == "ADMIT"  # offline, the gate keeps deciding: entry never stalls
        seen = _refusals(gate)
        wait_for(lambda: _refusals(gate) > seen,
                 "another refused reconnection after the admit", TIMEOUT_S * 6)
        with hub_api(hub) as c:
            stored = c.get("/api/v1/validations", params={"gate_id": gate.gate_id, "limit": 10_000}).json()
        assert stored and max(v["seq"] for v in stored) < later["seq"], "a revoked gate's admit was stored"

        # and the HTTP upload path is closed to it too (the websocket is not the only way in)
        token = json.loads((gate.data / "gate-credentials.json").read_text())["token"]
        r = httpx.post(f"{hub.url}/api/v1/gates/{gate.gate_id}/journal", json={"entries": []},
                       headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT_S)
        assert r.status_code == 401, r.text

        slow = {k: round(v, 3) for k, v in took.items() if v > PROMISE_S}
        assert not slow, f"over {PROMISE_S:.1f} s: {slow}"
    finally:
        if gate is not None:
            gate.stop()
        hub.stop()


def _refusals(gate: GateProcess) -> int:
    """How many times the gate logged a hub refusing it ("hub URL refused gate ID: why")."""
    return len(re.findall(r"hub \S+ refused gate ", gate.log_text()))
