"""Disk full, on a gate and on the hub: nobody admitted off the record, nothing lost, never silent.

The full disk is a real one: a tmpfs of a few MB mounted over the gate's (or hub's) data
directory and filled to the last byte (as root, as ``./run test`` runs in CI); without root,
the process's file sizes are capped with RLIMIT_FSIZE instead (the figure ``method`` says which).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gatehouse.venue import ROOT, TIMEOUT_S
from tests.faults.scenario_runner import assert_kept, run

# a whole scenario with real processes: minutes on a busy machine, not the suite's 3-minute default
pytestmark = [pytest.mark.timed, pytest.mark.slow, pytest.mark.timeout(TIMEOUT_S * 60)]


def test_a_gate_whose_journal_cannot_commit_closes_with_the_cause_and_recovers_losing_nothing(tmp_path: Path) -> None:
    """Run through ``gatehouse bench faults`` as an operator would: one flat JSON object."""
    got = subprocess.run([sys.executable, "-m", "gatehouse", "bench", "faults", "--json", "--only", "disk_full_gate",
                          "--dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S * 30)
    print(got.stderr[-6000:])
    assert got.returncode == 0, got.stderr[-3000:]
    result = json.loads(got.stdout)
    assert result["disk_full_gate_passed"] is True, got.stderr[-3000:]
    assert {k: result[k] for k in ("scenarios_count", "passed_count", "lost_count", "double_counted_count",
                                   "silent_failures_count")} == {
        "scenarios_count": 1, "passed_count": 1, "lost_count": 0, "double_counted_count": 0,
        "silent_failures_count": 0}
    assert result["disk_full_gate_method"] in ("tmpfs", "rlimit_fsize")
    assert result["disk_full_gate_admits_after_fill_count"] <= result["disk_full_gate_scans_until_closed_count"]
    assert all(isinstance(v, int | float | str | bool) for v in result.values())  # flat


async def test_a_hub_whose_disk_is_full_refuses_with_a_reason_and_drains_exactly_once_after(tmp_path: Path) -> None:
    result = await run("disk_full_hub", tmp_path)
    assert_kept(result)
    assert result.figures["backlog_peak_count"] > 0  # the gates really held entries back meanwhile
