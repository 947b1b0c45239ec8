"""The ``gatehouse`` command.

Commands are grouped by role. Each package contributes its own group through a
``register(subparsers)`` function in its ``cli`` module, so the hub's commands live in
``hub/cli.py``, the gate's in ``gate_agent/cli.py`` and so on. Benchmarks are listed in
:mod:`gatehouse.bench`.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

import i18n
from gatehouse import __version__
from i18n import _

#: (group name, module providing ``register(subparsers)``, one-line help)
GROUPS: tuple[tuple[str, str, str], ...] = (
    ("hub", "hub.cli", "run and administer the central hub (tickets, gates, backups, manifests)"),
    ("gate", "gate_agent.cli", "enrol and run a gate agent on a Raspberry Pi"),
    ("keys", "gatehouse.keys_cli", "create event signing keys and issue or inspect ticket credentials"),
    ("scanner", "scanners.cli", "test a barcode scanner or camera and generate the test image corpus"),
    ("turnstile", "firmware_bridge.cli", "test a turnstile controller; run the reference controller"),
    ("bench", "gatehouse.bench", "run a benchmark and print its figures as JSON"),
    ("demo", "gatehouse.demo", "start a hub, simulated gates and the live dashboard on this machine"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gatehouse",
        description=(
            "Stadium gate access control. Gate agents decide every scan locally against an "
            "offline replica, sync to a central hub, and fall back to a paper manifest so "
            "entry never stalls."
        ),
    )
    parser.add_argument("--version", action="version", version=f"gatehouse {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    parser.add_argument("--lang", default=None, metavar="LANG",
                        help=f"language of messages: en, zh-Hans, ru, kk (default: ${i18n.ENV_VAR}, then the locale)")
    sub = parser.add_subparsers(dest="group", metavar="GROUP")
    for name, module_name, help_text in GROUPS:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:  # a role not installed on this machine
            p = sub.add_parser(name, help=f"{help_text} [unavailable: {exc}]")
            p.set_defaults(func=_unavailable(name, exc))
            continue
        p = sub.add_parser(name, help=help_text, description=help_text)
        module.register(p)
    return parser


def _unavailable(name: str, exc: Exception):  # type: ignore[no-untyped-def]
    def run(_args: argparse.Namespace) -> int:
        print(_("gatehouse {group}: not available on this install: {error}", group=name, error=exc), file=sys.stderr)
        return 2

    return run


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        i18n.use(i18n.from_env(args.lang))
    except i18n.UnknownLanguage as exc:
        print(f"gatehouse: {exc}", file=sys.stderr)
        return 2
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    func = getattr(args, "func", None)
    if func is None:
        # A group without a subcommand: show that group's help.
        parser.parse_args([*(argv or sys.argv[1:]), "--help"])
        return 2
    result = func(args)
    return int(result or 0)
