"""Issue 10, defect 5: a hub restored from a backup older than a gate's enrolment says so,
and re-enrolling the gate loses nothing.

Before: the gate got "unknown or revoked token", showed only OFFLINE "hub unreachable", its
admits never reached the hub, and the control room heard nothing. Now the gate's status
says the hub does not know it (re-enrol), the dashboard API raises an alarm, and
``hub enroll-gate`` (same name) + ``gate enroll`` into the same data directory keeps the
gate's journal and seqs, so every entry it holds reaches the hub exactly once.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.faults.harness import (
    TIMEOUT_S,
    enrol_gate,
    halt,
    hub_api,
    hub_cli,
    keyed,
    new_hub,
    online,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def test_a_gate_unknown_to_a_restored_hub_says_re_enrol_and_re_enrolment_loses_no_entry(tmp_path: Path) -> None:
    hub = new_hub(tmp_path, zones={"North": 10})
    gate = None
    try:
        backup = tmp_path / "before-the-gate.db"
        hub_cli(hub, "backup", str(backup))  # online, while serving
        gate = enrol_gate(hub, tmp_path, "North 1")
        online(gate)
        before = [keyed(gate, n)["seq"] for n in ("N0001", "N0002", "N0003")]
        wait_for(lambda: gate.status()["backlog"] == 0, "the gate's journal at the hub")

        hub.stop()
        hub_cli(hub, "restore", str(backup))
        hub.start()
        status = wait_for(lambda: (s := gate.status())["sync"]["last_refusal"] and s, "the hub's refusal",
                          TIMEOUT_S * 3)
        assert status["mode"] == "OFFLINE"
        assert "does not know this gate" in status["mode_cause"] and "re-enrol" in status["mode_cause"], status
        with hub_api(hub) as c:
            alerts = c.get("/api/v1/dashboard").json()["alerts"]
        refused = [a for a in alerts if a.get("gate_id") == gate.gate_id and a["severity"] == "alarm"]
        assert refused and "re-enrol" in refused[0]["text"], alerts

        during = keyed(gate, "N0004")  # entry never stalls: decided offline, journaled
        assert during["reason"] == "ADMIT"

        halt(gate)
        journal_before = (gate.data / "journal.sqlite3").stat().st_size
        enrolled = enrol_gate(hub, tmp_path, "North 1", data=gate.data, start=False)
        assert enrolled.gate_id == gate.gate_id, "the same name must give the same gate id back"
        assert (gate.data / "journal.sqlite3").stat().st_size >= journal_before
        creds = json.loads((gate.data / "gate-credentials.json").read_text())
        assert creds["gate_id"] == gate.gate_id
        gate.stop()  # its old config (port, scanner line) is replaced by the re-enrolled one
        gate = enrolled
        gate.start()
        status = online(gate)
        last = status["journal_last_seq"]
        assert last >= during["seq"] > max(before)
        with hub_api(hub) as c:
            def stored() -> list[int]:
                return sorted(v["seq"] for v in c.get("/api/v1/validations",
                                                      params={"gate_id": gate.gate_id, "limit": 10_000}).json())
            wait_for(lambda: len(stored()) >= last, "every journal entry at the hub")
            assert stored() == list(range(1, last + 1)), "each entry exactly once, none missing"
            assert c.get("/api/v1/tickets/N0004").json()["number"] == "N0004"
        assert gate.status()["sync"]["last_refusal"] is None
    finally:
        if gate is not None:
            gate.stop()
        hub.stop()
