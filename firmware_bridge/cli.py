"""``gatehouse turnstile …``: check a turnstile on site, and run the reference controller.

* ``gatehouse turnstile controller --pty`` runs the reference controller firmware's logic on
  this machine behind a new pseudo-terminal and prints its path (JSON lines on stdout; type
  ``rotate in``, ``fire open``, ``hang``… on stdin to play the mechanism).
* ``gatehouse turnstile test --backend serial --port /dev/ttyACM0`` unlocks once, waits for
  the passage and prints one JSON object: whether the passage came, how long it took, the
  lane counters, the events seen and (serial) the link's frame counters.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from firmware_bridge.base import DEFAULT_PASSAGE_TIMEOUT_S, Indicator, TurnstileEvent
from firmware_bridge.factory import BACKENDS, TurnstileConfigError, open_turnstile
from tickets.model import Direction

log = logging.getLogger(__name__)


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="turnstile_cmd", metavar="COMMAND")

    from firmware_bridge.firmware import host

    p = sub.add_parser("controller", help="run the reference controller behind a pty (prints its path)",
                       description=host.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    host.add_arguments(p)
    p.set_defaults(func=_controller)

    p = sub.add_parser("test", help="unlock once and report whether a passage followed")
    p.add_argument("--backend", choices=BACKENDS, default=None,
                   help="backend (default: from --config, else serial)")
    p.add_argument("--port", help="serial port or pyserial URL (serial backend)")
    p.add_argument("--config", type=Path,
                   help="JSON file with the turnstile config (the gate's 'turnstile' section)")
    p.add_argument("--direction", choices=[d.value for d in Direction], default="in")
    p.add_argument("--timeout", type=float, default=DEFAULT_PASSAGE_TIMEOUT_S,
                   help="seconds to wait for the passage (default %(default)s)")
    p.set_defaults(func=_test)


def _controller(args: argparse.Namespace) -> int:
    from firmware_bridge.firmware.host import HostController

    return HostController(args).run()


def _load_config(args: argparse.Namespace) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if args.config is not None:
        try:
            loaded = json.loads(args.config.read_text())
        except (OSError, ValueError) as exc:
            raise TurnstileConfigError([("config", f"cannot read {args.config}: {exc}")]) from exc
        if not isinstance(loaded, dict):
            raise TurnstileConfigError([("config", f"{args.config} must hold a JSON object")])
        config.update(loaded.get("turnstile", loaded))
    if args.backend:
        config["backend"] = args.backend
    config.setdefault("backend", "serial")
    if args.port:
        config["port"] = args.port
    return config


async def _run_test(config: dict[str, Any], direction: Direction, wait_s: float) -> dict[str, Any]:
    turnstile = open_turnstile(config)
    seen: list[TurnstileEvent] = []

    async def collect() -> None:
        async for ev in turnstile.events():
            seen.append(ev)
            print(f"event: {ev.kind} {ev.direction or ''} {ev.detail}", file=sys.stderr)

    async with turnstile:
        collector = asyncio.create_task(collect())
        await turnstile.indicate(Indicator.GREEN, "TEST")
        print(f"unlocked {direction.value}: walk through within {wait_s:g} s", file=sys.stderr)
        started = time.monotonic()
        await turnstile.unlock(direction)
        passed = await turnstile.passage(wait_s)
        waited = time.monotonic() - started
        await turnstile.indicate(Indicator.IDLE)
        stats = getattr(turnstile, "stats", None)
        link = stats() if callable(stats) else {}
    await collector
    return {
        "backend": config["backend"], "direction": direction.value, "timeout_s": wait_s,
        "passage_confirmed": passed, "wait_s": round(waited, 3), **turnstile.counters.as_dict(),
        "events": [f"{e.kind}:{e.direction or ''}:{e.detail}" for e in seen], **link,
    }


def _test(args: argparse.Namespace) -> int:
    try:
        config = _load_config(args)
        result = asyncio.run(_run_test(config, Direction(args.direction), args.timeout))
    except TurnstileConfigError as exc:
        print(f"gatehouse turnstile test: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0 if result["passage_confirmed"] else 1
