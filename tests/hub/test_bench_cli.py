"""Each hub benchmark runs end to end as ``gatehouse bench NAME --json`` (a real hub process,
real websocket gates) with tiny parameters, and prints one flat JSON object with its keys."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 120


def bench(*args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "gatehouse", "bench", *args, "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, f"stdout must be one JSON object, got {done.stdout!r}"
    result = json.loads(lines[0])
    assert isinstance(result, dict)
    for key, value in result.items():
        assert key == key.lower() and " " not in key, key
        assert not isinstance(value, dict | list), f"{key} is not flat"
        if isinstance(value, float):
            assert math.isfinite(value), key
    return result


def positive(result: dict[str, Any], *keys: str) -> None:
    for key in keys:
        assert isinstance(result[key], int | float) and result[key] > 0, (key, result[key])


@pytest.mark.slow
def test_ingest_bench_over_the_websocket_reports_rate_latency_and_import() -> None:
    r = bench("ingest", "--gates", "6", "--duration", "1.5", "--import-rows", "3000")
    assert r["gates"] == 6 and r["transport"] == "ws" and r["import_rows"] == 3000
    positive(r, "validations_per_s", "ingest_p50_ms", "ingest_p99_ms", "import_rows_per_s", "hub_cpu_s",
             "hub_rss_mb", "acked_count")
    assert r["ingest_p99_ms"] >= r["ingest_p50_ms"]
    assert r["unacked_count"] == 0
    assert r["fanout_messages_per_s"] > 0  # admits were fanned out to the other gates
    # the rate counts acked entries only: never more than were handed over in the window
    assert r["acked_count"] <= r["handed_count"]


@pytest.mark.slow
def test_ingest_bench_keeps_the_http_transport_and_paced_mode() -> None:
    r = bench("ingest", "--transport", "http", "--gates", "4", "--duration", "1.5", "--rate", "200",
              "--import-rows", "2000")
    assert r["transport"] == "http" and r["offered_rate_per_s"] == 200
    positive(r, "validations_per_s", "ingest_p99_ms", "stored_count", "import_rows_per_s")
    assert r["errors_count"] == 0
    assert r["validations_per_s"] < 400  # paced: about the offered rate, not the hub's capacity


@pytest.mark.slow
def test_sync_bench_against_the_real_hub_reports_propagation_drain_and_snapshot() -> None:
    r = bench("sync", "--gates", "6", "--revocations", "3", "--admits", "3", "--drain", "500",
              "--snapshot-tickets", "6000")
    assert r["backend"] == "hub" and r["gates"] == 6 and r["hub_tickets"] == 6000
    positive(r, "revocation_p50_ms", "revocation_p99_ms", "fanout_p99_ms", "drain_s", "snapshot_s",
             "snapshot_wire_s", "snapshot_rows_per_s", "hub_rss_mb")
    assert r["revocation_p99_ms"] < 5000 and r["fanout_p99_ms"] < 5000


@pytest.mark.slow
def test_load_bench_runs_a_venue_with_real_gates_deciding() -> None:
    r = bench("load", "--gates", "8", "--real-gates", "2", "--duration", "3", "--scan-rate", "2",
              "--tickets", "3000", "--probes", "3")
    assert r["gates"] == 8 and r["real_gates"] == 2
    positive(r, "validations_per_s", "ingest_p99_ms", "fanout_p99_ms", "hub_rss_mb", "decide_p99_ms",
             "decisions_count", "admitted_count")
    # every probe reached every other light gate of its zone
    assert r["fanout_gates_count"] >= 1 and r["fanout_samples_count"] == 3 * r["fanout_gates_count"]
    assert r["decide_p99_ms"] >= r["decide_p50_ms"] > 0


@pytest.mark.slow
def test_sync_bench_against_the_in_memory_hub_reports_the_same_figures() -> None:
    r = bench("sync", "--backend", "memory", "--gates", "6", "--revocations", "3", "--admits", "3",
              "--drain", "300", "--snapshot-tickets", "3000")
    assert r["backend"] == "memory" and r["gates"] == 6
    positive(r, "revocation_p99_ms", "fanout_p99_ms", "drain_s", "snapshot_s")
