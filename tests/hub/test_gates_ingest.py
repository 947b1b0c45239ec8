"""Gate enrolment and journal ingest over the real HTTP API."""
from __future__ import annotations

import time
from itertools import count

import httpx
import pytest

from tests.hub.conftest import Hub
from tickets.entry import EntryKind, JournalEntry, Passage

_names = count(1)


@pytest.fixture(scope="module")
def hub(hub_on_both: Hub) -> Hub:
    """Ingest and conflict rules hold on both backends."""
    return hub_on_both


def _enrol(hub: Hub, admin: httpx.Client, zones: list[int] | None = None) -> tuple[str, httpx.Client]:
    name = f"North {next(_names)}"
    r = admin.post("/api/v1/gates", json={"name": name, "zones": zones or []})
    assert r.status_code == 200, r.text
    gate_id, enrol_token = r.json()["gate_id"], r.json()["enrolment_token"]
    with hub.client() as anon:
        r = anon.post("/api/v1/enroll", json={"token": enrol_token})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["gate_id"] == gate_id
    assert body["event"]["event_id"] == 7 and body["event"]["keys"]
    return gate_id, hub.client(body["token"])


def _scan(gate: str, seq: int, ticket_id: int | None, reason: str = "ADMIT", **kw: object) -> JournalEntry:
    return JournalEntry(gate_id=gate, seq=seq, at=kw.pop("at", time.time()), kind=kw.pop("kind", EntryKind.SCAN),  # type: ignore[arg-type]
                        reason=reason, ticket_id=ticket_id, raw=b"GH1:X", **kw)  # type: ignore[arg-type]


def _post(gate: httpx.Client, gate_id: str, entries: list[JournalEntry]) -> httpx.Response:
    return gate.post(f"/api/v1/gates/{gate_id}/journal", json={"entries": [e.to_wire() for e in entries]})


def _ticket(admin: httpx.Client, number: str, policy: str = "single") -> int:
    r = admin.post("/api/v1/tickets/import", content=f"number,zone,policy\n{number},North,{policy}\n".encode())
    assert r.status_code == 200 and not r.json()["errors"], r.text
    return int(admin.get("/api/v1/tickets", params={"number": number}).json()[0]["ticket_id"])


def test_an_enrolment_token_works_once(hub: Hub, admin: httpx.Client) -> None:
    r = admin.post("/api/v1/gates", json={"name": "Once"}).json()
    with hub.client() as anon:
        assert anon.post("/api/v1/enroll", json={"token": r["enrolment_token"]}).status_code == 200
        again = anon.post("/api/v1/enroll", json={"token": r["enrolment_token"]})
    assert again.status_code == 401 and again.json()["error"]["code"] == "bad_enrolment_token"


def test_ingest_stores_a_batch_and_answers_the_high_water_mark(hub: Hub, admin: httpx.Client) -> None:
    gate_id, gate = _enrol(hub, admin)
    tid = _ticket(admin, "G-1")
    r = _post(gate, gate_id, [_scan(gate_id, 1, tid), _scan(gate_id, 2, None, "UNKNOWN")])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["high_water"] == 2 and body["stored"] == 2 and body["admits"] == 1 and body["hub_epoch"]
    got = gate.get(f"/api/v1/gates/{gate_id}/journal/high-water").json()
    assert got["high_water"] == 2


def test_a_resent_entry_is_stored_once(hub: Hub, admin: httpx.Client) -> None:
    gate_id, gate = _enrol(hub, admin)
    e = _scan(gate_id, 1, None, "UNKNOWN")
    assert _post(gate, gate_id, [e]).json()["stored"] == 1
    again = _post(gate, gate_id, [e, e]).json()
    assert again["stored"] == 0 and again["duplicates"] == 2 and again["high_water"] == 1
    assert len(admin.get("/api/v1/validations", params={"gate_id": gate_id}).json()) == 1


def test_a_reused_seq_with_another_nonce_is_a_conflict_and_never_overwrites(hub: Hub, admin: httpx.Client) -> None:
    gate_id, gate = _enrol(hub, admin)
    first = _scan(gate_id, 1, None, "UNKNOWN", detail="original")
    _post(gate, gate_id, [first])
    impostor = _scan(gate_id, 1, None, "UNKNOWN", detail="after journal loss")
    body = _post(gate, gate_id, [impostor]).json()
    assert body["stored"] == 0 and [c["kind"] for c in body["conflicts"]] == ["seq_reuse"]
    stored = admin.get("/api/v1/validations", params={"gate_id": gate_id}).json()
    assert [(v["nonce"], v["detail"]) for v in stored] == [(first.nonce, "original")]
    conflicts = [c for c in admin.get("/api/v1/conflicts").json() if c["first"]["gate_id"] == gate_id]
    assert conflicts[0]["detail"]["new_nonce"] == impostor.nonce


