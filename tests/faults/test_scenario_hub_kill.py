"""kill -9 of the hub during a group commit (a burst from many gates) and during an online backup."""
from __future__ import annotations

from pathlib import Path

import pytest

from gatehouse.venue import TIMEOUT_S
from tests.faults.scenario_runner import assert_kept, run

# a whole scenario with real processes: minutes on a busy machine, not the suite's 3-minute default
pytestmark = [pytest.mark.timed, pytest.mark.slow, pytest.mark.timeout(TIMEOUT_S * 60)]


async def test_hub_killed_during_a_group_commit_loses_nothing_and_counts_nothing_twice(tmp_path: Path) -> None:
    result = await run("hub_kill_group_commit", tmp_path)
    assert_kept(result)
    # killed with part of each burst stored and the rest on its way
    assert all(0 < result.figures[f"kill{k}_stored_ratio"] < 1 for k in (1, 2))


async def test_hub_killed_during_a_backup_leaves_no_half_file_under_the_final_name_and_restarts(tmp_path: Path) -> None:
    result = await run("hub_kill_backup", tmp_path)
    assert_kept(result)
    assert result.figures["killed_at_partial_mb"] < result.figures["db_mb"]
