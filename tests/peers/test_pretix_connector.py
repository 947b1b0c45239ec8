"""The pretix connector against a real pretix: ``gatehouse hub connect pretix`` run as an
operator runs it, a real hub process, real gates, pretix's own webhooks and check-in API.

Each test uses its own pretix event (created through pretix's API) so the tests do not see
each other's orders; all share the session's one pretix server.
"""
from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gatehouse.peers.pretix import PretixAPI
from gatehouse.venue import ROOT, TIMEOUT_S, Venue, eventually
from tickets.barcode import barcode_key
from tickets.model import TicketStatus

from .pretix import SETUP_TIMEOUT_S, PretixEventInfo, PretixPeer, _make_event

pytestmark = [pytest.mark.timed, pytest.mark.slow, pytest.mark.timeout(SETUP_TIMEOUT_S)]

#: the issue's budget for a cancellation to reach an online gate once the hub knows it. Its
#: figure is `gatehouse bench pretix`'s cancellation_to_gate_p99_ms over many cancellations;
#: one sample here swings from 0.4 s to 1 s with the machine (pretix, a hub and a gate share two
#: cores), so the test holds it to a bound that catches a revocation left to a slow poll
#: (pretix's own poll is 600 s here; the hub's feed falls back to 2 s on errors)
REVOCATION_BUDGET_S = 1.0
REVOCATION_BOUND_S = max(3 * REVOCATION_BUDGET_S, TIMEOUT_S / 5)


@dataclass
class Connected:
    venue: Venue
    event: PretixEventInfo
    webhook_secret: str | None
    connect_out: dict[str, Any]
    connect_err: str


def _mapping(path: Path, event: PretixEventInfo, *, vip: bool = True) -> Path:
    north, south = event.standing.variations
    text = ("admit_on_signature = true\n"
            f"[[products]]\nitem = {event.standing.item}\nvariation = {north}\nzone = \"North\"\n"
            f"[[products]]\nitem = {event.standing.item}\nvariation = {south}\nzone = \"South\"\n")
    if vip:
        text += f"[[products]]\nitem = {event.vip.item}\nzone = \"North\"\npolicy = \"single\"\n"
    path.write_text(text)
    return path


async def until(check: Any, *, timeout: float, what: str, every: float = 0.1) -> None:
    """Wait until ``check()`` (a blocking call, run off the loop, or a coroutine function) is truthy."""
    deadline = time.monotonic() + timeout
    while True:
        got = check() if asyncio.iscoroutinefunction(check) else asyncio.to_thread(check)
        if await got:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.1f} s waiting for {what}")
        await asyncio.sleep(every)


async def _call(fn: Any, *args: Any) -> Any:
    """pretix's API is synchronous here and may wait for our hub (webhooks): off the loop."""
    return await asyncio.to_thread(fn, *args)


async def connect(peer: PretixPeer, tmp_path: Path, slug: str, *, signed: bool = False, vip: bool = True,
                  poll_s: float = 600.0, extra: list[str] | None = None) -> Connected:
    api = peer.api
    event = await _call(_make_event, api, slug)
    if signed:
        await _call(peer.server.set_secret_generator, slug, "pretix_sig1")
    venue = await Venue.create(tmp_path, tickets_per_zone=1)
    mapping = _mapping(tmp_path / "mapping.toml", event, vip=vip)
    args = [sys.executable, "-m", "gatehouse", "hub", "connect", "pretix", "--data", str(venue.hub.data),
            "--url", peer.server.url, "--token", "-", "--organizer", peer.server.organizer, "--event", slug,
            "--checkin-list", str(event.checkin_list), "--mapping", str(mapping), "--poll-s", str(poll_s),
            "--retry-max-s", "2", "--hub-url", venue.hub.url, *(extra or [])]
    try:
        proc = await asyncio.to_thread(subprocess.run, args, input=peer.server.token + "\n", capture_output=True,
                                       text=True, cwd=ROOT, timeout=TIMEOUT_S * 12)
        assert proc.returncode == 0, proc.stderr
    except BaseException:
        await venue.close()
        raise
    secret = None
    for line in proc.stderr.splitlines():
        if "/api/v1/connectors/pretix/webhook" in line:
            secret = line.strip().split("://pretix:", 1)[1].split("@", 1)[0]
    return Connected(venue, event, secret, json.loads(proc.stdout), proc.stderr)


