"""Mass re-seating from a file: upgrades, downgrades and moves of many tickets at once.

A move file (CSV with a header, a JSON list or ``{"moves": [...]}``, or JSON Lines) names
tickets by number and what each becomes::

    number,zone,seat,policy,barcode
    T000123,East Upper,U-4-12,,
    T000124,East Upper,U-4-13,reentry,
    T000125,,B-9-1,,             <- same zone, new seat

Columns (CSV header case-insensitive; JSON keys): ``number`` (required; aliases ``ticket``,
``ticket_number``), ``zone`` (id or name), ``seat`` (``-`` clears it: standing), ``policy``
(preset name or id; alias ``category``), ``barcode`` (the shop's new barcode for this ticket).
An empty cell leaves that field as it is; a line must change at least one. Unknown columns
refuse the file (a typo in a header would otherwise drop a field from every move).

**Validated as a whole before anything changes.** Every line is checked — the ticket exists
and is valid, appears once, the zone and policy exist, the barcode is no other ticket's, and
the state the whole file *would* leave has no new double-sold seat (a swap of two fans is
fine; moving a fan onto a seat someone keeps is not) — and every error is reported with its
line. With errors nothing is applied, unless ``partial`` is asked for: then the good lines
are applied (lines whose swap partner failed are re-checked and refused too) and the bad
ones reported. Zones that would hold more valid tickets than their capacity are warnings.

**Applied in one transaction** with new serials: one ``UPDATE`` batch, one
:func:`~hub.store.base.append_changes` call for every moved ticket (so every serving hub
process pushes the rows to its gates, where the old credentials are refused SUPERSEDED),
one audit row per move (who, which file line, from and to), and one ``reseat_batches`` row
naming the file's SHA-256.

**Re-sending the same file is a no-op**, recognised per move by its resulting state: a line
whose ticket already has the zone, seat, policy and barcode it names is *unchanged* (no new
serial, no change, no audit row). That holds whatever happened in between — a file applied
with ``partial`` and then corrected applies only what is still missing. The report also says
when a file with the same digest was applied before, and by whom.

Synchronous on purpose (like :mod:`hub.importer`): the API runs it via the store's
transaction helper on its writer thread, the CLI the same way.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import Connection

from hub.csvfile import read_csv
from hub.errors import BadInput
from hub.records import TICKET_COLUMNS, ticket_row
from hub.store.base import Principal, append_changes, driver_rows, many, marks, one, rows
from tickets.barcode import barcode_key
from tickets.manifest import normalize_number
from tickets.seats import Holding, double_sold, seat_key

if TYPE_CHECKING:
    from hub.db import Database
    from hub.store import HubStore

MAX_ERRORS_REPORTED = 1000
#: the seat value that clears a ticket's seat (an empty cell leaves it as it is)
NO_SEAT = "-"
_ALIASES = {
    "number": "number", "ticket": "number", "ticket_number": "number", "ticket_no": "number",
    "zone": "zone", "zone_id": "zone", "new_zone": "zone", "sector": "zone",
    "seat": "seat", "new_seat": "seat",
    "policy": "policy", "policy_id": "policy", "entry_policy": "policy", "category": "policy", "new_policy": "policy",
    "barcode": "barcode", "new_barcode": "barcode", "secret": "barcode",
}


class MoveLine(BaseModel):
    """One line of a move file, as written (names, not ids yet)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    number: str = Field(min_length=1, max_length=64)
    zone: str | None = Field(default=None, max_length=100)
    seat: str | None = Field(default=None, max_length=64)
    policy: str | None = Field(default=None, max_length=40)
    barcode: str | None = Field(default=None, max_length=512)

    @field_validator("number", "zone", "seat", "policy", "barcode", mode="before")
    @classmethod
    def _text(cls, v: Any) -> Any:
        if isinstance(v, bool):
            raise ValueError("must be text or a number, not true/false")
        if isinstance(v, int | float):
            return str(v)
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("is not valid UTF-8") from None
        return v

    @field_validator("zone", "seat", "policy", "barcode", mode="after")
    @classmethod
    def _empty_is_unchanged(cls, v: str | None) -> str | None:
        return v or None


