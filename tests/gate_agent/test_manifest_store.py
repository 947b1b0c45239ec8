from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gate_agent import manifest as gm
from gate_agent.journal import Journal, JournalError
from gate_agent.manifest import LOCKOUT_S, MAX_PIN_FAILURES, ManifestStore, manual_admit
from tickets.entry import EntryKind, Passage
from tickets.manifest import ManifestRow, ManualRefusal, hash_pin, make_row
from tickets.reasons import Reason

NOW = 1_780_000_000.0
EVENT = 2026
PIN = "4821"
FAST = {"n": 2**10, "r": 8, "p": 1}  # scrypt cost is a deployment choice; the rules are not


def rows(count: int) -> list[ManifestRow]:
    names = ["Anna Smith", "Jean-Baptiste Dupont", "Zoë O'Connor", "Mohammed Al-Hassan", "Siobhán Nowak"]
    return [make_row(EVENT, ticket_id=i + 1, number=str(100_000_000 + i), holder=names[i % len(names)] + f" {i}",
                     zone_id=i % 2 + 1, zone_name=f"Zone {i % 2 + 1}", seat=f"R{i % 30} S{i % 20}",
                     status="revoked" if i == 7 else "superseded" if i == 8 else "valid")
            for i in range(count)]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ManifestStore]:
    s = await ManifestStore.open(tmp_path / "manifest.sqlite3")
    await s.replace_all(rows(50), hub_seq=100, generated_at=NOW - 60, now=NOW)
    await s.put_steward("S1", "Sam Steward", hash_pin(PIN, **FAST))
    await s.put_steward("S2", "Kim Steward", hash_pin("99887766", **FAST))
    yield s
    await s.close()


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[Journal]:
    j = await Journal.open(tmp_path / "journal.sqlite3", "G3")
    yield j
    await j.close()


async def admit(store: ManifestStore, journal: Journal, typed: str, **kw: object) -> gm.ManualResult:
    args: dict[str, object] = {"steward_id": "S1", "pin": PIN, "reason_for_manual": "schema_mismatch: replica 3",
                               "mode": "MANIFEST", "cursor": 77, "now": NOW}
    args.update(kw)
    return await manual_admit(store, journal, typed=typed, **args)  # type: ignore[arg-type]


# --- the manifest ---------------------------------------------------------------------------

async def test_replace_all_installs_rows_with_hub_seq_and_generation_time(store: ManifestStore) -> None:
    info = await store.info()
    assert (info.hub_seq, info.generated_at, info.rows, info.replaced_at) == (100, NOW - 60, 50, NOW)
    await store.replace_all(rows(10), hub_seq=101, generated_at=NOW, now=NOW + 1)
    info = await store.info()
    assert (info.hub_seq, info.rows) == (101, 10)
    assert await store.by_number("100000020") is None


async def test_a_bad_manifest_leaves_the_previous_one_whole(store: ManifestStore) -> None:
    good = rows(5)
    bad = [*good, ManifestRow(99, "X", "AAAA", "H", 1, "Z", "", "nonsense")]
    with pytest.raises(ValueError):
        await store.replace_all(bad, hub_seq=200, generated_at=NOW, now=NOW)
    info = await store.info()
    assert (info.hub_seq, info.rows) == (100, 50)
    assert await store.by_number("100000049") is not None


async def test_a_manifest_streamed_in_batches_appears_only_when_complete(store: ManifestStore) -> None:
    new = rows(120)
    assert await store.stage_rows(300, new[:50], first=True) == 50
    assert await store.stage_rows(300, new[50:100], first=False) == 100
    assert await store.by_number("100000110") is None  # not visible while staging
    with pytest.raises(gm.ManifestStoreError, match="incomplete"):
        await store.commit_staged(300, NOW, expected_rows=120, now=NOW)
    assert (await store.info()).hub_seq == 100  # the old manifest stays in use
    await store.stage_rows(300, new[100:], first=False)
    assert await store.commit_staged(300, NOW + 5, expected_rows=120, now=NOW + 6) == 120
    info = await store.info()
    assert (info.hub_seq, info.rows, info.generated_at) == (300, 120, NOW + 5)
    assert (await store.by_number("100000110")) is not None
    assert await store.stage_rows(301, [], first=True) == 0  # staging was emptied by the commit


async def test_a_new_manifest_started_mid_stream_restarts_staging(store: ManifestStore) -> None:
    await store.stage_rows(300, rows(30), first=True)
    assert await store.stage_rows(301, rows(10), first=False) == 10
    with pytest.raises(gm.ManifestStoreError):
        await store.commit_staged(300, NOW, expected_rows=30)
    assert await store.commit_staged(301, NOW, expected_rows=10) == 10


