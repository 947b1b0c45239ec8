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

    p = sub.add_parser("rebuild-replica",
                       help="move an untrusted replica aside so the next start takes a fresh one from the hub")
    p.add_argument("--config", type=Path, required=True)
    p.set_defaults(func=_rebuild)

    p = sub.add_parser("status", help="print a running agent's /status")
    p.add_argument("--url", default="http://127.0.0.1:8081", help="the agent's status address")
    p.set_defaults(func=_status)

    p = sub.add_parser("enroll", help="exchange a one-time enrolment token for this gate's credentials")
    p.add_argument("--hub", required=True, help="hub base URL, e.g. https://hub.example:8443")
    p.add_argument("--token", required=True, help="the one-time token printed by `gatehouse hub enroll-gate`")
    p.add_argument("--data-dir", type=Path, default=Path("/var/lib/gatehouse"))
    p.add_argument("--ca-file", type=Path, default=None, help="CA bundle for a hub with a private certificate")
    p.set_defaults(func=_enroll)


def _run(args: argparse.Namespace) -> int:
    from gate_agent.config import load_config
    from tickets.errors import ConfigError

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print("gatehouse gate run: " + _("configuration error: {error}", error=exc), file=sys.stderr)
        return 2
    return asyncio.run(_serve(config))


async def _serve(config) -> int:  # type: ignore[no-untyped-def]
    from gate_agent.agent import GateAgent
    from gate_agent.sync_link import attach_sync

    agent = GateAgent(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await agent.start()
    link = await attach_sync(agent)
    log.warning("gate %s running (mode %s)", config.gate_id, agent.ladder.mode)
    try:
        await stop.wait()
    finally:
        if link is not None:
            await link.close()
        await agent.stop()
    return 0


def _rebuild(args: argparse.Namespace) -> int:
    """The journal and manifest stay; only the replica (rebuildable from the hub) is set aside."""
    import time

    from gate_agent.config import load_config

    config = load_config(args.config)
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

    return enroll(args.hub, args.token, args.data_dir, args.ca_file)
