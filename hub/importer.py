"""Ticket import from CSV, JSON and JSON Lines: idempotent, row by row, fast.

Synchronous on purpose: it runs on a worker thread (``asyncio.to_thread`` from the API, the
main thread from the CLI) through the hub's :class:`~hub.db.Database`, so a million-row file
never blocks the hub's event loop. Rows are written in chunks, each chunk one transaction, so
ingest is never held up for long; every created or changed ticket is appended to the change
log, which the serving hub (any process) pushes to the gates within a second.

Rules:

* The key is ``external_id`` (default: the ticket number). Re-importing the same row changes
  nothing and records no change; a row whose fields differ updates the ticket, bumps its
  ``serial`` (the old credential becomes SUPERSEDED) and records one change.
* A bad row is reported with its line number (CSV, JSON Lines) or item number (JSON array)
  and a reason; every good row still imports. A CSV record that runs over several lines
  (a quote opened and never closed where it should be) is refused with the line it starts
  on: the lines it swallowed are named, never silently merged into one holder name.
* A zone named in a row that does not exist yet is created; a name that differs from an
  existing zone's only in letter case or surrounding space *is* that zone (``north`` is
  ``North``). A policy must be one of the presets (by name) or an existing policy id.

Columns (CSV header, case-insensitive; JSON keys): ``number`` (required: what a steward types
and the manifest prints), ``barcode`` (the secret content of the ticket's code when it is not
the number, e.g. a shop's QR secret; never shown again), ``holder``, ``zone`` (id or name,
required), ``seat``, ``policy`` (preset name or id, default ``single``), ``valid_from`` /
``valid_until`` (epoch seconds or ISO 8601; default: the event's window), ``external_id``,
``rotating`` (true/false), ``status`` (``valid``; ``cancelled``, ``canceled``, ``refunded`` or
``revoked`` make the ticket revoked).
"""
from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from hub.csvfile import read_csv
from hub.errors import BadInput
from hub.records import TICKET_COLUMNS, ticket_row, zone_row
from tickets.barcode import PROVISIONAL_ID_BASE, barcode_key, fold
from tickets.manifest import normalize_number
from tickets.rotating import new_secret

if TYPE_CHECKING:
    from hub.db import Database

