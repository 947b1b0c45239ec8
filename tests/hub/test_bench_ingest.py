"""The ingest benchmark runs end to end against a real hub process and reports its keys."""
from __future__ import annotations

import argparse

import pytest

from gatehouse.bench import ingest as bench_ingest


def test_bench_ingest_over_http_reports_rates_from_a_real_hub() -> None:
    parser = argparse.ArgumentParser()
    bench_ingest.add_arguments(parser)
    args = parser.parse_args(["--transport", "http", "--gates", "4", "--duration", "1", "--import-rows", "2000",
                              "--batch", "5"])
    result = bench_ingest.run(args)
    assert result["gates"] == 4
    assert result["stored_count"] > 0 and result["errors_count"] == 0
    assert result["validations_per_s"] > 0 and result["ingest_p99_ms"] >= result["ingest_p50_ms"] > 0
    assert result["import_rows_per_s"] > 0


def test_bench_ingest_refuses_nonsense_parameters() -> None:
    parser = argparse.ArgumentParser()
    bench_ingest.add_arguments(parser)
    for bad in (["--gates", "0"], ["--admit-ratio", "1.5"], ["--rate", "-1"]):
        with pytest.raises(SystemExit):
            bench_ingest.run(parser.parse_args(bad))
