"""Gate manifests, stewards and paper ticks over the real HTTP API (uvicorn on 127.0.0.1)."""
from __future__ import annotations

import csv
import io
import shutil
import subprocess
import time
from dataclasses import dataclass
from itertools import count
from pathlib import Path

import httpx
import pytest

from gatehouse.cli import main as gatehouse_main
from hub.manifest import sample_rows
from hub.manifest_routes import ManifestCache
from hub.reconcile import find_conflicts
from hub.store import GateManifest
from tests.hub.conftest import Hub
from tickets.entry import EntryKind, JournalEntry
from tickets.manifest import PinHash, check_code, verify_pin
from tickets.policy import STRICTEST

_names = count(1)
needs_pdftotext = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")


@dataclass
class Gate:
    gate_id: str
    client: httpx.Client


def _zone(admin: httpx.Client, name: str) -> int:
    r = admin.post("/api/v1/zones", json={"name": name})
    assert r.status_code == 200, r.text
    return int(r.json()["zone_id"])


def _gate(hub: Hub, admin: httpx.Client, zones: list[int]) -> Gate:
    r = admin.post("/api/v1/gates", json={"name": f"Manifest {next(_names)}", "zones": zones})
    assert r.status_code == 200, r.text
    with hub.client() as anon:
        body = anon.post("/api/v1/enroll", json={"token": r.json()["enrolment_token"]}).json()
    return Gate(body["gate_id"], hub.client(body["token"]))


def _import(admin: httpx.Client, lines: list[str]) -> dict[str, int]:
    r = admin.post("/api/v1/tickets/import", content=("number,zone,policy,holder\n" + "\n".join(lines) + "\n").encode())
    assert r.status_code == 200 and not r.json()["errors"], r.text
    out = {}
    for line in lines:
        number = line.split(",")[0]
        out[number] = int(admin.get("/api/v1/tickets", params={"number": number}).json()[0]["ticket_id"])
    return out


def _token(admin: httpx.Client, role: str) -> str:
    return str(admin.post("/api/v1/tokens", json={"name": f"{role}-{next(_names)}", "role": role}).json()["token"])


def _post(gate: Gate, entries: list[JournalEntry]) -> httpx.Response:
    return gate.client.post(f"/api/v1/gates/{gate.gate_id}/journal", json={"entries": [e.to_wire() for e in entries]})


def _pdf_text(data: bytes, tmp_path: Path) -> str:
    path = tmp_path / "m.pdf"
    path.write_bytes(data)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True).stdout


# --- printable manifests ---------------------------------------------------------------------


@needs_pdftotext
def test_a_gates_pdf_manifest_lists_the_tickets_of_its_zones_only(hub: Hub, admin: httpx.Client,
                                                                  tmp_path: Path) -> None:
    east, west = _zone(admin, "East Stand"), _zone(admin, "West Stand")
    gate = _gate(hub, admin, [east])
    _import(admin, ["E-100,East Stand,single,Ada Lovelace", "E-101,East Stand,single,Alan Turing",
                    "W-200,West Stand,single,Grace Hopper"])
    with hub.client(_token(admin, "viewer")) as viewer:
        r = viewer.get(f"/api/v1/gates/{gate.gate_id}/manifest.pdf")
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.headers["content-disposition"].startswith("attachment;")
    text = _pdf_text(r.content, tmp_path)
    assert "E-100" in text and "Ada Lovelace" in text and "E-101" in text
    assert check_code(7, "E-100") in text
    assert "W-200" not in text and "Grace Hopper" not in text
    assert f"hub seq {r.headers['x-hub-seq']}" in text
    assert west  # the west zone exists, only not at this gate


def test_a_gates_csv_manifest_holds_the_same_rows(hub: Hub, admin: httpx.Client) -> None:
    north = _zone(admin, "North Curve")
    gate = _gate(hub, admin, [north])
    _import(admin, ["N-1,North Curve,single,Nora One", "N-2,North Curve,single,Ned Two",
                    "S-9,South Curve,single,Sam Nine"])
    r = admin.get(f"/api/v1/gates/{gate.gate_id}/manifest.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [(row["number"], row["holder"], row["check_code"]) for row in rows] == [
        ("N-1", "Nora One", check_code(7, "N-1")), ("N-2", "Ned Two", check_code(7, "N-2"))]


