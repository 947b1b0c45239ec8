"""``gatehouse bench faults``: every fault scenario, against real processes, one JSON object.

The scenarios (machinery in :mod:`gatehouse.faults`):

``disk_full_gate``
    the gate's data disk fills up mid-event: the journal cannot commit, so the gate must not
    admit; it says so (CLOSED with the cause, on its screen and at the hub), refuses with a
    reason, and recovers once space is back; nothing journaled is lost.
``disk_full_hub``
    the hub's disk fills up: ingest refuses (nothing acknowledged that was not stored), the
    API answers 503 with a reason, gates keep their journals; once space is back everything
    drains exactly once.
``clock_skew``
    one gate 5 minutes fast, one 5 minutes slow (``faketime``): decisions, rotating codes and
    the hub's reports stay correct; the hub measures each gate's skew and raises an alert.
``hub_kill_group_commit``
    ``kill -9`` of the hub while many gates upload a burst: nothing lost, nothing twice.
``hub_kill_backup``
    ``kill -9`` of the hub during an online backup of a large database, and of a
    ``gatehouse hub backup`` process: never a half file under the final name; the hub restarts.
``link_flap``
    a gate's link cut every few seconds while it scans: nothing lost, no duplicate, the upload
    queue never stuck.

``gatehouse bench faults --json`` prints ``scenarios_count``, ``passed_count``, ``lost_count``,
``double_counted_count`` and ``silent_failures_count``, each scenario's figures (prefixed
with its name) and the parameters.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from gatehouse.faults import (
    ADMITS,
    Gate,
    Hub,
    Params,
    ScenarioResult,
    add_audit,
    audit,
    faketime_library,
    open_conflicts,
    say,
    shifted_clock_env,
    small_disk,
    wait_until,
)
from gatehouse.venue import ROOT, TIMEOUT_S

#: a fan waits at most this long for a decision, whatever fails (as in the upgrade drill)
STALL_LIMIT_S = 2.0
#: the gate's longest reconnect wait (sync.gate_client.backoff's max_delay)
MAX_BACKOFF_S = 30.0


# --------------------------------------------------------------------------- disk full: gate
async def disk_full_gate(root: Path, p: Params) -> ScenarioResult:
    r = ScenarioResult("disk_full_gate")
    hub = await Hub.create(root, tickets=120)
    gate: Gate | None = None
    with small_disk(root / "gate-disk", 24) as disk:
        try:
            await hub.start()
            gate = await Gate.create(root, hub, "north-1", data=disk.path / "data")
            await gate.start()
            disk.attach(gate.proc.pid if gate.proc else 0)
            r.figures["method"] = disk.method
            await gate.wait_mode("ONLINE")
            codes = await hub.credentials([f"N{i:05d}" for i in range(1, 121)])
            queue = list(codes.values())
            before = [await gate.scan(queue.pop(0)) for _ in range(5)]
            r.check("the gate admits before the disk fills", all(d["reason"] in ADMITS for d in before),
                    [d["reason"] for d in before])
            await gate.drained()

            r.figures["filler_mb"] = round(disk.fill() / 1e6, 1)
            say(f"disk_full_gate: disk filled ({disk.method}), {disk.free_mb():.2f} MB free")
            t_full = time.monotonic()
            decisions: list[dict[str, Any]] = []
            closed: dict[str, Any] | None = None
            while queue and len(decisions) < 80:
                decisions.append(await gate.scan(queue.pop(0)))
                s = await gate.status()
                if s["mode"] == "CLOSED":
                    closed = s
                    break
            r.figures["admits_after_fill_count"] = sum(d["reason"] in ADMITS for d in decisions)
            r.figures["scans_until_closed_count"] = len(decisions)
            r.check("the gate closes when its journal cannot commit", closed is not None,
                    f"mode {closed['mode'] if closed else (await gate.status())['mode']} after {len(decisions)} scans",
                    "silent")
            if closed is None:
                return r
            r.figures["close_s"] = round(time.monotonic() - t_full, 2)
            cause = str(closed["mode_cause"])
            r.check("the screen says why (mode cause names the disk or journal)",
                    "disk" in cause.lower() or "journal" in cause.lower(), repr(cause), "silent")
            refused = [await gate.scan(queue.pop(0)) for _ in range(5)]
            s = await gate.status()
            r.check("while closed every scan is refused with a reason",
                    all(d["reason"] == "GATE_CLOSED" and d.get("message") for d in refused),
                    [(d["reason"], d.get("message")) for d in refused])
            r.figures["refused_unjournaled_count"] = int(s["lane"].get("unjournaled", 0))

            async def hub_knows() -> dict[str, Any] | None:
                async with hub.client() as c:
                    d = (await c.get("/api/v1/dashboard")).json()
                g = next(g for g in d["gates"] if g["gate_id"] == gate.gate_id)
                return g if g["mode"] == "CLOSED" else None

            try:
                known = await wait_until(hub_knows, "the hub to show the gate CLOSED", TIMEOUT_S * 2)
                r.check("the control room sees the gate CLOSED with the cause", known["mode_cause"],
                        repr(known["mode_cause"]), "silent")
            except TimeoutError:
                r.check("the control room sees the gate CLOSED with the cause", False,
                        "the dashboard still shows it as it was", "silent")

            t_free = time.monotonic()
            disk.free()
            await gate.wait_mode("ONLINE", TIMEOUT_S * 3)
            r.figures["recover_s"] = round(time.monotonic() - t_free, 2)
            r.check("the gate recovers once space is back", True, f"ONLINE after {r.figures['recover_s']} s")
            after = [await gate.scan(queue.pop(0)) for _ in range(5)]
            r.check("and admits again", all(d["reason"] in ADMITS for d in after), [d["reason"] for d in after])
            await gate.drained(TIMEOUT_S * 3)
            journal = await asyncio.to_thread(gate.journal)
            admitted_seqs = {e["seq"] for e in journal if e["kind"] == "scan" and e["reason"] in ADMITS}
            shown = [d for d in [*before, *decisions, *refused, *after] if d["reason"] in ADMITS]
            r.check("every admit shown on the screen is in the journal",
                    all(d.get("seq") in admitted_seqs for d in shown),
                    f"{len(shown)} admits shown, {len(admitted_seqs)} journaled")
            s = await wait_until(lambda: _outcomes_settled(gate), "every admit's passage outcome", TIMEOUT_S * 2)
            r.check("the turnstile unlocked only for journaled admits",
                    int(s["turnstile"]["admitted"]) == len(admitted_seqs),
                    f"{s['turnstile']['admitted']} unlocks, {len(admitted_seqs)} journaled admits")
            events = [e for e in journal if e["kind"] == "event" and "journal" in str(e["detail"])]
            r.check("the outage is on the record (journal event with what was refused)", events,
                    events[-1]["detail"] if events else "no event", "silent")
            add_audit(r, await audit(hub, gate), gate)
        finally:
            if gate is not None:
                gate.close()
            hub.stop()
    return r


async def _outcomes_settled(gate: Gate) -> dict[str, Any] | None:
    s = await gate.status()
    lane = s["lane"]
    return s if lane["admitted"] == lane["passed"] + lane["not_passed"] else None


# --------------------------------------------------------------------------- disk full: hub
async def disk_full_hub(root: Path, p: Params) -> ScenarioResult:
    r = ScenarioResult("disk_full_hub")
    gates: list[Gate] = []
    with small_disk(root / "hub-disk", 64) as disk:
        hub = await Hub.create(root, tickets=300, data=disk.path / "hub")
        try:
            await hub.start()
            disk.attach(hub.proc.pid if hub.proc else 0)
            r.figures["method"] = disk.method
            for name in ("north-1", "north-2"):
                gates.append(await Gate.create(root, hub, name))
                await gates[-1].start()
            for g in gates:
                await g.wait_mode("ONLINE")
            codes = list((await hub.credentials([f"N{i:05d}" for i in range(1, 301)])).values())
            for g in gates:
                for _ in range(5):
                    await g.scan(codes.pop())
                await g.drained()

            r.figures["filler_mb"] = round(disk.fill() / 1e6, 1)
            say(f"disk_full_hub: the hub's disk filled ({disk.method})")
            t_full = time.monotonic()
            decided: list[str] = []

            async def refusing() -> bool:
                """Scan on until the hub stops storing (SQLite may first fill WAL pages it already has)."""
                for g in gates:
                    decided.append((await g.scan(codes.pop()))["reason"])
                states = [await g.status() for g in gates]
                return all(s["backlog"] > 0 for s in states)

            await wait_until(refusing, "the hub to refuse ingest", TIMEOUT_S * 4, step=0.2)
            r.figures["refuse_s"] = round(time.monotonic() - t_full, 2)
            r.check("the gates keep deciding while the hub cannot store",
                    all(d in ADMITS for d in decided), f"{len(decided)} decisions: {sorted(set(decided))}")
            for _ in range(5):  # the backlog grows while the disk stays full
                for g in gates:
                    decided.append((await g.scan(codes.pop()))["reason"])
            states = {g.name: await g.status() for g in gates}
            r.figures["backlog_peak_count"] = max(s["backlog"] for s in states.values())
            for g in gates:
                acked = int(states[g.name]["sync"]["acked"])
                held = {int(v["seq"]) for v in await hub.validations(g.gate_id)}
                missing = [s for s in range(1, acked + 1) if s not in held]
                r.check(f"nothing acknowledged to {g.name} that the hub did not store", not missing,
                        f"acked {acked}, hub holds {len(held)}; acked but missing {missing[:10]}", "lost")

            async with hub.client() as c:
                zone = await c.post("/api/v1/zones", json={"name": "Overflow"})
                backup = await c.post("/api/v1/backup", json={"name": "while-full.db"})
                stats = await c.get("/api/v1/stats")
                health = await c.get("/healthz")
            for what, resp in (("a write (new zone)", zone), ("a backup", backup)):
                body = resp.json() if resp.headers.get("content-type", "").startswith("application/json") else {}
                err = body.get("error", {}) if isinstance(body, dict) else {}
                r.check(f"the API refuses {what} with 503 and a reason", resp.status_code == 503 and err.get("message"),
                        f"HTTP {resp.status_code} {err.get('code')}: {err.get('message')}", "silent")
            r.check("reads still work (stats)", stats.status_code == 200, f"HTTP {stats.status_code}")
            hbody = health.json()
            r.check("/healthz says the storage is failing, and why", health.status_code == 503
                    and "full" in str(hbody.get("storage")), f"HTTP {health.status_code} {hbody.get('storage')}",
                    "silent")
            told = [(await g.status())["sync"].get("hub_error") for g in gates]
            r.check("each gate is told why the hub does not ack", all(t and t["code"] == "storage_unavailable"
                                                                      for t in told), told, "silent")
            await wait_until(lambda: "not stored" in hub.log_tail(20_000) or "disk is full" in hub.log_tail(20_000),
                             "the hub's log to say why", TIMEOUT_S)
            r.check("the hub's log says why ingest stopped", True, "logged")
            for g in gates:
                journal = await asyncio.to_thread(g.journal)
                r.check(f"{g.name} keeps its journal", len(journal) >= int(states[g.name]["journal_last_seq"]),
                        f"{len(journal)} entries")

            t_free = time.monotonic()
            disk.free()
            for g in gates:
                await g.drained(TIMEOUT_S * 4)
            r.figures["drain_s"] = round(time.monotonic() - t_free, 2)
            r.check("once space is back every gate drains", True, f"in {r.figures['drain_s']} s")
            async with hub.client() as c:
                zone = await c.post("/api/v1/zones", json={"name": "Overflow"})
            r.check("and the API writes again", zone.status_code == 200, f"HTTP {zone.status_code}")
            for g in gates:
                add_audit(r, await audit(hub, g), g)
            conflicts = await open_conflicts(hub)
            r.check("no conflict invented by the re-sending", not conflicts,
                    [c["kind"] for c in conflicts][:5], "double")
        finally:
            for g in gates:
                g.close()
            hub.stop()
    return r


# --------------------------------------------------------------------------- clock skew
def rotating_code(secret_b64: str, at: float) -> str:
    """What the fan's phone shows at ``at`` (its own, network-set clock)."""
    import base64

    from tickets.rotating import code_at

    return code_at(base64.b64decode(secret_b64), at)


