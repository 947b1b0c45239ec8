"""Connectors on the hub without a shop: the mapping file, barcode-key ingest, the upload queue,
the webhook's authentication and the CSV drop folder."""
from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.connectors.csvdrop import CsvDropConnector
from hub.connectors.mapping import parse_mapping, product_for, resolve
from hub.connectors.service import ConnectorService, sync_connector
from hub.errors import BadInput
from hub.store import CLI, HubStore, init_hub
from hub.store.uploads import UploadResult, claim_uploads, finish_uploads
from tests.conftest import TIMEOUT_S
from tests.hub.conftest import Hub, start_hub
from tickets.barcode import JOURNAL_KEY_PREFIX, barcode_key, provisional_ticket_id
from tickets.entry import EntryKind, JournalEntry, Passage

SECRET = "kq7m3xd9vbn2hg8wzt4rfp6yc5ja2e"  # a pretix-style random secret
TOKEN = "pretix-api-token-4f2a9c"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[HubStore]:
    init_hub(tmp_path / "hub", event_id=9, name="Cup", valid_from=0, valid_until=4e9)
    s = await HubStore.open(tmp_path / "hub")
    await s.upsert_zone(CLI, "North")
    yield s
    await s.close()


async def _gate(store: HubStore, name: str = "north-1") -> str:
    gate_id, _token, _exp = await store.create_gate(CLI, name, [1])
    return gate_id


def _raw(code: str) -> bytes:
    return JOURNAL_KEY_PREFIX + barcode_key(code).hex().encode()


async def _connect(store: HubStore, uploads: bool = True) -> None:
    await store.save_connector(CLI, "pretix", "pretix", {"url": "http://127.0.0.1:9", "organizer": "o", "event": "e",
                                                         "checkin_list": 1}, secret=TOKEN, uploads=uploads,
                               mapping={"products": [{"item": 1, "variation": None, "zone_id": 1, "policy_id": 1}]},
                               webhook_secret="hook-secret")


# --- the mapping file --------------------------------------------------------------------------


def test_a_mapping_file_with_mistakes_is_refused_naming_every_line_and_key() -> None:
    text = ('admit_on_signature = true\n'
            '[[products]]\nitem = 12\nzone = "North"\n'
            '[[products]]\nitem = "twelve"\nzone = "South"\n'
            '[[products]]\nitem = 14\n')
    with pytest.raises(BadInput) as info:
        parse_mapping(text, "cup.toml")
    problems = info.value.extra["problems"]
    assert any(p.startswith("cup.toml:5: products[1].item:") for p in problems), problems
    assert any(p.startswith("cup.toml:8: products[2].zone:") for p in problems), problems
    with pytest.raises(BadInput, match="not valid TOML"):
        parse_mapping("[[products]\n", "bad.toml")
    with pytest.raises(BadInput, match="mapped twice"):
        parse_mapping('[[products]]\nitem = 1\nzone = 1\n[[products]]\nitem = 1\nzone = 2\n', "dup.toml")


def test_a_mapping_resolves_names_and_a_variation_row_wins_over_the_item_row() -> None:
    m = parse_mapping('[[products]]\nitem = 12\nzone = "north"\n[[products]]\nitem = 12\nvariation = 31\n'
                      'zone = 2\npolicy = "reentry"\n', "m.toml")
    r = resolve(m, {"north": 1, "south": 2}, {1, 2}, {"single": 1, "reentry": 2}, {1, 2})
    assert product_for(r, 12, 31) == {"item": 12, "variation": 31, "zone_id": 2, "policy_id": 2}
    assert product_for(r, 12, 30)["zone_id"] == 1  # type: ignore[index]
    assert product_for(r, 13, None) is None
    with pytest.raises(BadInput, match="unknown entry policy 'vip'"):
        resolve(parse_mapping('[[products]]\nitem = 1\nzone = 1\npolicy = "vip"\n'), {}, {1}, {"single": 1}, {1})


# --- barcode keys and provisional ids at ingest ------------------------------------------------