def test_printable_manifests_need_a_viewer_token_and_a_known_gate(hub: Hub, admin: httpx.Client) -> None:
    gate = _gate(hub, admin, [])
    with hub.client() as anon:
        assert anon.get(f"/api/v1/gates/{gate.gate_id}/manifest.pdf").status_code == 401
    # a gate's own token is not an API principal: it fetches manifest.json, not the printable one
    r = gate.client.get(f"/api/v1/gates/{gate.gate_id}/manifest.csv")
    assert r.status_code == 401 and r.json()["error"]["code"] == "bad_token"
    r = admin.get("/api/v1/gates/no-such-gate/manifest.pdf")
    assert r.status_code == 404 and r.json()["error"]["code"] == "gate_not_found"
    assert admin.get("/api/v1/gates/no-such-gate/manifest.csv").status_code == 404


# --- the gate's own copy -----------------------------------------------------------------------


def test_manifest_json_pages_stay_on_one_version_while_tickets_change(hub: Hub, admin: httpx.Client) -> None:
    zone = _zone(admin, "Paging Block")
    gate = _gate(hub, admin, [zone])
    ids = _import(admin, [f"P-{i:03d},Paging Block,single,Fan {i}" for i in range(25)])
    url = f"/api/v1/gates/{gate.gate_id}/manifest.json"
    first = gate.client.get(url, params={"limit": 10}).json()
    assert first["total_rows"] == 25 and len(first["rows"]) == 10 and first["next_after"] == 10
    assert first["rows"][0]["number"] == "P-000" and isinstance(first["stewards"], list)
    admin.post(f"/api/v1/tickets/{ids['P-024']}/revoke")  # the hub moves on mid-download
    rows = list(first["rows"])
    after = first["next_after"]
    while after is not None:
        page = gate.client.get(url, params={"after": after, "limit": 10, "seq": first["hub_seq"]}).json()
        assert page["hub_seq"] == first["hub_seq"] and page["stewards"] is None
        rows += page["rows"]
        after = page["next_after"]
    assert [r["number"] for r in rows] == [f"P-{i:03d}" for i in range(25)]
    assert rows[-1]["status"] == "valid"  # as of the version being fetched
    fresh = gate.client.get(url).json()
    assert fresh["hub_seq"] > first["hub_seq"] and fresh["rows"][-1]["status"] == "revoked"
    gone = gate.client.get(url, params={"after": 10, "seq": 1})
    assert gone.status_code == 409 and gone.json()["error"]["code"] == "manifest_changed"


def test_manifest_json_is_only_for_the_gate_itself(hub: Hub, admin: httpx.Client) -> None:
    a, b = _gate(hub, admin, []), _gate(hub, admin, [])
    url = f"/api/v1/gates/{a.gate_id}/manifest.json"
    assert b.client.get(url).json()["error"]["code"] == "wrong_gate"
    assert admin.get(url).json()["error"]["code"] == "bad_gate_token"
    assert a.client.get(url, params={"limit": 0}).status_code == 422  # outside the documented range
    assert a.client.get(url).json()["total_rows"] == 0


def test_stewards_reach_the_gate_as_pin_hashes_only(hub: Hub, admin: httpx.Client) -> None:
    gate = _gate(hub, admin, [])
    r = admin.post("/api/v1/stewards", json={"steward_id": "ST-7", "name": "Kim Park", "pin": "482915"})
    assert r.status_code == 200, r.text
    listed = admin.get("/api/v1/stewards").json()
    assert {"steward_id": "ST-7", "name": "Kim Park"}.items() <= next(
        s for s in listed if s["steward_id"] == "ST-7").items()
    assert "482915" not in admin.get("/api/v1/stewards").text
    stewards = gate.client.get(f"/api/v1/gates/{gate.gate_id}/manifest.json").json()["stewards"]
    (sid, name, wire), = [s for s in stewards if s[0] == "ST-7"]
    assert (sid, name) == ("ST-7", "Kim Park") and "482915" not in str(wire)
    assert verify_pin("482915", PinHash.from_wire(wire)) and not verify_pin("482916", PinHash.from_wire(wire))
    audit = admin.get("/api/v1/audit", params={"action": "add_steward"}).json()
    assert audit and "482915" not in str(audit)


