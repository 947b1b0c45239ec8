"""``gatehouse bench NAME --json``: every benchmark, one output convention.

Each benchmark prints a single flat JSON object on stdout (progress goes to stderr):
snake_case keys ending in their unit (``_us``, ``_ms``, ``_s``, ``_per_s``, ``_mb``,
``_ratio``, ``_count``) plus the parameters it ran with.

The benchmarks live in this package (one module each) so nothing below `gatehouse/` imports
the venue harness or benchmark kit; this module lists them.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Any

#: name -> (module with ``add_arguments(parser)`` and ``run(args) -> dict``, help)
BENCHES: dict[str, tuple[str, str]] = {
    "decide": ("gatehouse.bench.decide", "decision latency on an N-ticket replica, with and without the journal commit"),
    "decode": ("gatehouse.bench.decode", "camera decode rate and per-frame time on the generated image corpus"),
    "ingest": ("gatehouse.bench.ingest", "hub validation ingest rate from many simulated gates, and ticket import rate"),
    "sync": ("gatehouse.bench.sync", "revocation propagation, admit fan-out, backlog drain and snapshot time"),
    "drill": ("gatehouse.bench.drill", "the upgrade drill: hub and gate upgrades and a partition under a stream of fans"),
    "load": ("gatehouse.bench.load", "a whole venue: many gates scanning against one hub"),
    "reseat": ("gatehouse.bench.reseat", "a mass re-seating file: apply time, and when every gate refuses the old codes"),
    "faults": ("gatehouse.bench.faults", "the fault scenarios (disk full, clock skew, kill -9, a flapping link)"
                                         " against real processes"),
    "failover": ("gatehouse.bench.failover",
                 "the failover drill: a hub process killed and PostgreSQL failed over to its standby under load"),
    "pretix": ("gatehouse.bench.pretix", "the pretix connector against a real pretix: import, cancellation to gate,"
                                         " check-in uploads, and pretix's own check-in rate"),
    "forecast": ("gatehouse.bench.forecast", "queue forecast against a simulated matchday with a late surge (simulated time)"),
    "dashboard": ("gatehouse.bench.dashboard", "one dashboard summary (stats, entry figures, forecast) on a matchday-sized hub"),
}


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of ``values``; 0.0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def register(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> None:
    sub = parser.add_subparsers(dest="bench", metavar="NAME")
    chosen = _chosen(argv if argv is not None else sys.argv[1:])
    for name, (module_name, help_text) in BENCHES.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--json", action="store_true", help="print only the JSON result on stdout")
        if name != chosen:
            continue  # only the benchmark being run is imported
        module = importlib.import_module(module_name)
        module.add_arguments(p)
        p.set_defaults(func=_runner(module))


def _chosen(argv: list[str]) -> str | None:
    if "bench" not in argv:
        return None
    rest = [a for a in argv[argv.index("bench") + 1:] if not a.startswith("-")]
    return rest[0] if rest and rest[0] in BENCHES else None


def _runner(module: Any):  # type: ignore[no-untyped-def]
    def run(args: argparse.Namespace) -> int:
        result: dict[str, Any] = module.run(args)
        print(json.dumps(result, sort_keys=False))
        return 0

    return run
