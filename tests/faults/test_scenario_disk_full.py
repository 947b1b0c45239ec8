"""Disk full, on a gate and on the hub: nobody admitted off the record, nothing lost, never silent.

The full disk is a real one: a tmpfs of a few MB mounted over the gate's (or hub's) data
directory and filled to the last byte (as root, as ``./run test`` runs in CI); without root,
the process's file sizes are capped with RLIMIT_FSIZE instead (the figure ``method`` says which).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.scenario_runner import assert_kept, run

pytestmark = pytest.mark.slow


async def test_a_gate_whose_journal_cannot_commit_closes_with_the_cause_and_recovers_losing_nothing(tmp_path: Path) -> None:
    result = await run("disk_full_gate", tmp_path)
    assert_kept(result)
    assert result.figures["method"] in ("tmpfs", "rlimit_fsize")
    assert result.figures["admits_after_fill_count"] <= result.figures["scans_until_closed_count"]


async def test_a_hub_whose_disk_is_full_refuses_with_a_reason_and_drains_exactly_once_after(tmp_path: Path) -> None:
    result = await run("disk_full_hub", tmp_path)
    assert_kept(result)
    assert result.figures["backlog_peak_count"] > 0  # the gates really held entries back meanwhile