async def pretix_checkins(api: PretixAPI, slug: str, code: str) -> list[dict[str, Any]]:
    return await _call(api.checkins, slug, code)


def secrets_of(order: dict[str, Any]) -> list[str]:
    return [str(p["secret"]) for p in order["positions"]]


async def test_connect_imports_pretix_and_the_barcodes_stay_off_paper_viewers_and_logs(
        pretix_peer: PretixPeer, tmp_path: Path) -> None:
    api = pretix_peer.api
    slug = "conn-import"
    c = await connect(pretix_peer, tmp_path, slug, vip=False)
    ev = c.event
    north, south = ev.standing.variations
    # orders placed after connect, picked up by a sync the operator runs
    paid = await _call(api.create_order, slug, [(ev.standing.item, north), (ev.standing.item, south)])
    parking = await _call(api.create_order, slug, [(ev.vip.item, None)])  # not in the mapping
    cancelled = await _call(api.create_order, slug, [(ev.standing.item, north)])
    await _call(api.cancel_order, slug, cancelled["code"])
    checked = await _call(api.create_order, slug, [(ev.standing.item, north)])
    redeem = await _call(lambda: api.call("POST", "/checkinrpc/redeem/", json={
        "secret": checked["positions"][0]["secret"], "lists": [ev.checkin_list], "type": "entry",
        "questions_supported": False}))
    assert redeem["status"] == "ok"
    venue = c.venue
    try:
        # (the serving hub syncs on its own too: a full sync's report is the same whoever was first)
        sync = await venue.hub.agatehouse("sync", "pretix", "--full")
        assert sync.returncode == 0, sync.stderr
        report = json.loads(sync.stdout)
        # the serving hub syncs on its own too: if it saw the cancelled order before its
        # cancellation, this sync reports that ticket updated (revoked) rather than unchanged
        assert report["created"] + report["unchanged"] + report["updated"] == 4 and report["row_errors"] == 0
        assert report["skipped"] == {f"item {ev.vip.item} variation None is not mapped to a zone": 1}
        async with venue.hub.admin_client() as admin:
            state = (await admin.get(f"/api/v1/tickets/{checked['code']}-1")).json()["entry_state"]
            assert state["entries"] == 1 and state["last_gate"] == "shop:pretix"
        gate = await venue.add_gate("north-1", ["North"])
        await venue.online(gate)
        first = secrets_of(paid)[0]
        assert await gate.scan(first) == "ADMIT"
        assert await gate.scan(first.upper()) == "ALREADY_USED"
        assert await gate.scan(secrets_of(cancelled)[0]) == "REVOKED"
        assert await gate.scan(secrets_of(checked)[0]) == "ALREADY_USED"  # checked in at pretix before
        assert await gate.scan(secrets_of(parking)[0]) == "UNKNOWN"
        assert await gate.scan(secrets_of(paid)[1]) == "WRONG_GATE"
        # the admit reaches pretix: its check-in list shows it, at the admit's time
        await until(lambda: _has_checkin(api, slug, paid["code"]), timeout=TIMEOUT_S * 3,
                    what="the check-in in pretix")
        ours = await pretix_checkins(api, slug, paid["code"])
        assert [(x["position"], x["list"], x["type"]) for x in ours] == [(1, ev.checkin_list, "entry")]
        async with venue.hub.admin_client() as admin:
            done = (await admin.get("/api/v1/connectors/pretix/uploads", params={"status": "done"})).json()
            assert [(u["ticket_number"], u["forced"]) for u in done] == [(f"{paid['code']}-1", False)]
            token = (await admin.post("/api/v1/tokens", json={"name": "viewer", "role": "viewer"})).json()["token"]
        # a second sync does not count our own check-in coming back as a second entry
        sync = await venue.hub.agatehouse("sync", "pretix", "--full")
        assert json.loads(sync.stdout)["shop_checkins"] == 0
        async with httpx.AsyncClient(base_url=venue.hub.url, headers={"Authorization": f"Bearer {token}"},
                                     timeout=TIMEOUT_S) as viewer:
            listed = (await viewer.get("/api/v1/tickets", params={"limit": 100})).text
            info = (await viewer.get("/api/v1/event")).text
        manifest = tmp_path / "manifest.csv"
        made = await venue.hub.agatehouse("manifest", "--gate", gate.gate_id, "--csv", "--out", str(manifest))
        assert made.returncode == 0, made.stderr
        paper = manifest.read_text()
        assert f"{paid['code']}-1" in paper and f"{paid['code']}-1" in listed
        log = (venue.hub.data / "hub-test.log").read_text(errors="replace")
        every = [s for o in (paid, cancelled, checked, parking) for s in secrets_of(o)]
        for place, text in (("manifest", paper), ("viewer API", listed + info), ("hub log", log),
                            ("connect output", c.connect_err + json.dumps(c.connect_out))):
            for s in every:
                assert s not in text and s.upper() not in text, f"a barcode in the {place}"
            assert pretix_peer.server.token not in text, f"the pretix token in the {place}"
    finally:
        await venue.close()


