"""``gatehouse hub …``: create, run and administer the central hub.

Administrative commands work on the hub's database directly, while the hub serves (SQLite in
WAL mode, or PostgreSQL); they are recorded in the audit log as ``cli``, and every serving hub
process sees what they changed within a second (through the change log) and pushes it on.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from hub.errors import HubError
from hub.store import ROLES, HubStore, Principal, init_hub, restore_hub
from i18n import _, error_message
from tickets.errors import GatehouseError

T = TypeVar("T")
CLI = Principal(f"cli:{os.environ.get('USER', 'operator')}", "admin")
DEFAULT_DATA = Path(os.environ.get("GATEHOUSE_HUB_DATA", "hub-data"))


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="hub_cmd", metavar="COMMAND")

    def cmd(name: str, help_text: str, func: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--data", type=Path, default=DEFAULT_DATA,
                       help="the hub's data directory (default: $GATEHOUSE_HUB_DATA or ./hub-data)")
        p.set_defaults(func=_guard(func))
        return p

    p = cmd("init", "create the data directory, the event signing key and an admin token", _init)
    p.add_argument("--event", type=int, required=True, help="event id (1..4294967295)")
    p.add_argument("--name", default="", help="event name, printed on tickets")
    p.add_argument("--key-id", type=int, default=None)
    p.add_argument("--valid-from", type=float, default=None, help="default ticket validity start (epoch s)")
    p.add_argument("--valid-until", type=float, default=None, help="default ticket validity end (epoch s)")
    p.add_argument("--no-admit-on-signature", action="store_true",
                   help="gates refuse valid signatures of tickets not yet in their replica")
    p.add_argument("--db", default=None, metavar="URL",
                   help="PostgreSQL database (postgresql+psycopg://user:pass@host/db), kept in DATA/hub.toml;"
                        " default: SQLite in DATA/hub.db")

    p = cmd("migrate", "bring the hub database to this version's schema (or --to an older revision)", _migrate)
    p.add_argument("--to", default=None, metavar="REV", help="a schema revision (down or up); default: the newest")
    p.add_argument("--status", action="store_true", help="only show the database's revision and the newest")

    p = cmd("serve", "run the hub (FastAPI under uvicorn)", _serve)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--certfile", type=Path, default=None, help="TLS certificate (PEM) — enables https/wss")
    p.add_argument("--keyfile", type=Path, default=None, help="TLS private key (PEM)")
    p.add_argument("--protocol", default=None, metavar="MIN-MAX",
                   help="sync protocol versions to speak, e.g. 1-1 (default: every version this hub knows)")
    p.add_argument("--workers", type=int, default=1,
                   help="hub processes sharing the port (PostgreSQL only; each runs its own change feed)")
    p.add_argument("--pending-expiry-s", type=float, default=None, metavar="S",
                   help="an admit whose passage outcome has not arrived S seconds later is no longer counted"
                        " inside and is raised as a passage_unknown conflict (default 60; keep it above every"
                        " gate's passage timeout)")

    p = cmd("import", "import tickets from a CSV, JSON or JSON Lines file (idempotent)", _import)
    p.add_argument("file", type=Path)
    p.add_argument("--format", choices=("csv", "json", "jsonl"), default=None)
    p.add_argument("--errors", type=int, default=20, help="show at most this many row errors")

    p = cmd("zone", "create or update a zone", _zone)
    p.add_argument("name")
    p.add_argument("--id", type=int, default=None)
    p.add_argument("--capacity", type=int, default=None)

    p = cmd("enroll-gate", "register a gate and print its one-time enrolment token", _enroll)
    p.add_argument("name")
    p.add_argument("--zones", default="", help="comma-separated zone ids or names")
    p.add_argument("--ttl-hours", type=float, default=24.0, help="the enrolment token expires after this")

    cmd("gates", "list gates", _gates)

    p = cmd("rename-gate", "rename a gate", _rename)
    p.add_argument("gate_id")
    p.add_argument("name")

    p = cmd("assign-zones", "set the zones a gate admits to", _assign)
    p.add_argument("gate_id")
    p.add_argument("zones", help="comma-separated zone ids or names")

    p = cmd("revoke-gate", "revoke a gate: its token is refused from now on", _revoke_gate)
    p.add_argument("gate_id")

    p = cmd("token", "create an API token with a role", _token)
    p.add_argument("--role", choices=ROLES, required=True)
    p.add_argument("--name", required=True)

    p = cmd("backup", "online backup of the hub database (safe while serving)", _backup)
    p.add_argument("dest", type=Path)

    p = cmd("restore", "replace the hub database with a backup (hub stopped); gates then re-send", _restore)
    p.add_argument("src", type=Path)
    p.add_argument("--force", action="store_true", help="restore even if a hub seems to be serving this data dir")

    p = cmd("steward", "add, list or remove stewards (who may admit by hand at a gate in MANIFEST mode)",
            _steward)
    p.add_argument("action", choices=("add", "list", "remove"))
    p.add_argument("steward_id", nargs="?", help="the id a steward types at the gate (add, remove)")
    p.add_argument("--name", default=None, help="the steward's name (add)")
    p.add_argument("--replace", action="store_true", help="add: set a new name and PIN for an existing id")
    p.epilog = ("The PIN (4-12 digits) is asked for twice on a terminal, or read from the first line of "
                "stdin; it is stored only as a scrypt hash.")

    p = cmd("manifest", "write a gate's printable manifest (PDF, or CSV with --csv)", _manifest)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--gate", default=None, help="the gate id")
    which.add_argument("--all", action="store_true", help="every gate that is not revoked (needs --dir)")
    p.add_argument("--out", type=Path, default=None, help="output file (with --gate)")
    p.add_argument("--dir", type=Path, default=None, help="output directory (with --all)")
    p.add_argument("--csv", action="store_true", help="write CSV instead of PDF")
    p.add_argument("--lang", dest="manifest_lang", default=None, metavar="LANG",
                   help="print in this language (default: the event's, see `hub event`)")

    p = cmd("event", "show or set event settings: kick-off, the event's language, forecast figures", _event)
    p.add_argument("--kickoff", default=None, help="kick-off, ISO 8601 with UTC offset (2026-05-12T19:00+05:00)")
    p.add_argument("--language", default=None, help="the event's language: en, zh-Hans, ru, kk (manifests)")
    p.add_argument("--show-ratio", type=float, default=None, help="share of ticket holders expected to come")
    p.add_argument("--lane-rate", type=float, default=None,
                   help="persons per minute one lane takes until the venue's own rate is measured")

    p = cmd("forecast", "print the kick-off forecast per zone (arrivals, queue, time to clear, alerts)", _forecast)
    p.add_argument("--json", action="store_true", help="print the whole forecast as JSON instead")

    from hub.seats_cli import register as register_seats

    register_seats(cmd)
    from hub.connectors.cli import register as register_connectors

    register_connectors(sub, DEFAULT_DATA, _guard)

    p = cmd("ticket", "show, revoke, reinstate, upgrade or transfer a ticket", _ticket)
    p.add_argument("action", choices=("show", "revoke", "reinstate", "upgrade", "transfer", "credential"))
    p.add_argument("ticket", help="the ticket's number (as printed) or its id")
    p.add_argument("--zone", type=int, default=None)
    p.add_argument("--seat", default=None)
    p.add_argument("--policy", type=int, default=None)
    p.add_argument("--holder", default=None)


def _guard(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Report gatehouse errors as one line on stderr and exit 1, never a traceback."""
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except HubError as exc:
            print(f"gatehouse hub: {exc.code}: {error_message(exc.code, exc.message)}", file=sys.stderr)
            return 1
        except (GatehouseError, OSError) as exc:
            print(f"gatehouse hub: {exc}", file=sys.stderr)
            return 1
    return run


