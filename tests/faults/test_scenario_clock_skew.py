"""A gate five minutes fast and one five minutes slow (libfaketime preloaded into the gate process):
decisions, rotating codes and the hub's reports stay right; the hub measures and shows the skew."""
from __future__ import annotations

from pathlib import Path

import pytest

from gatehouse.venue import TIMEOUT_S
from tests.faults.scenario_runner import assert_kept, run

# a whole scenario with real processes: minutes on a busy machine, not the suite's 3-minute default
pytestmark = [pytest.mark.timed, pytest.mark.slow, pytest.mark.timeout(TIMEOUT_S * 60)]


async def test_gates_with_clocks_five_minutes_off_decide_and_report_on_hub_time(tmp_path: Path) -> None:
    result = await run("clock_skew", tmp_path)
    assert_kept(result)
    assert abs(result.figures["fast_measured_skew_s"] - 300) < 5
    assert abs(result.figures["slow_measured_skew_s"] + 300) < 5
