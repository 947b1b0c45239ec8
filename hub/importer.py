"""Ticket import from CSV, JSON and JSON Lines: idempotent, row by row, fast.

Synchronous on purpose: it runs on a worker thread (``asyncio.to_thread`` from the API, the
main thread from the CLI) over its own ``sqlite3`` connection, so a million-row file never
blocks the hub's event loop. WAL lets the serving hub keep reading and ingesting meanwhile;
rows are written in chunks, each chunk one transaction, so ingest is never held up for long.

Rules:

* The key is ``external_id`` (default: the ticket number). Re-importing the same row changes
  nothing and records no change; a row whose fields differ updates the ticket, bumps its
  ``serial`` (the old credential becomes SUPERSEDED) and records one change.
* A bad row is reported with its line number (CSV, JSON Lines) or item number (JSON array)
  and a reason; every good row still imports.
* A zone named in a row that does not exist yet is created; a policy must be one of the
  presets (by name) or an existing policy id.

Columns (CSV header, case-insensitive; JSON keys): ``number`` (required), ``holder``,
``zone`` (id or name, required), ``seat``, ``policy`` (preset name or id, default
``single``), ``valid_from`` / ``valid_until`` (epoch seconds or ISO 8601; default: the
event's window), ``external_id``, ``rotating`` (true/false).
"""
from __future__ import annotations

import csv
import io
import json
import re
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hub.errors import BadInput
from hub.records import TICKET_COLUMNS, ticket_row, zone_row
from hub.schema import PRAGMAS
from tickets.rotating import new_secret

CHUNK = 5000
MAX_ERRORS_REPORTED = 1000
_NUMBER = re.compile(r"[A-Za-z0-9\-_./]{1,64}")
_ALIASES = {
    "number": "number", "ticket_number": "number", "ticket": "number", "ticket_no": "number",
    "holder": "holder", "holder_name": "holder", "name": "holder",
    "zone": "zone", "zone_id": "zone", "sector": "zone",
    "seat": "seat",
    "policy": "policy", "entry_policy": "policy", "policy_id": "policy",
    "valid_from": "valid_from", "valid_until": "valid_until",
    "external_id": "external_id", "id": "external_id",
    "rotating": "rotating",
}
_TRUE = {"1", "true", "yes", "y", "on"}
_FALSE = {"", "0", "false", "no", "n", "off"}
U32_MAX = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class RowError:
    """One rejected row: ``line`` is the CSV/JSONL line (or JSON array item, 1-based)."""

    line: int
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "reason": self.reason}


@dataclass(slots=True)
class ImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    zones_created: int = 0
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    seconds: float = 0.0
    last_seq: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows, "created": self.created, "updated": self.updated,
            "unchanged": self.unchanged, "zones_created": self.zones_created,
            "error_count": self.error_count, "errors": [e.to_json() for e in self.errors],
            "errors_truncated": self.error_count > len(self.errors),
            "seconds": round(self.seconds, 3), "last_seq": self.last_seq,
        }


@dataclass(frozen=True, slots=True)
class _Row:
    line: int
    number: str
    external_id: str
    holder: str
    seat: str
    zone: int | str
    policy: int | str
    valid_from: float | None
    valid_until: float | None
    rotating: bool


def detect_format(name: str, data: bytes) -> str:
    """``csv``, ``json`` or ``jsonl`` from a file name, else from the first byte."""
    lower = name.lower()
    for ext in ("jsonl", "ndjson"):
        if lower.endswith("." + ext):
            return "jsonl"
    if lower.endswith(".json"):
        return "json"
    if lower.endswith(".csv"):
        return "csv"
    head = data.lstrip()[:1]
    if head == b"[" or (head == b"{" and b"\n{" not in data[:4096]):
        return "json"
    if head == b"{":
        return "jsonl"
    return "csv"