CHUNK = 5000
#: external id of the revoked row that keeps a replaced barcode refused: this and its key (hex)
REPLACED_PREFIX = "replaced:"
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
    "barcode": "barcode", "secret": "barcode", "qr": "barcode", "code": "barcode",
    "status": "status", "order_status": "status",
}
_REVOKED = {"cancelled", "canceled", "refunded", "revoked", "void"}
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
    #: double-sold seats and zones over capacity after the import (:func:`hub.seats.seat_mismatches`)
    mismatches: dict[str, Any] | None = None
    #: revoked rows kept for barcodes that a re-issue replaced
    tombstones: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows, "created": self.created, "updated": self.updated,
            "unchanged": self.unchanged, "zones_created": self.zones_created,
            "error_count": self.error_count, "errors": [e.to_json() for e in self.errors],
            "errors_truncated": self.error_count > len(self.errors),
            "seconds": round(self.seconds, 3), "last_seq": self.last_seq, "tombstones": self.tombstones,
            "mismatches": self.mismatches,
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
    barcode: str | None = None
    status: str = "valid"


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
    db: Database | Path,
    data: bytes,
    fmt: str,
    *,
    progress: Callable[[int, int], None] | None = None,
    clock: Callable[[], float] = time.time,
) -> ImportReport:
    """Import ``data`` (the whole file) into the hub database ``db``.

    Raises :class:`BadInput` only when the file as a whole is unreadable (not JSON, no CSV
    header, no ``number`` column); row problems land in ``report.errors``.
    """
    from hub.seats import seat_mismatches
    from hub.store.base import scalar

    if not hasattr(db, "read_sync"):  # a SQLite hub database file, for scripts and tests
        from hub.db import Database, sqlite_url

        owned = Database(sqlite_url(Path(db)), readers=1)
        try:
            return import_tickets(owned, data, fmt, progress=progress, clock=clock)
        finally:
            owned.close()
    assert not isinstance(db, Path)
    started = time.perf_counter()
    report = ImportReport()
    rows = _parse(data, fmt, report)
    total = max(1, data.count(b"\n")) if fmt != "json" else None
    meta: dict[str, str] = dict(db.read_sync(lambda c: c.exec_driver_sql("SELECT key, value FROM meta").fetchall()))
    default_from = float(meta.get("default_valid_from", 0))
    default_until = float(meta.get("default_valid_until", U32_MAX))
    seen_ext: set[str] = set()
    seen_num: dict[str, str] = {}
    seen_bar: dict[str, int] = {}
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
        if row.barcode is not None:
            first = seen_bar.get(fold(row.barcode))
            if first is not None:
                _error(report, RowError(row.line, f"barcode of line {first} appears again (codes are compared"
                                                  " ignoring letter case)"))
                continue
            seen_bar[fold(row.barcode)] = row.line
        seen_ext.add(row.external_id)
        seen_num[row.number] = row.external_id
        chunk.append(row)
        if len(chunk) >= CHUNK:
            db.write_sync(_write_chunk, db, chunk, report, default_from, default_until, clock)
            chunk = []
            if progress is not None:
                progress(report.rows, total or report.rows)
    if chunk:
        db.write_sync(_write_chunk, db, chunk, report, default_from, default_until, clock)
    if progress is not None:
        progress(report.rows, report.rows)
    if report.created or report.updated:
        from hub.store.ingest import resolve_provisional

        # admits on a shop's signature recorded before this import brought their tickets
        db.write_sync(resolve_provisional, db, clock())
    report.last_seq = int(db.read_sync(lambda c: scalar(c, "SELECT COALESCE(MAX(seq), 0) FROM changes")))
    # A double sale must surface when the tickets arrive, not when two fans stand at one seat.
    report.mismatches = db.read_sync(seat_mismatches)
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
    header, lines = read_csv(data, empty="the file is empty")
    columns = [_ALIASES.get(h.strip().lower().replace(" ", "_"), "") for h in header]
    if "number" not in columns:
        raise BadInput("line 1: the CSV header has no ticket number column (number)", code="bad_csv")
    if "zone" not in columns:
        raise BadInput("line 1: the CSV header has no zone column (zone)", code="bad_csv")

    def rows() -> Iterator[_Row | RowError]:
        for line, values in lines:
            if isinstance(values, str):
                yield RowError(line, values)
            elif len(values) > len(columns):
                yield RowError(line, f"{len(values)} fields but the header has {len(columns)}")
            else:
                yield _validate(line, {c: v for c, v in zip(columns, values, strict=False) if c})

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
        except RecursionError:  # nesting deeper than the parser goes: no ticket looks like that
            yield RowError(n, "not valid JSON: nested too deeply")
            continue
        yield _validate_obj(n, obj)


def _parse_json(data: bytes) -> Iterator[_Row | RowError]:
    try:
        doc = json.loads(data)
    except UnicodeDecodeError as exc:
        raise BadInput(f"the file is not UTF-8 text: {exc}", code="bad_encoding") from None
    except ValueError as exc:
        raise BadInput(f"not valid JSON: {exc}", code="bad_json") from None
    except RecursionError:
        raise BadInput("not valid JSON: nested too deeply", code="bad_json") from None
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
        barcode_text = _text(record, "barcode", 512) or None
        status_text = (_text(record, "status", 40) or "valid").lower()
        if status_text in _REVOKED:
            status = "revoked"
        elif status_text in ("valid", "paid", "active"):
            status = "valid"
        else:
            raise ValueError(f"status {status_text!r} is not one of valid, cancelled, refunded, revoked")
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
    return _Row(line, number, external_id, holder, seat, zone, policy, valid_from, valid_until, rotating,
                barcode_text, status)


# --- writing ------------------------------------------------------------------------------


