"""Double-sold seats and mass re-seating over the real HTTP API and the real CLI."""
from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hub.store import init_hub
from tests.hub.conftest import TIMEOUT_S, Hub, start_hub

ROOT = Path(__file__).resolve().parents[2]
TICKETS = (
    "number,holder,zone,seat\n"
    "N1,Ann,North,R1-1\n"
    "N2,Bob,North,R1-1\n"      # sold twice with N1
    "N3,Cid,North,R1-2\n"
    "N4,Dee,North,r1-3\n"
    "N5,Eve,North, R1-3\n"     # the same seat as N4, as people read it
    "S1,Fay,South,S-1\n"
    "S2,Gus,South,S-2\n"
    "P1,Hal,Standing,Floor\n"
    "P2,Ida,Standing,Floor\n"
)


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Hub]:
    h = start_hub(tmp_path / "hub", init_hub(tmp_path / "hub", event_id=17, name="Seats cup"))
    yield h
    h.stop()


@pytest.fixture
def api(fresh: Hub) -> Iterator[httpx.Client]:
    with fresh.client(fresh.admin) as c:
        r = c.post("/api/v1/tickets/import", content=TICKETS.encode(), headers={"Content-Type": "text/csv"})
        assert r.status_code == 200, r.text
        yield c


def seats_of(body: dict) -> list[tuple[str, list[str]]]:
    return [(c["seat"], [t["number"] for t in c["tickets"]]) for c in body["double_sold"]]


def tickets(c: httpx.Client) -> dict[str, dict]:
    return {t["number"]: t for t in c.get("/api/v1/tickets", params={"limit": 1000}).json()}


def seq(c: httpx.Client) -> int:
    return int(c.get("/api/v1/changes", params={"since": 0, "limit": 1}).json()["current_seq"])


def test_import_reports_double_sold_seats_and_the_list_keeps_them_until_resolved(fresh: Hub) -> None:
    with fresh.client(fresh.admin) as c:
        r = c.post("/api/v1/tickets/import", content=TICKETS.encode(), headers={"Content-Type": "text/csv"})
        report = r.json()["mismatches"]
        assert report["double_sold_count"] == 3
        assert seats_of(report) == [("R1-1", ["N1", "N2"]), ("r1-3", ["N4", "N5"]), ("Floor", ["P1", "P2"])]
        assert report["double_sold"][0]["tickets"][0]["holder"] == "Ann"
        # resolved three ways: revoke one, re-seat one, mark the standing zone shared
        assert c.post("/api/v1/tickets/N2/revoke").status_code == 200
        assert c.post("/api/v1/tickets/N5/upgrade", json={"seat": "R1-4"}).status_code == 200
        standing = next(z for z in c.get("/api/v1/zones").json() if z["name"] == "Standing")
        with fresh.client(fresh.admin) as s:
            r = s.post(f"/api/v1/zones/{standing['zone_id']}/seating", json={"shared_seats": True})
            assert r.status_code == 200, r.text
        after = c.get("/api/v1/seats/mismatches").json()
        assert after["double_sold_count"] == 0 and after["shared_seat_zones"] == [standing["zone_id"]]
        audit = [a["action"] for a in c.get("/api/v1/audit", params={"limit": 10}).json()]
        assert "zone_seating" in audit


def test_a_zone_sold_over_its_capacity_is_reported(api: httpx.Client) -> None:
    api.post("/api/v1/zones", json={"name": "South", "capacity": 1}).raise_for_status()
    over = api.get("/api/v1/seats/mismatches").json()["over_capacity"]
    assert [(o["zone"], o["tickets"], o["capacity"], o["excess"]) for o in over] == [("South", 2, 1, 1)]


