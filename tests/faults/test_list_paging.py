"""Issue 10, defect 7 (API part): no list endpoint silently truncates.

Before: ``GET /api/v1/tickets`` stopped at 1,000 rows with no paging and no flag; the demo
loaded 1,000 of its 1,600 tickets and the West gates refused every fan. Now every list route
of the hub's OpenAPI takes a ``limit`` and, when more rows follow, names the next page in a
``Link: <…>; rel="next"`` header; following the links gives every row exactly once.
The routes are read from the running hub's ``/openapi.json``, so a list route added later
is held to the same rule.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.faults.harness import TIMEOUT_S, RawGate, hub_api, hub_cli, new_hub

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

#: what names a row, per list (the first of these keys a row has)
IDENTITY = ("conflict_id", "connector_id", "steward_id", "gate_id", "ticket_id", "zone_id", "policy_id", "id")
#: list routes that cannot be seeded with three rows from outside (path -> rows seeded)
SEEDED_LESS = {"/api/v1/connectors": 1}
#: fields that move while a test pages (a gate's liveness)
VOLATILE = ("connected", "last_seen")


def _identity(path: str, row: dict[str, Any]) -> str:
    if path.endswith("/validations"):
        return f"{row['gate_id']}#{row['seq']}"
    key = next(k for k in IDENTITY if k in row)
    return f"{key}={row[key]}"


def _list_routes(spec: dict[str, Any]) -> list[str]:
    out = []
    for path, ops in spec["paths"].items():
        get = ops.get("get")
        if get is None or "{" in path:
            continue
        schema = get.get("responses", {}).get("200", {}).get("content", {}).get("application/json", {}).get("schema", {})
        if schema.get("type") == "array":
            out.append(path)
    return sorted(out)


def _seed(hub: Any, c: httpx.Client) -> None:
    """At least three rows in every list: zones, policies, gates, stewards, tickets, validations,
    conflicts, audit."""
    for name in ("East", "West", "South"):
        c.post("/api/v1/zones", json={"name": name}).raise_for_status()
    for pid, preset in ((11, "reentry"), (12, "unlimited"), (13, "single")):
        c.post("/api/v1/policies", json={"policy_id": pid, "preset": preset}).raise_for_status()
    for sid in ("s-1", "s-2", "s-3"):
        c.post("/api/v1/stewards", json={"steward_id": sid, "name": f"Steward {sid}", "pin": "1234"}).raise_for_status()
    c.post("/api/v1/gates", json={"name": "Paging C"}).raise_for_status()
    # the one connector a hub can have without a ticket shop to talk to
    (hub.data / "drop").mkdir()
    hub_cli(hub, "connect", "csvdrop", "--dir", hub.data / "drop")
    tickets = c.get("/api/v1/tickets", params={"limit": 3}).json()
    now = time.time()
    for g in (RawGate(hub, "Paging A"), RawGate(hub, "Paging B")):
        entries = []
        for t in tickets:  # each gate admits the same three single-entry tickets: three conflicts
            seq = len(entries) + 1
            entries.append({"gate_id": g.gate_id, "seq": seq, "at": now, "kind": "scan", "nonce": f"{seq:016x}",
                            "reason": "ADMIT", "ticket_id": t["ticket_id"], "ticket_number": t["number"],
                            "zone_id": t["zone_id"], "direction": "in", "mode": "ONLINE", "cursor": 0})
            entries.append({"gate_id": g.gate_id, "seq": seq + 1, "at": now + 1, "kind": "passage",
                            "nonce": f"{seq + 1:016x}", "passage": "passed", "ref_seq": seq,
                            "ticket_id": t["ticket_id"], "zone_id": t["zone_id"], "direction": "in",
                            "mode": "ONLINE", "cursor": 0})
        r = httpx.post(f"{hub.url}/api/v1/gates/{g.gate_id}/journal", json={"entries": entries},
                       headers={"Authorization": f"Bearer {g.token}"}, timeout=TIMEOUT_S)
        r.raise_for_status()


def test_every_list_route_pages_with_a_next_link_and_the_pages_hold_every_row_once(tmp_path: Path) -> None:
    hub = new_hub(tmp_path, zones={"North": 7})
    try:
        with hub_api(hub) as c:
            _seed(hub, c)
            routes = _list_routes(c.get("/openapi.json").json())
            assert {"/api/v1/tickets", "/api/v1/validations", "/api/v1/conflicts", "/api/v1/gates",
                    "/api/v1/zones", "/api/v1/policies", "/api/v1/audit", "/api/v1/stewards"} <= set(routes), routes
            spec = c.get("/openapi.json").json()
            for path in routes:
                params = {p["name"] for p in spec["paths"][path]["get"].get("parameters", [])}
                assert "limit" in params, f"{path} lists without a limit: it can only truncate or never end"
                whole = c.get(path, params={"limit": 1000})
                whole.raise_for_status()
                assert "next" not in whole.links, f"{path}: a next link on a page that holds everything"
                rows = whole.json()
                # a connector needs a ticket shop to exist, but the drop folder: one row, paged all the same
                least = SEEDED_LESS.get(path, 3)
                assert len(rows) >= least, f"{path}: seed at least {least} rows so paging is really tried"
                paged: list[dict[str, Any]] = []
                r = c.get(path, params={"limit": 2})
                pages = 0
                while True:
                    r.raise_for_status()
                    pages += 1
                    page = r.json()
                    assert len(page) <= 2
                    paged += page
                    nxt = r.links.get("next", {}).get("url")
                    if not nxt:
                        break
                    assert len(page) == 2, f"{path}: a short page still names a next one"
                    r = c.get(nxt)
                    assert pages < 1000, f"{path}: the links never end"
                ids = [_identity(path, row) for row in paged]
                assert len(ids) == len(set(ids)), f"{path}: a row came twice across pages"
                assert sorted(ids) == sorted(_identity(path, row) for row in rows), f"{path}: pages differ from the whole"
                assert pages >= 2 or len(rows) <= 2, f"{path}: {len(rows)} rows at limit=2 must take more than one page"
                print(f"{path}: {len(rows)} rows in {pages} pages")
            # the change log is a list inside an object: paged the same way
            r = c.get("/api/v1/changes", params={"since": 0, "limit": 2})
            assert len(r.json()["changes"]) == 2 and "next" in r.links
            later = c.get(r.links["next"]["url"]).json()["changes"]
            assert later[0]["seq"] > r.json()["changes"][-1]["seq"]
            assert json.dumps(later)  # plain JSON all the way
    finally:
        hub.stop()