def _with_store(data: Path, fn: Callable[[HubStore], Awaitable[T]]) -> T:
    async def go() -> T:
        store = await HubStore.open(data)
        try:
            return await fn(store)
        finally:
            await store.close()
    return asyncio.run(go())


def _init(args: argparse.Namespace) -> int:
    token = init_hub(args.data, event_id=args.event, name=args.name, key_id=args.key_id,
                     valid_from=args.valid_from, valid_until=args.valid_until,
                     allow_admit_on_signature=not args.no_admit_on_signature, database=args.db)
    print(_("hub initialised in {path}", path=args.data), file=sys.stderr)
    print(_("admin token (shown once; store it safely):"), file=sys.stderr)
    print(token)
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from hub import migrations
    from hub.db import Database
    from hub.store import database_url, migrate

    db = Database(database_url(args.data), readers=1)
    try:
        with db.connect_sync() as conn:
            current = migrations.current(conn)
        if args.status:
            print(json.dumps({"database": db.describe(), "revision": current, "newest": migrations.head(),
                              "revisions": migrations.revisions()}))
            return 0
        target = args.to or "head"
        if target != "head" and target not in migrations.revisions():
            raise HubError(f"unknown revision {target!r}; known: {', '.join(migrations.revisions())}",
                           code="bad_revision")
        if target != "head" and current is not None and migrations.revisions().index(target) < \
                migrations.revisions().index(current):
            with db.connect_sync() as conn:
                before, after = migrations.downgrade(conn, target)
                conn.commit()
        else:
            before, after = migrate(db, target)
        print(json.dumps({"database": db.describe(), "from": before, "to": after}))
    finally:
        db.close()
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from hub.app import create_app
    from hub.db import Database
    from hub.store import database_url
    from hub.store.setup import is_initialised

    if (args.certfile is None) != (args.keyfile is None):
        print("gatehouse hub: " + _("--certfile and --keyfile go together"), file=sys.stderr)
        return 2
    url = database_url(args.data)
    probe = Database(url, readers=1)
    try:
        ready = is_initialised(args.data, probe)
    finally:
        probe.close()
    if not ready:
        print("gatehouse hub: " + _("{path} holds no hub; run: gatehouse hub init --data {path} --event N",
                                    path=args.data), file=sys.stderr)
        return 1
    if args.workers < 1:
        print("gatehouse hub: " + _("--workers must be at least 1"), file=sys.stderr)
        return 2
    if args.workers > 1 and not url.startswith("postgresql"):
        print("gatehouse hub: " + _("--workers > 1 needs the hub on PostgreSQL (SQLite has one writer);"
                                    " see docs/hub.md"), file=sys.stderr)
        return 2
    if args.pending_expiry_s is not None and not 0 < args.pending_expiry_s <= 86_400:
        print("gatehouse hub: --pending-expiry-s must be between 0 and 86400 seconds", file=sys.stderr)
        return 2
    protocol = None
    if args.protocol:
        try:
            lo, hi = (int(v) for v in args.protocol.split("-"))
            if not 1 <= lo <= hi:
                raise ValueError
        except ValueError:
            print("gatehouse hub: " + _("--protocol takes MIN-MAX, e.g. 1-2"), file=sys.stderr)
            return 2
        protocol = (lo, hi)
    # several processes may serve one hub (PostgreSQL): the first takes hub.pid, the others
    # hub-PORT.pid, so `hub restore` refuses while any of them lives
    pid = args.data / "hub.pid"
    if _pid_alive(pid):
        pid = args.data / f"hub-{args.port}.pid"
    pid.unlink(missing_ok=True)
    fd = os.open(pid, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(str(os.getpid()))
    tls = {"ssl_certfile": str(args.certfile) if args.certfile else None,
           "ssl_keyfile": str(args.keyfile) if args.keyfile else None}
    try:
        if args.workers > 1:
            os.environ["GATEHOUSE_HUB_APP_DATA"] = str(args.data.resolve())
            os.environ["GATEHOUSE_HUB_APP_PROTOCOL"] = args.protocol or ""
            os.environ["GATEHOUSE_HUB_APP_PENDING_EXPIRY_S"] = str(args.pending_expiry_s or "")
            uvicorn.run("hub.app:app_from_env", factory=True, host=args.host, port=args.port, log_level="info",
                        workers=args.workers, **tls)
        else:
            uvicorn.run(create_app(args.data, protocol=protocol, pending_expiry_s=args.pending_expiry_s),
                        host=args.host, port=args.port, log_level="info",
                        **tls)
    finally:
        pid.unlink(missing_ok=True)
    return 0


def _import(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from hub.importer import detect_format, import_tickets

    data = args.file.read_bytes()
    fmt = args.format or detect_format(args.file.name, data)

    async def go(store: HubStore) -> Any:
        with Progress(TextColumn(_("importing")), BarColumn(), TextColumn("{task.completed:,}"),
                      TimeRemainingColumn(), console=_stderr_console()) as progress:
            task = progress.add_task("import", total=max(1, data.count(b"\n")))

            def tick(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            report = await asyncio.to_thread(import_tickets, store.db, data, fmt, progress=tick)
        detail = {k: v for k, v in report.to_json().items() if k not in ("errors", "mismatches")}
        detail["double_sold_count"] = (report.mismatches or {}).get("double_sold_count", 0)
        await store.record_audit(CLI, "import", str(args.file), detail)
        return report
    report = _with_store(args.data, go)
    print(json.dumps({k: v for k, v in report.to_json().items() if k != "errors"}))
    for err in report.errors[:args.errors]:
        print(f"{args.file}:{err.line}: {err.reason}", file=sys.stderr)
    if report.error_count > args.errors:
        print(_("... and {n} more row errors", n=report.error_count - args.errors), file=sys.stderr)
    from hub.seats import mismatch_lines

    for line in mismatch_lines(report.mismatches or {"double_sold": [], "double_sold_truncated": False,
                                                     "over_capacity": []}):
        print(f"gatehouse hub: {line}", file=sys.stderr)
    return 0 if report.error_count == 0 else 3


def _stderr_console() -> Any:
    from rich.console import Console
    return Console(stderr=True)


def _zone(args: argparse.Namespace) -> int:
    row = _with_store(args.data, lambda s: s.upsert_zone(CLI, args.name, zone_id=args.id, capacity=args.capacity))
    print(json.dumps(row))
    return 0


async def _zone_ids(store: HubStore, spec: str) -> list[int]:
    by_name = {z["name"].lower(): z["zone_id"] for z in await store.zones()}
    out = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        if part.isdigit():
            out.append(int(part))
        elif part.lower() in by_name:
            out.append(by_name[part.lower()])
        else:
            raise HubError(f"unknown zone {part!r}", code="zone_not_found")
    return out


def _enroll(args: argparse.Namespace) -> int:
    async def go(store: HubStore) -> tuple[str, str, float]:
        return await store.create_gate(CLI, args.name, await _zone_ids(store, args.zones),
                                       ttl_s=args.ttl_hours * 3600)
    gate_id, token, expires = _with_store(args.data, go)
    print(_("gate {gate}: enrolment token (usable once, expires {time} UTC):", gate=gate_id,
            time=time.strftime("%Y-%m-%d %H:%M", time.gmtime(expires))), file=sys.stderr)
    print(token)
    return 0


def _gates(args: argparse.Namespace) -> int:
    for g in _with_store(args.data, lambda s: s.gates()):
        seen = time.strftime("%H:%M:%S", time.gmtime(g["last_seen"])) if g["last_seen"] else "never"
        print(f"{g['gate_id']:<20} {g['status']:<8} zones={','.join(map(str, g['zones'])) or '-':<10} "
              f"high_water={g['high_water']:<8} last_seen={seen}  {g['name']}")
    return 0


def _rename(args: argparse.Namespace) -> int:
    print(json.dumps(_with_store(args.data, lambda s: s.update_gate(CLI, args.gate_id, name=args.name))))
    return 0


def _assign(args: argparse.Namespace) -> int:
    async def go(store: HubStore) -> dict[str, Any]:
        return await store.update_gate(CLI, args.gate_id, zones=await _zone_ids(store, args.zones))
    print(json.dumps(_with_store(args.data, go)))
    return 0


def _revoke_gate(args: argparse.Namespace) -> int:
    print(json.dumps(_with_store(args.data, lambda s: s.revoke_gate(CLI, args.gate_id))))
    return 0


def _token(args: argparse.Namespace) -> int:
    print(_with_store(args.data, lambda s: s.create_token(CLI, args.name, args.role)))
    return 0


def _backup(args: argparse.Namespace) -> int:
    # the sqlite backup API copies a big database for a while: say so, with the time it takes
    with _stderr_console().status(_("backing up to {path}…", path=args.dest)):
        info = _with_store(args.data, lambda s: s.backup(CLI, args.dest))
    print(json.dumps(info))
    return 0


def _pid_alive(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text().strip()), 0)
    except (OSError, ValueError):
        return False
    return True


def _restore(args: argparse.Namespace) -> int:
    for pid_file in sorted(args.data.glob("hub*.pid")):
        if _pid_alive(pid_file) and not args.force:
            print("gatehouse hub: " + _("a hub is serving {path} (pid file {pid}); stop every hub process first",
                                        path=args.data, pid=pid_file), file=sys.stderr)
            return 1
    with _stderr_console().status(_("restoring from {path}…", path=args.src)):
        info = restore_hub(args.data, args.src)
    print(json.dumps(info))
    return 0


def _ticket(args: argparse.Namespace) -> int:
    async def go(store: HubStore) -> dict[str, Any]:
        if args.action == "show":
            return await store.ticket(args.ticket)
        if args.action == "revoke":
            return await store.revoke_ticket(CLI, args.ticket)
        if args.action == "reinstate":
            return await store.reinstate_ticket(CLI, args.ticket)
        if args.action == "upgrade":
            return await store.upgrade_ticket(CLI, args.ticket, zone_id=args.zone, seat=args.seat,
                                              policy_id=args.policy)
        if args.action == "transfer":
            if not args.holder:
                raise HubError("transfer needs --holder", code="missing_holder")
            return await store.transfer_ticket(CLI, args.ticket, args.holder)
        from hub.credentials import credential_text
        t = await store.ticket(args.ticket)
        if t["status"] != "valid":
            raise HubError(f"ticket {t['number']} is {t['status']}; no credential is issued for it",
                           code="ticket_not_valid")
        key = await store.signing_key()
        return {"text": credential_text(key, int((await store.meta())["event_id"]), t)}
    print(json.dumps(_with_store(args.data, go)))
    return 0


def _read_pin(prompt: str = "PIN: ") -> str:
    """A new PIN: typed twice (not echoed) on a terminal, or the first line of piped stdin."""
    if sys.stdin.isatty():
        import getpass

        pin = getpass.getpass(prompt)
        if getpass.getpass(_("again: ")) != pin:
            raise HubError("the two PINs differ", code="pin_mismatch")
        return pin
    return sys.stdin.readline().strip()


def _steward(args: argparse.Namespace) -> int:
    if args.action == "list":
        for st in _with_store(args.data, lambda s: s.stewards()):
            print(f"{st['steward_id']:<16} {st['name']}")
        return 0
    if not args.steward_id:
        raise HubError(f"steward {args.action} needs a steward id", code="missing_steward_id")
    if args.action == "remove":
        print(json.dumps(_with_store(args.data, lambda s: s.remove_steward(CLI, args.steward_id))))
        return 0
    if not args.name:
        raise HubError("steward add needs --name", code="missing_name")
    pin = _read_pin()
    print(json.dumps(_with_store(args.data, lambda s: s.add_steward(CLI, args.steward_id, args.name, pin,
                                                                    replace=args.replace))))
    return 0


def _manifest(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from hub.event_settings import read_settings
    from hub.manifest import render_manifest_csv, render_manifest_pdf
    from i18n import normalize

    ext = "csv" if args.csv else "pdf"
    render = render_manifest_csv if args.csv else render_manifest_pdf
    if args.all:
        if args.dir is None:
            raise HubError("--all needs --dir", code="missing_dir")
    elif args.out is None:
        raise HubError("--gate needs --out FILE", code="missing_out")
    if args.manifest_lang and normalize(args.manifest_lang) is None:
        raise HubError(f"no catalogue for language {args.manifest_lang!r} (en, zh-Hans, ru, kk)", code="bad_language")

    async def go(store: HubStore) -> list[tuple[Path, int, int]]:
        if args.all:
            gate_ids = [g["gate_id"] for g in await store.gates() if g["status"] != "revoked"]
            args.dir.mkdir(parents=True, exist_ok=True)
        else:
            gate_ids = [args.gate]
        lang = normalize(args.manifest_lang) if args.manifest_lang else (await read_settings(store)).language
        written = []
        # every gate of a stadium takes minutes: show which one, how many done, how long
        with Progress(TextColumn(_("manifests")), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                      TimeElapsedColumn(), console=_stderr_console(), disable=len(gate_ids) < 2) as progress:
            task = progress.add_task("", total=len(gate_ids))
            for gate_id in gate_ids:
                progress.update(task, description=_("gate {gate}", gate=gate_id))
                m = await store.gate_manifest(gate_id)
                body = await asyncio.to_thread(render, m.rows, event_name=m.event_name, gate_name=m.gate_name,
                                               generated_at=m.generated_at, hub_seq=m.hub_seq, lang=lang)
                out = args.dir / f"manifest-{gate_id}.{ext}" if args.all else args.out
                tmp = out.with_name(out.name + ".partial")
                tmp.write_bytes(body)
                tmp.replace(out)  # never leave half a manifest where someone may print it
                await store.record_audit(CLI, "manifest", gate_id, {"format": ext, "rows": len(m.rows),
                                                                    "hub_seq": m.hub_seq, "file": str(out),
                                                                    "lang": lang})
                if ext == "pdf":  # for the readiness report: is the paper as current as the hub?
                    from hub.readiness import merge_gate_info

                    await merge_gate_info(store, {gate_id: {"manifest_printed": {
                        "hub_seq": m.hub_seq, "rows": len(m.rows), "at": time.time(), "via": "cli",
                        "file": str(out)}}})
                progress.console.print(_("{path}: gate {gate}, {n} tickets, hub seq {seq}", path=out, gate=gate_id,
                                         n=len(m.rows), seq=m.hub_seq))
                written.append((out, len(m.rows), m.hub_seq))
                progress.advance(task)
        return written

    written = _with_store(args.data, go)
    print(json.dumps({"files": [{"path": str(p), "rows": n, "hub_seq": q} for p, n, q in written]}))
    return 0


def _event(args: argparse.Namespace) -> int:
    from hub.event_settings import read_settings, write_settings

    changes = {k: v for k, v in (("kickoff_at", args.kickoff), ("language", args.language),
                                 ("show_ratio", args.show_ratio), ("lane_rate_per_min", args.lane_rate))
               if v is not None}

    async def go(store: HubStore) -> dict[str, Any]:
        settings = await write_settings(store, CLI, changes) if changes else await read_settings(store)
        return settings.to_json()
    print(json.dumps(_with_store(args.data, go)))
    return 0


def _forecast(args: argparse.Namespace) -> int:
    from hub.forecast_data import current_forecast
    from i18n import current

    f = _with_store(args.data, current_forecast)
    if args.json:
        print(json.dumps(f.to_json()))
        return 0
    w = current()
    if f.kickoff_at is None:
        print(_("kick-off not set: gatehouse hub event --kickoff 2026-05-12T19:00+05:00"), file=sys.stderr)
    else:
        print(_("kick-off {time}", time=w.when(f.kickoff_at)))
    for z in f.zones:
        status = _("LATE by {minutes} min", minutes=w.number(round(z.late_s / 60))) if z.alert else _("in time")
        print(_("{zone}: arrived {arrived}, not yet arrived {missing}, {rate}/min on {lanes} lanes, queue ~{queue}: "
                "{status}", zone=z.name, arrived=w.number(z.arrived), missing=w.number(z.not_arrived),
                rate=w.number(z.rate_per_min), lanes=w.number(z.lanes), queue=w.number(z.queue), status=status))
        for sg in z.suggestions:
            if sg.kind == "open_lanes":
                print("  → " + (_("open {n} more lanes", n=sg.lanes) if sg.lanes else
                                _("opening lanes alone will not do: delay or hold kick-off")))
            else:
                print("  → " + _("send fans from {busy} to {spare}", busy=", ".join(sg.from_gates),
                                 spare=", ".join(sg.to_gates)))
    return 0