def import_tickets(
    db_path: Path,
    data: bytes,
    fmt: str,
    *,
    progress: Callable[[int, int], None] | None = None,
    clock: Callable[[], float] = time.time,
) -> ImportReport:
    """Import ``data`` (the whole file) into the hub database at ``db_path``.

    Raises :class:`BadInput` only when the file as a whole is unreadable (not JSON, no CSV
    header, no ``number`` column); row problems land in ``report.errors``.
    """
    started = time.perf_counter()
    report = ImportReport()
    rows = _parse(data, fmt, report)
    total = max(1, data.count(b"\n")) if fmt != "json" else None
    con = sqlite3.connect(db_path, timeout=30.0, isolation_level=None)
    try:
        for pragma in PRAGMAS:
            con.execute(pragma)
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
        default_from = float(meta.get("default_valid_from", 0))
        default_until = float(meta.get("default_valid_until", U32_MAX))
        seen_ext: set[str] = set()
        seen_num: dict[str, str] = {}
        chunk: list[_Row] = []
        for row in rows:
            report.rows += 1
            if isinstance(row, RowError):
                _error(report, row)
                continue
            if row.external_id in seen_ext:
                _error(report, RowError(row.line, f"external id {row.external_id!r} appears twice in this file"))
                continue
            if seen_num.get(row.number, row.external_id) != row.external_id:
                _error(report, RowError(row.line, f"ticket number {row.number!r} appears twice in this file"))
                continue
            seen_ext.add(row.external_id)
            seen_num[row.number] = row.external_id
            chunk.append(row)
            if len(chunk) >= CHUNK:
                _write_chunk(con, chunk, report, default_from, default_until, clock)
                chunk = []
                if progress is not None:
                    progress(report.rows, total or report.rows)
        if chunk:
            _write_chunk(con, chunk, report, default_from, default_until, clock)
        if progress is not None:
            progress(report.rows, report.rows)
        seq = con.execute("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").fetchone()
        report.last_seq = int(seq[0]) if seq else 0
    finally:
        con.close()
    report.seconds = time.perf_counter() - started
    return report


def _error(report: ImportReport, err: RowError) -> None:
    report.error_count += 1
    if len(report.errors) < MAX_ERRORS_REPORTED:
        report.errors.append(err)


# --- parsing ------------------------------------------------------------------------------


def _parse(data: bytes, fmt: str, report: ImportReport) -> Iterator[_Row | RowError]:
    if fmt == "csv":
        return _parse_csv(data)
    if fmt == "jsonl":
        return _parse_jsonl(data)
    if fmt == "json":
        return _parse_json(data)
    raise BadInput(f"unknown import format {fmt!r}; use csv, json or jsonl", code="bad_format")


def _parse_csv(data: bytes) -> Iterator[_Row | RowError]:
    # surrogateescape keeps a bad byte sequence in its row, so that row alone is refused.
    text = data.decode("utf-8-sig", errors="surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise BadInput("the file is empty", code="empty_file") from None
    except csv.Error as exc:
        raise BadInput(f"line 1: unreadable CSV header: {exc}", code="bad_csv") from None
    columns = [_ALIASES.get(h.strip().lower().replace(" ", "_"), "") for h in header]
    if "number" not in columns:
        raise BadInput("line 1: the CSV header has no ticket number column (number)", code="bad_csv")
    if "zone" not in columns:
        raise BadInput("line 1: the CSV header has no zone column (zone)", code="bad_csv")

    def rows() -> Iterator[_Row | RowError]:
        line = reader.line_num
        while True:
            start = reader.line_num + 1
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield RowError(start, f"unreadable CSV: {exc}")
                continue
            line = start
            if not values or all(not v.strip() for v in values):
                continue
            if len(values) > len(columns):
                yield RowError(line, f"{len(values)} fields but the header has {len(columns)}")
                continue
            record = {c: v for c, v in zip(columns, values, strict=False) if c}
            yield _validate(line, record)

    return rows()


def _parse_jsonl(data: bytes) -> Iterator[_Row | RowError]:
    for n, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            yield RowError(n, f"not valid JSON: {exc}")
            continue
        yield _validate_obj(n, obj)


def _parse_json(data: bytes) -> Iterator[_Row | RowError]:
    try:
        doc = json.loads(data)
    except UnicodeDecodeError as exc:
        raise BadInput(f"the file is not UTF-8 text: {exc}", code="bad_encoding") from None
    except ValueError as exc:
        raise BadInput(f"not valid JSON: {exc}", code="bad_json") from None
    if isinstance(doc, dict) and isinstance(doc.get("tickets"), list):
        doc = doc["tickets"]
    if not isinstance(doc, list):
        raise BadInput("JSON import must be a list of tickets or {\"tickets\": [...]}", code="bad_json")
    return (_validate_obj(n, obj) for n, obj in enumerate(doc, start=1))


def _validate_obj(line: int, obj: Any) -> _Row | RowError:
    if not isinstance(obj, dict):
        return RowError(line, "a ticket must be a JSON object")
    record: dict[str, Any] = {}
    for k, v in obj.items():
        col = _ALIASES.get(str(k).strip().lower())
        if col:
            record[col] = v
    return _validate(line, record)


def _text(record: dict[str, Any], key: str, limit: int) -> str:
    value = record.get(key)
    if value is None:
        return ""
    if type(value) is str:
        text = value.strip()
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key} must be text")
    else:
        text = str(value)
    if len(text) > limit:
        raise ValueError(f"{key} is longer than {limit} characters")
    if not text.isascii():
        try:
            text.encode("utf-8")  # a lone surrogate here is a byte that was not UTF-8
        except UnicodeEncodeError:
            raise ValueError(f"{key} is not valid UTF-8") from None
    return text