def _write_chunk(
    conn: Connection, db: Database, chunk: list[_Row], report: ImportReport,
    default_from: float, default_until: float, clock: Callable[[], float],
) -> None:
    from hub.store.base import append_changes, driver_rows, many, marks, rows, scalar

    now = clock()
    zones = {name: int(zid) for zid, name in rows(conn, "SELECT zone_id, name FROM zones")}
    zones_folded: dict[str, int] = {}
    for name, zid in zones.items():
        zones_folded.setdefault(name.strip().casefold(), zid)
    zone_ids = set(zones.values())
    policies = {int(pid): name for pid, name in rows(conn, "SELECT policy_id, name FROM policies")}
    policy_by_name: dict[str, int] = {}
    for pid, name in sorted(policies.items(), reverse=True):
        policy_by_name[name] = pid
    existing: dict[str, tuple[Any, ...]] = {}
    taken: dict[str, str] = {}
    bar_taken: dict[str, str] = {}
    for part in _parts([r.external_id for r in chunk]):
        for row in driver_rows(conn, f"SELECT {TICKET_COLUMNS} FROM tickets WHERE external_id IN {marks(len(part))}",
                               part):
            existing[row[11]] = tuple(row)
    for part in _parts([r.number for r in chunk]):
        taken.update(driver_rows(conn, f"SELECT number, external_id FROM tickets WHERE number IN {marks(len(part))}",
                                 part))
    keys = [barcode_key(r.barcode).hex() for r in chunk if r.barcode is not None]
    for part in _parts(keys):
        bar_taken.update(driver_rows(
            conn, f"SELECT barcode_key, external_id FROM tickets WHERE barcode_key IN {marks(len(part))}", part))
    next_id = int(scalar(conn, "SELECT COALESCE(MAX(ticket_id), 0) FROM tickets")) + 1
    #: (kind, ref, row) for the change log, in order; tickets and zones name their change by index
    changes: list[tuple[str, int, dict[str, Any]]] = []
    new_zones: list[dict[str, Any]] = []
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    tombstones: list[dict[str, Any]] = []
    for r in chunk:
        if isinstance(r.zone, int):
            if r.zone not in zone_ids:
                _error(report, RowError(r.line, f"zone id {r.zone} does not exist"))
                continue
            zone_id = r.zone
        else:
            zone_id = zones.get(r.zone) or zones_folded.get(r.zone.strip().casefold()) or 0
            if not zone_id:
                zone_id = max(zone_ids, default=0) + 1
                if zone_id > 0xFFFF:
                    _error(report, RowError(r.line, "no zone ids left"))
                    continue
                new_zones.append({"z": zone_id, "n": r.zone, "i": len(changes)})
                changes.append(("zone", zone_id, zone_row(zone_id, r.zone, None, [])))
                zones[r.zone] = zone_id
                zones_folded[r.zone.strip().casefold()] = zone_id
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
        bkey = barcode_key(r.barcode).hex() if r.barcode is not None else None
        if bkey is not None and bar_taken.get(bkey, r.external_id) != r.external_id:
            _error(report, RowError(r.line, f"this barcode already belongs to external id {bar_taken[bkey]!r}"))
            continue
        vfrom = r.valid_from if r.valid_from is not None else default_from
        vuntil = r.valid_until if r.valid_until is not None else default_until
        if vuntil <= vfrom:
            _error(report, RowError(r.line, "valid_until must be after valid_from"))
            continue
        old = existing.get(r.external_id)
        if old is None:
            if next_id >= PROVISIONAL_ID_BASE:
                _error(report, RowError(r.line, "no ticket ids left below the provisional range"))
                continue
            secret = new_secret() if r.rotating else None
            opaque = secrets.token_urlsafe(12) if r.rotating else None
            ticket_id = next_id
            next_id += 1
            row = (ticket_id, r.number, zone_id, policy_id, vfrom, vuntil, 0, r.status, secret, r.holder, r.seat,
                   r.external_id, opaque, bkey)
            inserts.append({"t": ticket_id, "n": r.number, "e": r.external_id, "h": r.holder, "s": r.seat,
                            "z": zone_id, "p": policy_id, "vf": vfrom, "vu": vuntil, "st": r.status, "sec": secret,
                            "o": opaque, "b": r.barcode, "bk": bkey, "nk": normalize_number(r.number),
                            "i": len(changes)})
            changes.append(("ticket", ticket_id, ticket_row(row)))
            if bkey is not None:
                bar_taken[bkey] = r.external_id
            report.created += 1
            continue
        (ticket_id, o_number, o_zone, o_policy, o_from, o_until, o_serial, o_status, o_secret,
         o_holder, o_seat, _ext, o_opaque, o_bkey) = old
        same = (o_number, o_zone, o_policy, o_from, o_until, o_holder, o_seat, o_secret is not None, o_bkey,
                o_status if o_status != "superseded" else "valid") == (
            r.number, zone_id, policy_id, vfrom, vuntil, r.holder, r.seat, r.rotating, bkey, r.status)
        if same or (o_status == r.status == "revoked" and r.external_id.startswith(REPLACED_PREFIX)):
            # (a replaced barcode's tombstone stays as it is: refused wherever it is shown)
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
        only_status = (o_number, o_zone, o_policy, o_from, o_until, o_holder, o_seat, o_bkey) == (
            r.number, zone_id, policy_id, vfrom, vuntil, r.holder, r.seat, bkey) and (o_secret is not None) == r.rotating
        # a cancellation alone keeps the credential (it is refused REVOKED); any other change re-issues it
        serial = o_serial if only_status else o_serial + 1
        status = r.status if r.status == "revoked" or o_status == "revoked" else o_status
        row = (ticket_id, r.number, zone_id, policy_id, vfrom, vuntil, serial, status, secret, r.holder, r.seat,
               r.external_id, opaque, bkey)
        if o_bkey is not None and o_bkey != bkey:
            # The old barcode must not become unknown (a signed one would then be admitted on its
            # signature): it stays as a revoked tombstone of its own, in this same transaction.
            tomb_ext = REPLACED_PREFIX + o_bkey
            if tomb_ext not in existing and not taken.get(f"REVOKED-{o_bkey[:12]}"):
                o_barcode = scalar(conn, "SELECT barcode FROM tickets WHERE ticket_id = :t", {"t": ticket_id})
                tomb_number = f"REVOKED-{o_bkey[:12]}"
                tomb = (next_id, tomb_number, o_zone, o_policy, o_from, o_until, 0, "revoked", None, "", "",
                        tomb_ext, None, o_bkey)
                tombstones.append({"t": next_id, "n": tomb_number, "e": tomb_ext, "h": "", "s": "", "z": o_zone,
                                   "p": o_policy, "vf": o_from, "vu": o_until, "st": "revoked", "sec": None,
                                   "o": None, "b": o_barcode, "bk": o_bkey, "nk": normalize_number(tomb_number)})
                existing[tomb_ext] = tomb
                taken[tomb_number] = tomb_ext
                next_id += 1
            bar_taken[o_bkey] = tomb_ext
        updates.append({"n": r.number, "h": r.holder, "s": r.seat, "z": zone_id, "p": policy_id, "vf": vfrom,
                        "vu": vuntil, "se": serial, "st": status, "sec": secret, "o": opaque, "b": r.barcode,
                        "bk": bkey, "nk": normalize_number(r.number), "t": ticket_id, "i": len(changes)})
        changes.append(("ticket", ticket_id, ticket_row(row)))
        report.updated += 1
        while tombstones:
            d = tombstones.pop()
            d["i"] = len(changes)
            changes.append(("ticket", d["t"], ticket_row(existing[d["e"]])))
            inserts.append(d)
            report.tombstones += 1
    seqs = append_changes(db, conn, changes, now)
    many(conn, "INSERT INTO zones (zone_id, name, seq) VALUES (?, ?, ?)",
         [(z["z"], z["n"], seqs[z["i"]]) for z in new_zones])
    # updates first: a revoked row inserted below may take the barcode key an update released
    many(conn, "UPDATE tickets SET number=?, holder=?, seat=?, zone_id=?, policy_id=?, valid_from=?, valid_until=?,"
               " serial=?, status=?, rotating_secret=?, opaque=?, seq=?, barcode=?, barcode_key=?, number_key=?"
               " WHERE ticket_id=?",
         [(d["n"], d["h"], d["s"], d["z"], d["p"], d["vf"], d["vu"], d["se"], d["st"], d["sec"], d["o"],
           seqs[d["i"]], d["b"], d["bk"], d["nk"], d["t"]) for d in updates])
    many(conn, "INSERT INTO tickets (ticket_id, number, external_id, holder, seat, zone_id, policy_id, valid_from,"
               " valid_until, serial, status, rotating_secret, opaque, seq, barcode, barcode_key, number_key)"
               " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?)",
         [(d["t"], d["n"], d["e"], d["h"], d["s"], d["z"], d["p"], d["vf"], d["vu"], d["st"], d["sec"], d["o"],
           seqs[d["i"]], d["b"], d["bk"], d["nk"]) for d in inserts])


def _parts(items: list[str], size: int = 900) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
