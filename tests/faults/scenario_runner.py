"""Running a fault scenario from a test (the scenarios themselves: gatehouse/bench/faults.py)."""
from __future__ import annotations

from pathlib import Path

from gatehouse.bench.faults import run_scenario
from gatehouse.faults import Params, ScenarioResult


async def run(name: str, tmp_path: Path, params: Params | None = None) -> ScenarioResult:
    """Run a scenario with the suite's (short) timings; its report goes to the test's output."""
    result = await run_scenario(name, tmp_path / name, params)
    print(result.report())
    return result


def assert_kept(result: ScenarioResult) -> None:
    """Every promise of the scenario held: nothing lost, nothing twice, nothing silent."""
    assert result.failed == [], "\n" + result.report()
    assert (result.lost, result.double, result.silent) == (0, 0, 0), result.report()