async def clock_skew(root: Path, p: Params) -> ScenarioResult:
    r = ScenarioResult("clock_skew")
    if faketime_library() is None:
        r.check("libfaketime is installed (apt-get install faketime; ./run test does it)", False, "not found")
        return r
    t0 = time.time()
    window = f"{t0 - 3600:.0f},{t0 + 86_400:.0f}"
    extra = [f"R{i:05d},North,Rotating fan {i},R-{i},{window},true" for i in range(1, 5)]
    # opens in 280 s: a gate 5 minutes fast that trusted its own clock would admit it now
    extra += [f"F{i:05d},North,Early fan {i},F-{i},{t0 + 280:.0f},{t0 + 86_400:.0f},false" for i in range(1, 3)]
    # closed 150 s ago — beyond the 60 s a gate allows for clock error (GatePolicy.clock_skew_s),
    # so a gate on hub time refuses it whatever the scenario's pace; a gate 5 minutes slow that
    # trusted its own clock would admit it
    extra += [f"E{i:05d},North,Late fan {i},E-{i},{t0 - 3600:.0f},{t0 - 150:.0f},false" for i in range(1, 3)]
    hub = await Hub.create(root, tickets=40, extra_rows=extra)
    gates: dict[str, Gate] = {}
    try:
        await hub.start()
        for name, shift in (("fast", p.skew_s), ("slow", -p.skew_s)):
            gates[name] = await Gate.create(root, hub, f"north-{name}", env=shifted_clock_env(shift))
            await gates[name].start()
        for g in gates.values():
            await g.wait_mode("ONLINE")
        r.figures["skew_s"] = p.skew_s
        for name, g in gates.items():
            want = -p.skew_s if name == "fast" else p.skew_s
            s = await wait_until(functools.partial(_offset_applied, g, want), f"{g.name}'s clock corrected",
                                 TIMEOUT_S * 2)
            r.check(f"{g.name} decides on hub time (offset {want:+.0f} s)", abs(s["clock"]["offset_s"] - want) < 2,
                    f"offset {s['clock']['offset_s']:+.2f} s, round trip {s['clock']['rtt_ms']} ms")
            r.figures[f"{name}_offset_error_s"] = round(abs(s["clock"]["offset_s"] - want), 3)

        async with hub.client() as c:
            listed = {g["gate_id"]: g for g in (await c.get("/api/v1/gates")).json()}
            board = {g["gate_id"]: g for g in (await c.get("/api/v1/dashboard")).json()["gates"]}
        for name, g in gates.items():
            want = p.skew_s if name == "fast" else -p.skew_s
            skew = listed[g.gate_id]["info"].get("clock_skew_s")
            r.check(f"the hub measured {g.name}'s skew ({want:+.0f} s) and the API shows it",
                    skew is not None and abs(skew - want) < 5, f"info.clock_skew_s = {skew}", "silent")
            r.check(f"the dashboard shows {g.name}'s skew", board[g.gate_id].get("clock_skew_s") == skew,
                    f"dashboard clock_skew_s = {board[g.gate_id].get('clock_skew_s')}", "silent")
            r.figures[f"{name}_measured_skew_s"] = skew

        tickets = {t["number"]: t for t in await hub.tickets()}
        codes = await hub.credentials([n for n in tickets if n[0] in "NRFE"])
        secrets: dict[str, str] = {}
        async with hub.client() as c:
            for n in (f"R{i:05d}" for i in range(1, 5)):
                page = (await c.get(f"/api/v1/tickets/{n}/credential")).json()["fan_page"]
                secrets[n] = (await c.get(f"/api/v1/fan/{page.rsplit('/', 1)[1]}")).json()["secret"]

        async def expect(g: Gate, code: str, want: tuple[str, ...], what: str) -> None:
            d = await g.scan(code)
            r.check(f"{g.name}: {what}", d["reason"] in want, f"{d['reason']} ({d.get('message')})")

        fast, slow = gates["fast"], gates["slow"]
        normal = [n for n in tickets if n.startswith("N")]
        for g, rot in ((fast, "R00001"), (slow, "R00002")):
            await expect(g, codes[normal.pop()], ADMITS, "a plain ticket is admitted")
            await expect(g, f"{codes[rot]}:{rotating_code(secrets[rot], time.time())}", ADMITS,
                         "a rotating code from the fan's phone is admitted")
        stale = "R00003"
        for g in (fast, slow):
            await expect(g, f"{codes[stale]}:{rotating_code(secrets[stale], time.time() - 60)}", ("STALE_CODE",),
                         "a screenshot of a rotating code a minute old is refused")
        await expect(fast, codes["F00001"], ("NOT_YET_VALID",), "a ticket whose window opens in 4 minutes waits")
        await expect(slow, codes["E00001"], ("EXPIRED",), "a ticket whose window closed is refused")

        worst = 0.0
        for g in gates.values():
            await g.drained()
            rows = [v for v in await hub.validations(g.gate_id) if v["kind"] == "scan"]
            off = max((abs(float(v["at"]) - float(v["received_at"])) for v in rows), default=0.0)
            worst = max(worst, off)
            r.check(f"{g.name}'s entries carry hub time (report minutes right)", off < 10,
                    f"largest |at - received_at| {off:.1f} s over {len(rows)} scans")
            async with hub.client() as c:
                stats = (await c.get("/api/v1/stats")).json()
            counted = sum(m["entries"] for m in stats["per_gate_minute"] if m["gate_id"] == g.gate_id)
            admits = sum(1 for v in rows if v["reason"] in ADMITS)
            r.check(f"the hub's entries-per-minute report counts {g.name}'s admits", counted == admits,
                    f"report {counted}, admits {admits}")
            add_audit(r, await audit(hub, g), g)
        r.figures["worst_stamp_error_s"] = round(worst, 2)
        async with hub.client() as c:
            alerts = (await c.get("/api/v1/dashboard")).json()["alerts"]
        for g in gates.values():
            mine = [a for a in alerts if a["gate_id"] == g.gate_id and "clock" in a["title"].lower()]
            r.check(f"a large skew at {g.name} is an alert in the control room", mine,
                    mine[0]["text"] if mine else "no alert", "silent")
    finally:
        for g in gates.values():
            g.close()
        hub.stop()
    return r


