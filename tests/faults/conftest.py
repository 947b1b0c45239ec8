"""The fault suite: real processes, public CLI/API only (see tests/faults/harness.py).

At the end of a run the terminal summary lists every latency the suite measured (an
operator's command returning → a gate acting on it), the figures docs/reliability.md cites.
"""
from __future__ import annotations

from typing import Any

from tests.faults.harness import MEASURED, PROMISE_S


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not MEASURED:
        return
    terminalreporter.section("fault suite: measured latencies")
    terminalreporter.write_line(f"(promise: within {PROMISE_S:.1f} s on this run's timeout scale)")
    for m in MEASURED:
        terminalreporter.write_line(f"{m.what:<60} {m.seconds * 1000:8.0f} ms")