async def test_an_admit_on_signature_is_fanned_out_under_its_provisional_id_then_moved_to_its_ticket(
        store: HubStore) -> None:
    gate = await _gate(store)
    pid = provisional_ticket_id(barcode_key(SECRET))
    admit = JournalEntry(gate_id=gate, seq=1, at=time.time(), kind=EntryKind.SCAN, reason="ADMIT_ON_SIGNATURE",
                         ticket_id=pid, zone_id=1, raw=_raw(SECRET), mode="OFFLINE")
    await store.ingest(gate, [admit])
    entry = [c for c in await store.changes_since(0, 1000) if c.kind == "entry"][-1]
    assert (entry.row["ticket_id"], entry.row["zone_id"]) == (pid, 1)  # the zone's gates hear of it now
    # the shop's sync brings the ticket: the entry is the ticket's, and a snapshot says it is used
    report = await store.import_tickets(CLI, json.dumps([{"number": "ABC12-1", "barcode": SECRET.upper(),
                                                          "zone": 1}]).encode(), "json")
    assert report.created == 1
    ticket = await store.ticket("ABC12-1")
    assert ticket["entry_state"]["entries"] == 1 and ticket["ticket_id"] < 2**62
    snap = await store.snapshot_rows(0, 100)
    row = next(t for t in snap.tickets if t["number"] == "ABC12-1")
    assert row["state"]["entries"] == 1 and "barcode" not in row
    # a scan of the now-known code names the ticket straight away
    again = JournalEntry(gate_id=gate, seq=2, at=time.time(), kind=EntryKind.SCAN, reason="ADMIT",
                         ticket_id=pid, zone_id=1, raw=_raw(SECRET))
    result = await store.ingest(gate, [again])
    assert result.admits[0].ticket_id == ticket["ticket_id"]
    assert [c["kind"] for c in result.conflicts] == ["double_admit"]


async def test_a_scan_journaled_by_barcode_key_is_stored_against_the_ticket(store: HubStore) -> None:
    gate = await _gate(store)
    await store.import_tickets(CLI, json.dumps([{"number": "XY-1", "barcode": SECRET, "zone": 1}]).encode(), "json")
    tid = (await store.ticket("XY-1"))["ticket_id"]
    e = JournalEntry(gate_id=gate, seq=1, at=time.time(), kind=EntryKind.SCAN, reason="UNKNOWN", raw=_raw(SECRET))
    result = await store.ingest(gate, [e])
    assert result.stored[0].ticket_id == tid


async def test_a_replaced_barcode_stays_revoked_in_the_same_change_batch_as_the_new_one(store: HubStore) -> None:
    from hub.importer import REPLACED_PREFIX

    first = [{"number": "RE-1", "barcode": "old-secret-1", "zone": 1, "external_id": "pretix:77"}]
    await store.import_tickets(CLI, json.dumps(first).encode(), "json")
    seq = await store.current_seq()
    report = await store.import_tickets(CLI, json.dumps([{**first[0], "barcode": "new-secret-1"}]).encode(), "json")
    assert (report.updated, report.tombstones) == (1, 1)
    batch = [c.row for c in await store.changes_since(seq, 100) if c.kind == "ticket"]
    old_key, new_key = barcode_key("old-secret-1").hex(), barcode_key("new-secret-1").hex()
    assert {(r["barcode_key"], r["status"]) for r in batch} == {(new_key, "valid"), (old_key, "revoked")}
    assert len({c.seq for c in await store.changes_since(seq, 100)}) == 2
    # pretix's own revocation list naming that secret later changes nothing and refuses nothing
    again = await store.import_tickets(CLI, json.dumps([{
        "number": f"REVOKED-{old_key[:12]}", "external_id": REPLACED_PREFIX + old_key, "barcode": "old-secret-1",
        "zone": 1, "status": "revoked"}]).encode(), "json")
    assert (again.unchanged, again.error_count) == (1, 0)


# --- the upload queue ----------------------------------------------------------------------------


async def test_every_admit_is_queued_once_and_waits_for_its_passage(store: HubStore) -> None:
    gate = await _gate(store)
    await store.import_tickets(CLI, json.dumps([{"number": f"Q-{i}", "barcode": f"{SECRET}{i}", "zone": 1,
                                                 "external_id": f"pretix:{i}"} for i in range(3)]).encode(), "json")
    await _connect(store)
    now = time.time()
    admits = [JournalEntry(gate_id=gate, seq=i + 1, at=now + i, kind=EntryKind.SCAN, reason="ADMIT",
                           ticket_id=(await store.ticket(f"Q-{i}"))["ticket_id"], zone_id=1,
                           raw=_raw(f"{SECRET}{i}")) for i in range(3)]
    await store.ingest(gate, admits)
    await store.ingest(gate, admits)  # re-sent: queued once
    assert (await store.upload_counts())["pretix"]["pending"] == 3
    # nothing is claimed while the turnstile has not reported
    assert await store.db.write(claim_uploads, store.db, "pretix", "p1", time.time()) == []
    passages = [JournalEntry(gate_id=gate, seq=4, at=now + 5, kind=EntryKind.PASSAGE, ref_seq=1, passage=Passage.PASSED),
                JournalEntry(gate_id=gate, seq=5, at=now + 5, kind=EntryKind.PASSAGE, ref_seq=2,
                             passage=Passage.NOT_PASSED)]
    await store.ingest(gate, passages)
    claimed = await store.db.write(claim_uploads, store.db, "pretix", "p1", time.time())
    assert [(c.seq, c.barcode, c.external_id, c.forced) for c in claimed] == [(1, f"{SECRET}0", "pretix:0", False)]
    # a second process finds nothing to claim while the first holds it
    assert await store.db.write(claim_uploads, store.db, "pretix", "p2", time.time()) == []
    # ...until the claim's lease runs out (the first process died)
    later = time.time() + 1000
    assert [c.seq for c in await store.db.write(claim_uploads, store.db, "pretix", "p2", later)] == [1]
    skipped = await store.uploads("pretix", status="skipped")
    assert [(r["seq"], r["last_error"]) for r in skipped] == [(2, "the fan did not pass the turnstile: no check-in")]


