"""``gatehouse bench decode``: read rate and frame time of each decoder alone and of the cascade,
side by side on the same frames, and the time from a code entering a 30 fps stream to the
gate's verdict.

Corpora (see ``docs/scanners.md``):

* ``photo`` — :mod:`scanners.photos`, split ``report`` (the cascade was tuned on ``tune``):
  optics, sensor noise, screens and lossy files modelled step by step; 640x480, 1280x720 and
  1920x1080 frames; some QR/PDF417 codes carry foreign text in other character sets.
* ``generated`` — :mod:`scanners.corpus` (the earlier corpus), at 640x480 and 1280x720.
* ``package`` — the sample images installed packages ship (pyzbar's test images).

Every frame is given to each decoder in turn before the next frame, so a busy moment on the
machine falls on all of them alike. A frame counts as read by a decoder when the expected
payload is among what it reports; ``union`` is read by at least one single decoder (zxing-cpp,
ZBar; OpenCV's QR detector too with ``--with-opencv``); ``misreads_count`` is a wrong payload on
a frame with a code; ``false_positives_count`` any payload on a frame without one. Cascade
reads that a stage finished after its frame's deadline are not counted for the frame
(``late_reads_count``: the camera reports them with the next frame).

``time_to_read_*`` comes from a real gate agent (replica, journal, simulated turnstile) whose
camera is a ``file:`` video played at 30 fps: from the first frame showing a code to the
lane's decision on it.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from scanners import corpus, photos
from scanners.decode import (
    DEFAULT_BUDGET_MS,
    Cascade,
    Decoded,
    decode_opencv_qr,
    decode_zbar,
    decode_zxing,
)
from scanners.options import DecodeOptions

GENERATED_SIZES = ((640, 480), (1280, 720))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--photos", type=int, default=300, help="photo-like frames with a code")
    parser.add_argument("--photo-negatives", type=int, default=60, help="photo-like frames without a code")
    parser.add_argument("--count", type=int, default=105, help="generated frames with a code, per resolution")
    parser.add_argument("--negatives", type=int, default=20, help="generated frames without a code, per resolution")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--split", choices=photos.SPLITS, default="report",
                        help="photo split to measure on (the cascade was tuned on 'tune')")
    parser.add_argument("--budget-ms", type=float, default=DEFAULT_BUDGET_MS)
    parser.add_argument("--threads", type=int, choices=(1, 2), default=None, help="cascade lanes on threads (default: config default)")
    parser.add_argument("--fixed-order", action="store_true", help="do not reorder stages by measured hits")
    parser.add_argument("--with-opencv", action="store_true", help="measure OpenCV's QR detector too (slow outliers)")
    parser.add_argument("--compare", action="store_true",
                        help="also measure the cascade on one thread and with a fixed stage order, side by side")
    parser.add_argument("--video-presentations", type=int, default=24,
                        help="codes shown in the 30 fps video for time_to_read (0: skip)")


def _load_avg() -> float:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return -1.0


class _Tally:
    def __init__(self) -> None:
        self.read: dict[str, int] = defaultdict(int)
        self.required: dict[str, int] = defaultdict(int)
        self.misreads = 0
        self.false_positives = 0
        self.times_ms: list[float] = []

    def add(self, sample: corpus.Sample, found: list[Decoded], elapsed_ms: float) -> bool:
        self.times_ms.append(elapsed_ms)
        payloads = {d.payload for d in found}
        if sample.expected is None:
            self.false_positives += len(payloads)
            return False
        self.misreads += sum(1 for p in payloads if p != sample.expected)
        ok = sample.expected in payloads
        if sample.required:
            self.required[sample.symbology or "?"] += 1
            self.read[sample.symbology or "?"] += ok
        return ok


def _ratio(a: int, b: int) -> float:
    return round(a / b, 4) if b else 0.0


def _corpora(args: argparse.Namespace) -> dict[str, list[corpus.Sample]]:
    out: dict[str, list[corpus.Sample]] = {}
    print(f"decode bench: generating {args.photos}+{args.photo_negatives} photo-like frames ({args.split})", file=sys.stderr)
    out["photo"] = list(photos.generate(args.photos, split=args.split, seed=args.seed, negatives=args.photo_negatives))
    gen: list[corpus.Sample] = []
    for w, h in GENERATED_SIZES:
        print(f"decode bench: generating {args.count}+{args.negatives} frames at {w}x{h}", file=sys.stderr)
        gen += corpus.generate(args.count, size=(w, h), seed=args.seed, negatives=args.negatives)
    out["generated"] = gen
    out["package"] = photos.package_samples()
    return out


def measure_frames(args: argparse.Namespace, corpora: dict[str, list[corpus.Sample]]) -> dict[str, Any]:
    options = DecodeOptions()
    singles: dict[str, Callable[[np.ndarray], list[Decoded]]] = {
        "zxing": lambda img: decode_zxing(img, options),
        "zbar": lambda img: decode_zbar(img, options),
    }
    if args.with_opencv:
        singles["opencv_qr"] = lambda img: decode_opencv_qr(img, options)
    cascade = Cascade(budget_ms=args.budget_ms, options=options, threads=args.threads,
                      adaptive_order=not args.fixed_order)
    variants: dict[str, Cascade] = {}
    if args.compare:
        variants = {
            "cascade_one_thread": Cascade(budget_ms=args.budget_ms, options=options, threads=1),
            "cascade_fixed_order": Cascade(budget_ms=args.budget_ms, options=options, threads=args.threads,
                                           adaptive_order=False),
        }
    names = [*singles, "cascade", *variants, "union"]
    tallies = {(c, n): _Tally() for c in [*corpora, "all"] for n in names}
    late = 0
    try:
        for cname, samples in corpora.items():
            print(f"decode bench: decoding {len(samples)} {cname} frames", file=sys.stderr)
            for sample in samples:
                any_single = False
                union_found: list[Decoded] = []
                for name, decode in singles.items():
                    t = time.perf_counter()
                    found = decode(sample.image)
                    ms = (time.perf_counter() - t) * 1000
                    for c in (cname, "all"):
                        any_single |= tallies[(c, name)].add(sample, found, ms)
                    union_found += found
                for vname, variant in variants.items():
                    vres = variant.decode(sample.image)
                    for c in (cname, "all"):
                        tallies[(c, vname)].add(sample, vres.codes, vres.elapsed_s * 1000)
                result = cascade.decode(sample.image)
                late += len(result.late)
                for c in (cname, "all"):
                    tallies[(c, "cascade")].add(sample, result.codes, result.elapsed_s * 1000)
                    # the union: read if any single decoder read it; its wrong payloads count too
                    tallies[(c, "union")].add(sample, union_found, 0.0)
    finally:
        cascade.close()
        for variant in variants.values():
            variant.close()
    out: dict[str, Any] = {}
    symbologies = sorted({s.symbology for ss in corpora.values() for s in ss if s.symbology})
    for (cname, name), tally in tallies.items():
        prefix = name if cname == "all" else f"{cname}_{name}"
        out[f"{prefix}_rate_ratio"] = _ratio(sum(tally.read.values()), sum(tally.required.values()))
        for sym in symbologies:
            if tally.required.get(sym):
                out[f"{prefix}_{sym}_rate_ratio"] = _ratio(tally.read[sym], tally.required[sym])
        if name != "union":
            out[f"{prefix}_misreads_count"] = tally.misreads
            out[f"{prefix}_false_positives_count"] = tally.false_positives
        if cname == "all":
            out[f"{name}_read_count"] = sum(tally.read.values())
            out[f"{name}_required_count"] = sum(tally.required.values())
        if name not in ("union",) and tally.times_ms:
            arr = np.array(tally.times_ms)
            out[f"{prefix}_p50_ms"] = round(float(np.percentile(arr, 50)), 2)
            out[f"{prefix}_p99_ms"] = round(float(np.percentile(arr, 99)), 2)
            out[f"{prefix}_max_ms"] = round(float(arr.max()), 2)
    # headline
    out["frames_count"] = sum(len(s) for s in corpora.values())
    out["cascade_late_reads_count"] = late
    out["cascade_over_budget_count"] = cascade.over_budget
    best = max(singles, key=lambda n: out[f"{n}_rate_ratio"])
    out["best_single_decoder"] = best
    out["best_single_rate_ratio"] = out[f"{best}_rate_ratio"]
    out["union_rate_ratio"] = out["union_rate_ratio"]
    out["frame_p50_ms"] = out["cascade_p50_ms"]
    out["frame_p99_ms"] = out["cascade_p99_ms"]
    out["frame_max_ms"] = out["cascade_max_ms"]
    out["misreads_count"] = out["cascade_misreads_count"]
    out["false_positives_count"] = out["cascade_false_positives_count"]
    short = [sym for sym in symbologies
             if out.get(f"cascade_{sym}_rate_ratio", 0.0) < out.get(f"union_{sym}_rate_ratio", 0.0)]
    out["cascade_below_union_symbologies"] = ",".join(short)
    for lane in cascade.lanes:
        for stage in lane:
            out[f"stage_{stage.name}_runs_count"] = stage.runs
            out[f"stage_{stage.name}_hits_count"] = stage.hits
            out[f"stage_{stage.name}_skips_count"] = stage.skips
            out[f"stage_{stage.name}_late_count"] = stage.late
    return out


# -- time to read: a 30 fps video through a real gate agent --------------------------------------

FPS = 30.0
VIDEO_SIZE = (1280, 720)


def write_presentation_video(path: Path, presentations: int, seed: int) -> tuple[list[tuple[int, bytes]], int]:
    """An MJPG video: gaps of code-free scenes, then a photo-like code held up for ~1.5 s.

    Returns [(first frame index showing the code, expected payload)] and the frame count.
    """
    import random

    import cv2

    rng = random.Random(f"video:{seed}")
    rng_t = random.Random(seed)
    texts = corpus.TicketTexts(rng_t, corpus.seeded_key(rng_t))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, VIDEO_SIZE)
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write an MJPG video here")
    shown: list[tuple[int, bytes]] = []
    frame = 0
    conditions = [c for c in photos.CONDITIONS if c != "large"]
    try:
        for k in range(presentations):
            gap = photos.make_photo_negative(k, rng, VIDEO_SIZE).image
            for _ in range(int(FPS * rng.uniform(2.6, 3.2))):  # longer than the repeat-suppression window
                writer.write(gap)
                frame += 1
            symbology = photos.SYMBOLOGIES[k % len(photos.SYMBOLOGIES)]
            sample, _ = photos.make_photo(k, symbology, conditions[rng.randrange(len(conditions))], texts, rng,
                                          VIDEO_SIZE)
            shown.append((frame, sample.expected or b""))
            for _ in range(int(FPS * 1.5)):
                writer.write(sample.image)
                frame += 1
        tail = photos.make_photo_negative(presentations, rng, VIDEO_SIZE).image
        for _ in range(int(FPS)):
            writer.write(tail)
            frame += 1
    finally:
        writer.release()
    return shown, frame


async def _time_to_read(video: Path, shown: list[tuple[int, bytes]], frames: int, work: Path,
                        budget_ms: float) -> dict[str, Any]:
    from firmware_bridge.sim import SimTurnstile
    from gate_agent.agent import GateAgent
    from gate_agent.config import GateConfig
    from gate_agent.replica import Replica
    from gatehouse.bench.testdata import make_event
    from scanners.camera import CameraScanner
    from tickets.entry import EntryKind

    event = make_event(100, time.time())
    cfg = GateConfig(gate_id="G1", data_dir=work, passage_timeout_s=0.5, status_port=0)
    replica = await Replica.open(cfg.replica_path)
    await replica.set_event(event_id=event.event_id, keyring=event.keyring, zones=event.zones, policies=event.policies)
    await replica.bulk_load(event.rows())
    await replica.apply_tickets([], cursor=1)
    await replica.close()
    scanner = CameraScanner(f"file:{video}", budget_ms=budget_ms, end_at_eof=True, name="camera:bench")
    decided: list[tuple[float, bytes, str]] = []
    agent = GateAgent(cfg, scanner=scanner, turnstile=SimTurnstile(), serve_status=False)
    # decisions on scans only: mode transitions and hardware events are journaled too
    agent.entry_listeners.append(
        lambda e: decided.append((time.monotonic(), e.raw, e.reason or "")) if e.kind == EntryKind.SCAN else None)
    await agent.start()
    try:
        if not await asyncio.to_thread(scanner.playing.wait, 30.0):
            raise RuntimeError(f"the camera never started playing {video}")
        # the whole video at 30 fps, then time for the last decision
        await asyncio.sleep(max(0.0, (scanner.playback_started_at or 0.0) + frames / FPS + 2.0 - time.monotonic()))
    finally:
        await agent.stop()
    start = scanner.playback_started_at or 0.0
    ttr: list[float] = []
    wrong = 0
    for k, (first, payload) in enumerate(shown):
        t_on = start + first / FPS
        t_next = start + shown[k + 1][0] / FPS if k + 1 < len(shown) else float("inf")
        hits = [t for t, raw, _ in decided if t_on <= t < t_next and raw == payload]
        wrong += sum(1 for t, raw, _ in decided if t_on <= t < t_next and raw != payload)
        if hits:
            ttr.append((min(hits) - t_on) * 1000)
    arr = np.array(ttr) if ttr else np.array([float("nan")])
    return {
        "video_presentations_count": len(shown), "video_read_count": len(ttr), "video_wrong_count": wrong,
        "video_fps": FPS, "video_frames_dropped_count": scanner.frames_dropped,
        "video_decisions_count": len(decided), "video_late_reads_count": scanner.late_reads,
        "time_to_read_p50_ms": round(float(np.nanpercentile(arr, 50)), 1) if ttr else None,
        "time_to_read_p95_ms": round(float(np.nanpercentile(arr, 95)), 1) if ttr else None,
        "time_to_read_max_ms": round(float(np.nanmax(arr)), 1) if ttr else None,
    }


def measure_video(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="gatehouse-bench-decode-") as tmp:
        video = Path(tmp) / "gate.avi"
        print(f"decode bench: writing a {args.video_presentations}-code 30 fps video", file=sys.stderr)
        shown, frames = write_presentation_video(video, args.video_presentations, args.seed)
        print("decode bench: playing it to a gate agent's camera", file=sys.stderr)
        (Path(tmp) / "gate").mkdir()
        return asyncio.run(_time_to_read(video, shown, frames, Path(tmp) / "gate", args.budget_ms))


def run(args: argparse.Namespace) -> dict[str, Any]:
    for name in ("photos", "count", "negatives", "photo_negatives", "video_presentations"):
        if getattr(args, name) < 0:
            raise SystemExit(f"gatehouse bench decode: --{name.replace('_', '-')} must not be negative")
    if not args.budget_ms > 0:
        raise SystemExit("gatehouse bench decode: --budget-ms must be positive")
    result: dict[str, Any] = {
        "photos": args.photos, "photo_negatives": args.photo_negatives, "count": args.count,
        "negatives": args.negatives, "seed": args.seed, "split": args.split, "budget_ms": args.budget_ms,
        "threads": args.threads or DecodeOptions().decode_threads, "adaptive_order": not args.fixed_order,
        "cpu_count": os.cpu_count(), "load_avg_1m_before": _load_avg(),
    }
    t = time.perf_counter()
    corpora = _corpora(args)
    result["corpus_generate_s"] = round(time.perf_counter() - t, 1)
    result.update(measure_frames(args, corpora))
    if args.video_presentations:
        result.update(measure_video(args))
    result["load_avg_1m_after"] = _load_avg()
    result["cascade_ge_union"] = (result["cascade_rate_ratio"] >= result["union_rate_ratio"]
                                  and not result["cascade_below_union_symbologies"])
    result["p99_within_budget"] = result["frame_p99_ms"] <= args.budget_ms
    return result
