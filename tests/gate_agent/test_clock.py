"""The gate's clock follows the hub's (gate_agent.clock): measured at each hello, kept per boot."""
from __future__ import annotations

import json
from pathlib import Path

from gate_agent.clock import CLOCK_FILE, GateClock, boot_id


def test_a_gate_five_minutes_behind_decides_on_hub_time_and_says_so(tmp_path: Path) -> None:
    clock = GateClock(lambda: 1000.0, tmp_path / CLOCK_FILE)
    note = clock.measured(300.2, 0.04)
    assert clock() == 1300.2
    assert note is not None and "300.2 s behind" in note and "NTP" in note
    assert clock.status()["source"] == "hub"


def test_a_skew_below_half_a_second_is_noise_and_the_system_clock_is_kept(tmp_path: Path) -> None:
    clock = GateClock(lambda: 1000.0, tmp_path / CLOCK_FILE)
    assert clock.measured(0.3, 0.01) is None
    assert clock() == 1000.0


def test_back_to_the_system_clock_once_it_agrees_with_the_hub_again(tmp_path: Path) -> None:
    clock = GateClock(lambda: 1000.0, tmp_path / CLOCK_FILE)
    clock.measured(-300.0, 0.02)
    note = clock.measured(0.1, 0.02)
    assert clock() == 1000.0 and note is not None and "agrees" in note


def test_a_measurement_over_a_slow_round_trip_is_not_used(tmp_path: Path) -> None:
    clock = GateClock(lambda: 1000.0, tmp_path / CLOCK_FILE)
    assert clock.measured(120.0, 3.0) is None
    assert clock() == 1000.0


def test_the_offset_survives_an_agent_restart_but_not_a_reboot(tmp_path: Path) -> None:
    GateClock(lambda: 1000.0, tmp_path / CLOCK_FILE).measured(-300.0, 0.02)
    again = GateClock(lambda: 1000.0, tmp_path / CLOCK_FILE)
    again.load()
    assert again() == 700.0
    saved = json.loads((tmp_path / CLOCK_FILE).read_text())
    assert saved["boot_id"] == boot_id()
    (tmp_path / CLOCK_FILE).write_text(json.dumps({**saved, "boot_id": "another-boot"}))
    rebooted = GateClock(lambda: 1000.0, tmp_path / CLOCK_FILE)
    rebooted.load()
    assert rebooted() == 1000.0