async def _offset_applied(g: Gate, want: float) -> dict[str, Any] | None:
    s = await g.status()
    return s if abs(s["clock"]["offset_s"] - want) < 5 else None


# --------------------------------------------------------------------------- kill -9: group commit
async def _light_gates(hub: Hub, count: int) -> list[Any]:
    """``count`` lightweight gates (real websocket clients, journals in memory), registered and
    enrolled through the hub's API."""
    from gatehouse.bench.kit import LIGHT_SESSION, LightGate

    out = []
    async with hub.client() as c:
        zone = (await c.get("/api/v1/zones")).json()[0]["zone_id"]
        for i in range(count):
            got = await c.post("/api/v1/gates", json={"name": f"burst {i}", "zones": [zone]})
            got.raise_for_status()
            enrolled = await c.post("/api/v1/enroll", json={"token": got.json()["enrolment_token"]})
            enrolled.raise_for_status()
            body = enrolled.json()
            out.append(LightGate(body["gate_id"], body["token"], f"ws://127.0.0.1:{hub.port}/ws/gate",
                                 config=LIGHT_SESSION))
    return out


def _entry_maker(gate: Any, tickets: list[tuple[int, int]]) -> Callable[[int], Any]:
    """Journal entries like a gate's: mostly refusals, and an admit + passage of each of its own tickets."""
    from tickets.entry import EntryKind, JournalEntry, Passage

    def make(seq: int) -> JournalEntry:
        now = time.time()
        if tickets and seq % 3 == 1:
            tid, zone = tickets.pop()
            return JournalEntry(gate.name, seq, now, EntryKind.SCAN, reason="ADMIT", ticket_id=tid, zone_id=zone,
                                raw=b"GH1:" + b"A" * 150, passage=Passage.PENDING)
        prev = gate.journal[-1] if gate.journal else None
        if prev is not None and prev.reason == "ADMIT" and prev.kind is EntryKind.SCAN:
            return JournalEntry(gate.name, seq, now, EntryKind.PASSAGE, reason="ADMIT", ticket_id=prev.ticket_id,
                                zone_id=prev.zone_id, ref_seq=prev.seq, passage=Passage.PASSED)
        return JournalEntry(gate.name, seq, now, EntryKind.SCAN, reason="UNKNOWN", raw=b"not a ticket")

    return make