def _time(record: dict[str, Any], key: str) -> float | None:
    value = record.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"{key} must be epoch seconds or an ISO 8601 time")
    if isinstance(value, int | float):
        t = float(value)
    else:
        text = str(value).strip()
        try:
            t = float(text)
        except ValueError:
            try:
                dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(f"{key} {text!r} is neither epoch seconds nor an ISO 8601 time") from None
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=UTC)
            t = dt.timestamp()
    if not 0 <= t <= U32_MAX:
        raise ValueError(f"{key} is out of range")
    return t


def _validate(line: int, record: dict[str, Any]) -> _Row | RowError:
    try:
        number = _text(record, "number", 64)
        if not number:
            raise ValueError("ticket number is missing")
        if not _NUMBER.fullmatch(number):
            raise ValueError(f"ticket number {number!r} may hold only letters, digits and -_./")
        external_id = _text(record, "external_id", 128) or number
        holder = _text(record, "holder", 200)
        seat = _text(record, "seat", 64)
        zone_raw = record.get("zone")
        zone: int | str
        if isinstance(zone_raw, int) and not isinstance(zone_raw, bool):
            zone = zone_raw
        else:
            ztext = _text(record, "zone", 100)
            if not ztext:
                raise ValueError("zone is missing")
            zone = int(ztext) if ztext.isdigit() else ztext
        if isinstance(zone, int) and not 1 <= zone <= 0xFFFF:
            raise ValueError(f"zone id {zone} is out of range 1..65535")
        policy_raw = record.get("policy")
        policy: int | str
        if isinstance(policy_raw, int) and not isinstance(policy_raw, bool):
            policy = policy_raw
        else:
            ptext = _text(record, "policy", 40) or "single"
            policy = int(ptext) if ptext.isdigit() else ptext.lower()
        valid_from = _time(record, "valid_from")
        valid_until = _time(record, "valid_until")
        if valid_from is not None and valid_until is not None and valid_until <= valid_from:
            raise ValueError("valid_until must be after valid_from")
        rot = record.get("rotating", False)
        if isinstance(rot, bool):
            rotating = rot
        else:
            rtext = str(rot).strip().lower()
            if rtext in _TRUE:
                rotating = True
            elif rtext in _FALSE:
                rotating = False
            else:
                raise ValueError(f"rotating must be true or false, not {rot!r}")
    except ValueError as exc:
        return RowError(line, str(exc))
    return _Row(line, number, external_id, holder, seat, zone, policy, valid_from, valid_until, rotating)


# --- writing ------------------------------------------------------------------------------


