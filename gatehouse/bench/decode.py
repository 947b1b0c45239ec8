"""``gatehouse bench decode``: decode rate and per-frame time of each decoder and the cascade.

On a generated corpus (seeded; see :mod:`scanners.corpus`) at 640x480 and 1280x720, for
pyzbar alone, zxing-cpp alone, OpenCV's QR detector alone (QR only, so its rate over all
symbologies is low by design) and our cascade within its budget. The decode rate counts
frames whose expected ticket was read, over the frames where reading is required (mirrored
codes may be read or not). ``false_positives_count`` is any code reported on a frame with no
code; ``misreads_count`` is a wrong payload on a frame with one (both should be zero).
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from scanners import corpus
from scanners.decode import DEFAULT_BUDGET_MS, SINGLE_DECODERS, Cascade, Decoded

SIZES = ((640, 480), (1280, 720))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--count", type=int, default=210, help="frames with a code per resolution")
    parser.add_argument("--negatives", type=int, default=60, help="frames without a code per resolution")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--budget-ms", type=float, default=DEFAULT_BUDGET_MS)


def _measure(decode: Callable[[np.ndarray], list[Decoded]], samples: list[corpus.Sample]) -> dict[str, Any]:
    read = required = false_pos = misreads = 0
    times = []
    for s in samples:
        t = time.perf_counter()
        found = decode(s.image)
        times.append((time.perf_counter() - t) * 1000)
        payloads = {d.payload for d in found}
        if s.expected is None:
            false_pos += len(payloads)
        else:
            misreads += sum(1 for p in payloads if p != s.expected)
        if s.required:
            required += 1
            read += s.expected in payloads
    arr = np.array(times)
    return {
        "rate_ratio": round(read / required, 4) if required else 0.0,
        "false_positives_count": false_pos, "misreads_count": misreads,
        "p50_ms": round(float(np.percentile(arr, 50)), 2), "p99_ms": round(float(np.percentile(arr, 99)), 2),
        "max_ms": round(float(arr.max()), 2),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {
        "count": args.count, "negatives": args.negatives, "seed": args.seed, "budget_ms": args.budget_ms,
    }
    per_size: dict[str, dict[str, dict[str, Any]]] = {}
    for w, h in SIZES:
        tag = f"{w}x{h}"
        print(f"decode bench: generating {args.count}+{args.negatives} frames at {tag}", file=sys.stderr)
        samples = list(corpus.generate(args.count, size=(w, h), seed=args.seed, negatives=args.negatives))
        cascade = Cascade(budget_ms=args.budget_ms)
        cascade.calibrate((h, w))
        decoders: dict[str, Callable[[np.ndarray], list[Decoded]]] = {**SINGLE_DECODERS, "cascade": cascade}
        per_size[tag] = {}
        for name, decode in decoders.items():
            print(f"decode bench: {name} at {tag}", file=sys.stderr)
            m = _measure(decode, samples)
            per_size[tag][name] = m
            for key, value in m.items():
                stem, unit = key.rsplit("_", 1)
                result[f"{name}_{tag}_{stem}_{unit}"] = value
        for stage in cascade.stages:
            result[f"cascade_{tag}_stage_{stage.name}_hits_count"] = stage.hits
            result[f"cascade_{tag}_stage_{stage.name}_skips_count"] = stage.skips
    # headline figures, over both resolutions
    def overall(name: str, key: str, agg: Callable[[list[float]], float]) -> float:
        return agg([per_size[tag][name][key] for tag in per_size])

    singles = list(SINGLE_DECODERS)
    best = max(singles, key=lambda n: overall(n, "rate_ratio", lambda v: sum(v) / len(v)))
    result["cascade_rate_ratio"] = round(overall("cascade", "rate_ratio", lambda v: sum(v) / len(v)), 4)
    result["best_single_decoder"] = best
    result["best_single_rate_ratio"] = round(overall(best, "rate_ratio", lambda v: sum(v) / len(v)), 4)
    result["false_positives_count"] = int(overall("cascade", "false_positives_count", sum))
    result["misreads_count"] = int(overall("cascade", "misreads_count", sum))
    result["frame_p99_ms"] = overall("cascade", "p99_ms", max)
    result["frame_max_ms"] = overall("cascade", "max_ms", max)
    result["p99_within_budget"] = result["frame_p99_ms"] <= args.budget_ms
    return result
