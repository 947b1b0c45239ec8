"""The upgrade drill (issue: continuity): entry never stalls, nothing is lost or counted
twice, double entries are reported, revoked tickets are refused where the gate knew."""
from __future__ import annotations

from pathlib import Path

import pytest

from gatehouse.bench.drill import STALL_LIMIT_S, DrillParams, drill
from hub import migrations

pytestmark = [pytest.mark.timed, pytest.mark.slow]


async def test_upgrade_drill_passes_under_a_stream_of_fans(tmp_path: Path, backend: str | None) -> None:
    """On SQLite and on PostgreSQL: the hub upgrade migrates its schema (0002 -> head) while the
    gates stream, and the entry state rebuilt from the journal is the one the hub held."""
    lines: list[str] = []
    result = await drill(tmp_path, DrillParams(phase_s=2.0, partition_s=2.5, fan_interval_s=0.2, doubles=3,
                                               revocations=2, tickets_per_zone=240, database=backend),
                         say=lines.append)
    print("\n".join(lines))  # the longest stall, for the record
    assert result["decisions_count"] > 50
    assert result["max_stall_s"] <= STALL_LIMIT_S, lines[-1]
    assert result["lost_count"] == 0
    assert result["double_counted_count"] == 0
    assert result["conflicts_reported_count"] == result["conflicts_expected_count"] == 3
    assert result["revoked_admitted_count"] == 0
    assert result["manifest_mode_gate_count"] == 1
    assert (result["migrated_from"], result["migrated_to"]) == ("0002", migrations.head())
    assert result["entry_state_rows_count"] > 0 and result["entry_state_mismatch_count"] == 0
    assert result["passed"]
