"""Issue 10, defect 8 (hub API): no server errors, and every answer is the one documented.

Before: 500 for integers ≥ 2^63 in paths and queries (``/tickets/{id}``, ``changes?since=``,
``validations?ticket_id=``, upgrade, resolve, ``POST /zones``), 500 (RecursionError) for a
deeply nested JSON import, and the OpenAPI documented only 200/422 (50 undocumented status
codes seen). Here schemathesis runs every check it has against a real ``gatehouse hub serve``
authenticated as admin, with bounded examples; the hand-picked inputs from the issue are
checked on their own so they are tried on every run, whatever schemathesis draws.
(The websocket's ``at: NaN`` / ``1e308`` are in test_misbehaving_gate.py; the gate's own
status server has its schemathesis test in tests/gate_agent/test_gate_process.py.)
"""
from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.harness import TIMEOUT_S, HubProcess, hub_api, new_hub

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

HUGE = str(2**63)
HUGER = "9" * 40
IMPORT = "/api/v1/tickets/import"
#: routes whose input the OpenAPI schema can only shape, not fully describe (see below)
FREE_FORM = (IMPORT, "/api/v1/tickets/reseat", "/api/v1/event/settings")


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    h = new_hub(tmp_path_factory.mktemp("fuzz"), zones={"North": 5})
    try:
        yield h
    finally:
        h.stop()


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", f"/api/v1/tickets/{HUGE}", None),
    ("GET", f"/api/v1/tickets/{HUGER}", None),
    ("GET", f"/api/v1/changes?since={HUGE}", None),
    ("GET", f"/api/v1/changes?since={HUGER}", None),
    ("GET", f"/api/v1/validations?ticket_id={HUGE}", None),
    ("GET", f"/api/v1/validations?before_seq={HUGER}&before_at=1", None),
    ("GET", f"/api/v1/conflicts?before={HUGE}", None),
    ("GET", f"/api/v1/audit?before={HUGE}", None),
    ("GET", f"/api/v1/zones?after={HUGE}", None),
    ("POST", f"/api/v1/tickets/{HUGE}/upgrade", {"zone_id": 1}),
    ("POST", "/api/v1/tickets/N0001/upgrade", {"zone_id": 2**63}),
    ("POST", f"/api/v1/conflicts/{HUGE}/resolve", {"resolution": "x"}),
    ("POST", "/api/v1/zones", {"name": "Huge", "zone_id": 2**63}),
    ("POST", "/api/v1/zones", {"name": "Huge", "capacity": 2**64}),
    ("POST", "/api/v1/policies", {"policy_id": 2**63, "preset": "single"}),
])
def test_integers_beyond_64_bits_are_a_4xx_never_a_500(hub: HubProcess, method: str, path: str,
                                                      body: object) -> None:
    with hub_api(hub) as c:
        r = c.request(method, path, json=body)
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert r.json()["error"]["code"]


def test_a_deeply_nested_json_import_is_a_4xx(hub: HubProcess) -> None:
    nested = ("[" * 100_000 + "]" * 100_000).encode()
    with hub_api(hub) as c:
        r = c.post("/api/v1/tickets/import?format=json", content=nested, headers={"Content-Type": "application/json"})
        assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
        r = c.post("/api/v1/tickets/import?format=jsonl", content=b'{"a":' * 50_000 + b"1" + b"}" * 50_000)
        assert r.status_code < 500, (r.status_code, r.text[:300])
        assert c.get("/healthz").status_code == 200


def _schemathesis(hub: HubProcess, cwd: Path, *args: str) -> None:
    cli = Path(sys.executable).with_name("schemathesis")
    result = subprocess.run(
        [str(cli), "run", f"{hub.url}/openapi.json", "--max-examples", "10", "--seed", "1", "--workers", "1",
         "--header", f"Authorization: Bearer {hub.admin}", "--request-timeout", str(TIMEOUT_S),
         "--phases", "examples,coverage,fuzzing", *args],
        cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S * 80)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]


def test_schemathesis_finds_no_server_error_and_no_answer_the_schema_does_not_document(
        hub: HubProcess, tmp_path: Path) -> None:
    _schemathesis(hub, tmp_path, "--checks", "all", *[a for p in FREE_FORM for a in ("--exclude-path", p)])
    # The import's and the re-seating's body is a file (CSV, JSON or JSON Lines) the schema
    # cannot describe; one the hub cannot read at all (empty, no header, not JSON) is a
    # documented 400, not a valid request refused. The event settings take a kick-off as ISO
    # 8601 text and a language as any tag that names a catalogue (zh-CN): text the schema can
    # only shape, so a tag naming no catalogue is a 400 with its reason. Every other check
    # still runs on these routes.
    _schemathesis(hub, tmp_path, "--checks", "all", "--exclude-checks", "positive_data_acceptance",
                  *[a for p in FREE_FORM for a in ("--include-path", p)])
    with hub_api(hub) as c:
        assert c.get("/healthz").status_code == 200