async def hub_kill_group_commit(root: Path, p: Params) -> ScenarioResult:
    r = ScenarioResult("hub_kill_group_commit")
    admits_each = max(1, p.burst_entries // 6)
    hub = await Hub.create(root, tickets=p.burst_gates * admits_each + 10)
    gates: list[Any] = []
    try:
        await hub.start()
        gates = await _light_gates(hub, p.burst_gates)
        tickets = [(int(t["ticket_id"]), int(t["zone_id"])) for t in await hub.tickets()]
        makers = [_entry_maker(g, tickets[i * admits_each:(i + 1) * admits_each]) for i, g in enumerate(gates)]
        for g in gates:
            g.start()
        await asyncio.wait_for(asyncio.gather(*(g.online.wait() for g in gates)), TIMEOUT_S * 6)
        per_kill = p.burst_entries // (p.kills + 1)
        def total() -> int:
            return sum(len(g.journal) for g in gates)

        def acked() -> int:
            return sum(int(g.acked) for g in gates)

        def stored_a_third(start: int, target: int) -> bool:
            return acked() >= start + (target - start) // 3
        restarts: list[float] = []
        async def produce(rounds: int) -> None:
            """Fans at every gate: one entry per gate every 20 ms (about as fast as the hub stores)."""
            for _ in range(rounds):
                for g, make in zip(gates, makers, strict=True):
                    g.append(make)
                await asyncio.sleep(0.02)

        for k in range(p.kills):
            start_acked, target = acked(), total() + per_kill * len(gates)
            producer = asyncio.ensure_future(produce(per_kill))
            # kill once a third of this burst is stored, with the rest still arriving: the
            # writer is committing groups and batches are in flight
            await wait_until(functools.partial(stored_a_third, start_acked, target), "a third of the burst stored",
                             TIMEOUT_S * 4, step=0.002)
            before, produced = acked(), total()
            hub.kill()
            r.figures[f"kill{k + 1}_unacked_count"] = produced - before
            r.figures[f"kill{k + 1}_stored_ratio"] = round((before - start_acked) / max(1, target - start_acked), 3)
            say(f"hub_kill_group_commit: kill -9 #{k + 1} with {before}/{produced} acked")
            await wait_until(lambda: not any(g.online.is_set() for g in gates), "every gate to notice", TIMEOUT_S * 2)
            restarts.append(await hub.start())
            await producer
        for _ in range(per_kill):
            for g, make in zip(gates, makers, strict=True):
                g.append(make)
        t0 = time.monotonic()
        await wait_until(lambda: all(g.acked >= len(g.journal) for g in gates), "every gate drained", TIMEOUT_S * 6)
        r.figures["drain_s"] = round(time.monotonic() - t0, 2)
        r.figures["gates_count"] = len(gates)
        r.figures["entries_count"] = total()
        r.figures["kills_count"] = p.kills
        r.figures["restart_max_s"] = round(max(restarts), 2)
        r.check("each kill -9 came with entries in flight (sent, not yet stored)",
                all(r.figures[f"kill{k + 1}_unacked_count"] > 0 for k in range(p.kills)),
                [r.figures[f"kill{k + 1}_unacked_count"] for k in range(p.kills)])
        r.check("the hub restarts cleanly after each kill -9", len(restarts) == p.kills,
                f"served again after {', '.join(f'{s:.1f} s' for s in restarts)}")
        lost = doubled = 0
        admits_sent = sum(1 for g in gates for e in g.journal if e.reason == "ADMIT" and e.kind.value == "scan")
        admits_held = 0
        for g in gates:
            mine = {(e.seq, e.nonce) for e in g.journal}
            rows = await hub.validations(g.name)
            held = [(int(v["seq"]), str(v["nonce"])) for v in rows]
            lost += len(mine - set(held))
            doubled += len(held) - len(set(held)) + len(set(held) - mine)
            admits_held += sum(1 for v in rows if v["kind"] == "scan" and v["reason"] == "ADMIT")
        r.lost, r.double = lost, doubled
        r.check("every entry of every gate is at the hub", lost == 0, f"{lost} of {total()} missing", "lost")
        r.check("none twice", doubled == 0, f"{doubled} doubled or unknown", "double")
        r.check("every admit counted once", admits_held == admits_sent, f"{admits_sent} sent, {admits_held} held",
                "double")
        conflicts = await open_conflicts(hub)
        r.check("no conflict from the re-sending", not conflicts, [c["kind"] for c in conflicts][:5], "double")
        async with hub.client() as c:
            stats = (await c.get("/api/v1/stats")).json()
            backup = await c.post("/api/v1/backup", json={"name": "after-kills.db"})
        r.check("the hub counts each fan inside once", stats["entries_total"] == admits_sent,
                f"entries_total {stats['entries_total']}", "double")
        r.check("the database reads whole after the kills (an online backup of it succeeds)",
                backup.status_code == 200, f"HTTP {backup.status_code}")
    finally:
        for g in gates:
            await g.stop()
        hub.stop()
    return r


# --------------------------------------------------------------------------- kill -9: backup
async def hub_kill_backup(root: Path, p: Params) -> ScenarioResult:
    r = ScenarioResult("hub_kill_backup")
    hub = await Hub.create(root, tickets=p.backup_tickets)
    gates: list[Any] = []
    try:
        r.figures["db_mb"] = round(sum(f.stat().st_size for f in hub.data.glob("hub.db*")) / 1e6, 1)
        await hub.start()
        gates = await _light_gates(hub, 1)
        g = gates[0]
        make = _entry_maker(g, [])
        g.start()
        await asyncio.wait_for(g.online.wait(), TIMEOUT_S * 6)
        for _ in range(100):
            g.append(make)
        await wait_until(lambda: g.acked >= 100, "the gate's journal stored", TIMEOUT_S * 2)
        backups = hub.data / "backups"

        # 1. kill -9 of the hub while it writes a backup asked for over the API
        final, partial = backups / "killed.db", backups / "killed.db.partial"
        client = hub.client(timeout=600)
        request = asyncio.ensure_future(client.post("/api/v1/backup", json={"name": "killed.db"}))
        try:
            await wait_until(lambda: partial.exists() and partial.stat().st_size > 0, "the backup under way",
                             TIMEOUT_S * 2, step=0.005)
            hub.kill()
            r.figures["killed_at_partial_mb"] = round(partial.stat().st_size / 1e6, 1)
            say(f"hub_kill_backup: hub killed with {r.figures['killed_at_partial_mb']} MB of the backup written")
        finally:
            with contextlib.suppress(Exception):
                await request
            await client.aclose()
        r.check("no half backup under the final name", not final.exists(), f"{final.name} exists: {final.exists()}")
        r.check("what was written is clearly partial", partial.exists(), f"{partial.name} left for inspection")
        r.figures["restart_s"] = round(await hub.start(), 2)
        r.check("the hub restarts cleanly", True, f"served again after {r.figures['restart_s']} s")
        async with hub.client() as c:
            audit_rows = (await c.get("/api/v1/audit", params={"action": "backup"})).json()
            hw = (await c.get(f"/api/v1/gates/{g.name}/journal/high-water",
                              headers={"Authorization": f"Bearer {g.client.token}"})).json()
        r.check("the killed backup is not on record as a backup", not any("killed.db" in str(a["target"])
                                                                          for a in audit_rows), audit_rows[:2])
        r.check("so no gate may prune its journal against it", hw.get("backed_up_high_water", 0) == 0,
                f"backed_up_high_water {hw.get('backed_up_high_water')}", "lost")
        for _ in range(20):
            g.append(make)
        await wait_until(lambda: g.acked >= len(g.journal), "the gate re-sent to the restarted hub", TIMEOUT_S * 2)
        t0 = time.monotonic()
        async with hub.client(timeout=600) as c:
            again = await c.post("/api/v1/backup", json={"name": "killed.db"})
        r.figures["backup_s"] = round(time.monotonic() - t0, 2)
        r.check("a backup to the same name then completes", again.status_code == 200 and final.exists()
                and not partial.exists(), f"HTTP {again.status_code}, {r.figures['backup_s']} s")
        r.check("and it is whole (integrity check, every ticket and entry)", *_backup_whole(final, p.backup_tickets,
                                                                                            len(g.journal)))

        # 2. kill -9 of a ``gatehouse hub backup`` process while the hub serves
        dest = root / "cli-backup.db"
        cli_partial = dest.with_name(dest.name + ".partial")
        proc = await asyncio.to_thread(
            subprocess.Popen, [sys.executable, "-m", "gatehouse", "hub", "backup", str(dest), "--data", str(hub.data)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            await wait_until(lambda: (cli_partial.exists() and cli_partial.stat().st_size > 0) or proc.poll() is not None,
                             "the CLI backup under way", TIMEOUT_S * 3, step=0.005)
        finally:
            proc.kill()
            proc.wait()
        r.check("a killed `gatehouse hub backup` leaves no file under its name", not dest.exists(),
                f"{dest.name} exists: {dest.exists()}; partial: {cli_partial.exists()}")
        async with hub.client() as c:
            health = await c.get("/healthz")
            zone = await c.post("/api/v1/zones", json={"name": "After the kill"})
        r.check("the serving hub does not notice", health.status_code == 200 and zone.status_code == 200,
                f"healthz {health.status_code}, write {zone.status_code}")
        await agatehouse_backup(hub, dest)
        r.check("the same backup run again completes and is whole", *_backup_whole(dest, p.backup_tickets,
                                                                                    len(g.journal)))
        a = [(e.seq, e.nonce) for e in g.journal]
        held = [(int(v["seq"]), str(v["nonce"])) for v in await hub.validations(g.name)]
        r.lost = len(set(a) - set(held))
        r.double = len(held) - len(set(held))
        r.check("every entry at the hub exactly once", r.lost == 0 and r.double == 0,
                f"{len(a)} journaled, {len(held)} held", "lost")
    finally:
        for g in gates:
            await g.stop()
        hub.stop()
    return r


async def agatehouse_backup(hub: Hub, dest: Path) -> None:
    from gatehouse.faults import agatehouse

    await agatehouse("hub", "backup", str(dest), "--data", str(hub.data), timeout=600)


def _backup_whole(path: Path, tickets: int, entries: int) -> tuple[bool, str]:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
            n_tickets = conn.execute("SELECT count(*) FROM tickets").fetchone()[0]
            n_entries = conn.execute("SELECT count(*) FROM journal").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return False, f"unreadable: {exc}"
    return (ok == "ok" and n_tickets == tickets and n_entries >= entries,
            f"integrity {ok}, {n_tickets} tickets, {n_entries} journal entries")


# --------------------------------------------------------------------------- link flapping
async def link_flap(root: Path, p: Params) -> ScenarioResult:
    from gatehouse.netsim import LinkCutter

    r = ScenarioResult("link_flap")
    per_gate = int(p.flap_s * p.scan_rate / 3) + 20
    hub = await Hub.create(root, tickets=2 * per_gate)
    gates: list[Gate] = []
    cutters: list[LinkCutter] = []
    stop = asyncio.Event()
    try:
        await hub.start()
        for name in ("north-1", "north-2"):
            cutter = await LinkCutter("127.0.0.1", hub.port).start()
            cutters.append(cutter)
            gates.append(await Gate.create(root, hub, name, hub_url=cutter.url))
            await gates[-1].start()
        for g in gates:
            await g.wait_mode("ONLINE", TIMEOUT_S * 3)
        numbers = [t["number"] for t in await hub.tickets()]
        codes = await hub.credentials(numbers)
        own = [list(codes.values())[i::2] for i in range(2)]
        latencies: list[float] = []
        decisions: dict[str, int] = {}
        backlog_peak = [0]
        flaps = [0]

        async def scanning(g: Gate, mine: list[str], rng: random.Random) -> None:
            n = 0
            while not stop.is_set():
                n += 1
                code = mine.pop() if n % 3 == 1 and mine else rng.choice(["NOT-A-TICKET", "GH1:AAAA", "0000000"])
                t0, sent = time.monotonic(), time.time()
                d = await g.scan(code)
                latencies.append(max(0.0, float(d["at"]) - sent))  # on the gate: read → decided
                decisions[d["reason"]] = decisions.get(d["reason"], 0) + 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), max(0.0, 1 / p.scan_rate - (time.monotonic() - t0)))

        async def flapping(cutter: LinkCutter, rng: random.Random) -> None:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), rng.uniform(*p.heal_s))
                if stop.is_set():
                    break
                cutter.cut()
                flaps[0] += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), rng.uniform(*p.cut_s))
                cutter.heal()

        async def watching() -> None:
            while not stop.is_set():
                for g in gates:
                    with contextlib.suppress(httpx.HTTPError):
                        backlog_peak[0] = max(backlog_peak[0], int((await g.status())["backlog"] or 0))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)

        tasks = [asyncio.ensure_future(scanning(g, own[i], random.Random(p.seed + i))) for i, g in enumerate(gates)]
        tasks += [asyncio.ensure_future(flapping(c, random.Random(p.seed * 7 + i))) for i, c in enumerate(cutters)]
        tasks.append(asyncio.ensure_future(watching()))
        say(f"link_flap: scanning while the links flap for {p.flap_s:.0f} s")
        t_run = time.monotonic()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*tasks), p.flap_s)
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        r.figures["flap_s"] = round(time.monotonic() - t_run, 1)
        for c in cutters:
            c.heal()
        t0 = time.monotonic()
        for g in gates:
            await g.drained(TIMEOUT_S * 4)
        r.figures["drain_s"] = round(time.monotonic() - t0, 2)
        r.figures["flaps_count"] = flaps[0]
        r.figures["scans_count"] = len(latencies)
        r.figures["decision_max_s"] = round(max(latencies, default=0.0), 3)
        r.figures["backlog_peak_count"] = backlog_peak[0]
        statuses = [await g.status() for g in gates]
        r.figures["reconnects_count"] = sum(int(s["sync"]["connections"]) for s in statuses)
        r.check("the links really flapped", flaps[0] >= max(2, int(p.flap_s / 6)),
                f"{flaps[0]} cuts in {r.figures['flap_s']} s, {r.figures['reconnects_count']} connections")
        r.check("every scan was decided at once, whatever the link did", r.figures["decision_max_s"] < STALL_LIMIT_S,
                f"{len(latencies)} scans, slowest {r.figures['decision_max_s']} s from the scanner to the decision:"
                f" {decisions}")
        r.check("no upload queue stuck: both gates drained once the link held",
                r.figures["drain_s"] < MAX_BACKOFF_S + TIMEOUT_S,
                f"drained {r.figures['drain_s']} s after the last heal (reconnect backoff up to {MAX_BACKOFF_S:.0f} s);"
                f" backlog peak {backlog_peak[0]}")
        for g in gates:
            add_audit(r, await audit(hub, g), g)
        conflicts = await open_conflicts(hub)
        r.check("no conflict invented by re-sending", not conflicts, [c["kind"] for c in conflicts][:5], "double")
    finally:
        stop.set()
        for g in gates:
            g.close()
        for c in cutters:
            await c.close()
        hub.stop()
    return r