async def test_replace_stewards_removes_old_ones_and_keeps_lockouts(store: ManifestStore) -> None:
    for _ in range(MAX_PIN_FAILURES):
        await store.check_pin("S1", "0000", NOW)
    await store.replace_stewards([("S1", "Sam", hash_pin(PIN, **FAST)), ("S3", "Lee", hash_pin("1357", **FAST))])
    assert await store.steward_ids() == ["S1", "S3"]
    assert (await store.check_pin("S1", PIN, NOW + 1)).reason == ManualRefusal.STEWARD_LOCKED
    assert (await store.check_pin("S3", "1357", NOW)).ok
    assert not (await store.check_pin("S2", "99887766", NOW)).ok
    with pytest.raises(ValueError):
        await store.replace_stewards([("", "nobody", hash_pin(PIN, **FAST))])
    assert await store.steward_ids() == ["S1", "S3"]


async def test_a_fresh_store_says_it_has_no_manifest_yet(tmp_path: Path) -> None:
    s = await ManifestStore.open(tmp_path / "m.sqlite3")
    info = await s.info()
    assert (info.hub_seq, info.rows) == (None, 0)
    assert await s.search("100000001") == []
    await s.close()


@pytest.mark.parametrize(
    ("typed", "how", "numbers"),
    [
        ("100000012", "number", ["100000012"]),
        ("1000 0001 2", "number", ["100000012"]),
        ("10000004", "prefix", [f"10000004{i}" for i in range(10)]),
        ("dupont", "name", ["100000001", "100000006", "100000011"]),
        ("ZOË O'CONNOR 2", "name", ["100000002", "100000022", "100000027"]),  # a substring
        ("%", "prefix", []),  # SQL wildcards typed by a steward are literal
        ("anna %", "name", []),  # …in names too: "%" does not match "Anna Smith 0"
        ("anna _", "name", []),
        ("", None, []),
    ],
)
async def test_search_finds_by_number_prefix_and_holder_name(store: ManifestStore, typed: str, how: str | None,
                                                            numbers: list[str]) -> None:
    found = await store.search(typed)
    assert [m.row.number for m in found][:len(numbers)] == numbers
    if typed == "dupont":
        assert len(found) == 10
    elif how is not None:
        assert all(m.how == how for m in found)
        assert len(found) == len(numbers)


async def test_search_by_check_code_and_by_code_plus_last_digits(store: ManifestStore) -> None:
    target = make_row(EVENT, ticket_id=33, number="100000032", holder="", zone_id=1, zone_name="", seat="")
    code = target.check_code
    by_code = await store.search(code.lower())
    assert "100000032" in [m.row.number for m in by_code if m.how == "code"]
    by_digits = await store.search(f"{code} 032")
    assert [(m.row.number, m.how) for m in by_digits] == [("100000032", "code_digits")]
    assert await store.search(f"{code} 999") == []


async def test_search_limit_applies(store: ManifestStore) -> None:
    assert len(await store.search("1000000", limit=5)) == 5


async def test_search_is_fast_on_60000_rows(tmp_path: Path) -> None:
    s = await ManifestStore.open(tmp_path / "big.sqlite3")
    data = rows(60_000)
    t0 = time.perf_counter()
    await s.replace_all(data, hub_seq=1, generated_at=NOW, now=NOW)
    replace_s = time.perf_counter() - t0
    timings: dict[str, float] = {}
    for label, typed in [("number", "100054321"), ("prefix", "1000543"), ("code", data[4321].check_code),
                         ("code_digits", f"{data[4321].check_code} 321"), ("name", "hassan 5999")]:
        t0 = time.perf_counter()
        for _ in range(20):
            found = await s.search(typed)
        timings[label] = (time.perf_counter() - t0) / 20 * 1000
        assert found, label
    await s.close()
    print(f"\nmanifest store, 60,000 rows: replace_all {replace_s:.2f} s; search ms {timings}")
    assert replace_s < 10.0
    # indexed lookups are sub-millisecond plus the thread hop; the name scan is the slow one
    assert max(timings[k] for k in ("number", "prefix", "code", "code_digits")) < 20.0
    assert timings["name"] < 200.0


