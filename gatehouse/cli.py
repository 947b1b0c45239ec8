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


#: the install extra (pyproject ``[project.optional-dependencies]``) each command group needs
GROUP_EXTRAS: dict[str, str] = {"hub": "hub", "gate": "gate", "scanner": "gate,camera", "turnstile": "gate",
                                "keys": "hub", "bench": "all", "demo": "all"}
#: third-party modules some role brings; a missing one means that role is not installed here
THIRD_PARTY = frozenset({
    "fastapi", "uvicorn", "sqlalchemy", "alembic", "psycopg", "fpdf", "jinja2", "prometheus_client", "multipart",
    "cv2", "pyzbar", "zxingcpp", "numpy", "segno", "gpiozero", "serial", "aiosqlite", "websockets", "evdev",
    "starlette", "babel",
})


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The whole command line; only the group named in ``argv`` is imported (a gate never
    loads the hub's web stack to enrol, and ``--help`` lists every group without importing any)."""
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
    chosen = _chosen_group(argv if argv is not None else sys.argv[1:])
    for name, module_name, help_text in GROUPS:
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name != chosen:
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            missing = (exc.name or "").split(".")[0]
            extra = GROUP_EXTRAS.get(name, "all")
            if missing not in THIRD_PARTY:
                raise  # a broken install of our own code is a bug, never "unavailable"
            p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
            p.set_defaults(func=_unavailable(name, extra, exc))
            continue
        if name == "bench":
            module.register(p, list(argv if argv is not None else sys.argv[1:]))
        else:
            module.register(p)
    return parser


#: top-level options that take a value as the next argument (``--lang ru hub …``)
_VALUE_OPTIONS = frozenset({"--lang"})


def _chosen_group(argv: Sequence[str]) -> str | None:
    groups = {g for g, _m, _h in GROUPS}
    args = iter(argv)
    for arg in args:
        if arg in groups:
            return arg
        if arg in _VALUE_OPTIONS:
            next(args, None)
            continue
        if not arg.startswith("-"):
            return None
    return None


def _unavailable(name: str, extra: str, exc: ModuleNotFoundError):  # type: ignore[no-untyped-def]
    def run(_args: argparse.Namespace) -> int:
        print(_("gatehouse {group}: not installed on this machine ({module} is missing); install the role with:"
                " pip install 'gatehouse[{extra}]'", group=name, module=exc.name, extra=extra), file=sys.stderr)
        return 2

    return run


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        i18n.use(i18n.from_env(args.lang))
    except i18n.UnknownLanguage as exc:
        print(f"gatehouse: {exc}", file=sys.stderr)
        return 2
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    from gate_agent.logs import configure

    configure(level)  # stderr; each line names its gate; tokens and scanned codes redacted
    func = getattr(args, "func", None)
    if func is None:
        # A group without a subcommand: show that group's help.
        parser.parse_args([*(argv or sys.argv[1:]), "--help"])
        return 2
    result = func(args)
    return int(result or 0)