def test_a_move_file_with_bad_lines_changes_nothing_and_names_every_bad_line(api: httpx.Client) -> None:
    before, seq0 = tickets(api), seq(api)
    moves = ("number,zone,seat,policy\n"
             "N3,North,R2-1,\n"            # good
             "NOPE,North,R2-2,\n"          # no such ticket
             "N4,Mars,R2-3,\n"             # no such zone
             "S1,South,S-2,\n"             # onto S2's seat, S2 stays: sold twice
             "N3,North,R2-5,\n"            # N3 again
             "S2,South,,bogus\n"           # unknown policy
             "N1,,,\n")                    # changes nothing
    r = api.post("/api/v1/tickets/reseat", content=moves.encode(), headers={"Content-Type": "text/csv"})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["code"] == "reseat_refused" and err["refused"] == 6 and err["lines"] == 7
    by_line = {e["line"]: e["reason"] for e in err["errors"]}
    assert sorted(by_line) == [3, 4, 5, 6, 7, 8]
    assert "no ticket 'NOPE'" in by_line[3] and "no zone 'Mars'" in by_line[4]
    assert "S2 (stays there)" in by_line[5] and "already moved on line 2" in by_line[6]
    assert "bogus" in by_line[7] and "changes nothing" in by_line[8]
    assert tickets(api) == before and seq(api) == seq0


def test_a_file_that_is_not_csv_at_all_is_refused_whole(api: httpx.Client) -> None:
    r = api.post("/api/v1/tickets/reseat", content=b"number,sektor\nN1,North\n", headers={"Content-Type": "text/csv"})
    assert r.status_code == 400 and "unknown column 'sektor'" in r.json()["error"]["message"]