def test_steward_admin_refuses_bad_pins_duplicates_and_non_admins(hub: Hub, admin: httpx.Client) -> None:
    assert admin.post("/api/v1/stewards", json={"steward_id": "ST-8", "name": "Lee", "pin": "12ab"}).json()[
        "error"]["code"] == "bad_pin"
    assert admin.post("/api/v1/stewards", json={"steward_id": "a b", "name": "Lee", "pin": "1234"}).json()[
        "error"]["code"] == "bad_steward_id"
    assert admin.post("/api/v1/stewards", json={"steward_id": "ST-8", "name": "Lee", "pin": "1234"}).status_code == 200
    again = admin.post("/api/v1/stewards", json={"steward_id": "ST-8", "name": "Lee", "pin": "9999"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "steward_exists"
    replaced = admin.post("/api/v1/stewards", json={"steward_id": "ST-8", "name": "Lee", "pin": "9999",
                                                    "replace": True})
    assert replaced.json()["replaced"] is True
    with hub.client(_token(admin, "supervisor")) as sup:
        assert sup.post("/api/v1/stewards", json={"steward_id": "X", "name": "X", "pin": "1234"}).status_code == 403
        assert sup.delete("/api/v1/stewards/ST-8").status_code == 403
    assert admin.delete("/api/v1/stewards/ST-8").status_code == 200
    assert admin.delete("/api/v1/stewards/ST-8").json()["error"]["code"] == "steward_not_found"


# --- reconciliation: one path for scans, manual admits and paper ticks ----------------------------


def test_manual_admit_at_one_gate_and_scan_at_another_are_one_conflict_with_both(hub: Hub,
                                                                                 admin: httpx.Client) -> None:
    zone = _zone(admin, "Reconcile A")
    a, b = _gate(hub, admin, [zone]), _gate(hub, admin, [zone])
    tid = _import(admin, ["RC-1,Reconcile A,single,Rita"])["RC-1"]
    now = time.time()
    manual = JournalEntry(gate_id=a.gate_id, seq=1, at=now, kind=EntryKind.MANUAL, reason="ADMIT",
                          ticket_number="RC1", raw=b"RC1", mode="MANIFEST", staff_id="ST-1")  # typed, normalized
    scan = JournalEntry(gate_id=b.gate_id, seq=1, at=now + 20, kind=EntryKind.SCAN, reason="ADMIT", ticket_id=tid,
                        raw=b"GH1:X", mode="OFFLINE")
    assert _post(a, [manual]).json()["conflicts"] == []
    (c,) = _post(b, [scan]).json()["conflicts"]
    assert c["kind"] == "double_admit" and c["ticket_id"] == tid and c["detail"]["pair"] == "manual+scan"
    stored = next(x for x in admin.get("/api/v1/conflicts").json() if x["conflict_id"] == c["conflict_id"])
    assert (stored["first"]["gate_id"], stored["first"]["kind"], stored["first"]["staff_id"]) == (
        a.gate_id, "manual", "ST-1")
    assert (stored["second"]["gate_id"], stored["second"]["kind"]) == (b.gate_id, "scan")
    # both gates re-send everything (a reconnect): nothing new
    assert _post(a, [manual]).json()["conflicts"] == [] and _post(b, [scan]).json()["conflicts"] == []
    assert [x for x in admin.get("/api/v1/conflicts").json() if x["ticket_id"] == tid] == [stored]


def test_overrides_of_a_number_the_hub_does_not_know_conflict_with_each_other(hub: Hub,
                                                                              admin: httpx.Client) -> None:
    a, b = _gate(hub, admin, []), _gate(hub, admin, [])
    now = time.time()
    def override(g: Gate, at: float) -> JournalEntry:
        return JournalEntry(gate_id=g.gate_id, seq=1, at=at, kind=EntryKind.MANUAL, reason="ADMIT",
                            ticket_number="77770001", raw=b"77770001", staff_id="ST-2")
    assert [c["kind"] for c in _post(a, [override(a, now)]).json()["conflicts"]] == ["manual_unknown"]
    kinds = sorted(c["kind"] for c in _post(b, [override(b, now + 5)]).json()["conflicts"])
    assert kinds == ["double_admit", "manual_unknown"]


def test_paper_ticks_are_stored_with_who_entered_them_and_conflict_with_scans(hub: Hub,
                                                                              admin: httpx.Client) -> None:
    zone = _zone(admin, "Paper Block")
    gate, other = _gate(hub, admin, [zone]), _gate(hub, admin, [zone])
    ids = _import(admin, ["PT-1,Paper Block,single,Pat", "PT-2,Paper Block,single,Pia", "PT-3,Paper Block,reentry,Po"])
    now = time.time()
    _post(other, [JournalEntry(gate_id=other.gate_id, seq=1, at=now - 600, kind=EntryKind.SCAN, reason="ADMIT",
                               ticket_id=ids["PT-1"], raw=b"GH1:X")])
    sup_token = _token(admin, "supervisor")
    body = {"tickets": ["PT-1", {"number": "PT-2", "at": now - 300, "steward_id": "ST-4"}], "manifest_hub_seq": 3}
    with hub.client(sup_token) as sup:
        r = sup.post(f"/api/v1/gates/{gate.gate_id}/paper-ticks", json=body)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["entered"] == 2 and out["paper_gate_id"] == f"paper:{gate.gate_id}"
        (c,) = out["conflicts"]
        assert c["ticket_id"] == ids["PT-1"] and c["detail"]["pair"] == "manual+scan"
        assert c["first"]["gate_id"] == other.gate_id and c["second"]["gate_id"] == f"paper:{gate.gate_id}"
        # the same sheet entered twice stores nothing and raises nothing
        again = sup.post(f"/api/v1/gates/{gate.gate_id}/paper-ticks", json=body).json()
        assert (again["entered"], again["conflicts"], again["skipped"]) == (0, [], ["PT-1", "PT-2"])
    stored = admin.get("/api/v1/validations", params={"gate_id": f"paper:{gate.gate_id}"}).json()
    assert sorted(e["ticket_number"] for e in stored) == ["PT-1", "PT-2"]
    pia = next(e for e in stored if e["ticket_number"] == "PT-2")
    assert pia["kind"] == "manual" and pia["at"] == pytest.approx(now - 300) and pia["staff_id"].startswith("supervisor-")
    assert "steward ST-4" in pia["detail"] and "hub seq 3" in pia["detail"]
    audit = admin.get("/api/v1/audit", params={"action": "paper_ticks"}).json()
    assert audit[0]["target"] == gate.gate_id and audit[1]["detail"]["entered"] == 2


def test_a_paper_batch_with_an_unknown_or_foreign_number_is_refused_whole(hub: Hub, admin: httpx.Client) -> None:
    mine, theirs = _zone(admin, "Paper Mine"), _zone(admin, "Paper Theirs")
    gate = _gate(hub, admin, [mine])
    _import(admin, ["PM-1,Paper Mine,single,A", "PX-1,Paper Theirs,single,B"])
    with hub.client(_token(admin, "supervisor")) as sup:
        r = sup.post(f"/api/v1/gates/{gate.gate_id}/paper-ticks", json={"tickets": ["PM-1", "PX-1", "NOPE-404"]})
        assert r.status_code == 409
        err = r.json()["error"]
        assert (err["code"], err["unknown"], err["not_on_manifest"]) == ("paper_ticks_refused", ["NOPE-404"], ["PX-1"])
        assert sup.post("/api/v1/gates/nope/paper-ticks", json={"tickets": ["PM-1"]}).status_code == 404
    assert admin.get("/api/v1/validations", params={"gate_id": f"paper:{gate.gate_id}"}).json() == []
    with hub.client(_token(admin, "viewer")) as viewer:
        assert viewer.post(f"/api/v1/gates/{gate.gate_id}/paper-ticks",
                           json={"tickets": ["PM-1"]}).status_code == 403
    assert theirs


def test_the_store_and_the_pure_cross_check_agree_on_three_admits_of_one_ticket(hub: Hub,
                                                                                admin: httpx.Client) -> None:
    zone = _zone(admin, "Cross Check")
    a, b, c = (_gate(hub, admin, [zone]) for _ in range(3))
    tid = _import(admin, ["CC-1,Cross Check,single,Cass"])["CC-1"]
    now = time.time()
    _post(a, [JournalEntry(gate_id=a.gate_id, seq=1, at=now, kind=EntryKind.MANUAL, reason="ADMIT",
                           ticket_number="CC1", raw=b"CC1", staff_id="ST-1")])
    _post(b, [JournalEntry(gate_id=b.gate_id, seq=1, at=now + 10, kind=EntryKind.SCAN, reason="ADMIT",
                           ticket_id=tid, raw=b"GH1:X")])
    with hub.client(_token(admin, "supervisor")) as sup:
        sup.post(f"/api/v1/gates/{c.gate_id}/paper-ticks", json={"tickets": [{"number": "CC-1", "at": now + 20}]})
    stored = {((x["first"]["gate_id"], x["first"]["seq"]), (x["second"]["gate_id"], x["second"]["seq"]),
               x["detail"]["pair"])
              for x in admin.get("/api/v1/conflicts").json() if x["ticket_id"] == tid}
    entries = [JournalEntry.from_wire({k: v for k, v in v.items() if k != "received_at"})
               for v in admin.get("/api/v1/validations", params={"ticket_id": tid}).json()]
    pure = {((x.first.gate_id, x.first.seq), (x.second.gate_id, x.second.seq), str(x.kind))
            for x in find_conflicts(entries, lambda _tid: STRICTEST)}
    assert stored == pure
    assert {pair for _f, _s, pair in stored} == {"manual+scan", "manual+manual"}
    assert all(f == (a.gate_id, 1) for f, _s, _p in stored)  # the first admission is the one that stands


# --- the CLI -------------------------------------------------------------------------------------


@needs_pdftotext
def test_cli_adds_a_steward_from_stdin_and_writes_every_gates_manifest(hub: Hub, admin: httpx.Client,
                                                                      tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    zone = _zone(admin, "Cli Block")
    gate = _gate(hub, admin, [zone])
    _import(admin, ["CLI-1,Cli Block,single,Clio"])
    monkeypatch.setattr("sys.stdin", io.StringIO("2468\n"))
    assert gatehouse_main(["hub", "steward", "add", "ST-CLI", "--name", "Cli Steward", "--data", str(hub.data)]) == 0
    assert any(s["steward_id"] == "ST-CLI" for s in admin.get("/api/v1/stewards").json())
    out = tmp_path / "one.pdf"
    assert gatehouse_main(["hub", "manifest", "--gate", gate.gate_id, "--out", str(out), "--data", str(hub.data)]) == 0
    assert "CLI-1" in _pdf_text(out.read_bytes(), tmp_path)
    assert gatehouse_main(["hub", "manifest", "--all", "--csv", "--dir", str(tmp_path / "all"),
                           "--data", str(hub.data)]) == 0
    assert "CLI-1" in (tmp_path / "all" / f"manifest-{gate.gate_id}.csv").read_text(encoding="utf-8-sig")
    assert gatehouse_main(["hub", "manifest", "--gate", "nope", "--out", str(out), "--data", str(hub.data)]) == 1


def test_the_manifest_cache_keeps_each_gates_latest_versions_within_a_row_budget() -> None:
    rows = tuple(sample_rows(10))

    def version(gate: str, seq: int, n: int = 10) -> GateManifest:
        return GateManifest(gate, gate, 1, "E", seq, 0.0, rows[:n])

    cache = ManifestCache(per_gate=2, max_rows=35)
    for seq in (1, 2, 3):
        cache.put(version("a", seq))
    assert (cache.get("a", 1), cache.get("a", 2) is not None, cache.get("a", 3) is not None) == (None, True, True)
    cache.put(version("b", 1))
    cache.put(version("c", 1))  # 40 rows: over budget, the least recently used goes
    assert len(cache) == 3 and cache.get("a", 2) is None and cache.get("c", 1) is not None
