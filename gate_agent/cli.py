"""``gatehouse gate …``: enrol a gate with the hub and run its agent."""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from pathlib import Path

from i18n import _

log = logging.getLogger(__name__)


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="gate_cmd", metavar="COMMAND")

    p = sub.add_parser("run", help="run the gate agent until stopped (SIGTERM/SIGINT)")
    p.add_argument("--config", type=Path, required=True, help="gate.toml (see deploy/pi/gate.toml.example)")
    p.set_defaults(func=_run)

    p = sub.add_parser("check-config", help="validate a gate.toml: list every problem (exit 0 valid, 2 not)")
    p.add_argument("file", type=Path, help="the gate's TOML file, e.g. /etc/gatehouse/gate.toml")
    p.set_defaults(func=_check_config)

    p = sub.add_parser("doctor", help="check this gate before doors open: one ✔/✖ line per check, with the fix "
                                      "(exit 0 only when all pass)")
    p.add_argument("--config", type=Path, default=Path("/etc/gatehouse/gate.toml"))
    p.add_argument("--json", action="store_true", help="one JSON object (for fleet tooling)")
    p.add_argument("--standalone", action="store_true",
                   help="open the hardware here even if the agent answers (stop the agent first)")
    p.set_defaults(func=_doctor)

    p = sub.add_parser("rebuild-replica",
                       help="move an untrusted replica aside so the next start takes a fresh one from the hub")
    p.add_argument("--config", type=Path, required=True)
    p.set_defaults(func=_rebuild)

    p = sub.add_parser("status", help="print a running agent's /status")
    p.add_argument("--url", default="http://127.0.0.1:8081", help="the agent's status address")
    p.set_defaults(func=_status)

    p = sub.add_parser("enroll", help="exchange a one-time enrolment token for this gate's credentials")
    p.add_argument("--hub", required=True, help="hub base URL, e.g. https://hub.example:8443")
    p.add_argument("--token", help="the one-time token printed by `gatehouse hub enroll-gate`; one that starts "
                                   "with '-' must be written --token=TOKEN (or use --token-file)")
    p.add_argument("--token-file", type=Path, metavar="FILE",
                   help="read the token from FILE ('-': standard input), so it stays out of the shell history")
    p.add_argument("--data-dir", type=Path, default=Path("/var/lib/gatehouse"))
    p.add_argument("--ca-file", type=Path, default=None, help="CA bundle for a hub with a private certificate")
    p.set_defaults(func=_enroll)


def _load(args: argparse.Namespace, command: str):  # type: ignore[no-untyped-def]
    """The validated config, or None after printing every problem (the caller exits 2)."""
    from gate_agent.config import GateConfigError, load_config

    try:
        return load_config(args.config)
    except GateConfigError as exc:
        lines = "\n".join(f"  {p}" for p in exc.problems)
        print(f"gatehouse gate {command}: "
              + _("{path} is not a valid gate config:", path=args.config) + f"\n{lines}\n"
              + _("(check it with: gatehouse gate check-config {path})", path=args.config), file=sys.stderr)
        return None


def _run(args: argparse.Namespace) -> int:
    config = _load(args, "run")
    if config is None:
        return 2
    from gate_agent.logs import set_process_gate

    set_process_gate(config.gate_id)  # this process is one gate: every log line names it
    return asyncio.run(_serve(config))


def _check_config(args: argparse.Namespace) -> int:
    from gate_agent.config import check_config, load_config

    problems = check_config(args.file)
    if problems:
        print(f"{args.file}: {len(problems)} problem{'s' if len(problems) != 1 else ''}", file=sys.stderr)
        for p in problems:
            print(f"  ✖ {p}", file=sys.stderr)
        return 2
    cfg = load_config(args.file)
    print(f"{args.file}: valid — gate {cfg.gate_id}, scanner {cfg.scanner.backend}, "
          f"turnstile {cfg.turnstile.backend}, data in {cfg.data_dir}")
    return 0