async def test_shop_refusals_become_conflicts_and_an_unreachable_shop_keeps_everything_queued(
        store: HubStore) -> None:
    gate = await _gate(store)
    await store.import_tickets(CLI, json.dumps([{"number": "R-1", "barcode": SECRET, "zone": 1,
                                                 "external_id": "pretix:1"}]).encode(), "json")
    await _connect(store)
    tid = (await store.ticket("R-1"))["ticket_id"]
    manual = JournalEntry(gate_id=gate, seq=1, at=time.time(), kind=EntryKind.MANUAL, reason="ADMIT",
                          ticket_id=tid, ticket_number="R-1", zone_id=1, mode="MANIFEST", staff_id="S1")
    await store.ingest(gate, [manual])
    rec = await store.connector("pretix")
    from hub.connectors.service import build

    service = ConnectorService(store)
    connector = build(rec)  # pretix at 127.0.0.1:9: nothing listens
    handled, down = await service.upload_round(connector, retry_max_s=0.0)
    await connector.close()
    assert (handled, down) == (1, True)
    row = (await store.uploads("pretix"))[0]
    assert row["status"] == "pending" and row["forced"] and "cannot be reached" in row["last_error"]
    assert row["attempts"] == 1
    assert TOKEN not in json.dumps((await store.connectors())[0].public())
    # once pretix answers, a refusal is a conflict for supervisors with pretix's reason
    claimed = await store.db.write(claim_uploads, store.db, "pretix", "p1", time.time() + 100)
    refusal = UploadResult(claimed[0].upload_id, "refused", error="already_redeemed: This ticket has already been"
                           " redeemed.", detail={"shop_reason": "already_redeemed"})
    found = await store.db.write(finish_uploads, "p1", claimed, [refusal], time.time())
    assert [(c["kind"], c["first"]["gate_id"], c["detail"]["shop_reason"]) for c in found] == [
        ("shop_refused", gate, "already_redeemed")]
    listed = await store.conflicts(open_only=True)
    assert [c["kind"] for c in listed] == ["shop_refused"]


# --- webhook ------------------------------------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path) -> Any:
    data = tmp_path / "served"
    admin = init_hub(data, event_id=9, name="Cup")
    hub = start_hub(data, admin)
    yield hub
    hub.stop()


def _basic(secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"pretix:{secret}".encode()).decode()}


async def test_a_webhook_without_the_right_secret_is_refused(served: Hub) -> None:
    import asyncio

    async def setup() -> None:
        s = await HubStore.open(served.data)
        try:
            await s.upsert_zone(CLI, "North")
            await _connect(s)
        finally:
            await s.close()
    await asyncio.to_thread(asyncio.run, setup())
    body = {"notification_id": 1, "organizer": "o", "event": "e", "code": "ABC12", "action": "pretix.event.order.canceled"}
    url = "/api/v1/connectors/pretix/webhook"
    async with httpx.AsyncClient(base_url=served.url, timeout=TIMEOUT_S) as c:
        for headers in ({}, _basic("wrong"), {"Authorization": "Bearer hook-secret"}, {"Authorization": "Basic %%%"}):
            r = await c.post(url, json=body, headers=headers)
            assert r.status_code == 401 and r.json()["error"]["code"] == "bad_webhook_secret", headers
        r = await c.post(url, json={**body, "organizer": "someone-else"}, headers=_basic("hook-secret"))
        assert r.status_code == 400 and r.json()["error"]["code"] == "webhook_other_event"
        r = await c.post(url, json=body, headers=_basic("hook-secret"))
        assert r.status_code == 202 and r.json() == {"accepted": True, "action": "pretix.event.order.canceled",
                                                     "ref": "ABC12"}
        r = await c.post("/api/v1/connectors/nope/webhook", json=body, headers=_basic("hook-secret"))
        assert r.status_code == 401
        r = await c.get("/api/v1/connectors", headers={"Authorization": f"Bearer {served.admin}"})
        assert r.status_code == 200 and TOKEN not in r.text and r.json()[0]["has_token"] is True