@dataclass(frozen=True, slots=True)
class LineError:
    line: int
    reason: str
    number: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "number": self.number, "reason": self.reason}


@dataclass(slots=True)
class _Plan:
    line: int
    ticket_id: int
    number: str
    before: tuple[Any, ...]  # the ticket row (TICKET_COLUMNS)
    zone_id: int
    seat: str
    policy_id: int
    barcode: str | None  # the new barcode, or None: keep the ticket's
    bkey: str | None  # barcode key after the move

    @property
    def changed(self) -> bool:
        b = self.before
        return (self.zone_id, self.seat, self.policy_id, self.bkey) != (b[2], b[10], b[3], b[13])

    #: the seat (zone, place) changes: set once by :meth:`settle` (read many times by the seat check)
    reseated: bool = False
    place: tuple[int, str] = (0, "")

    def settle(self) -> _Plan:
        self.place = (self.zone_id, seat_key(self.seat))
        self.reseated = self.place != (self.before[2], seat_key(self.before[10]))
        return self


@dataclass(slots=True)
class ReseatReport:
    name: str = ""
    digest: str = ""
    lines: int = 0
    moved: int = 0
    unchanged: int = 0
    errors: list[LineError] = field(default_factory=list)
    error_count: int = 0
    warnings: list[str] = field(default_factory=list)
    applied: bool = False
    dry_run: bool = False
    partial: bool = False
    batch_id: int | None = None
    first_seq: int | None = None
    last_seq: int | None = None
    previously_applied: list[dict[str, Any]] = field(default_factory=list)
    moves: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    #: double-sold seats and zones over capacity after the re-seating
    mismatches: dict[str, Any] | None = None

    def error(self, line: int, reason: str, number: str = "") -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS_REPORTED:
            self.errors.append(LineError(line, reason, number))

    def to_json(self, *, moves: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name, "digest": self.digest, "lines": self.lines, "moved": self.moved,
            "unchanged": self.unchanged, "refused": self.error_count, "applied": self.applied,
            "dry_run": self.dry_run, "partial": self.partial, "batch_id": self.batch_id,
            "first_seq": self.first_seq, "last_seq": self.last_seq,
            "errors": [e.to_json() for e in self.errors], "errors_truncated": self.error_count > len(self.errors),
            "warnings": self.warnings, "previously_applied": self.previously_applied,
            "seconds": round(self.seconds, 3), "mismatches": self.mismatches,
        }
        if moves:
            out["moves"] = self.moves
        return out


# --- parsing ------------------------------------------------------------------------------


def parse_moves(data: bytes, fmt: str) -> Iterator[tuple[int, MoveLine | str]]:
    """``(line, move)`` or ``(line, reason)`` for every line; raises BadInput for an unreadable file."""
    if fmt == "csv":
        return _parse_csv(data)
    if fmt == "jsonl":
        return _parse_jsonl(data)
    if fmt == "json":
        return _parse_json(data)
    raise BadInput(f"unknown move file format {fmt!r}; use csv, json or jsonl", code="bad_format")


def _fields(obj: dict[str, Any]) -> dict[str, Any] | str:
    out: dict[str, Any] = {}
    for k, v in obj.items():
        col = _ALIASES.get(str(k).strip().lower().replace(" ", "_"))
        if col is None:
            return f"unknown field {k!r}; known: number, zone, seat, policy, barcode"
        if col in out:
            return f"field {col!r} is given twice"
        out[col] = v
    return out


def _move(line: int, record: dict[str, Any]) -> tuple[int, MoveLine | str]:
    try:
        return line, MoveLine.model_validate(record)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'line'}: {e['msg']}" for e in exc.errors()[:5])
        return line, problems


