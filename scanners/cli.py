"""``gatehouse scanner …``: try a scanner or camera on this machine, and make test images.

* ``listen`` opens a scanner from the same settings a gate's config holds and prints every
  scan and health event until Ctrl-C (or ``--count`` scans, or the end of a video file).
* ``corpus`` writes the generated test images with ``expected.json``.
* ``decode`` reads image files with the cascade, as the camera would.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from scanners.base import ScannerHealth
from tickets.errors import ConfigError


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="scanner_cmd", metavar="COMMAND")

    p = sub.add_parser("listen", help="print scans and health events from a scanner")
    p.add_argument("--backend", required=True, choices=["camera", "serial", "hid", "sim"])
    p.add_argument("--port", help="serial: port, e.g. /dev/ttyACM0")
    p.add_argument("--baud", type=int, help="serial: baud rate (default 9600)")
    p.add_argument("--terminator", choices=["CR", "LF", "CRLF"], help="serial: line end (default CR)")
    p.add_argument("--prefix", help="serial: prefix the scanner adds, stripped")
    p.add_argument("--suffix", help="serial: suffix the scanner adds, stripped")
    p.add_argument("--device", help="camera: V4L2 index, video file or stream URL; hid: /dev/input/eventN")
    p.add_argument("--driver", choices=["opencv", "picamera2"], help="camera driver")
    p.add_argument("--size", help="camera: WIDTHxHEIGHT, e.g. 1280x720")
    p.add_argument("--budget-ms", type=float, help="camera: per-frame decode budget")
    p.add_argument("--repeat-suppress-s", type=float, help="camera: repeat-suppression window")
    p.add_argument("--no-grab", action="store_true", help="hid: do not grab the device")
    p.add_argument("--count", type=int, default=0, help="stop after this many scans (0: never)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=_listen)

    p = sub.add_parser("corpus", help="write the generated test images and expected.json")
    p.add_argument("--out", type=Path, required=True, help="directory to write into")
    p.add_argument("--count", type=int, default=140, help="frames with a code")
    p.add_argument("--negatives", type=int, default=None, help="frames without (default count/5)")
    p.add_argument("--size", default="640x480", help="WIDTHxHEIGHT")
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(func=_corpus)

    p = sub.add_parser("decode", help="decode image files with the camera's cascade")
    p.add_argument("images", nargs="+", type=Path)
    p.add_argument("--budget-ms", type=float, default=None)
    p.set_defaults(func=_decode)


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"size must be WIDTHxHEIGHT, not {text!r}") from None
    return w, h


def config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The scanner config (as a gate's config file holds it) for these options."""
    config: dict[str, Any] = {"backend": args.backend}
    for key in ("port", "baud", "terminator", "prefix", "suffix", "driver", "budget_ms", "repeat_suppress_s"):
        value = getattr(args, key)
        if value is not None:
            config[key] = value
    if args.device is not None:
        config["device"] = int(args.device) if args.device.isdigit() else args.device
    if args.size:
        config["width"], config["height"] = _size(args.size)
    if args.no_grab:
        config["grab"] = False
    return config


def _listen(args: argparse.Namespace) -> int:
    from scanners.factory import open_scanner

    try:
        scanner = open_scanner(config_from_args(args))
    except ConfigError as exc:
        print(f"gatehouse scanner listen: {exc}", file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_print_events(scanner, args.count, args.json))
    return 0


async def _print_events(scanner: Any, count: int, as_json: bool) -> None:
    seen = 0
    async with scanner:
        async for event in scanner:
            if isinstance(event, ScannerHealth):
                record = {"health": event.state, "detail": event.detail, "source": event.source, "at": event.at}
                text = f"[{event.state}] {event.detail}"
            else:
                seen += 1
                record = {"payload": event.payload.decode("latin-1"), "payload_hex": event.payload.hex(),
                          "symbology": event.symbology, "source": event.source, "at": event.at}
                text = f"{event.symbology:8s} {event.payload!r}"
            print(json.dumps(record) if as_json else text, flush=True)
            if count and seen >= count:
                break


def _corpus(args: argparse.Namespace) -> int:
    from scanners import corpus

    t = time.perf_counter()
    n = corpus.write(corpus.generate(args.count, size=_size(args.size), seed=args.seed, negatives=args.negatives),
                     args.out)
    print(f"{n} frames in {args.out} ({time.perf_counter() - t:.1f} s)", file=sys.stderr)
    return 0


def _decode(args: argparse.Namespace) -> int:
    import cv2

    from scanners.decode import DEFAULT_BUDGET_MS, Cascade

    cascade = Cascade(budget_ms=args.budget_ms or DEFAULT_BUDGET_MS)
    status = 0
    for path in args.images:
        image = cv2.imread(str(path))
        if image is None:
            print(f"{path}: not an image", file=sys.stderr)
            status = 1
            continue
        result = cascade.decode(image)
        codes = ", ".join(f"{c.symbology}:{c.payload.decode('latin-1')}" for c in result.codes) or "-"
        print(f"{path}: {codes}  ({result.elapsed_s * 1000:.1f} ms; {'+'.join(result.stages_run)})")
    return status