async def _serve(config) -> int:  # type: ignore[no-untyped-def]
    from gate_agent.agent import GateAgent
    from gate_agent.sync_link import attach_sync

    agent = GateAgent(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await agent.start()
    except Exception as exc:
        # Already closed again by start(); exit so systemd restarts us (and says why).
        log.exception("gate %s cannot start", config.gate_id)
        print(f"gatehouse gate run: gate {config.gate_id} cannot start: {exc}", file=sys.stderr)
        return 1
    link = await attach_sync(agent)
    log.warning("gate %s running (mode %s)", config.gate_id, agent.ladder.mode)
    agent.notifier.notify(f"READY=1\nSTATUS=gate {config.gate_id} running ({agent.ladder.mode})")
    try:
        await stop.wait()
    finally:
        agent.notifier.notify("STOPPING=1")
        if link is not None:
            await link.close()
        await agent.stop()
        agent.notifier.close()
    return 0


def _doctor(args: argparse.Namespace) -> int:
    """Ask the running agent for its checks (it holds the hardware); else run them here."""
    from gate_agent.config import GateConfigError, load_config
    from gate_agent.doctor import Check, Report, dumps, report_from_dict, run_checks

    try:
        config = load_config(args.config)
    except GateConfigError as exc:
        report = Report("?", [Check("config", "fail", str(p), "edit the file; `gatehouse gate check-config FILE` "
                                                             "lists every problem") for p in exc.problems])
        print(dumps(report) if args.json else report.render())
        return 2
    report = None if args.standalone else _live_report(config)
    if report is None:
        report = asyncio.run(run_checks(config))
    else:
        report = report_from_dict(report)
    print(dumps(report) if args.json else report.render())
    return 0 if report.passed else 1


def _live_report(config) -> dict | None:  # type: ignore[no-untyped-def,type-arg]
    import httpx

    host = "127.0.0.1" if config.status_host in ("0.0.0.0", "::") else config.status_host
    if not config.status_port:
        return None
    from gate_agent.status_server import SESSION_FILE

    try:
        session = (config.data_dir / SESSION_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        session = ""  # no agent has run here yet, or this user may not read its files
    try:
        r = httpx.get(f"http://{host}:{config.status_port}/api/doctor", timeout=60,
                      headers={"X-Gate-Session": session})
    except httpx.HTTPError:
        return None  # the agent is not running: check the hardware here
    if r.status_code != 200:
        # The agent runs (and holds the pins and ports): checking them here would collide.
        raise SystemExit(f"gatehouse gate doctor: the running agent refused the check (HTTP {r.status_code}:"
                         f" {r.text[:200]}); run as the gate's user, or use --standalone with the agent stopped")
    body = r.json()
    return body if body.get("gate_id") == config.gate_id else None


def _rebuild(args: argparse.Namespace) -> int:
    """The journal and manifest stay; only the replica (rebuildable from the hub) is set aside."""
    import time

    config = _load(args, "rebuild-replica")
    if config is None:
        return 2
    moved = []
    for suffix in ("", "-wal", "-shm"):
        path = config.replica_path.with_name(config.replica_path.name + suffix)
        if path.exists():
            aside = path.with_name(f"{path.name}.aside-{time.strftime('%Y%m%d-%H%M%S')}")
            path.rename(aside)
            moved.append(str(aside))
    if not moved:
        print(_("no replica at {path}; nothing to do", path=config.replica_path))
        return 0
    print(_("replica moved aside (kept for inspection):") + "\n  " + "\n  ".join(moved))
    print(_("restart the gate (systemctl restart gatehouse-gate): it stays in MANIFEST mode until the hub's "
            "snapshot has arrived, then goes ONLINE. Event keys come back with the first hub connection."))
    return 0


def _status(args: argparse.Namespace) -> int:
    import httpx

    try:
        r = httpx.get(args.url.rstrip("/") + "/status", timeout=5)
    except httpx.HTTPError as exc:
        print(_("agent not reachable at {url}: {error}", url=args.url, error=exc), file=sys.stderr)
        return 1
    print(json.dumps(r.json(), indent=2))
    return 0


def _enroll(args: argparse.Namespace) -> int:
    from gate_agent.enrolment import enroll

    if (args.token is None) == (args.token_file is None):
        print("gatehouse gate enroll: give the one-time token with --token=TOKEN or --token-file FILE "
              "('-' reads standard input)", file=sys.stderr)
        return 2
    token = args.token
    if args.token_file is not None:
        try:
            text = sys.stdin.read() if str(args.token_file) == "-" else args.token_file.read_text(encoding="utf-8")
        except OSError as exc:
            print(f"gatehouse gate enroll: cannot read the token: {exc}", file=sys.stderr)
            return 2
        token = text.strip()
    if not token or any(c.isspace() for c in token):
        print("gatehouse gate enroll: the token is empty or has spaces in it: copy it again from "
              "`gatehouse hub enroll-gate`", file=sys.stderr)
        return 2
    return enroll(args.hub, token, args.data_dir, args.ca_file)