def _parse_csv(data: bytes) -> Iterator[tuple[int, MoveLine | str]]:
    header, rows = read_csv(data, empty="the move file is empty")
    columns = []
    for h in header:
        col = _ALIASES.get(h.strip().lower().replace(" ", "_"))
        if col is None:
            raise BadInput(f"line 1: unknown column {h!r}; known: number, zone, seat, policy, barcode"
                           " (nothing was applied)", code="bad_csv")
        if col in columns:
            raise BadInput(f"line 1: column {col!r} appears twice", code="bad_csv")
        columns.append(col)
    if "number" not in columns:
        raise BadInput("line 1: the header has no ticket number column (number)", code="bad_csv")
    if len(columns) < 2:
        raise BadInput("line 1: the header names nothing to change (zone, seat, policy or barcode)", code="bad_csv")

    def lines() -> Iterator[tuple[int, MoveLine | str]]:
        for line, values in rows:
            if isinstance(values, str):
                yield line, values
            elif len(values) != len(columns):
                yield line, f"{len(values)} fields but the header has {len(columns)}"
            else:
                yield _move(line, dict(zip(columns, values, strict=True)))

    return lines()


def _parse_jsonl(data: bytes) -> Iterator[tuple[int, MoveLine | str]]:
    for n, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            yield n, f"not valid JSON: {exc}"
            continue
        yield _obj(n, obj)


def _parse_json(data: bytes) -> Iterator[tuple[int, MoveLine | str]]:
    try:
        doc = json.loads(data)
    except UnicodeDecodeError as exc:
        raise BadInput(f"the move file is not UTF-8 text: {exc}", code="bad_encoding") from None
    except ValueError as exc:
        raise BadInput(f"not valid JSON: {exc}", code="bad_json") from None
    if isinstance(doc, dict) and isinstance(doc.get("moves"), list):
        doc = doc["moves"]
    if not isinstance(doc, list):
        raise BadInput('a JSON move file is a list of moves or {"moves": [...]}', code="bad_json")
    return (_obj(n, obj) for n, obj in enumerate(doc, start=1))


def _obj(line: int, obj: Any) -> tuple[int, MoveLine | str]:
    if not isinstance(obj, dict):
        return line, "a move must be a JSON object"
    record = _fields(obj)
    if isinstance(record, str):
        return line, record
    return _move(line, record)


# --- planning and applying (one transaction) -------------------------------------------------


def plan_and_apply(conn: Connection, db: Database, actor: Principal, data: bytes, fmt: str, *, name: str = "",
                   partial: bool = False, dry_run: bool = False, now: float | None = None) -> ReseatReport:
    """Validate the whole file against the database as it is in this transaction, then (unless
    ``dry_run``, or errors without ``partial``) apply it in the same transaction."""
    started = time.perf_counter()
    now = time.time() if now is None else now
    report = ReseatReport(name=name, digest=hashlib.sha256(data).hexdigest(), dry_run=dry_run, partial=partial)
    report.previously_applied = [
        {"batch_id": b, "at": at, "actor": a, "moved": mv}
        for b, at, a, mv in rows(conn, "SELECT batch_id, at, actor, moved FROM reseat_batches WHERE digest = :d"
                                       " ORDER BY batch_id", {"d": report.digest})]
    parsed: list[tuple[int, MoveLine]] = []
    for line, item in parse_moves(data, fmt):
        report.lines += 1
        if isinstance(item, str):
            report.error(line, item)
        else:
            parsed.append((line, item))
    if report.lines == 0:
        raise BadInput("the move file holds no moves", code="empty_file")
    plans = _resolve(conn, parsed, report)
    plans = _check_seats(conn, plans, report, partial=partial)
    _capacity_warnings(conn, plans, report)
    report.errors.sort(key=lambda e: e.line)
    changed = [p for p in plans if p.changed]
    report.unchanged = len(plans) - len(changed)
    report.moves = [_move_json(p) for p in changed]
    if report.error_count and not partial:
        report.moves = []
        report.seconds = time.perf_counter() - started
        return report
    if dry_run:
        report.moved = len(changed)
        report.seconds = time.perf_counter() - started
        return report
    _apply(conn, db, actor, changed, report, now)
    report.applied = True
    report.seconds = time.perf_counter() - started
    return report