def _has_checkin(api: PretixAPI, slug: str, code: str) -> bool:
    return bool(api.checkins(slug, code))


async def test_a_cancellation_in_pretix_reaches_an_online_gate_within_a_second_of_the_webhook(
        pretix_peer: PretixPeer, tmp_path: Path) -> None:
    api = pretix_peer.api
    slug = "conn-cancel"
    c = await connect(pretix_peer, tmp_path, slug)  # polling every 600 s: only the webhook can be this quick
    venue = c.venue
    if not c.webhook_secret:
        await venue.close()
        raise AssertionError("connect printed no webhook URL")
    hook = await _call(api.create_webhook, venue.hub.url.replace("://", f"://pretix:{c.webhook_secret}@")
                       + "/api/v1/connectors/pretix/webhook")
    try:
        ev = c.event
        gate = await venue.add_gate("north-1", ["North"])
        await venue.online(gate)
        order = await _call(api.create_order, slug, [(ev.standing.item, ev.standing.variations[0])])
        secret = secrets_of(order)[0]
        key = barcode_key(secret)
        reader = gate.agent.reader
        assert reader is not None
        # the "placed" webhook brings the ticket to the gate
        await eventually(lambda: reader.ticket_by_barcode_key(key) is not None, timeout=TIMEOUT_S * 2,
                         what="the new order at the gate")
        await _call(api.cancel_order, slug, order["code"])
        seen: list[float] = []

        def revoked() -> bool:
            t = reader.ticket_by_barcode_key(key)
            if t is not None and t.status is TicketStatus.REVOKED and not seen:
                seen.append(time.time())
            return bool(seen)
        await eventually(revoked, timeout=TIMEOUT_S * 2, what="the cancellation at the gate")
        async with venue.hub.admin_client() as admin:
            changes = (await admin.get("/api/v1/changes", params={"since": 0, "limit": 10_000})).json()["changes"]
        learned = [ch["at"] for ch in changes if ch["kind"] == "ticket" and ch["row"]["status"] == "revoked"
                   and ch["row"].get("barcode_key") == key.hex()]
        assert learned, "the hub recorded no revocation"
        gap = seen[0] - learned[0]
        print(f"\ncancellation: hub learned it -> gate replica revoked in {gap * 1000:.0f} ms")
        if gap > REVOCATION_BUDGET_S:
            print(f"cancellation took {gap:.2f} s, over the {REVOCATION_BUDGET_S:.0f} s budget (see bench pretix)")
        assert gap < REVOCATION_BOUND_S
        assert await gate.scan(secret) == "REVOKED"
        async with httpx.AsyncClient(base_url=venue.hub.url, timeout=TIMEOUT_S) as anyone:
            body = {"organizer": pretix_peer.server.organizer, "event": slug, "code": order["code"],
                    "action": "pretix.event.order.canceled", "notification_id": 1}
            bad = base64.b64encode(b"pretix:not-the-secret").decode()
            r = await anyone.post("/api/v1/connectors/pretix/webhook", json=body,
                                  headers={"Authorization": f"Basic {bad}"})
            assert r.status_code == 401
            r = await anyone.post("/api/v1/connectors/pretix/webhook", json=body)
            assert r.status_code == 401
    finally:
        await _call(api.call, "DELETE", f"/webhooks/{hook}/")
        await venue.close()


