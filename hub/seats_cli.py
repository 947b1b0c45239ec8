"""``gatehouse hub seats``, ``zone-seating``, ``reseat``, ``readiness``, ``waive``, ``unwaive``:
double-sold seats, mass re-seating and the readiness report from the command line
(docs/operations.md). Registered by :func:`hub.cli.register`."""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hub.cli import CLI, _with_store
from hub.store import HubStore


def register(cmd: Callable[[str, str, Callable[[argparse.Namespace], int]], argparse.ArgumentParser]) -> None:
    p = cmd("seats", "list double-sold seats and zones over capacity", _seats)
    p.add_argument("--zone", default=None, help="only this zone (id or name)")
    p.add_argument("--json", action="store_true", help="print the whole answer as JSON")

    p = cmd("zone-seating", "mark a zone's seats shared (standing: no double-sold seats) or numbered", _zone_seating)
    p.add_argument("zone", help="zone id or name")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--shared", action="store_true", help="seat labels are not unique places (standing, benches)")
    how.add_argument("--numbered", action="store_true", help="every seat is one place (the default)")

    p = cmd("reseat", "move many tickets to new zones, seats or policies from a CSV/JSON file (all or nothing)",
            _reseat)
    p.add_argument("file", type=Path)
    p.add_argument("--format", choices=("csv", "json", "jsonl"), default=None)
    p.add_argument("--partial", action="store_true", help="apply the good lines even if some are wrong")
    p.add_argument("--dry-run", action="store_true", help="check the file and report; change nothing")
    p.add_argument("--credentials", type=Path, default=None, metavar="DIR",
                   help="write each moved ticket's new credential to DIR/credentials.csv")
    p.add_argument("--pdf", action="store_true", help="with --credentials: also a printable PDF per ticket")
    p.add_argument("--errors", type=int, default=50, help="show at most this many line errors")
    p.epilog = ("Columns: number (required), zone, seat ('-' clears it), policy (alias category), barcode. "
                "An empty cell keeps the field. Exit status: 0 applied (or dry run clean), 3 lines refused.")

    p = cmd("readiness", "is the venue ready? every check with ✔/✖ and what to do (text, --json or --pdf)",
            _readiness)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--pdf", type=Path, default=None, metavar="FILE", help="write the one-page PDF to sign")
    p.epilog = "Exit status: 0 READY, 4 NOT READY."

    p = cmd("waive", "waive one ✖ of the readiness report, in a named supervisor's name (audited)", _waive)
    p.add_argument("check", help="the line's key, as `gatehouse hub readiness --json` lists it")
    p.add_argument("--supervisor", required=True, help="the supervisor who takes responsibility")
    p.add_argument("--reason", required=True)

    p = cmd("unwaive", "withdraw a readiness waiver", _unwaive)
    p.add_argument("waiver_id", type=int)


def _seats(args: argparse.Namespace) -> int:
    from hub.seats import find_zone, mismatch_lines, mismatches

    async def go(store: HubStore) -> dict[str, Any]:
        zone_id = None
        if args.zone:
            zone_id = (await store.db.read(find_zone, args.zone))[0]
        return await mismatches(store, listed=1_000_000, zone_id=zone_id)
    m = _with_store(args.data, go)
    if args.json:
        print(json.dumps(m))
    else:
        for line in mismatch_lines(m) or ["no double-sold seats, no zone over capacity"]:
            print(line)
    return 0 if not m["double_sold_count"] and not m["over_capacity"] else 4


def _zone_seating(args: argparse.Namespace) -> int:
    from hub.seats import set_shared_seats

    print(json.dumps(_with_store(args.data, lambda s: set_shared_seats(s, CLI, args.zone, bool(args.shared)))))
    return 0