def _resolve(conn: Connection, parsed: list[tuple[int, MoveLine]], report: ReseatReport) -> list[_Plan]:
    """Tickets, zones and policies the lines name; one plan per good line."""
    zones = {int(z): (str(n), bool(s)) for z, n, s in rows(conn, "SELECT zone_id, name, shared_seats FROM zones")}
    zone_by_name: dict[str, int] = {}
    for zid, (zname, _s) in sorted(zones.items(), reverse=True):
        zone_by_name[zname.strip().casefold()] = zid
    policies = {int(p): str(n) for p, n in rows(conn, "SELECT policy_id, name FROM policies")}
    policy_by_name: dict[str, int] = {}
    for pid, pname in sorted(policies.items(), reverse=True):
        policy_by_name[pname.casefold()] = pid
    numbers = sorted({mv.number for _l, mv in parsed})
    by_number: dict[str, int] = {}
    for part in _parts(numbers):
        by_number.update({str(n): int(t) for n, t in driver_rows(
            conn, f"SELECT number, ticket_id FROM tickets WHERE number IN {marks(len(part))}", part)})
    typed = sorted({normalize_number(n) for n in numbers if n not in by_number})
    by_key: dict[str, list[int]] = {}
    for part in _parts(typed):
        for k, t in driver_rows(conn, f"SELECT number_key, ticket_id FROM tickets WHERE number_key IN"
                                      f" {marks(len(part))}", part):
            by_key.setdefault(str(k), []).append(int(t))
    ids: dict[int, int] = {}  # line -> ticket id
    for line, mv in parsed:
        tid = by_number.get(mv.number)
        if tid is None:
            hits = by_key.get(normalize_number(mv.number), [])
            if len(hits) > 1:
                report.error(line, f"{mv.number!r} matches several ticket numbers; give the exact number", mv.number)
                continue
            tid = hits[0] if hits else None
        if tid is None:
            report.error(line, f"no ticket {mv.number!r}", mv.number)
            continue
        ids[line] = tid
    tickets: dict[int, tuple[Any, ...]] = {}
    for part in _parts(sorted(set(ids.values()))):
        for r in driver_rows(conn, f"SELECT {TICKET_COLUMNS} FROM tickets WHERE ticket_id IN {marks(len(part))}", part):
            tickets[int(r[0])] = tuple(r)
    new_keys = sorted({barcode_key(mv.barcode).hex() for _l, mv in parsed if mv.barcode})
    key_owner: dict[str, int] = {}
    for part in _parts(new_keys):
        key_owner.update({str(k): int(t) for k, t in driver_rows(
            conn, f"SELECT barcode_key, ticket_id FROM tickets WHERE barcode_key IN {marks(len(part))}", part)})
    first_line: dict[int, int] = {}
    barcode_line: dict[str, int] = {}
    plans = []
    for line, mv in parsed:
        tid = ids.get(line)
        if tid is None:
            continue
        t = tickets[tid]
        number = str(t[1])
        if tid in first_line:
            report.error(line, f"ticket {number} is already moved on line {first_line[tid]}", number)
            continue
        first_line[tid] = line
        if t[7] != "valid":
            report.error(line, f"ticket {number} is {t[7]}; only valid tickets are re-seated (reinstate it first)",
                         number)
            continue
        if mv.zone is None and mv.seat is None and mv.policy is None and mv.barcode is None:
            report.error(line, "the line changes nothing: give a zone, seat, policy or barcode", number)
            continue
        zone_id = int(t[2])
        if mv.zone is not None:
            found = int(mv.zone) if mv.zone.isdigit() and int(mv.zone) in zones else \
                zone_by_name.get(mv.zone.casefold())
            if found is None:
                report.error(line, f"no zone {mv.zone!r} (zones are created by the ticket import or"
                                   " `gatehouse hub zone`, never by a move file)", number)
                continue
            zone_id = found
        policy_id = int(t[3])
        if mv.policy is not None:
            pfound = int(mv.policy) if mv.policy.isdigit() and int(mv.policy) in policies else \
                policy_by_name.get(mv.policy.casefold())
            if pfound is None:
                report.error(line, f"unknown entry policy {mv.policy!r}; known: "
                                   f"{', '.join(sorted(set(policy_by_name)))}", number)
                continue
            policy_id = pfound
        seat = str(t[10]) if mv.seat is None else ("" if mv.seat == NO_SEAT else mv.seat)
        bkey = t[13]
        if mv.barcode is not None:
            bkey = barcode_key(mv.barcode).hex()
            owner = key_owner.get(bkey)
            if owner is not None and owner != tid:
                report.error(line, "this barcode already belongs to another ticket", number)
                continue
            if bkey in barcode_line:
                report.error(line, f"the barcode of line {barcode_line[bkey]} appears again (codes are compared"
                                   " ignoring letter case)", number)
                continue
            barcode_line[bkey] = line
        plan = _Plan(line, tid, number, t, zone_id, seat, policy_id, mv.barcode, bkey).settle()
        if plan.changed and int(t[6]) >= 0xFFFF:
            report.error(line, f"ticket {number} has been changed too often (serial exhausted)", number)
            continue
        plans.append(plan)
    return plans


