"""The readiness report from outside: a real hub process, a real gate agent, the CLI and the API."""
from __future__ import annotations

import asyncio
import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gatehouse.venue import Venue
from tests.conftest import TIMEOUT_S

pytestmark = pytest.mark.slow


async def report_until(venue: Venue, pred: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
    """Ask the hub's API until the report satisfies ``pred`` (gates report every few seconds)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT_S * 3
    async with venue.hub.admin_client() as c:
        while True:
            r = await c.get("/api/v1/readiness")
            r.raise_for_status()
            body = r.json()
            if pred(body):
                return body
            if loop.time() > deadline:
                failing = [f"{ln['key']}: {ln['detail']}" for ln in body["lines"] if ln["status"] == "fail"]
                raise TimeoutError(f"timed out waiting for {what}; failing: {failing}")
            await asyncio.sleep(0.2)


def pdf_text(path: Path, body: bytes) -> tuple[str, str]:
    """The PDF's text (pdftotext) and its pdfinfo, as a person printing it would get them."""
    path.write_bytes(body)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True)
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True)
    return text.stdout, info.stdout


def failing(body: dict[str, Any]) -> set[str]:
    return {ln["key"] for ln in body["lines"] if ln["status"] == "fail"}


async def test_readiness_is_ready_then_not_ready_and_a_named_supervisors_waiver_makes_it_ready(tmp_path: Path) -> None:
    venue = await Venue.create(tmp_path, zones={"North": 100}, tickets_per_zone=20)
    try:
        async with venue.hub.admin_client() as c:
            r = await c.post("/api/v1/stewards", json={"steward_id": "S1", "name": "Sam", "pin": "482913"})
            r.raise_for_status()
        gate = await venue.add_gate("North A", ["North"], manifest_refresh_s=1.0)
        await venue.online(gate)
        zone = venue.zones["North"]
        before = await report_until(venue, lambda b: failing(b) == {f"gate:{gate.gate_id}:manifest_printed"},
                                    "everything but the printed manifest")
        assert before["verdict"] == "NOT READY"
        printed = await venue.hub.agatehouse("manifest", "--gate", gate.gate_id, "--out", str(tmp_path / "m.pdf"))
        assert printed.returncode == 0, printed.stderr
        ready = await report_until(venue, lambda b: b["ready"], "READY")
        lines = {ln["key"]: ln for ln in ready["lines"]}
        clock = lines[f"gate:{gate.gate_id}:clock"]
        assert clock["ok"] and re.match(r"[+-]\d+\.\d s against the hub", clock["detail"]), clock
        assert "1 on the gate" in lines[f"gate:{gate.gate_id}:stewards"]["detail"]
        cli = await venue.hub.agatehouse("readiness")
        assert cli.returncode == 0 and cli.stdout.rstrip().endswith("READY"), cli.stdout

        # a double sale arrives with a late import: NOT READY, and the line says what to do
        async with venue.hub.admin_client() as c:
            r = await c.post("/api/v1/tickets/import?format=json",
                             json=[{"number": "N99999", "zone": "North", "seat": "N-0-0", "holder": "Late"}])
            assert r.json()["mismatches"]["double_sold_count"] == 1
        body = await report_until(venue, lambda b: f"zone:{zone}:seats" in failing(b), "the double-sold seat")
        seat_line = next(ln for ln in body["lines"] if ln["key"] == f"zone:{zone}:seats")
        assert "N00000" in seat_line["detail"] and "N99999" in seat_line["detail"] and "re-seat" in seat_line["action"]
        assert f"gate:{gate.gate_id}:manifest_printed" in failing(body)  # the paper no longer matches
        cli = await venue.hub.agatehouse("readiness")
        assert cli.returncode == 4 and "NOT READY" in cli.stdout and "✖ zone North: double-sold seats" in cli.stdout

        # a supervisor waives the seat, the operator reprints: READY again; the waiver is audited
        w = await venue.hub.agatehouse("waive", f"zone:{zone}:seats", "--supervisor", "Ada Byron",
                                       "--reason", "box office moves N99999 at the door")
        assert w.returncode == 0, w.stderr
        waiver_id = json.loads(w.stdout)["waiver_id"]
        await venue.hub.agatehouse("manifest", "--gate", gate.gate_id, "--out", str(tmp_path / "m.pdf"))
        body = await report_until(venue, lambda b: b["ready"], "READY with the waiver")
        seat_line = next(ln for ln in body["lines"] if ln["key"] == f"zone:{zone}:seats")
        assert seat_line["status"] == "waived" and seat_line["waiver"]["supervisor"] == "Ada Byron"
        async with venue.hub.admin_client() as c:
            audit = (await c.get("/api/v1/audit", params={"action": "readiness_waiver"})).json()
            assert audit[0]["target"] == f"zone:{zone}:seats" and audit[0]["detail"]["supervisor"] == "Ada Byron"
            pdf = await c.get("/api/v1/readiness.pdf")
            assert pdf.status_code == 200 and pdf.headers["X-Readiness"] == "READY"
        text, info = await asyncio.to_thread(pdf_text, tmp_path / "r.pdf", pdf.content)
        assert "READY" in text and "Ada Byron" in text and "Supervisor (name)" in text
        assert re.search(r"^Pages:\s+1$", info, re.M), info

        # withdrawn: NOT READY until the clash is really resolved (one ticket revoked)
        assert (await venue.hub.agatehouse("unwaive", str(waiver_id))).returncode == 0
        await report_until(venue, lambda b: f"zone:{zone}:seats" in failing(b), "NOT READY without the waiver")
        async with venue.hub.admin_client() as c:
            (await c.post("/api/v1/tickets/N99999/revoke")).raise_for_status()
        await venue.hub.agatehouse("manifest", "--gate", gate.gate_id, "--out", str(tmp_path / "m.pdf"))
        await report_until(venue, lambda b: b["ready"] and not b["waived"], "READY by resolution")
    finally:
        await venue.close()


async def test_a_waiver_needs_a_failing_line_and_a_supervisor(tmp_path: Path) -> None:
    venue = await Venue.create(tmp_path, zones={"North": 100}, tickets_per_zone=2)
    try:
        async with venue.hub.admin_client() as c:
            r = await c.post("/api/v1/readiness/waivers", json={"check": f"zone:{venue.zones['North']}:capacity",
                                                                 "supervisor": "Ada", "reason": "fine"})
            assert r.status_code == 409 and r.json()["error"]["code"] == "check_passes"
            r = await c.post("/api/v1/readiness/waivers", json={"check": "zone:999:capacity", "supervisor": "Ada",
                                                                 "reason": "x"})
            assert r.status_code == 404
            token = (await c.post("/api/v1/tokens", json={"name": "screen", "role": "viewer"})).json()["token"]
        async with venue.hub.admin_client() as c:
            c.headers["Authorization"] = f"Bearer {token}"
            r = await c.post("/api/v1/readiness/waivers", json={"check": f"zone:{venue.zones['North']}:gates",
                                                                 "supervisor": "Ada", "reason": "x"})
            assert r.status_code == 403
    finally:
        await venue.close()