def _write_chunk(
    con: sqlite3.Connection, chunk: list[_Row], report: ImportReport,
    default_from: float, default_until: float, clock: Callable[[], float],
) -> None:
    now = clock()
    con.execute("BEGIN IMMEDIATE")
    try:
        zones = {name: zid for zid, name in con.execute("SELECT zone_id, name FROM zones")}
        zone_ids = set(zones.values())
        policies = {pid: name for pid, name in con.execute("SELECT policy_id, name FROM policies")}
        policy_by_name: dict[str, int] = {}
        for pid, name in sorted(policies.items(), reverse=True):
            policy_by_name[name] = pid
        existing: dict[str, tuple[Any, ...]] = {}
        taken: dict[str, str] = {}
        ext_ids = [r.external_id for r in chunk]
        numbers = [r.number for r in chunk]
        for part in _parts(ext_ids):
            q = f"SELECT {TICKET_COLUMNS} FROM tickets WHERE external_id IN ({','.join('?' * len(part))})"
            for row in con.execute(q, part):
                existing[row[11]] = row
        for part in _parts(numbers):
            q = f"SELECT number, external_id FROM tickets WHERE number IN ({','.join('?' * len(part))})"
            taken.update(con.execute(q, part).fetchall())
        next_id = (con.execute("SELECT COALESCE(MAX(ticket_id), 0) FROM tickets").fetchone()[0]) + 1
        seq_row = con.execute("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").fetchone()
        next_seq = (int(seq_row[0]) if seq_row else 0) + 1
        inserts: list[tuple[Any, ...]] = []
        updates: list[tuple[Any, ...]] = []
        changes: list[tuple[Any, ...]] = []
        for r in chunk:
            if isinstance(r.zone, int):
                if r.zone not in zone_ids:
                    _error(report, RowError(r.line, f"zone id {r.zone} does not exist"))
                    continue
                zone_id = r.zone
            else:
                zone_id = zones.get(r.zone) or 0
                if not zone_id:
                    zone_id = max(zone_ids, default=0) + 1
                    if zone_id > 0xFFFF:
                        _error(report, RowError(r.line, "no zone ids left"))
                        continue
                    con.execute("INSERT INTO zones (zone_id, name, seq) VALUES (?, ?, ?)", (zone_id, r.zone, next_seq))
                    changes.append((next_seq, "zone", zone_id, json.dumps(zone_row(zone_id, r.zone, None, [])), now))
                    next_seq += 1
                    zones[r.zone] = zone_id
                    zone_ids.add(zone_id)
                    report.zones_created += 1
            if isinstance(r.policy, int):
                if r.policy not in policies:
                    _error(report, RowError(r.line, f"entry policy id {r.policy} does not exist"))
                    continue
                policy_id = r.policy
            else:
                found = policy_by_name.get(r.policy)
                if found is None:
                    _error(report, RowError(r.line, f"unknown entry policy {r.policy!r}; known: {', '.join(sorted(policy_by_name))}"))
                    continue
                policy_id = found
            owner = taken.get(r.number)
            if owner is not None and owner != r.external_id:
                _error(report, RowError(r.line, f"ticket number {r.number!r} already belongs to external id {owner!r}"))
                continue
            vfrom = r.valid_from if r.valid_from is not None else default_from
            vuntil = r.valid_until if r.valid_until is not None else default_until
            if vuntil <= vfrom:
                _error(report, RowError(r.line, "valid_until must be after valid_from"))
                continue
            old = existing.get(r.external_id)
            if old is None:
                secret = new_secret() if r.rotating else None
                opaque = secrets.token_urlsafe(12) if r.rotating else None
                ticket_id = next_id
                next_id += 1
                inserts.append((ticket_id, r.number, r.external_id, r.holder, r.seat, zone_id, policy_id,
                                vfrom, vuntil, 0, "valid", secret, opaque, next_seq))
                row = (ticket_id, r.number, zone_id, policy_id, vfrom, vuntil, 0, "valid", secret, r.holder, r.seat)
                changes.append((next_seq, "ticket", ticket_id, json.dumps(ticket_row(row)), now))
                next_seq += 1
                report.created += 1
                continue
            (ticket_id, o_number, o_zone, o_policy, o_from, o_until, o_serial, o_status, o_secret,
             o_holder, o_seat, _ext, o_opaque) = old
            same = (o_number, o_zone, o_policy, o_from, o_until, o_holder, o_seat, o_secret is not None) == (
                r.number, zone_id, policy_id, vfrom, vuntil, r.holder, r.seat, r.rotating)
            if same:
                report.unchanged += 1
                continue
            if o_serial >= 0xFFFF:
                _error(report, RowError(r.line, "ticket has been changed too often (serial exhausted)"))
                continue
            secret, opaque = o_secret, o_opaque
            if not r.rotating:
                secret, opaque = None, None
            elif secret is None or r.holder != o_holder:
                # a new holder gets a new secret: the old phone's codes stop working
                secret, opaque = new_secret(), secrets.token_urlsafe(12)
            serial = o_serial + 1
            updates.append((r.number, r.holder, r.seat, zone_id, policy_id, vfrom, vuntil, serial, secret, opaque,
                            next_seq, ticket_id))
            row = (ticket_id, r.number, zone_id, policy_id, vfrom, vuntil, serial, o_status, secret, r.holder, r.seat)
            changes.append((next_seq, "ticket", ticket_id, json.dumps(ticket_row(row)), now))
            next_seq += 1
            report.updated += 1
        con.executemany(
            "INSERT INTO tickets (ticket_id, number, external_id, holder, seat, zone_id, policy_id, valid_from,"
            " valid_until, serial, status, rotating_secret, opaque, seq) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            inserts,
        )
        con.executemany(
            "UPDATE tickets SET number=?, holder=?, seat=?, zone_id=?, policy_id=?, valid_from=?, valid_until=?,"
            " serial=?, rotating_secret=?, opaque=?, seq=? WHERE ticket_id=?",
            updates,
        )
        con.executemany("INSERT INTO changes (seq, kind, ref, row, at) VALUES (?,?,?,?,?)", changes)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _parts(items: list[str], size: int = 900) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