SCENARIOS: dict[str, Callable[[Path, Params], Awaitable[ScenarioResult]]] = {
    "disk_full_gate": disk_full_gate,
    "disk_full_hub": disk_full_hub,
    "clock_skew": clock_skew,
    "hub_kill_group_commit": hub_kill_group_commit,
    "hub_kill_backup": hub_kill_backup,
    "link_flap": link_flap,
}


async def run_scenario(name: str, root: Path, params: Params | None = None) -> ScenarioResult:
    """Run one scenario by name in ``root`` (a fresh directory)."""
    params = params or Params()
    t0 = time.monotonic()
    await asyncio.to_thread(root.mkdir, parents=True, exist_ok=True)
    say(f"scenario {name}: starting in {root}")
    try:
        result = await SCENARIOS[name](root, params)
    except Exception as exc:  # a broken harness or an unexpected answer: a failed scenario, with why
        result = ScenarioResult(name)
        result.check("the scenario ran to its end", False, f"{type(exc).__name__}: {exc}")
    result.duration_s = round(time.monotonic() - t0, 1)
    say(result.report())
    return result


def run_defect_tests() -> dict[str, int]:
    """Run the per-defect fault tests (each drives real processes itself) and count them."""
    import glob
    import xml.etree.ElementTree as ET

    # every test file of tests/faults/ but the scenarios' own (which this benchmark runs itself)
    files = sorted(f for f in glob.glob(str(ROOT / "tests" / "faults" / "test_*.py"))
                   if not Path(f).name.startswith("test_scenario_"))
    if not files:
        say("no per-defect fault tests (tests/faults/test_*.py) in this checkout")
        return {"tests": 0, "passed": 0}
    with tempfile.TemporaryDirectory(prefix="gatehouse-defects-") as tmp:
        report = Path(tmp) / "junit.xml"
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", f"--junitxml={report}", *files],
                       cwd=ROOT, stdout=sys.stderr, stderr=sys.stderr, check=False)
        if not report.exists():
            return {"tests": len(files), "passed": 0}
        suite = ET.parse(report).getroot()
        suite = suite if suite.tag == "testsuite" else suite[0]
        tests = int(suite.get("tests", 0)) - int(suite.get("skipped", 0))
        failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
    return {"tests": tests, "passed": tests - failed}


