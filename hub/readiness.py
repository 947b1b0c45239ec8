"""The readiness report: is the venue ready to open its doors? One ✔/✖ line per fact, with what to do.

Read in one transaction (:func:`read_facts`) and judged by :func:`evaluate`, which is plain
code over those facts and the time, so the CLI (``gatehouse hub readiness``), the API
(``GET /api/v1/readiness``), the page (``/readiness``) and the printable PDF
(:mod:`hub.readiness_pdf`) always say the same thing.

Per zone: valid tickets against capacity, double-sold seats (:mod:`hub.seats`), and whether
any gate admits it (a zone no gate admits, and so its tickets, cannot get in). Per gate that
is not revoked: enrolled, online, its replica against the hub's changes, its manifest printed
and pushed since the last ticket change, steward PINs on the gate, its mode, scanner and
turnstile health from what it last reported, and its clock.

The report says READY only when every ✖ is resolved or waived. A waiver names the
supervisor who takes responsibility and why; it is stored (``readiness_waivers``) and
audited, and withdrawn the same way. A waiver covers one check by its stable key
(``zone:3:capacity``, ``gate:north-1:online`` …), whatever the check says later.

**What gates report, and how it reaches the hub** (``gates.info``): the serving hub records it
itself, so no gate software or protocol change is needed (:class:`GateReporter`):

* ``replica``: every 5 s, for each connected gate, the change seq its session has sent it
  (its cursor) and the hub's seq;
* ``clock``: on every journal batch, the gate's newest entry time against the hub's clock on
  arrival — the gate's skew, exact to the upload latency (tens of ms while online); the
  largest value of each 5 s window is kept, so a backlog sent late does not look like skew;
* ``manifest_pushed`` / ``stewards_pushed``: when a gate fetches the last page of its manifest
  (and the steward PIN hashes, on the first page) — :mod:`hub.manifest_routes`;
* ``manifest_printed``: when a manifest PDF is written by ``gatehouse hub manifest`` or
  downloaded from the API;
* scanner, turnstile and mode: the gate's own journal (``scanner: fault …``,
  ``turnstile_fault …``, mode entries), which it already sends.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from hub.errors import BadInput, Conflict, NotFound
from hub.seats import clash_json, clashes_and_overbooking
from hub.store.base import Principal, audit, current_seq, execute, one, rows
from sync.tasks import spawn

if TYPE_CHECKING:
    from fastapi import FastAPI

    from hub.store import HubStore, StoredBatch

log = logging.getLogger(__name__)

#: a gate whose hub process saw it within this long is online (the feed refreshes last_seen every 5 s)
ONLINE_WINDOW_S = 30.0
#: the largest clock skew that passes (as the gate doctor's check)
MAX_CLOCK_SKEW_S = 2.0
#: how often the reporter writes what it learnt into gates.info
REPORT_EVERY_S = 5.0
#: an unchanged replica position is written again after this long (so its age stays recent)
REWRITE_S = 60.0
#: double-sold seats named in one zone's line (the seats page lists them all)
SEATS_NAMED = 5
_TURNSTILE_BAD = ("turnstile_fault", "turnstile_tamper", "turnstile_alarm")
_TURNSTILE_GOOD = ("turnstile_recovered", "turnstile_alarm_cleared")


@dataclass(frozen=True, slots=True)
class Line:
    """One line of the report: ``ok`` (✔), or ✖ with ``action``; ``waiver`` when a supervisor waived it."""

    key: str
    scope: str  # zone | gate
    subject: str
    check: str
    ok: bool
    detail: str
    action: str = ""
    waiver: dict[str, Any] | None = None

    @property
    def status(self) -> str:
        return "ok" if self.ok else "waived" if self.waiver is not None else "fail"

    @property
    def mark(self) -> str:
        return {"ok": "✔", "waived": "✔ (waived)", "fail": "✖"}[self.status]

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "scope": self.scope, "subject": self.subject, "check": self.check,
                "status": self.status, "ok": self.ok, "detail": self.detail, "action": self.action,
                "waiver": self.waiver}


@dataclass(frozen=True, slots=True)
class Report:
    at: float
    event_id: int
    event_name: str
    hub_seq: int
    lines: tuple[Line, ...]
    #: waivers whose check no longer fails or no longer exists (kept, shown, harmless)
    idle_waivers: tuple[dict[str, Any], ...] = field(default=())

    @property
    def ready(self) -> bool:
        return all(line.status != "fail" for line in self.lines)

    @property
    def failing(self) -> int:
        return sum(1 for line in self.lines if line.status == "fail")

    @property
    def waived(self) -> int:
        return sum(1 for line in self.lines if line.status == "waived")

    def to_json(self) -> dict[str, Any]:
        return {"ready": self.ready, "verdict": "READY" if self.ready else "NOT READY", "at": self.at,
                "event_id": self.event_id, "event_name": self.event_name, "hub_seq": self.hub_seq,
                "failing": self.failing, "waived": self.waived, "lines": [ln.to_json() for ln in self.lines],
                "idle_waivers": list(self.idle_waivers)}

    def text(self) -> str:
        """The report for a terminal: one line per check, the action indented under each ✖."""
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.at))
        out = [f"{self.event_name or 'Event'} {self.event_id}: readiness at {when} (hub seq {self.hub_seq})", ""]
        scope = ""
        for ln in self.lines:
            if ln.scope != scope:
                scope = ln.scope
                out.append("Zones" if scope == "zone" else "Gates")
            out.append(f"  {ln.mark} {ln.subject}: {ln.check}: {ln.detail}")
            if ln.status == "fail" and ln.action:
                out.append(f"      → {ln.action}")
            if ln.waiver is not None:
                w = ln.waiver
                out.append(f"      waived by {w['supervisor']} ({w['actor']}): {w['reason']}")
        out.append("")
        verdict = "READY" if self.ready else f"NOT READY: {self.failing} open ✖"
        out.append(f"{verdict}" + (f" ({self.waived} waived)" if self.waived else ""))
        return "\n".join(out)


# --- facts -----------------------------------------------------------------------------------


def read_facts(conn: Connection) -> dict[str, Any]:
    """Everything the report judges, read in one transaction."""
    from hub.store.zones import zone_gates

    meta = dict(rows(conn, "SELECT key, value FROM meta WHERE key IN ('event_id', 'event_name')"))
    clashes, over, zones = clashes_and_overbooking(conn)
    names = {z["zone_id"]: z["name"] for z in zones}
    gates = [{"gate_id": g, "name": n, "zones": json.loads(z), "status": st, "last_seen": ls,
              "info": json.loads(info or "{}")}
             for g, n, z, st, ls, info in rows(conn, "SELECT gate_id, name, zones, status, last_seen, info FROM gates"
                                                     " WHERE status != 'revoked' ORDER BY gate_id")]
    last_event: dict[str, dict[str, Any]] = {}
    for what, pattern in (("scanner", "scanner:%"), ("turnstile", "turnstile\\_%")):
        for gate_id, seq, at, detail in rows(
                conn, "SELECT j.gate_id, j.seq, j.at, j.detail FROM journal j JOIN (SELECT gate_id, MAX(seq) AS seq"
                      " FROM journal WHERE kind = 'event' AND detail LIKE :p ESCAPE '\\'"
                      + (" AND detail NOT LIKE 'turnstile\\_passage%' ESCAPE '\\' AND detail NOT LIKE"
                         " 'turnstile\\_forced%' ESCAPE '\\' AND detail NOT LIKE 'turnstile\\_manual%' ESCAPE '\\'"
                         if what == "turnstile" else "")
                      + " GROUP BY gate_id) last ON last.gate_id = j.gate_id AND last.seq = j.seq", {"p": pattern}):
            last_event.setdefault(gate_id, {})[what] = {"seq": seq, "at": at, "detail": detail}
    for gate_id, seq, at, mode, detail in rows(
            conn, "SELECT j.gate_id, j.seq, j.at, j.mode, j.detail FROM journal j JOIN (SELECT gate_id, MAX(seq) AS seq"
                  " FROM journal WHERE kind = 'mode' GROUP BY gate_id) last"
                  " ON last.gate_id = j.gate_id AND last.seq = j.seq"):
        last_event.setdefault(gate_id, {})["mode"] = {"seq": seq, "at": at, "mode": mode, "detail": detail}
    waivers = [{"waiver_id": i, "check": k, "supervisor": s, "reason": r, "actor": a, "at": at}
               for i, k, s, r, a, at in rows(conn, "SELECT waiver_id, check_key, supervisor, reason, actor, at FROM"
                                                   " readiness_waivers WHERE withdrawn_at IS NULL ORDER BY waiver_id")]
    return {
        "event_id": int(meta.get("event_id", 0)), "event_name": meta.get("event_name", ""),
        "hub_seq": current_seq(conn),
        "gate_change_seq": int(one(conn, "SELECT COALESCE(MAX(seq), 0) FROM changes"
                                         " WHERE kind IN ('ticket', 'zone', 'policy')")[0]),
        "stewards": int(one(conn, "SELECT COUNT(*) FROM stewards")[0]),
        "stewards_seq": int(one(conn, "SELECT COALESCE(MAX(seq), 0) FROM changes WHERE kind = 'stewards'")[0]),
        "zones": zones, "zone_names": names, "zone_gates": zone_gates(conn),
        "clashes": [clash_json(c, names) for c in clashes], "over": {o.zone_id: o for o in over},
        "gates": gates, "last_event": last_event, "waivers": waivers,
    }


def changes_after(conn: Connection, seq: int) -> int:
    return int(one(conn, "SELECT COUNT(*) FROM changes WHERE seq > :s AND kind IN ('ticket', 'zone', 'policy')",
                   {"s": seq})[0])


# --- judging ---------------------------------------------------------------------------------


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def evaluate(facts: dict[str, Any], now: float, *, connected: set[str] | None = None,
             behind: dict[str, int] | None = None) -> Report:
    """The report for ``facts`` at ``now``. ``connected``: gates with a live link to this process
    (as well as those seen within :data:`ONLINE_WINDOW_S`); ``behind``: changes each gate's
    replica, pushed and printed manifest have still to take in (keys ``replica:G``,
    ``pushed:G``, ``printed:G``)."""
    lines: list[Line] = []
    behind = behind or {}
    clashes_by_zone: dict[int, list[dict[str, Any]]] = {}
    for c in facts["clashes"]:
        clashes_by_zone.setdefault(c["zone_id"], []).append(c)
    for z in facts["zones"]:
        zid, name, n, cap = z["zone_id"], z["name"], z["tickets"], z["capacity"]
        subject = f"zone {name}"
        if cap is None:
            lines.append(Line(f"zone:{zid}:capacity", "zone", subject, "capacity", False,
                              f"{n} valid tickets, no capacity set",
                              f"set it: gatehouse hub zone {_q(name)} --capacity N"))
        elif n > cap:
            lines.append(Line(f"zone:{zid}:capacity", "zone", subject, "capacity", False,
                              f"{n} valid tickets for {cap} places ({n - cap} too many)",
                              "revoke or re-seat the excess (gatehouse hub reseat FILE), or correct the capacity"))
        else:
            lines.append(Line(f"zone:{zid}:capacity", "zone", subject, "capacity", True,
                              f"{n} valid tickets for {cap} places"))
        clashes = clashes_by_zone.get(zid, [])
        if z["shared_seats"]:
            lines.append(Line(f"zone:{zid}:seats", "zone", subject, "double-sold seats", True,
                              "shared seats (standing): seat labels are not unique places"))
        elif clashes:
            named = "; ".join(f"{c['seat']} ({', '.join(t['number'] for t in c['tickets'])})"
                              for c in clashes[:SEATS_NAMED])
            more = f" and {len(clashes) - SEATS_NAMED} more" if len(clashes) > SEATS_NAMED else ""
            lines.append(Line(f"zone:{zid}:seats", "zone", subject, "double-sold seats", False,
                              f"{len(clashes)} seats sold twice: {named}{more}",
                              "for each: revoke one ticket, re-seat one (gatehouse hub reseat FILE), or if the zone"
                              f" is standing: gatehouse hub zone-seating {_q(name)} --shared (the seats page lists"
                              " them all)"))
        else:
            lines.append(Line(f"zone:{zid}:seats", "zone", subject, "double-sold seats", True, "none"))
        gates = list(facts["zone_gates"].get(zid, []))
        if gates:
            lines.append(Line(f"zone:{zid}:gates", "zone", subject, "admitted at", True, ", ".join(gates)))
        else:
            lines.append(Line(f"zone:{zid}:gates", "zone", subject, "admitted at", False,
                              f"no gate admits this zone: its {n} valid tickets cannot get in" if n else
                              "no gate admits this zone",
                              f"assign it to a gate: gatehouse hub assign-zones GATE {_q(name)},…"))
    for g in facts["gates"]:
        lines += _gate_lines(g, facts, now, connected or set(), behind)
    waivers = {w["check"]: w for w in facts["waivers"]}
    out = []
    used: set[str] = set()
    for ln in lines:
        w = waivers.get(ln.key)
        if w is not None and not ln.ok:
            used.add(ln.key)
            ln = Line(ln.key, ln.scope, ln.subject, ln.check, ln.ok, ln.detail, ln.action, w)
        out.append(ln)
    idle = tuple(w for k, w in waivers.items() if k not in used)
    return Report(now, facts["event_id"], facts["event_name"], facts["hub_seq"], tuple(out), idle)


def _q(name: str) -> str:
    return f'"{name}"' if " " in name else name


def _gate_lines(g: dict[str, Any], facts: dict[str, Any], now: float, connected: set[str],
                behind: dict[str, int]) -> list[Line]:
    gid = g["gate_id"]
    subject = f"gate {gid}"
    info = g["info"]
    out: list[Line] = []

    def add(check_key: str, check: str, ok: bool, detail: str, action: str = "") -> None:
        out.append(Line(f"gate:{gid}:{check_key}", "gate", subject, check, ok, detail, action))

    if g["status"] != "active":
        add("enrolled", "enrolled", False, f"not enrolled ({g['status']})",
            "on the Pi: gatehouse gate enroll --hub URL --token=TOKEN (a new token: POST /api/v1/gates/ID/enrolment)")
        return out
    add("enrolled", "enrolled", True, f"admits {', '.join(facts['zone_names'].get(z, str(z)) for z in g['zones'])}"
        if g["zones"] else "admits no zone")
    seen = g["last_seen"]
    online = gid in connected or (seen is not None and now - seen <= ONLINE_WINDOW_S)
    add("online", "online", online, "connected" if gid in connected else
        (f"last seen {_ago(now - seen)}" if seen is not None else "never connected"),
        "" if online else "check the gate's power and network, then `gatehouse gate doctor` on the Pi")
    rep = info.get("replica")
    if rep is None:
        add("replica", "replica", False, "no replica position reported yet",
            "bring the gate online; the hub records its replica position within 5 s")
    else:
        n = behind.get(f"replica:{gid}", 0)
        add("replica", "replica", n == 0,
            f"at seq {rep['seq']}, hub at {facts['hub_seq']}" + (f": {n} ticket/zone changes still to apply" if n else
                                                                  ", nothing to apply")
            + f" (reported {_ago(now - rep['at'])})",
            "" if n == 0 else "wait for the gate to sync; if it stays behind, check its link (gatehouse gate status)")
    for which, key, verb in (("printed", "manifest_printed", "printed"), ("pushed", "manifest_pushed", "on the gate")):
        m = info.get(key)
        if m is None:
            add(f"manifest_{which}", f"manifest {which}", False, f"no manifest {verb} yet",
                f"gatehouse hub manifest --gate {gid} --out manifest-{gid}.pdf, and print it" if which == "printed"
                else "the gate fetches it when online (every manifest_refresh_s, default 5 min)")
            continue
        n = behind.get(f"{which}:{gid}", 0)
        add(f"manifest_{which}", f"manifest {which}", n == 0,
            f"{m['rows']} tickets at seq {m['hub_seq']}, {_ago(now - m['at'])}"
            + (f"; {n} ticket/zone changes since" if n else ""),
            "" if n == 0 else (f"print it again: gatehouse hub manifest --gate {gid} --out manifest-{gid}.pdf"
                               if which == "printed" else "the gate refreshes it within manifest_refresh_s"
                                                          " (default 5 min) while online"))
    st = info.get("stewards_pushed")
    if facts["stewards"] == 0:
        add("stewards", "steward PINs", False, "no steward is registered on the hub",
            "gatehouse hub steward add ID --name NAME (the PIN is read from the terminal)")
    elif st is None:
        add("stewards", "steward PINs", False, "the gate has not fetched the steward list yet",
            "bring the gate online; it fetches stewards with its manifest")
    else:
        current = st["seq"] >= facts["stewards_seq"] and st["count"] == facts["stewards"]
        add("stewards", "steward PINs", current and st["count"] > 0,
            f"{st['count']} on the gate ({_ago(now - st['at'])})" + ("" if current else
                                                                     f"; the hub has {facts['stewards']} since"),
            "" if current else "the gate refreshes stewards within minutes while online")
    ev = facts["last_event"].get(gid, {})
    mode = ev.get("mode")
    if mode is not None:
        _t, _s, cause = str(mode["detail"]).partition(": ")
        add("mode", "mode", mode["mode"] == "ONLINE", f"{mode['mode']}" + (f" ({cause})" if cause else ""),
            "" if mode["mode"] == "ONLINE" else "see the gate's staff screen / `gatehouse gate status` for the cause")
    sc = ev.get("scanner")
    if sc is None:
        add("scanner", "scanner", True, "no scanner fault reported")
    else:
        state = str(sc["detail"]).removeprefix("scanner: ")
        ok = state.startswith("ok")
        add("scanner", "scanner", ok, f"{state} ({_ago(now - sc['at'])})",
            "" if ok else "check the scanner's cable or camera; `gatehouse scanner test` on the Pi")
    ts = ev.get("turnstile")
    if ts is None:
        add("turnstile", "turnstile", True, "no turnstile fault reported")
    else:
        what = str(ts["detail"]).partition(":")[0]
        ok = what in _TURNSTILE_GOOD or what not in _TURNSTILE_BAD
        add("turnstile", "turnstile", ok, f"{ts['detail']} ({_ago(now - ts['at'])})",
            "" if ok else "check the turnstile controller; `gatehouse turnstile test` on the Pi")
    clock = info.get("clock")
    if clock is None:
        add("clock", "clock", False, "not measured yet (the gate has sent no journal entry to this hub)",
            "bring the gate online; its first journal entry gives the hub its clock")
    else:
        skew = float(clock["skew_s"])
        ok = abs(skew) <= MAX_CLOCK_SKEW_S
        add("clock", "clock", ok, f"{skew:+.1f} s against the hub ({_ago(now - clock['at'])})",
            "" if ok else "synchronise the gate's clock (and the hub's) with NTP: validity windows and rotating"
                          " codes depend on it")
    return out


async def readiness(store: HubStore, *, connected: set[str] | None = None) -> Report:
    """The report now (one read transaction for the facts, another for what is behind)."""
    now = store.clock()

    def tx(conn: Connection) -> tuple[dict[str, Any], dict[str, int]]:
        facts = read_facts(conn)
        behind: dict[str, int] = {}
        for g in facts["gates"]:
            info = g["info"]
            rep = info.get("replica")
            if rep is not None and rep["seq"] < facts["gate_change_seq"]:
                behind[f"replica:{g['gate_id']}"] = changes_after(conn, int(rep["seq"]))
            for which in ("printed", "pushed"):
                m = info.get(f"manifest_{which}")
                if m is not None and m["hub_seq"] < facts["gate_change_seq"]:
                    behind[f"{which}:{g['gate_id']}"] = changes_after(conn, int(m["hub_seq"]))
        return facts, behind

    facts, behind = await store.db.read(tx)
    return evaluate(facts, now, connected=connected, behind=behind)


# --- waivers ---------------------------------------------------------------------------------


async def waive(store: HubStore, actor: Principal, check: str, supervisor: str, reason: str) -> dict[str, Any]:
    """A named supervisor waives one ✖ (by its key); audited. Refused for a check that is not failing."""
    check, supervisor, reason = check.strip(), " ".join(supervisor.split()), reason.strip()
    if not supervisor or len(supervisor) > 100:
        raise BadInput("name the supervisor who waives it (1..100 characters)", code="bad_supervisor")
    if not reason or len(reason) > 1000:
        raise BadInput("give the reason (1..1000 characters)", code="bad_reason")
    report = await readiness(store)
    line = next((ln for ln in report.lines if ln.key == check), None)
    if line is None:
        raise NotFound(f"no readiness check {check!r}; the report lists each line's key", code="check_not_found")
    if line.ok:
        raise Conflict(f"{check} passes; there is nothing to waive", code="check_passes")
    if line.waiver is not None:
        raise Conflict(f"{check} is already waived by {line.waiver['supervisor']}", code="already_waived")
    now = store.clock()

    def tx(conn: Connection) -> int:
        got = one(conn, "INSERT INTO readiness_waivers (check_key, supervisor, reason, actor, at) VALUES"
                        " (:k, :s, :r, :a, :at) RETURNING waiver_id",
                  {"k": check, "s": supervisor, "r": reason, "a": actor.name, "at": now})
        audit(conn, actor, "readiness_waiver", check, {"supervisor": supervisor, "reason": reason,
                                                      "detail": line.detail, "waiver_id": int(got[0])}, now)
        return int(got[0])

    waiver_id = await store.db.write(tx)
    log.warning("readiness check %s waived by %s (%s): %s", check, supervisor, actor.name, reason)
    return {"waiver_id": waiver_id, "check": check, "supervisor": supervisor, "reason": reason, "actor": actor.name,
            "at": now, "detail": line.detail}


async def withdraw(store: HubStore, actor: Principal, waiver_id: int) -> dict[str, Any]:
    now = store.clock()

    def tx(conn: Connection) -> str:
        row = one(conn, "SELECT check_key, withdrawn_at FROM readiness_waivers WHERE waiver_id = :w", {"w": waiver_id})
        if row is None:
            raise NotFound(f"no waiver {waiver_id}", code="waiver_not_found")
        if row[1] is not None:
            raise Conflict(f"waiver {waiver_id} is already withdrawn", code="already_withdrawn")
        execute(conn, "UPDATE readiness_waivers SET withdrawn_at = :at, withdrawn_by = :a WHERE waiver_id = :w",
                {"at": now, "a": actor.name, "w": waiver_id})
        audit(conn, actor, "readiness_waiver_withdrawn", str(row[0]), {"waiver_id": waiver_id}, now)
        return str(row[0])

    check = await store.db.write(tx)
    return {"waiver_id": waiver_id, "check": check, "withdrawn_at": now, "withdrawn_by": actor.name}


# --- what gates report, recorded by the serving hub ------------------------------------------


async def merge_gate_info(store: HubStore, updates: dict[str, dict[str, Any]]) -> None:
    """Merge ``{gate_id: {key: value}}`` into ``gates.info`` in one transaction."""
    if not updates:
        return

    def tx(conn: Connection) -> None:
        for gate_id, info in updates.items():
            row = one(conn, "SELECT info FROM gates WHERE gate_id = :g", {"g": gate_id})
            if row is None:
                continue
            merged = {**json.loads(row[0] or "{}"), **info}
            execute(conn, "UPDATE gates SET info = :i WHERE gate_id = :g", {"i": json.dumps(merged), "g": gate_id})
    await store.db.write(tx)


class GateReporter:
    """Records in ``gates.info`` what this hub process learns of its gates (module docstring)."""

    def __init__(self, app: FastAPI, *, every_s: float = REPORT_EVERY_S) -> None:
        self.app = app
        self.every_s = every_s
        self._skew: dict[str, float] = {}
        #: gate -> (replica seq, when written): an unchanged position is rewritten only every REWRITE_S
        self._written: dict[str, tuple[int, float]] = {}
        self._task: asyncio.Task[None] | None = None
        self.failures = 0

    def on_ingest(self, result: StoredBatch) -> None:
        if not result.stored:
            return
        gate_id = result.stored[0].gate_id
        if gate_id.startswith("paper:"):
            return
        store: HubStore = self.app.state.store
        skew = max(e.at for e in result.stored) - store.clock()
        self._skew[gate_id] = max(skew, self._skew.get(gate_id, skew))

    async def start(self, store: HubStore) -> None:
        store.ingest_listeners.append(self.on_ingest)
        self._task = spawn(self._run(store), "hub-gate-reporter")

    async def stop(self, _store: HubStore) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self, store: HubStore) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            try:
                await self.flush(store)
            except asyncio.CancelledError:
                raise
            except Exception:  # counted and logged; the next round tries again
                self.failures += 1
                log.exception("recording what gates report failed")

    async def flush(self, store: HubStore) -> None:
        now = store.clock()
        updates: dict[str, dict[str, Any]] = {}
        skews, self._skew = self._skew, {}
        for gate_id, skew in skews.items():
            updates.setdefault(gate_id, {})["clock"] = {"skew_s": round(skew, 3), "at": now}
        registry = getattr(self.app.state, "sync_registry", None)
        if registry is not None and registry.connections:
            hub_seq = await store.current_seq()
            for gate_id, conn in list(registry.connections.items()):
                if not conn.session.live:
                    continue
                seq = int(conn.session.sent_seq)
                last = self._written.get(gate_id)
                if last is not None and last[0] == seq and now - last[1] < REWRITE_S:
                    continue
                self._written[gate_id] = (seq, now)
                updates.setdefault(gate_id, {})["replica"] = {"seq": seq, "hub_seq": hub_seq, "at": now}
        await merge_gate_info(store, updates)


def attach(app: FastAPI) -> GateReporter:
    """Record what the gates of this hub process report (called by the readiness routes)."""
    reporter = GateReporter(app)
    app.state.gate_reporter = reporter
    app.state.on_store_open.append(reporter.start)
    app.state.on_store_close = [*getattr(app.state, "on_store_close", []), reporter.stop]
    return reporter