def test_high_water_waits_for_a_gap_to_fill(hub: Hub, admin: httpx.Client) -> None:
    gate_id, gate = _enrol(hub, admin)
    assert _post(gate, gate_id, [_scan(gate_id, s, None, "UNKNOWN") for s in (1, 2, 4, 5)]).json()["high_water"] == 2
    assert _post(gate, gate_id, [_scan(gate_id, 3, None, "UNKNOWN")]).json()["high_water"] == 5


def test_a_gate_may_post_only_its_own_journal(hub: Hub, admin: httpx.Client) -> None:
    a_id, a = _enrol(hub, admin)
    b_id, _b = _enrol(hub, admin)
    r = _post(a, b_id, [_scan(b_id, 1, None, "UNKNOWN")])
    assert r.status_code == 403 and r.json()["error"]["code"] == "wrong_gate"
    r = _post(a, a_id, [_scan(b_id, 1, None, "UNKNOWN")])
    assert r.status_code == 400 and r.json()["error"]["code"] == "wrong_gate"
    r = admin.post(f"/api/v1/gates/{a_id}/journal", json={"entries": []})
    assert r.status_code == 401


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "bad_json"),
        (b'{"entries": 5}', "bad_batch"),
        (b'{"entries": [{"gate_id": "x"}]}', "bad_entry"),
        (b'{"entries": [17]}', "bad_entry"),
    ],
)
def test_a_malformed_batch_is_a_400_with_a_reason(hub: Hub, admin: httpx.Client, body: bytes, code: str) -> None:
    gate_id, gate = _enrol(hub, admin)
    r = gate.post(f"/api/v1/gates/{gate_id}/journal", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == code


def test_a_huge_body_is_refused_with_413_before_it_is_read(hub: Hub, admin: httpx.Client) -> None:
    gate_id, gate = _enrol(hub, admin)
    r = gate.post(f"/api/v1/gates/{gate_id}/journal", content=b"x" * (5 * 1024 * 1024))
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(80):
            yield b"y" * 65536
    r = gate.post(f"/api/v1/gates/{gate_id}/journal", content=chunks())
    assert r.status_code == 413


def test_a_revoked_gate_is_refused_from_then_on(hub: Hub, admin: httpx.Client) -> None:
    gate_id, gate = _enrol(hub, admin)
    assert _post(gate, gate_id, [_scan(gate_id, 1, None, "UNKNOWN")]).status_code == 200
    assert admin.post(f"/api/v1/gates/{gate_id}/revoke").json()["status"] == "revoked"
    r = _post(gate, gate_id, [_scan(gate_id, 2, None, "UNKNOWN")])
    assert r.status_code == 401 and r.json()["error"]["code"] == "bad_gate_token"


def test_two_gates_admitting_a_single_entry_ticket_make_one_conflict(hub: Hub, admin: httpx.Client) -> None:
    a_id, a = _enrol(hub, admin)
    b_id, b = _enrol(hub, admin)
    tid = _ticket(admin, "DBL-1")
    now = time.time()
    assert _post(a, a_id, [_scan(a_id, 1, tid, at=now)]).json()["conflicts"] == []
    got = _post(b, b_id, [_scan(b_id, 1, tid, at=now + 5)]).json()["conflicts"]
    assert [(c["kind"], c["first"]["gate_id"], c["second"]["gate_id"]) for c in got] == [("double_admit", a_id, b_id)]
    listed = [c for c in admin.get("/api/v1/conflicts", params={"open": True}).json() if c["ticket_id"] == tid]
    assert len(listed) == 1 and listed[0]["first"]["reason"] == "ADMIT" and listed[0]["second"]["seq"] == 1


def test_a_reentry_ticket_with_an_exit_between_admits_is_no_conflict(hub: Hub, admin: httpx.Client) -> None:
    a_id, a = _enrol(hub, admin)
    tid = _ticket(admin, "RE-1", "reentry")
    now = time.time()
    body = _post(a, a_id, [_scan(a_id, 1, tid, at=now), _scan(a_id, 2, tid, at=now + 60, direction="out"),
                           _scan(a_id, 3, tid, "ADMIT_REENTRY", at=now + 120)]).json()
    assert body["conflicts"] == []
    body = _post(a, a_id, [_scan(a_id, 4, tid, "ADMIT_REENTRY", at=now + 130)]).json()
    assert [c["kind"] for c in body["conflicts"]] == ["double_admit"]


def test_a_manual_admit_is_reconciled_against_an_earlier_scan(hub: Hub, admin: httpx.Client) -> None:
    a_id, a = _enrol(hub, admin)
    b_id, b = _enrol(hub, admin)
    tid = _ticket(admin, "MAN-1")
    now = time.time()
    _post(a, a_id, [_scan(a_id, 1, tid, at=now)])
    manual = JournalEntry(gate_id=b_id, seq=1, at=now + 30, kind=EntryKind.MANUAL, reason="ADMIT",
                          ticket_number="MAN-1", raw=b"MAN-1", mode="MANIFEST", staff_id="steward-4")
    conflicts = _post(b, b_id, [manual]).json()["conflicts"]
    assert [(c["kind"], c["detail"]["second_kind"]) for c in conflicts] == [("double_admit", "manual")]
    stored = admin.get("/api/v1/validations", params={"ticket_id": tid}).json()
    assert {v["gate_id"] for v in stored} == {a_id, b_id}
    unknown = JournalEntry(gate_id=b_id, seq=2, at=now + 40, kind=EntryKind.MANUAL, reason="ADMIT",
                           ticket_number="NOPE-9", raw=b"NOPE-9", staff_id="steward-4")
    assert [c["kind"] for c in _post(b, b_id, [unknown]).json()["conflicts"]] == ["manual_unknown"]


def test_an_admit_that_did_not_pass_closes_its_conflict(hub: Hub, admin: httpx.Client) -> None:
    a_id, a = _enrol(hub, admin)
    b_id, b = _enrol(hub, admin)
    tid = _ticket(admin, "NP-1")
    now = time.time()
    _post(a, a_id, [_scan(a_id, 1, tid, at=now)])
    conflict = _post(b, b_id, [_scan(b_id, 1, tid, at=now + 1)]).json()["conflicts"][0]
    passage = JournalEntry(gate_id=a_id, seq=2, at=now + 10, kind=EntryKind.PASSAGE, ref_seq=1,
                           passage=Passage.NOT_PASSED)
    _post(a, a_id, [passage])
    open_ids = {c["conflict_id"] for c in admin.get("/api/v1/conflicts", params={"open": True}).json()}
    assert conflict["conflict_id"] not in open_ids


def test_supervisor_resolves_a_conflict_once(hub: Hub, admin: httpx.Client) -> None:
    a_id, a = _enrol(hub, admin)
    b_id, b = _enrol(hub, admin)
    tid = _ticket(admin, "RES-1")
    _post(a, a_id, [_scan(a_id, 1, tid)])
    cid = _post(b, b_id, [_scan(b_id, 1, tid)]).json()["conflicts"][0]["conflict_id"]
    sup = admin.post("/api/v1/tokens", json={"name": "sup-1", "role": "supervisor"}).json()["token"]
    with hub.client(sup) as s:
        r = s.post(f"/api/v1/conflicts/{cid}/resolve", json={"resolution": "same fan, re-scan after fault"})
        assert r.status_code == 200 and r.json()["resolved_by"] == "sup-1"
        again = s.post(f"/api/v1/conflicts/{cid}/resolve", json={"resolution": "again"})
        assert again.status_code == 409 and again.json()["error"]["code"] == "already_resolved"
        assert s.post("/api/v1/conflicts/999999/resolve", json={"resolution": "x"}).status_code == 404
    audit = admin.get("/api/v1/audit", params={"action": "resolve_conflict"}).json()
    assert audit[0]["actor"] == "sup-1" and audit[0]["target"] == str(cid)


def test_wrong_types_in_a_body_are_a_422_with_the_field(admin: httpx.Client) -> None:
    r = admin.post("/api/v1/gates", json={"name": 12, "zones": "all"})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "invalid_request" and {p["field"] for p in err["problems"]} == {"name", "zones"}


def test_only_a_supervisor_declares_an_emergency(hub: Hub, admin: httpx.Client) -> None:
    viewer = admin.post("/api/v1/tokens", json={"name": "wall-2", "role": "viewer"}).json()["token"]
    with hub.client(viewer) as v:
        assert v.post("/api/v1/emergency", json={"active": True, "reason": "x"}).status_code == 403
    r = admin.post("/api/v1/emergency", json={"active": True, "reason": "evacuate east", "gates": ["nope"]})
    assert r.status_code == 404 and r.json()["error"]["code"] == "gate_not_found"
    r = admin.post("/api/v1/emergency", json={"active": True, "reason": "evacuate"})
    assert r.status_code == 200 and r.json()["active"] is True
    assert admin.get("/api/v1/emergency").json()["reason"] == "evacuate"
    admin.post("/api/v1/emergency", json={"active": False, "reason": "all clear"})
    assert admin.get("/api/v1/emergency").json()["active"] is False
