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
import os
import random
import shutil
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
    FaultError,
    Gate,
    Hub,
    Params,
    ScenarioResult,
    add_audit,
    audit,
    faketime_library,
    shifted_clock_env,
    fetch_all,
    open_conflicts,
    say,
    small_disk,
    wait_until,
)
from gatehouse.venue import ROOT, TIMEOUT_S


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
            releases = int(s["turnstile"].get("releases", s["turnstile"].get("unlocks", -1)))
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
            s = await gate.status()
            r.check("the turnstile opened only for journaled admits",
                    releases == -1 or int(s["lane"]["admitted"]) == len(admitted_seqs),
                    f"lane admitted {s['lane']['admitted']}, journaled admits {len(admitted_seqs)}")
            events = [e for e in journal if e["kind"] == "event" and "journal" in str(e["detail"])]
            r.check("the outage is on the record (journal event with what was refused)", events,
                    events[-1]["detail"] if events else "no event", "silent")
            add_audit(r, await audit(hub, gate), gate)
        finally:
            if gate is not None:
                gate.close()
            hub.stop()
    return r


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
    # closed 20 s ago: a gate 5 minutes slow that trusted its own clock would admit it now
    extra += [f"E{i:05d},North,Late fan {i},E-{i},{t0 - 3600:.0f},{t0 - 20:.0f},false" for i in range(1, 3)]
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
            s = await wait_until(lambda g=g: _offset_applied(g, want), f"{g.name}'s clock corrected", TIMEOUT_S * 2)
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
        for name, g in gates.items():
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


SCENARIOS: dict[str, Callable[[Path, Params], Awaitable[ScenarioResult]]] = {
    "clock_skew": clock_skew,
    "disk_full_gate": disk_full_gate,
    "disk_full_hub": disk_full_hub,
}


async def run_scenario(name: str, root: Path, params: Params = Params()) -> ScenarioResult:
    """Run one scenario by name in ``root`` (a fresh directory)."""
    t0 = time.monotonic()
    root.mkdir(parents=True, exist_ok=True)
    say(f"scenario {name}: starting in {root}")
    try:
        result = await SCENARIOS[name](root, params)
    except Exception as exc:  # a broken harness or an unexpected answer: a failed scenario, with why
        result = ScenarioResult(name)
        result.check("the scenario ran to its end", False, f"{type(exc).__name__}: {exc}")
    result.duration_s = round(time.monotonic() - t0, 1)
    say(result.report())
    return result


# --------------------------------------------------------------------------- the benchmark
def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = Params(flap_s=300.0)
    parser.add_argument("--only", action="append", choices=sorted(SCENARIOS), default=None,
                        help="run only this scenario (repeatable)")
    parser.add_argument("--flap-s", type=float, default=d.flap_s, help="how long the link flaps (default 5 minutes)")
    parser.add_argument("--burst-gates", type=int, default=d.burst_gates)
    parser.add_argument("--burst-entries", type=int, default=d.burst_entries)
    parser.add_argument("--backup-tickets", type=int, default=d.backup_tickets)
    parser.add_argument("--skew-s", type=float, default=d.skew_s)
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--dir", type=Path, default=None, help="keep the scenarios' files here")


def run(args: argparse.Namespace) -> dict[str, Any]:
    params = Params(flap_s=args.flap_s, burst_gates=args.burst_gates, burst_entries=args.burst_entries,
                    backup_tickets=args.backup_tickets, skew_s=args.skew_s, seed=args.seed)
    names = args.only or list(SCENARIOS)
    results: list[ScenarioResult] = []
    with contextlib.ExitStack() as stack:
        base = args.dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gatehouse-faults-")))
        for name in names:
            results.append(asyncio.run(run_scenario(name, base / name, params)))
    out: dict[str, Any] = {
        "scenarios_count": len(results),
        "passed_count": sum(r.passed for r in results),
        "lost_count": sum(r.lost for r in results),
        "double_counted_count": sum(r.double for r in results),
        "silent_failures_count": sum(r.silent for r in results),
        "checks_count": sum(len(r.checks) for r in results),
        "checks_failed_count": sum(len(r.failed) for r in results),
        "flap_s": params.flap_s, "burst_gates": params.burst_gates, "burst_entries": params.burst_entries,
        "backup_tickets": params.backup_tickets, "skew_s": params.skew_s, "seed": params.seed,
        "load_average": round(os.getloadavg()[0], 1),
    }
    for r in results:
        out[f"{r.name}_passed"] = r.passed
        out[f"{r.name}_duration_s"] = r.duration_s
        for k, v in r.figures.items():
            out[f"{r.name}_{k}"] = v
    return out


_ = (random, shutil, sqlite3, subprocess, ROOT, fetch_all, open_conflicts)
