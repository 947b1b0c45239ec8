"""The camera backend on real video files and real capture objects."""
from __future__ import annotations

import random
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from scanners.base import ScannerHealth
from scanners.camera import CameraScanner, Frame, FrameSlot
from scanners.corpus import TicketTexts, make_negative, render_code, seeded_key
from tests.scanners.conftest import TIMEOUT_S, is_fault, is_ok, next_matching, no_delay
from tickets.model import Scan

FPS = 20.0
SIZE = (640, 480)


def _frame_with(code: np.ndarray | None, rng: random.Random, background: np.ndarray) -> np.ndarray:
    frame = background.copy()
    if code is not None:
        h, w = code.shape
        y, x = (SIZE[1] - h) // 2, (SIZE[0] - w) // 2
        frame[y:y + h, x:x + w] = cv2.cvtColor(code, cv2.COLOR_GRAY2BGR)
    return frame


def write_video(path: Path, script: list[tuple[str | None, str, int]]) -> list[bytes]:
    """A video of codes appearing and disappearing: (text or None, symbology, frames)."""
    rng = random.Random(5)
    background = make_negative(0, SIZE, rng).image
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, SIZE)
    assert writer.isOpened()
    for text, symbology, frames in script:
        code = render_code(text, symbology, 3 if symbology == "qrcode" else 2) if text else None
        image = _frame_with(code, rng, background)
        for _ in range(frames):
            writer.write(image)
    writer.release()
    return [t.encode() for t, _, _ in script if t]


async def collect(scanner: CameraScanner) -> list[Scan | ScannerHealth]:
    events = []
    async with scanner:
        async with __import__("asyncio").timeout(TIMEOUT_S * 3):
            async for ev in scanner:
                events.append(ev)
    return events


async def test_video_of_codes_appearing_and_disappearing_yields_each_presentation_once_in_order(tmp_path):
    texts = TicketTexts(random.Random(1), seeded_key(random.Random(1)))
    qr1, qr2 = texts.text("qrcode"), texts.text("qrcode")
    script = [
        (None, "", 10), (qr1, "qrcode", 25), (None, "", 25),  # held ~1.2 s, away 1.25 s
        ("TK-2026-000042", "code128", 20), (None, "", 5),      # away only 0.25 s ...
        ("TK-2026-000042", "code128", 10),                     # ... so still the same presentation
        (None, "", 25), (qr2, "qrcode", 20), (qr1, "qrcode", 15), (None, "", 5),
    ]
    path = tmp_path / "gate.avi"
    write_video(path, script)
    scanner = CameraScanner(str(path), suppress_s=1.0)
    events = await collect(scanner)
    scans = [e for e in events if isinstance(e, Scan)]
    assert [(s.payload, s.symbology) for s in scans] == [
        (qr1.encode(), "qrcode"), (b"TK-2026-000042", "code128"),
        (qr2.encode(), "qrcode"), (qr1.encode(), "qrcode"),
    ]
    assert all(s.source == f"camera:{path}" for s in scans)
    assert not any(is_fault(e) for e in events)
    assert scanner.frames_decoded == sum(n for _, _, n in script)  # lossless for files: every frame


async def test_same_code_shown_again_after_the_window_is_a_new_scan(tmp_path):
    path = tmp_path / "again.avi"
    write_video(path, [("TK-1", "code128", 8), (None, "", 30), ("TK-1", "code128", 8)])
    events = await collect(CameraScanner(str(path), suppress_s=1.0))
    assert [e.payload for e in events if isinstance(e, Scan)] == [b"TK-1", b"TK-1"]


async def test_video_without_codes_yields_no_scans(tmp_path):
    path = tmp_path / "empty.avi"
    write_video(path, [(None, "", 30)])
    events = await collect(CameraScanner(str(path)))
    assert [e for e in events if isinstance(e, Scan)] == []


class _FlakyCamera:
    """A capture whose frames the test controls: plugged, frozen, or gone (read fails)."""

    def __init__(self, frames: list[np.ndarray], unplug: threading.Event) -> None:
        self.frames, self.unplug, self.i = frames, unplug, 0

    def isOpened(self) -> bool:
        return not self.unplug.is_set()

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.unplug.is_set():
            return False, None
        frame = self.frames[self.i % len(self.frames)]
        self.i += 1
        self.unplug.wait(0.005)  # a camera delivers at a frame rate, not as fast as the CPU
        return True, frame

    def get(self, _prop: int) -> float:
        return 0.0

    def release(self) -> None:
        pass


def _noisy_frames(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) for _ in range(n)]