def _check_seats(conn: Connection, plans: list[_Plan], report: ReseatReport, *, partial: bool) -> list[_Plan]:
    """Refuse every line that would leave its seat held twice; with ``partial`` the survivors
    are checked again (a swap whose other half was refused no longer frees the seat).

    Only the seats the file moves tickets *onto* are judged (by :func:`tickets.seats.double_sold`
    over who would hold each of them), so a 20,000-move file against a 60,000-seat venue reads
    each ticket's zone and seat once and builds nothing for the seats nobody moves onto."""
    shared = {int(z) for (z,) in rows(conn, "SELECT zone_id FROM zones WHERE shared_seats = 1")}
    targets = {p.place for p in plans if p.reseated and p.seat and p.zone_id not in shared}
    if not targets:
        return plans
    names = dict(rows(conn, "SELECT zone_id, name FROM zones"))
    zones = sorted({z for z, _k in targets})
    there: list[Holding] = []  # valid tickets on a target seat now
    for part in _parts(zones):
        for t, n, z, s in driver_rows(conn, f"SELECT ticket_id, number, zone_id, seat FROM tickets WHERE status ="
                                            f" 'valid' AND seat != '' AND zone_id IN {marks(len(part))}", part):
            if (z, seat_key(s)) in targets:
                there.append(Holding(int(t), str(n), int(z), str(s)))
    while True:
        moving = {p.ticket_id: p for p in plans}
        final = [h for h in there if h.ticket_id not in moving]
        final += [Holding(p.ticket_id, p.number, p.zone_id, p.seat) for p in plans if p.seat and p.place in targets]
        bad: dict[int, str] = {}
        for clash in double_sold(final, shared):
            for h in clash.tickets:
                p = moving.get(h.ticket_id)
                if p is None or not p.reseated:
                    continue
                others = ", ".join(f"{o.number} (line {moving[o.ticket_id].line})" if o.ticket_id in moving
                                   else f"{o.number} (stays there)" for o in clash.tickets if o.ticket_id != h.ticket_id)
                bad[p.ticket_id] = (f"seat {p.seat} in zone {names.get(p.zone_id, p.zone_id)} would also be held by"
                                    f" {others}: that would sell it twice")
        if not bad:
            return plans
        for p in plans:
            if p.ticket_id in bad:
                report.error(p.line, bad[p.ticket_id], p.number)
        plans = [p for p in plans if p.ticket_id not in bad]
        if not partial:
            return plans


def _capacity_warnings(conn: Connection, plans: list[_Plan], report: ReseatReport) -> None:
    counts = {int(z): int(n) for z, n in rows(
        conn, "SELECT zone_id, COUNT(*) FROM tickets WHERE status = 'valid' GROUP BY zone_id")}
    delta: dict[int, int] = {}
    for p in plans:
        if p.zone_id != p.before[2]:
            delta[p.zone_id] = delta.get(p.zone_id, 0) + 1
            delta[int(p.before[2])] = delta.get(int(p.before[2]), 0) - 1
    for z, name, cap in rows(conn, "SELECT zone_id, name, capacity FROM zones ORDER BY zone_id"):
        after = counts.get(int(z), 0) + delta.get(int(z), 0)
        if cap is not None and delta.get(int(z), 0) > 0 and after > cap:
            report.warnings.append(f"zone {name} would hold {after} valid tickets for {cap} places"
                                   f" ({after - cap} over capacity)")


