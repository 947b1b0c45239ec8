"""The fault suite: real processes, public CLI/API only (see tests/faults/harness.py).

Two things for the whole run:

* The three-minute demo soak (test_demo_soak.py) is the slowest test by far and mostly
  waits. When it is selected, its ``gatehouse demo`` starts with the first fault test and
  runs while the others do (a supervisor's sampler reads its dashboard meanwhile); the soak
  test is moved to the end of the run and only judges what was seen. Selected alone, it
  waits its three minutes as before.
* At the end of a run the terminal summary lists every latency the suite measured (an
  operator's command returning → a gate acting on it), the figures docs/reliability.md cites.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.faults.harness import MEASURED, PROMISE_S

SOAK = "test_demo_soak.py"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    soak = [i for i in items if i.nodeid.split("::")[0].endswith(SOAK)]
    for item in soak:
        items.remove(item)
    items.extend(soak)


@pytest.fixture(scope="session", autouse=True)
def demo_in_background(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    from tests.faults.test_demo_soak import DemoRun

    wanted = any(i.nodeid.split("::")[0].endswith(SOAK) for i in request.session.items)
    run = DemoRun.start(tmp_path_factory.mktemp("demo-soak")) if wanted else None
    request.config.stash[DEMO_KEY] = run
    try:
        yield
    finally:
        if run is not None:
            run.stop()


DEMO_KEY = pytest.StashKey[Any]()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not MEASURED:
        return
    terminalreporter.section("fault suite: measured latencies")
    terminalreporter.write_line(f"(promise: within {PROMISE_S:.1f} s on this run's timeout scale)")
    for m in MEASURED:
        terminalreporter.write_line(f"{m.what:<60} {m.seconds * 1000:8.0f} ms")