async def test_unplugged_camera_faults_and_recovers_by_itself_when_it_returns():
    unplug = threading.Event()
    frames = _noisy_frames(4)
    scanner = CameraScanner(0, no_frame_fault_s=0.3, reconnect_delays=no_delay,
                            capture_factory=lambda: _FlakyCamera(frames, unplug))
    async with scanner:
        first, _ = await next_matching(scanner, is_ok)
        unplug.set()
        fault, _ = await next_matching(scanner, is_fault)
        assert "cannot be opened" in fault.detail or "stopped delivering" in fault.detail
        unplug.clear()
        back, _ = await next_matching(scanner, is_ok)
    assert first.source == back.source == "camera:0"


async def test_frozen_image_is_a_fault_until_frames_change_again():
    unplug = threading.Event()
    same = _noisy_frames(1)
    camera = _FlakyCamera(same, unplug)
    scanner = CameraScanner(0, frozen_fault_s=0.2, capture_factory=lambda: camera)
    async with scanner:
        await next_matching(scanner, is_ok)
        fault, _ = await next_matching(scanner, is_fault)
        assert "frozen" in fault.detail
        camera.frames = _noisy_frames(3)
        await next_matching(scanner, is_ok)


async def test_missing_video_device_reports_fault_not_exception(tmp_path):
    scanner = CameraScanner(str(tmp_path / "nope.avi"), end_at_eof=False, reconnect_delays=no_delay)
    async with scanner:
        fault, _ = await next_matching(scanner, is_fault)
    assert "cannot be opened" in fault.detail


def test_frame_slot_keeps_only_the_newest_frame_for_live_sources():
    slot = FrameSlot(lossless=False)
    img = np.zeros((2, 2, 3), np.uint8)
    for i in range(5):
        slot.put(Frame(img, float(i), i))
    taken = slot.take(0)
    assert taken is not None and taken.index == 4
    assert slot.take(0) is None
    assert slot.overwritten == 4


@pytest.mark.parametrize("image", [
    np.zeros((1, 1, 3), np.uint8), np.full((480, 640, 3), 255, np.uint8), np.zeros((3000, 10, 3), np.uint8),
])
def test_degenerate_frames_decode_to_nothing(image):
    scanner = CameraScanner(0)
    assert scanner.cascade(image) == []


async def test_a_1d_code_seen_in_a_single_frame_is_not_reported_but_a_qr_is(tmp_path):
    path = tmp_path / "flash.avi"
    write_video(path, [(None, "", 5), ("TK-9", "code128", 1), (None, "", 20), ("TK-QR", "qrcode", 1), (None, "", 5)])
    events = await collect(CameraScanner(str(path)))
    assert [e.payload for e in events if isinstance(e, Scan)] == [b"TK-QR"]


class _StallingCamera(_FlakyCamera):
    """Open, but read() blocks while ``stall`` is set (a hung driver)."""

    def __init__(self, frames: list[np.ndarray], stall: threading.Event, release: threading.Event) -> None:
        super().__init__(frames, threading.Event())
        self.stall, self.resume = stall, release

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.stall.is_set():
            self.resume.wait(TIMEOUT_S)
        return super().read()


async def test_no_frames_is_one_fault_then_ok_when_frames_return():
    stall, release = threading.Event(), threading.Event()
    camera = _StallingCamera(_noisy_frames(3), stall, release)
    scanner = CameraScanner(0, no_frame_fault_s=0.2, capture_factory=lambda: camera)
    async with scanner:
        await next_matching(scanner, is_ok)
        stall.set()
        fault, _ = await next_matching(scanner, is_fault)
        assert "no frames" in fault.detail
        stall.clear()
        release.set()
        after, skipped = await next_matching(scanner, lambda e: isinstance(e, ScannerHealth))
    assert after.state == "ok" and skipped == []


async def test_a_file_camera_plays_at_the_video_frame_rate_and_reads_the_code_when_it_appears(tmp_path):
    path = tmp_path / "live.avi"
    fps = 30.0
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, SIZE)
    background = make_negative(0, SIZE, random.Random(5)).image
    code_frame = _frame_with(render_code("TK-2026-000042", "code128", 2), random.Random(1), background)
    frames = [background] * 20 + [code_frame] * 15 + [background] * 10  # the code appears at frame 20
    for f in frames:
        writer.write(f)
    writer.release()
    scanner = CameraScanner(f"file:{path}", end_at_eof=True, clock=__import__("time").monotonic)
    events = await collect(scanner)
    scans = [e for e in events if isinstance(e, Scan)]
    assert [s.payload for s in scans] == [b"TK-2026-000042"]
    assert scanner.playback_started_at is not None and scanner.fps == fps
    shown_at = scanner.playback_started_at + 20 / fps
    assert scans[0].at >= shown_at  # paced: never read before the frame was due
    # a live camera: frames the decoder did not take were overwritten, not queued
    assert scanner.frames_decoded + scanner._slot.overwritten + scanner.frames_dropped >= len(frames) - 1