def test_moves_apply_in_one_transaction_with_new_serials_and_an_audit_row_each(api: httpx.Client) -> None:
    before, seq0 = tickets(api), seq(api)
    moves = [{"number": "S1", "seat": "S-2"}, {"number": "S2", "seat": "S-1"},  # a swap is fine
             {"number": "N3", "zone": "South", "seat": "S-7", "category": "reentry"}]
    r = api.post("/api/v1/tickets/reseat", json=moves, params={"credentials": "true"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["applied"] and body["moved"] == 3 and body["unchanged"] == 0
    after = tickets(api)
    for number in ("S1", "S2", "N3"):
        assert after[number]["serial"] == before[number]["serial"] + 1
    assert (after["S1"]["seat"], after["S2"]["seat"]) == ("S-2", "S-1")
    south = next(z["zone_id"] for z in api.get("/api/v1/zones").json() if z["name"] == "South")
    assert after["N3"]["zone_id"] == south and after["N3"]["policy_id"] != before["N3"]["policy_id"]
    assert {k: v for k, v in after.items() if k not in ("S1", "S2", "N3")} == \
        {k: v for k, v in before.items() if k not in ("S1", "S2", "N3")}
    changes = api.get("/api/v1/changes", params={"since": seq0}).json()["changes"]
    assert sorted(c["row"]["number"] for c in changes) == ["N3", "S1", "S2"]
    assert all(c["row"]["serial"] == after[c["row"]["number"]]["serial"] for c in changes)
    assert all(m["credential"].startswith("GH1:") for m in body["moves"])
    audit = api.get("/api/v1/audit", params={"action": "reseat", "limit": 10}).json()
    assert sorted(a["detail"]["number"] for a in audit) == ["N3", "S1", "S2"]
    assert len({a["actor"] for a in audit}) == 1 and audit[0]["detail"]["batch_id"] == body["batch_id"]


def test_sending_the_same_move_file_again_is_a_no_op(api: httpx.Client) -> None:
    moves = b"number,seat\nS1,S-9\nS2,S-8\n"
    first = api.post("/api/v1/tickets/reseat", content=moves, headers={"Content-Type": "text/csv"}).json()
    seq1, state = seq(api), tickets(api)
    again = api.post("/api/v1/tickets/reseat", content=moves, headers={"Content-Type": "text/csv"}).json()
    assert again["moved"] == 0 and again["unchanged"] == 2 and again["last_seq"] is None
    assert [b["batch_id"] for b in again["previously_applied"]] == [first["batch_id"]]
    assert seq(api) == seq1 and tickets(api) == state


def test_partial_applies_the_good_lines_and_refuses_a_swap_whose_other_half_failed(api: httpx.Client) -> None:
    seq0 = seq(api)
    moves = b"number,zone,seat\nS1,South,S-2\nS2,Mars,S-1\nN3,North,R9-9\n"
    body = api.post("/api/v1/tickets/reseat", content=moves, headers={"Content-Type": "text/csv"},
                    params={"partial": "true"}).json()
    assert body["moved"] == 1 and [e["line"] for e in body["errors"]] == [2, 3]
    assert "S2 (stays there)" in body["errors"][0]["reason"]
    assert tickets(api)["N3"]["seat"] == "R9-9" and tickets(api)["S1"]["seat"] == "S-1"
    assert seq(api) == seq0 + 1


def test_a_dry_run_reports_what_would_move_and_changes_nothing(api: httpx.Client) -> None:
    seq0 = seq(api)
    body = api.post("/api/v1/tickets/reseat", json={"moves": [{"number": "S1", "seat": "S-5"}]},
                    params={"dry_run": "true"}).json()
    assert body["moved"] == 1 and not body["applied"] and body["moves"][0]["to"]["seat"] == "S-5"
    assert seq(api) == seq0 and tickets(api)["S1"]["seat"] == "S-1"


def test_a_new_shop_barcode_replaces_the_old_one(api: httpx.Client) -> None:
    body = api.post("/api/v1/tickets/reseat", json=[{"number": "S1", "zone": "North", "seat": "R7-1",
                                                     "barcode": "SHOP-NEW-0001"}]).json()
    assert body["moved"] == 1 and body["moves"][0]["to"]["new_barcode"]
    clash = api.post("/api/v1/tickets/reseat", json=[{"number": "S2", "barcode": "shop-new-0001"}])
    assert clash.status_code == 400 and "another ticket" in clash.json()["error"]["errors"][0]["reason"]


def test_only_admins_may_re_seat(fresh: Hub, api: httpx.Client) -> None:
    token = api.post("/api/v1/tokens", json={"name": "sup", "role": "supervisor"}).json()["token"]
    with fresh.client(token) as sup:
        r = sup.post("/api/v1/tickets/reseat", json=[{"number": "S1", "seat": "S-9"}])
        assert r.status_code == 403


# --- the CLI, as an operator runs it -----------------------------------------------------------


def gatehouse(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gatehouse", "hub", *args, "--data", str(data)], cwd=ROOT,
                          capture_output=True, text=True, timeout=TIMEOUT_S * 6)


def test_cli_import_names_double_sold_seats_and_reseat_refuses_a_bad_file(tmp_path: Path) -> None:
    data = tmp_path / "hub"
    init_hub(data, event_id=18, name="CLI cup")
    (tmp_path / "t.csv").write_text(TICKETS)
    r = gatehouse(data, "import", str(tmp_path / "t.csv"))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["mismatches"]["double_sold_count"] == 3
    assert "double-sold seat: zone North seat R1-1: N1, N2" in r.stderr
    bad = tmp_path / "moves.csv"
    bad.write_text("number,zone,seat\nN1,North,R5-5\nXX,North,R5-6\nN3,Nowhere,R5-7\n")
    r = gatehouse(data, "reseat", str(bad))
    assert r.returncode == 3
    assert f"{bad}:3: no ticket 'XX'" in r.stderr and f"{bad}:4: no zone 'Nowhere'" in r.stderr
    assert "nothing was applied" in r.stderr
    assert json.loads(gatehouse(data, "ticket", "show", "N1").stdout)["seat"] == "R1-1"
    good = tmp_path / "good.csv"
    good.write_text("number,seat\nN2,R1-9\nN5,R1-8\n")
    r = gatehouse(data, "reseat", str(good), "--credentials", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["moved"] == 2
    rows = (tmp_path / "out" / "credentials.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[1].startswith("N2,") and "GH1:" in rows[1]
    r = gatehouse(data, "reseat", str(good))
    assert r.returncode == 0 and json.loads(r.stdout)["moved"] == 0 and "applied before" in r.stderr
    r = gatehouse(data, "seats")
    assert r.returncode == 4 and "Standing seat Floor: P1, P2" in r.stdout
    assert gatehouse(data, "zone-seating", "standing", "--shared").returncode == 0
    assert gatehouse(data, "seats").returncode == 0