def _reseat(args: argparse.Namespace) -> int:
    from hub.importer import detect_format
    from hub.seats import mismatch_lines
    from hub.seats_reseat import reseat

    data = args.file.read_bytes()
    fmt = args.format or detect_format(args.file.name, data)

    async def go(store: HubStore) -> Any:
        report = await reseat(store, CLI, data, fmt, name=str(args.file), partial=args.partial, dry_run=args.dry_run)
        written = None
        if args.credentials is not None and report.applied and report.moves:
            written = await _write_credentials(store, report.moves, args.credentials, pdf=args.pdf)
        return report, written

    report, written = _with_store(args.data, go)
    out = report.to_json(moves=False)
    out.pop("errors")
    if written is not None:
        out["credentials"] = written
    print(json.dumps(out))
    for err in report.errors[:args.errors]:
        print(f"{args.file}:{err.line}: {err.reason}", file=sys.stderr)
    if report.error_count > args.errors:
        print(f"... and {report.error_count - args.errors} more bad lines", file=sys.stderr)
    for w in report.warnings:
        print(f"gatehouse hub: warning: {w}", file=sys.stderr)
    if report.error_count and not args.partial:
        print(f"gatehouse hub: {report.error_count} of {report.lines} lines are wrong; nothing was applied",
              file=sys.stderr)
    elif report.previously_applied and report.moved == 0 and not report.error_count:
        first = report.previously_applied[0]
        print(f"gatehouse hub: this file was applied before (batch {first['batch_id']} by {first['actor']});"
              " every move is already in place: nothing changed", file=sys.stderr)
    for line in mismatch_lines(report.mismatches or {"double_sold": [], "double_sold_truncated": False,
                                                     "over_capacity": []}):
        print(f"gatehouse hub: {line}", file=sys.stderr)
    return 3 if report.error_count else 0


async def _write_credentials(store: HubStore, moves: list[dict[str, Any]], out_dir: Path, *,
                             pdf: bool) -> dict[str, Any]:
    """Each moved ticket's new signed QR text in ``credentials.csv`` (and a PDF each with ``pdf``)."""
    from hub.credentials import credential_text, ticket_pdf

    key = await store.signing_key()
    meta = await store.meta()
    zones = {z["zone_id"]: z["name"] for z in await store.zones()}
    table: list[list[Any]] = [["number", "ticket_id", "serial", "holder", "zone", "seat", "credential", "note"]]
    pdfs: list[tuple[str, bytes]] = []
    for move in moves:
        t = await store.ticket(move["ticket_id"])
        zone = zones.get(t["zone_id"], str(t["zone_id"]))
        if t["status"] != "valid":
            table.append([t["number"], t["ticket_id"], t["serial"], t["holder"], zone, t["seat"], "",
                          f"ticket is {t['status']}: no credential issued"])
            continue
        text = credential_text(key, int(meta["event_id"]), t)
        note = "the shop's new barcode (from the move file) is the ticket's code as well" if move["to"]["new_barcode"] \
            else ""
        table.append([t["number"], t["ticket_id"], t["serial"], t["holder"], zone, t["seat"], text, note])
        if pdf:
            body = await asyncio.to_thread(ticket_pdf, text, t, event_name=meta.get("event_name", ""), zone_name=zone)
            pdfs.append(("".join(c if c.isalnum() or c in "-_." else "-" for c in t["number"]), body))
    return await asyncio.to_thread(_save_credentials, out_dir, table, pdfs)


def _save_credentials(out_dir: Path, table: list[list[Any]], pdfs: list[tuple[str, bytes]]) -> dict[str, Any]:
    import csv
    import io

    out_dir.mkdir(parents=True, exist_ok=True)
    for name, body in pdfs:
        (out_dir / f"ticket-{name}.pdf").write_bytes(body)
    buf = io.StringIO()
    csv.writer(buf).writerows(table)
    target = out_dir / "credentials.csv"
    tmp = target.with_name(target.name + ".partial")
    tmp.write_text(buf.getvalue(), encoding="utf-8")
    tmp.replace(target)  # never half a credentials file where someone may send it out
    return {"csv": str(target), "rows": len(table) - 1, "pdfs": len(pdfs)}


def _readiness(args: argparse.Namespace) -> int:
    from hub.readiness import readiness

    report = _with_store(args.data, lambda s: readiness(s))
    if args.pdf is not None:
        from hub.readiness_pdf import render_readiness_pdf

        tmp = args.pdf.with_name(args.pdf.name + ".partial")
        tmp.write_bytes(render_readiness_pdf(report))
        tmp.replace(args.pdf)
        print(f"{args.pdf}: readiness report, {'READY' if report.ready else 'NOT READY'}", file=sys.stderr)
    if args.json:
        print(json.dumps(report.to_json()))
    elif args.pdf is None:
        print(report.text())
    return 0 if report.ready else 4


def _waive(args: argparse.Namespace) -> int:
    from hub.readiness import waive

    print(json.dumps(_with_store(args.data, lambda s: waive(s, CLI, args.check, args.supervisor, args.reason))))
    return 0


def _unwaive(args: argparse.Namespace) -> int:
    from hub.readiness import withdraw

    print(json.dumps(_with_store(args.data, lambda s: withdraw(s, CLI, args.waiver_id))))
    return 0