# --- the CSV drop folder --------------------------------------------------------------------------


async def test_a_dropped_csv_is_imported_and_moved_and_a_bad_one_lands_in_failed_with_its_reasons(
        store: HubStore, tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    await store.save_connector(CLI, "csvdrop", "csvdrop", {"dir": str(drop), "settle_s": 0}, secret=None,
                               mapping={}, uploads=False)
    (drop / "a.csv").write_text("number,zone,barcode,status\nD-1,North,secret-d1,\nD-2,North,secret-d2,cancelled\n")
    (drop / "b.csv").write_text("number,zone\nD-3,North\nbad number!,North\n")
    (drop / ".partial.csv").write_text("number,zone\nD-9,North\n")
    connector = CsvDropConnector("csvdrop", {"dir": str(drop), "settle_s": 0}, None, {})
    report = await sync_connector(store, connector)
    assert (report.created, report.row_errors) == (3, 1)
    assert (await store.ticket("D-2"))["status"] == "revoked"
    assert (drop / "done" / "a.csv").exists() and (drop / "failed" / "b.csv").exists()
    reasons = json.loads((drop / "failed" / "b.csv.report.json").read_text())["errors"]
    assert reasons[0]["line"] == 3 and "may hold only" in reasons[0]["reason"]
    assert (drop / ".partial.csv").exists()
    status = (await store.connector("csvdrop")).status
    assert status["last_sync"]["row_errors"] == 1 and status["last_error"] is None


async def test_event_info_carries_the_pretix_block_once_connected(store: HubStore) -> None:
    assert "pretix" not in await store.event_info()
    block = {"public_keys": [], "products": [{"item": 1, "variation": None, "zone_id": 1, "policy_id": 1}],
             "subevent": None, "valid_from": None, "valid_until": None}
    await store.set_connector_state("pretix", pretix_event=block)
    assert (await store.event_info())["pretix"] == block


# --- several hub processes on PostgreSQL -----------------------------------------------------------


async def test_two_hub_processes_on_postgresql_never_claim_the_same_upload(tmp_path: Path) -> None:
    import asyncio
    import threading

    from gatehouse.pgcluster import PgUnavailable, temporary_cluster
    from hub.db import Database

    try:
        cluster_cm = temporary_cluster()
        cluster = cluster_cm.__enter__()
    except PgUnavailable as exc:
        pytest.skip(str(exc))
    try:
        url = cluster.create_database("hub")
        init_hub(tmp_path / "pg", event_id=9, name="Cup", valid_from=0, valid_until=4e9, database=url)
        store = await HubStore.open(tmp_path / "pg")
        try:
            await store.upsert_zone(CLI, "North")
            gate = await _gate(store)
            n = 120
            await store.import_tickets(CLI, json.dumps([{"number": f"P-{i}", "barcode": f"{SECRET}{i}", "zone": 1,
                                                         "external_id": f"pretix:{i}"} for i in range(n)]).encode(),
                                       "json")
            await _connect(store)
            now = time.time()
            await store.ingest(gate, [JournalEntry(gate_id=gate, seq=i + 1, at=now, kind=EntryKind.MANUAL,
                                                   reason="ADMIT", ticket_number=f"P-{i}", zone_id=1, mode="MANIFEST")
                                      for i in range(n)])
        finally:
            await store.close()
        # two processes' databases (separate engines), claiming in small batches at the same time
        dbs = [Database(url, readers=1), Database(url, readers=1)]
        got: list[list[int]] = [[], []]
        start = threading.Barrier(2)

        def claimer(k: int) -> None:
            start.wait()
            while True:
                batch = dbs[k].write_sync(claim_uploads, dbs[k], "pretix", f"p{k}", time.time(), 7)
                if not batch:
                    return
                got[k] += [c.upload_id for c in batch]
        threads = [threading.Thread(target=claimer, args=(k,)) for k in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            await asyncio.to_thread(t.join, TIMEOUT_S * 3)
        for db in dbs:
            db.close()
        assert not set(got[0]) & set(got[1]), "an upload was claimed by both processes"
        assert len(got[0]) + len(got[1]) == n and got[0] and got[1]
    finally:
        cluster_cm.__exit__(None, None, None)