# --------------------------------------------------------------------------- the benchmark
def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = Params(flap_s=300.0, backup_tickets=200_000)
    parser.add_argument("--only", action="append", choices=sorted(SCENARIOS), default=None,
                        help="run only this scenario (repeatable)")
    parser.add_argument("--flap-s", type=float, default=d.flap_s, help="how long the link flaps (default 5 minutes)")
    parser.add_argument("--burst-gates", type=int, default=d.burst_gates)
    parser.add_argument("--burst-entries", type=int, default=d.burst_entries)
    parser.add_argument("--backup-tickets", type=int, default=d.backup_tickets)
    parser.add_argument("--skew-s", type=float, default=d.skew_s)
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--dir", type=Path, default=None, help="keep the scenarios' files here")
    parser.add_argument("--defects", action="store_true",
                        help="also run the per-defect fault tests (tests/faults/test_*.py but the scenarios)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    params = Params(flap_s=args.flap_s, burst_gates=args.burst_gates, burst_entries=args.burst_entries,
                    backup_tickets=args.backup_tickets, skew_s=args.skew_s, seed=args.seed)
    names = args.only or list(SCENARIOS)
    results: list[ScenarioResult] = []
    with contextlib.ExitStack() as stack:
        base = args.dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gatehouse-faults-")))
        for name in names:
            results.append(asyncio.run(run_scenario(name, base / name, params)))
    defects = run_defect_tests() if args.defects else None
    out: dict[str, Any] = {
        "scenarios_count": len(results) + (defects["tests"] if defects else 0),
        "passed_count": sum(r.passed for r in results) + (defects["passed"] if defects else 0),
        "lost_count": sum(r.lost for r in results),
        "double_counted_count": sum(r.double for r in results),
        "silent_failures_count": sum(r.silent for r in results),
        "checks_count": sum(len(r.checks) for r in results),
        "checks_failed_count": sum(len(r.failed) for r in results),
        "flap_s": params.flap_s, "burst_gates": params.burst_gates, "burst_entries": params.burst_entries,
        "backup_tickets": params.backup_tickets, "skew_s": params.skew_s, "seed": params.seed,
        "load_average": round(os.getloadavg()[0], 1),
    }
    if defects is not None:
        out["defects_count"], out["defects_passed_count"] = defects["tests"], defects["passed"]
    for r in results:
        out[f"{r.name}_passed"] = r.passed
        out[f"{r.name}_duration_s"] = r.duration_s
        for k, v in r.figures.items():
            out[f"{r.name}_{k}"] = v
    return out