async def test_a_signed_ticket_sold_after_the_gates_last_sync_is_admitted_offline_and_reaches_pretix(
        pretix_peer: PretixPeer, tmp_path: Path) -> None:
    api = pretix_peer.api
    slug = "conn-signed"
    c = await connect(pretix_peer, tmp_path, slug, signed=True)
    venue = c.venue
    try:
        assert c.connect_out["signed_keys"] == 0  # pretix makes an event's key when it signs its first ticket
        ev = c.event
        gate = await venue.add_gate("north-1", ["North"])
        await venue.online(gate)
        reader = gate.agent.reader
        assert reader is not None
        first = await _call(api.create_order, slug, [(ev.vip.item, None)])
        async with venue.hub.admin_client() as admin:
            (await admin.post("/api/v1/connectors/pretix/sync")).raise_for_status()
        # the sync found pretix's new key: the hub sends it to the connected gate at once
        await eventually(lambda: (p := reader.pretix()) is not None and len(p.public_keys) == 1,
                         timeout=TIMEOUT_S * 2, what="pretix's key at the gate")
        assert await gate.scan(secrets_of(first)[0]) == "ADMIT"  # synced: decided from the replica
        order = await _call(api.create_order, slug, [(ev.standing.item, ev.standing.variations[0])])
        secret = secrets_of(order)[0]
        assert len(secret) > 100  # pretix_sig1
        assert await gate.scan(secret) == "ADMIT_ON_SIGNATURE"  # the hub has not synced this order
        assert await gate.scan(secret) == "ALREADY_USED"
        async with venue.hub.admin_client() as admin:
            await until(_queued(admin), timeout=TIMEOUT_S * 2, what="the admit in the upload queue")
            (await admin.post("/api/v1/connectors/pretix/sync")).raise_for_status()
            await until(lambda: _has_checkin(api, slug, order["code"]), timeout=TIMEOUT_S * 3,
                        what="the check-in in pretix")
            done = (await admin.get("/api/v1/connectors/pretix/uploads", params={"status": "done"})).json()
            assert sorted((u["ticket_number"], u["forced"]) for u in done) == sorted(
                [(f"{first['code']}-1", False), (f"{order['code']}-1", True)])  # on its signature: force
            ticket = (await admin.get(f"/api/v1/tickets/{order['code']}-1")).json()
            assert ticket["entry_state"]["entries"] == 1  # the provisional admit now belongs to the ticket
    finally:
        await venue.close()


def _queued(admin: httpx.AsyncClient) -> Any:
    async def check() -> bool:
        r = await admin.get("/api/v1/connectors/pretix/uploads")
        return bool(r.json())
    return check


async def test_pretix_down_for_a_while_loses_nothing_and_the_queue_drains_after(
        pretix_peer: PretixPeer, tmp_path: Path) -> None:
    api = pretix_peer.api
    slug = "conn-outage"
    c = await connect(pretix_peer, tmp_path, slug)
    venue = c.venue
    server = pretix_peer.server
    try:
        ev = c.event
        order = await _call(api.create_order, slug, [(ev.standing.item, ev.standing.variations[0])] * 3)
        sync = await venue.hub.agatehouse("sync", "pretix", "--full")
        assert json.loads(sync.stdout)["row_errors"] == 0
        gate = await venue.add_gate("north-1", ["North"])
        await venue.online(gate)
        await asyncio.to_thread(server.stop)
        try:
            for s in secrets_of(order):
                assert await gate.scan(s) == "ADMIT"
            async with venue.hub.admin_client() as admin:
                async def failing() -> bool:
                    rows = (await admin.get("/api/v1/connectors/pretix/uploads")).json()
                    return len(rows) == 3 and all(r["status"] == "pending" and r["last_error"] for r in rows)
                await until(failing, timeout=TIMEOUT_S * 3, what="three uploads failing and kept")
        finally:
            await asyncio.to_thread(server.restart)
        async with venue.hub.admin_client() as admin:
            async def drained() -> bool:
                rows = (await admin.get("/api/v1/connectors/pretix/uploads")).json()
                return sorted(r["status"] for r in rows) == ["done"] * 3
            await until(drained, timeout=TIMEOUT_S * 6, what="the queue drained into pretix")
            rows = (await admin.get("/api/v1/connectors/pretix/uploads")).json()
        assert all(r["attempts"] >= 2 for r in rows)  # each failed while pretix was down
        # each exactly once in pretix, though some were sent more than once (pretix keeps our nonce)
        assert len(await pretix_checkins(api, slug, order["code"])) == 3
    finally:
        await venue.close()