async def test_manifest_lives_in_its_own_file_apart_from_the_replica(tmp_path: Path) -> None:
    s = await ManifestStore.open(tmp_path / "manifest.sqlite3")
    await s.close()
    tables = {r[0] for r in sqlite3.connect(tmp_path / "manifest.sqlite3").execute(
        "SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"meta", "rows", "staged", "stewards", "ticks"}


async def test_a_corrupt_store_is_moved_aside_and_restarted_empty(tmp_path: Path) -> None:
    path = tmp_path / "manifest.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    s = await ManifestStore.open(path, now=NOW)
    assert (await s.info()).rows == 0
    await s.replace_all(rows(3), hub_seq=5, generated_at=NOW, now=NOW)
    await s.close()
    assert (tmp_path / f"manifest.sqlite3.unusable-{int(NOW)}").read_bytes().startswith(b"this is not")


async def test_a_store_from_newer_software_is_moved_aside_not_misread(tmp_path: Path) -> None:
    path = tmp_path / "manifest.sqlite3"
    con = sqlite3.connect(path)
    con.execute("PRAGMA user_version=99")
    con.execute("CREATE TABLE future (x)")
    con.commit()
    con.close()
    s = await ManifestStore.open(path, now=NOW)
    assert (await s.info()).rows == 0
    await s.close()
    assert (tmp_path / f"manifest.sqlite3.unusable-{int(NOW)}").exists()


# --- stewards and PINs ----------------------------------------------------------------------

async def test_pins_are_stored_only_as_salted_scrypt_hashes(store: ManifestStore, tmp_path: Path) -> None:
    await store.close()
    con = sqlite3.connect(tmp_path / "manifest.sqlite3")
    (salt1, digest1), (salt2, _d2) = con.execute("SELECT salt, digest FROM stewards ORDER BY steward_id").fetchall()
    cols = [r[1] for r in con.execute("PRAGMA table_info(stewards)")]
    con.close()
    assert "pin" not in cols
    assert len(salt1) == 16 and salt1 != salt2 and len(digest1) == 32
    assert PIN.encode() not in bytes(digest1)
    store._db = await gm.aiosqlite.connect(tmp_path / "manifest.sqlite3")  # reopen for the fixture's close


async def test_wrong_pins_lock_a_steward_out_for_a_while_then_release(store: ManifestStore) -> None:
    for i in range(MAX_PIN_FAILURES - 1):
        check = await store.check_pin("S1", "0000", NOW)
        assert (check.ok, check.reason, check.attempts_left) == (False, ManualRefusal.PIN_REFUSED,
                                                                 MAX_PIN_FAILURES - 1 - i)
    check = await store.check_pin("S1", "0000", NOW)
    assert (check.ok, check.reason, check.locked_until) == (False, ManualRefusal.STEWARD_LOCKED, NOW + LOCKOUT_S)
    # even the right PIN is refused while locked
    assert (await store.check_pin("S1", PIN, NOW + LOCKOUT_S - 1)).reason == ManualRefusal.STEWARD_LOCKED
    # another steward is not affected
    assert (await store.check_pin("S2", "99887766", NOW)).ok
    assert (await store.check_pin("S1", PIN, NOW + LOCKOUT_S + 1)).ok
    assert store.counters["pin_refused"] == MAX_PIN_FAILURES and store.counters["lockouts"] == 1


async def test_a_right_pin_resets_the_wrong_pin_count(store: ManifestStore) -> None:
    for _ in range(MAX_PIN_FAILURES - 1):
        await store.check_pin("S1", "0000", NOW)
    assert (await store.check_pin("S1", PIN, NOW)).ok
    check = await store.check_pin("S1", "0000", NOW)
    assert check.attempts_left == MAX_PIN_FAILURES - 1


async def test_a_lockout_survives_a_restart(store: ManifestStore, tmp_path: Path) -> None:
    for _ in range(MAX_PIN_FAILURES):
        await store.check_pin("S1", "0000", NOW)
    await store.close()
    again = await ManifestStore.open(tmp_path / "manifest.sqlite3")
    try:
        assert (await again.check_pin("S1", PIN, NOW + 1)).reason == ManualRefusal.STEWARD_LOCKED
    finally:
        store._db = again._db  # the fixture closes it


async def test_unknown_steward_gets_the_same_answer_as_a_wrong_pin(store: ManifestStore) -> None:
    unknown = await store.check_pin("NOBODY", PIN, NOW)
    wrong = await store.check_pin("S1", "1111", NOW)
    assert unknown.reason == wrong.reason == ManualRefusal.PIN_REFUSED


# --- manual admits --------------------------------------------------------------------------

async def test_manual_admit_journals_steward_typed_code_ticket_and_cause(store: ManifestStore,
                                                                          journal: Journal) -> None:
    result = await admit(store, journal, "1000 0001 2")
    assert result.admitted and result.reason == Reason.ADMIT
    assert result.row is not None and result.row.ticket_id == 13
    e = result.entry
    assert e.kind is EntryKind.MANUAL and e.reason == "ADMIT" and e.admitted
    assert (e.staff_id, e.raw, e.ticket_id, e.ticket_number, e.zone_id) == ("S1", b"1000 0001 2", 13, "100000012", 1)
    assert (e.mode, e.cursor, e.at, e.passage) == ("MANIFEST", 77, NOW, Passage.PENDING)
    assert "cause: schema_mismatch: replica 3" in e.detail
    assert (await journal.get(e.seq)) == e  # committed before manual_admit returned
    tick = await store.tick_of("100000012")
    assert tick is not None and (tick.journal_seq, tick.steward_id) == (e.seq, "S1")
    assert (await store.search("100000012"))[0].tick == tick


async def test_a_ticket_ticked_once_is_refused_the_second_time(store: ManifestStore, journal: Journal) -> None:
    assert (await admit(store, journal, "100000003")).admitted
    again = await admit(store, journal, "100000003", steward_id="S2", pin="99887766")
    assert not again.admitted and again.reason == Reason.ALREADY_USED
    assert "ticked by S1" in again.entry.detail
    assert again.entry.kind is EntryKind.MANUAL and not again.entry.admitted


async def test_wrong_pin_is_refused_counted_and_journaled_without_the_pin(store: ManifestStore,
                                                                          journal: Journal) -> None:
    result = await admit(store, journal, "100000003", pin="7777")
    assert not result.admitted and result.reason == ManualRefusal.PIN_REFUSED
    assert result.attempts_left == MAX_PIN_FAILURES - 1
    entries = await journal.all_entries()
    assert len(entries) == 1 and entries[0].reason == "PIN_REFUSED" and entries[0].staff_id == "S1"
    assert await store.tick_of("100000003") is None
    for e in entries:
        assert b"7777" not in e.raw and "7777" not in e.detail


async def test_manual_admits_stop_once_a_steward_is_locked_out(store: ManifestStore, journal: Journal) -> None:
    for _ in range(MAX_PIN_FAILURES):
        await admit(store, journal, "100000003", pin="0000")
    locked = await admit(store, journal, "100000003")
    assert locked.reason == ManualRefusal.STEWARD_LOCKED and locked.locked_until == NOW + LOCKOUT_S
    assert (await admit(store, journal, "100000003", now=NOW + LOCKOUT_S + 1)).admitted


@pytest.mark.parametrize(("number", "reason"), [("100000007", Reason.REVOKED), ("100000008", Reason.SUPERSEDED)])
async def test_cancelled_and_replaced_tickets_are_refused(store: ManifestStore, journal: Journal, number: str,
                                                          reason: Reason) -> None:
    result = await admit(store, journal, number)
    assert not result.admitted and result.reason == reason and result.entry.ticket_number == number


async def test_not_on_manifest_needs_an_override_with_a_note(store: ManifestStore, journal: Journal) -> None:
    plain = await admit(store, journal, "555000111")
    assert not plain.admitted and plain.reason == Reason.UNKNOWN
    no_note = await admit(store, journal, "555000111", override=True, note="   ")
    assert not no_note.admitted and no_note.reason == ManualRefusal.NOTE_REQUIRED
    ok = await admit(store, journal, "555 000 111", override=True, note="bought at box office 18:02, receipt seen")
    assert ok.admitted and ok.override
    assert (ok.entry.ticket_id, ok.entry.ticket_number) == (None, "555000111")
    assert "override: bought at box office" in ok.entry.detail and "cause: " in ok.entry.detail
    twice = await admit(store, journal, "555000111", override=True, note="again")
    assert not twice.admitted and twice.reason == Reason.ALREADY_USED


async def test_an_override_needs_a_full_number_not_a_code(store: ManifestStore, journal: Journal) -> None:
    result = await admit(store, journal, "ZZZZ", override=True, note="no idea")
    assert not result.admitted and result.reason == Reason.UNKNOWN


async def test_a_code_shared_by_two_tickets_asks_for_more_digits(tmp_path: Path, journal: Journal) -> None:
    s = await ManifestStore.open(tmp_path / "m.sqlite3")
    await s.put_steward("S1", "Sam", hash_pin(PIN, **FAST))
    twins = [ManifestRow(1, "100000111", "K7QX", "A", 1, "Z", ""), ManifestRow(2, "100000222", "K7QX", "B", 1, "Z", "")]
    await s.replace_all(twins, hub_seq=1, generated_at=NOW, now=NOW)
    amb = await admit(s, journal, "K7QX")
    assert amb.reason == ManualRefusal.AMBIGUOUS and {r.number for r in amb.candidates} == {"100000111", "100000222"}
    ok = await admit(s, journal, "K7QX 222")
    assert ok.admitted and ok.row is not None and ok.row.ticket_id == 2
    await s.close()


async def test_a_name_is_never_enough_to_admit(store: ManifestStore, journal: Journal) -> None:
    result = await admit(store, journal, "anna smith 0")
    assert not result.admitted and result.reason == Reason.MALFORMED
    assert [r.number for r in result.candidates] == ["100000000"]


@pytest.mark.parametrize("mode", ["EMERGENCY", "CLOSED"])
async def test_no_manual_admits_while_the_gate_is_closed_or_in_emergency(store: ManifestStore, journal: Journal,
                                                                         mode: str) -> None:
    result = await admit(store, journal, "100000003", mode=mode)
    assert not result.admitted and result.reason == Reason.GATE_CLOSED and result.entry.mode == mode


async def test_two_lanes_admitting_one_ticket_at_once_admit_it_once(store: ManifestStore, journal: Journal) -> None:
    results = await asyncio.gather(admit(store, journal, "100000004"),
                                   admit(store, journal, "100000004", steward_id="S2", pin="99887766"))
    assert sorted(r.admitted for r in results) == [False, True]
    assert sum(1 for e in await journal.all_entries() if e.admitted) == 1


async def test_ticks_survive_a_new_manifest(store: ManifestStore, journal: Journal) -> None:
    await admit(store, journal, "100000005")
    await store.replace_all(rows(50), hub_seq=150, generated_at=NOW, now=NOW)
    assert (await admit(store, journal, "100000005")).reason == Reason.ALREADY_USED


async def test_ticks_are_rebuilt_from_the_journal_when_the_store_is_lost(store: ManifestStore, journal: Journal,
                                                                         tmp_path: Path) -> None:
    await admit(store, journal, "100000006")
    await admit(store, journal, "444", override=True, note="supervisor said so")
    await admit(store, journal, "100000009", pin="0000")  # refused: no tick
    fresh = await ManifestStore.open(tmp_path / "fresh.sqlite3")
    await fresh.replace_all(rows(50), hub_seq=150, generated_at=NOW, now=NOW)
    assert await fresh.restore_ticks(await journal.all_entries()) == 2
    assert await fresh.restore_ticks(await journal.all_entries()) == 0
    assert {t.number_key for t in await fresh.ticks()} == {"100000006", "444"}
    await fresh.put_steward("S1", "Sam", hash_pin(PIN, **FAST))
    assert (await admit(fresh, journal, "100000006")).reason == Reason.ALREADY_USED
    await fresh.close()


async def test_a_failing_journal_means_no_admit_and_no_tick(store: ManifestStore, journal: Journal) -> None:
    await journal.close()
    with pytest.raises(JournalError):
        await admit(store, journal, "100000010")
    assert await store.tick_of("100000010") is None
    journal._db = await gm.aiosqlite.connect(journal.path)  # so the fixture can close it


async def test_a_gate_without_any_manifest_says_so_when_a_number_is_not_found(tmp_path: Path,
                                                                              journal: Journal) -> None:
    s = await ManifestStore.open(tmp_path / "empty.sqlite3")
    await s.put_steward("S1", "Sam", hash_pin(PIN, **FAST))
    result = await admit(s, journal, "100000001")
    assert result.reason == Reason.UNKNOWN and "no manifest received yet" in result.entry.detail
    await s.close()


async def test_a_code_shaped_name_finds_the_holder_but_never_admits_by_name(tmp_path: Path, journal: Journal) -> None:
    s = await ManifestStore.open(tmp_path / "m.sqlite3")
    await s.put_steward("S1", "Sam", hash_pin(PIN, **FAST))
    await s.replace_all([ManifestRow(1, "100000111", "K7QX", "Anna Berg", 1, "Z", "")], hub_seq=1,
                        generated_at=NOW, now=NOW)
    assert [m.how for m in await s.search("ANNA")] == ["name"]  # "ANNA" is code-shaped
    result = await admit(s, journal, "ANNA")
    assert not result.admitted and result.reason == Reason.UNKNOWN
    await s.close()


async def test_wrong_pins_typed_at_two_lanes_at_once_all_count(store: ManifestStore) -> None:
    checks = await asyncio.gather(*(store.check_pin("S1", "0000", NOW) for _ in range(MAX_PIN_FAILURES)))
    assert sum(c.reason == ManualRefusal.STEWARD_LOCKED for c in checks) == 1
    assert (await store.check_pin("S1", PIN, NOW + 1)).reason == ManualRefusal.STEWARD_LOCKED