def _move_json(p: _Plan) -> dict[str, Any]:
    b = p.before
    return {"line": p.line, "ticket_id": p.ticket_id, "number": p.number,
            "from": {"zone_id": b[2], "seat": b[10], "policy_id": b[3], "serial": b[6]},
            "to": {"zone_id": p.zone_id, "seat": p.seat, "policy_id": p.policy_id,
                   "serial": int(b[6]) + 1, "new_barcode": p.barcode is not None},
            "has_barcode": p.bkey is not None}


def _apply(conn: Connection, db: Database, actor: Principal, changed: list[_Plan], report: ReseatReport,
           now: float) -> None:
    items = []
    for p in changed:
        b = p.before
        after = (b[0], b[1], p.zone_id, p.policy_id, b[4], b[5], int(b[6]) + 1, b[7], b[8], b[9], p.seat, b[11],
                 b[12], p.bkey)
        items.append(("ticket", p.ticket_id, ticket_row(after)))
    seqs = append_changes(db, conn, items, now)
    many(conn, "UPDATE tickets SET zone_id = ?, seat = ?, policy_id = ?, serial = ?, seq = ? WHERE ticket_id = ?",
         [(p.zone_id, p.seat, p.policy_id, int(p.before[6]) + 1, seq, p.ticket_id)
          for p, seq in zip(changed, seqs, strict=True)])
    many(conn, "UPDATE tickets SET barcode = ?, barcode_key = ? WHERE ticket_id = ?",
         [(p.barcode, p.bkey, p.ticket_id) for p in changed if p.barcode is not None])
    report.moved = len(changed)
    report.first_seq, report.last_seq = (seqs[0], seqs[-1]) if seqs else (None, None)
    batch = one(conn, "INSERT INTO reseat_batches (digest, name, actor, role, at, lines, moved, unchanged, refused,"
                      " partial, first_seq, last_seq) VALUES (:d, :n, :a, :r, :at, :l, :m, :u, :x, :p, :f, :s)"
                      " RETURNING batch_id",
                {"d": report.digest, "n": report.name[:300], "a": actor.name, "r": actor.role, "at": now,
                 "l": report.lines, "m": report.moved, "u": report.unchanged, "x": report.error_count,
                 "p": int(report.partial), "f": report.first_seq, "s": report.last_seq})
    report.batch_id = int(batch[0])
    many(conn, "INSERT INTO audit (at, actor, role, action, target, detail) VALUES (?, ?, ?, ?, ?, ?)",
         [(now, actor.name, actor.role, "reseat", str(m["ticket_id"]),
           json.dumps({"batch_id": report.batch_id, "file": report.name[:300], "digest": report.digest,
                       "line": m["line"], "number": m["number"], "from": m["from"], "to": m["to"]}))
          for m in report.moves])
    many(conn, "INSERT INTO audit (at, actor, role, action, target, detail) VALUES (?, ?, ?, ?, ?, ?)",
         [(now, actor.name, actor.role, "reseat_file", str(report.batch_id),
           json.dumps({k: v for k, v in report.to_json(moves=False).items() if k not in ("errors", "mismatches")}))])


def _parts(items: list[Any], size: int = 900) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


# --- the door the CLI and the API use ---------------------------------------------------------


async def reseat(store: HubStore, actor: Principal, data: bytes, fmt: str, *, name: str = "",
                 partial: bool = False, dry_run: bool = False) -> ReseatReport:
    """Validate and (unless ``dry_run``) apply a move file; see the module docstring."""
    from hub.seats import seat_mismatches

    now = store.clock()
    if dry_run:
        report = await store.db.read(plan_and_apply, store.db, actor, data, fmt, name=name, partial=partial,
                                     dry_run=True, now=now)
    else:
        report = await store.db.write(plan_and_apply, store.db, actor, data, fmt, name=name, partial=partial,
                                      now=now)
        if report.applied:
            store._poke()  # this process's feed pushes the new rows at once
    report.mismatches = await store.db.read(seat_mismatches)
    return report
