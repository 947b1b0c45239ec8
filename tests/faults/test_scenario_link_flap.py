"""A gate's link cut every few seconds while it scans. The suite runs 45 s of flapping (two gates,
cuts of 0.5-2.5 s every 1-4 s); ``gatehouse bench faults`` runs the full five minutes."""
from __future__ import annotations

from pathlib import Path

import pytest

from gatehouse.venue import TIMEOUT_S
from tests.faults.scenario_runner import assert_kept, run

# a whole scenario with real processes: minutes on a busy machine, not the suite's 3-minute default
pytestmark = [pytest.mark.timed, pytest.mark.slow, pytest.mark.timeout(TIMEOUT_S * 60)]


async def test_a_flapping_link_loses_nothing_duplicates_nothing_and_never_sticks_the_upload(tmp_path: Path) -> None:
    result = await run("link_flap", tmp_path)
    assert_kept(result)
    assert result.figures["flaps_count"] >= 10
