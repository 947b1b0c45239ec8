"""Ticket changes (revoke, upgrade, transfer, reinstate), the change log and credentials."""
from __future__ import annotations

import cv2
import httpx
import numpy as np
import zxingcpp

from hub.keyfiles import load_keyring
from hub.records import record_from_row
from tests.hub.conftest import Hub
from tickets import credential
from tickets.model import TicketStatus


def _one(admin: httpx.Client, number: str, zone: str = "North", extra: str = "") -> dict:  # type: ignore[type-arg]
    header, row = "number,zone,seat,holder" + ("," + extra.split("=")[0] if extra else ""), f"{number},{zone},S1,Fan"
    if extra:
        row += "," + extra.split("=")[1]
    r = admin.post("/api/v1/tickets/import", content=f"{header}\n{row}\n".encode())
    assert r.status_code == 200 and not r.json()["errors"], r.text
    return admin.get("/api/v1/tickets", params={"number": number}).json()[0]  # type: ignore[no-any-return]


def _seq(admin: httpx.Client) -> int:
    return int(admin.get("/api/v1/changes", params={"since": 0, "limit": 1}).json()["current_seq"])


def test_every_ticket_change_gets_the_next_hub_sequence_number(admin: httpx.Client) -> None:
    t = _one(admin, "CH-1")
    admin.post("/api/v1/zones", json={"name": "East", "capacity": 100})
    east = next(z["zone_id"] for z in admin.get("/api/v1/zones").json() if z["name"] == "East")
    start = _seq(admin)
    tid = t["ticket_id"]
    assert admin.post(f"/api/v1/tickets/{tid}/revoke").json()["status"] == "revoked"
    assert admin.post(f"/api/v1/tickets/{tid}/reinstate").json()["status"] == "valid"
    up = admin.post(f"/api/v1/tickets/{tid}/upgrade", json={"zone_id": east, "seat": "E7"}).json()
    assert (up["zone_id"], up["seat"], up["serial"]) == (east, "E7", t["serial"] + 1)
    tr = admin.post(f"/api/v1/tickets/{tid}/transfer", json={"holder": "New Fan"}).json()
    assert tr["holder"] == "New Fan" and tr["serial"] == t["serial"] + 2
    changes = admin.get("/api/v1/changes", params={"since": start}).json()["changes"]
    assert [c["seq"] for c in changes] == list(range(start + 1, start + 5))
    assert [(c["row"]["status"], c["row"]["serial"]) for c in changes] == [
        ("revoked", 0), ("valid", 0), ("valid", 1), ("valid", 2)]
    record = record_from_row(changes[-1]["row"])
    assert record.holder == "New Fan" and record.status is TicketStatus.VALID and record.zone_id == east


def test_revoking_twice_is_a_409_and_unknown_tickets_are_404(admin: httpx.Client) -> None:
    tid = _one(admin, "RV-1")["ticket_id"]
    admin.post(f"/api/v1/tickets/{tid}/revoke")
    r = admin.post(f"/api/v1/tickets/{tid}/revoke")
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_revoked"
    r = admin.post("/api/v1/tickets/987654/revoke")
    assert r.status_code == 404 and r.json()["error"]["code"] == "ticket_not_found"
    r = admin.post(f"/api/v1/tickets/{tid}/upgrade", json={"zone_id": 999})
    assert r.status_code == 400 and r.json()["error"]["code"] == "zone_not_found"


def test_a_viewer_cannot_revoke_but_a_supervisor_can_and_is_audited(hub: Hub, admin: httpx.Client) -> None:
    tid = _one(admin, "RV-2")["ticket_id"]
    viewer = admin.post("/api/v1/tokens", json={"name": "wall", "role": "viewer"}).json()["token"]
    sup = admin.post("/api/v1/tokens", json={"name": "chief", "role": "supervisor"}).json()["token"]
    with hub.client(viewer) as v:
        assert v.post(f"/api/v1/tickets/{tid}/revoke").status_code == 403
    with hub.client(sup) as s:
        assert s.post(f"/api/v1/tickets/{tid}/revoke").status_code == 200
        assert s.post("/api/v1/gates", json={"name": "nope"}).status_code == 403
    entry = admin.get("/api/v1/audit", params={"action": "revoke"}).json()[0]
    assert (entry["actor"], entry["role"], entry["target"]) == ("chief", "supervisor", str(tid))
    assert entry["detail"]["status"] == ["valid", "revoked"]


def test_the_qr_png_decodes_to_a_credential_that_verifies_with_the_event_key(hub: Hub, admin: httpx.Client) -> None:
    t = _one(admin, "QR-1")
    r = admin.get(f"/api/v1/tickets/{t['ticket_id']}/qr.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    image = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_GRAYSCALE)
    decoded = zxingcpp.read_barcodes(image)
    assert len(decoded) == 1
    text = decoded[0].text
    assert text == admin.get(f"/api/v1/tickets/{t['ticket_id']}/credential").json()["text"]
    cred = credential.read(text.encode(), load_keyring(hub.data / "keys"))
    assert isinstance(cred, credential.SignedCredential)
    assert (cred.fields.ticket_id, cred.fields.event_id, cred.fields.serial) == (t["ticket_id"], 7, 0)


def test_an_upgrade_issues_a_credential_with_a_higher_serial(hub: Hub, admin: httpx.Client) -> None:
    t = _one(admin, "QR-2")
    ring = load_keyring(hub.data / "keys")
    old = admin.get(f"/api/v1/tickets/{t['ticket_id']}/credential").json()["text"]
    admin.post(f"/api/v1/tickets/{t['ticket_id']}/upgrade", json={"seat": "VIP-1"})
    new = admin.get(f"/api/v1/tickets/{t['ticket_id']}/credential").json()["text"]
    old_c, new_c = credential.read(old.encode(), ring), credential.read(new.encode(), ring)
    assert isinstance(old_c, credential.SignedCredential) and isinstance(new_c, credential.SignedCredential)
    assert new_c.fields.serial == old_c.fields.serial + 1


def test_the_printable_ticket_is_a_pdf_and_a_revoked_ticket_gets_none(admin: httpx.Client) -> None:
    t = _one(admin, "PDF-1")
    r = admin.get(f"/api/v1/tickets/{t['ticket_id']}/ticket.pdf")
    assert r.status_code == 200 and r.content.startswith(b"%PDF") and len(r.content) > 1000
    admin.post(f"/api/v1/tickets/{t['ticket_id']}/revoke")
    r = admin.get(f"/api/v1/tickets/{t['ticket_id']}/ticket.pdf")
    assert r.status_code == 409 and r.json()["error"]["code"] == "ticket_not_valid"


def test_moving_a_gate_between_zones_is_a_zone_change_gates_sync(admin: httpx.Client) -> None:
    admin.post("/api/v1/zones", json={"name": "West"})
    west = next(z["zone_id"] for z in admin.get("/api/v1/zones").json() if z["name"] == "West")
    gate_id = admin.post("/api/v1/gates", json={"name": "West 1"}).json()["gate_id"]
    start = _seq(admin)
    r = admin.patch(f"/api/v1/gates/{gate_id}", json={"zones": [west], "name": "West gate one"})
    assert r.status_code == 200 and r.json()["zones"] == [west] and r.json()["name"] == "West gate one"
    changes = admin.get("/api/v1/changes", params={"since": start}).json()["changes"]
    assert [(c["kind"], c["row"]["zone_id"], c["row"]["gates"]) for c in changes] == [("zone", west, [gate_id])]
