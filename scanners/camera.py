"""The camera backend: capture on one thread, decode on another, newest frame only.

Capture (``cv2.VideoCapture`` on a V4L2 index, a video file or a stream URL; Picamera2 on a
Pi, imported only there) runs on its own thread and keeps only the newest frame in a
one-slot mailbox: if decoding is slower than the camera, old frames are overwritten, never
queued. For a video file the mailbox can be made lossless (capture waits for the decoder),
so a recorded sequence is decoded frame by frame, reproducibly.

``file:PATH`` is a video file played *as a camera*: at the file's own frame rate (frames the
decoder has not taken are overwritten, as with a live camera), timed by the monotonic clock,
and looping at the end unless ``end_at_eof``. Tests and the demo use it to run a real 30 fps
stream through the same path a USB camera takes; :attr:`CameraScanner.playback_started_at`
and the file's frame rate give the moment each frame was shown.

The decode thread runs the :class:`~scanners.decode.Cascade` within its per-frame budget,
holds back a 1D code until a second frame agrees (:class:`~scanners.base.Confirmer`: weak
checksums), suppresses repeats of a code still in view (:class:`~scanners.base.Suppressor`, on
frame time) and watches health: no frame for ``no_frame_fault_s``, a frozen image (bit-identical
frames for ``frozen_fault_s``) or a camera that cannot be opened or stops delivering is a
``fault``; the capture thread reopens the device with backoff and the first good frame
reports ``ok`` again. Both threads hand events to asyncio through one
:class:`~scanners.base.EventPump`.
"""
from __future__ import annotations

import logging
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import numpy as np

from scanners.base import (
    SCANNER_TIMEOUT_S,
    Confirmer,
    EventPump,
    HealthTracker,
    ScannerEvent,
    Suppressor,
    backoff,
)
from scanners.decode import DEFAULT_BUDGET_MS, Cascade, Decoded, DecodeOptions
from tickets.model import Scan

log = logging.getLogger(__name__)

DEFAULT_SUPPRESS_S = 2.0
DEFAULT_NO_FRAME_FAULT_S = 3 * SCANNER_TIMEOUT_S
DEFAULT_FROZEN_FAULT_S = 5 * SCANNER_TIMEOUT_S
#: symbologies without strong error correction: read in this many frames before reporting
DEFAULT_CONFIRM_1D_FRAMES = 2
LINEAR_SYMBOLOGIES = frozenset({"code128", "ean13", "itf"})


@dataclass(frozen=True, slots=True)
class Frame:
    image: np.ndarray
    t: float  # frame time in seconds (file position for files, monotonic clock for live sources)
    index: int


class FrameSlot:
    """A one-frame mailbox between the capture and decode threads.

    ``put`` replaces an unread frame (newest wins) unless ``lossless``, in which case it waits
    until the decoder has taken the previous one (or the slot is closed).
    """

    def __init__(self, lossless: bool = False) -> None:
        self.lossless = lossless
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._closed = False
        self.overwritten = 0

    def put(self, frame: Frame) -> None:
        with self._cond:
            while self.lossless and self._frame is not None and not self._closed:
                self._cond.wait()
            if self._frame is not None:
                self.overwritten += 1
            self._frame = frame
            self._cond.notify_all()

    def take(self, timeout: float) -> Frame | None:
        with self._cond:
            if self._frame is None and not self._closed:
                self._cond.wait(timeout)
            frame, self._frame = self._frame, None
            self._cond.notify_all()
            return frame

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


class _Picamera2Capture:
    """Picamera2 behind the small part of the VideoCapture interface we use (Pi only)."""

    def __init__(self, size: tuple[int, int]) -> None:
        from picamera2 import Picamera2  # only on a Pi with the camera stack

        self._cam = Picamera2()
        config = self._cam.create_video_configuration(main={"size": size, "format": "RGB888"})
        self._cam.configure(config)
        self._cam.start()

    def isOpened(self) -> bool:
        return True

    def read(self) -> tuple[bool, np.ndarray | None]:
        try:
            return True, self._cam.capture_array("main")
        except Exception as exc:  # the camera stack raises many kinds
            log.warning("picamera2 capture failed: %s", exc)
            return False, None

    def get(self, _prop: int) -> float:
        return 0.0

    def release(self) -> None:
        self._cam.stop()
        self._cam.close()


def _open_cv2(source: int | str, size: tuple[int, int] | None) -> Any:
    import cv2

    cap = cv2.VideoCapture(source)
    if size and isinstance(source, int):
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # V4L2: do not let the driver queue stale frames
    return cap


class CameraScanner:
    """The ``camera`` backend."""

    def __init__(self, source: int | str, *, driver: str = "opencv", size: tuple[int, int] | None = None,
                 budget_ms: float = DEFAULT_BUDGET_MS, suppress_s: float = DEFAULT_SUPPRESS_S,
                 no_frame_fault_s: float = DEFAULT_NO_FRAME_FAULT_S,
                 frozen_fault_s: float | None = DEFAULT_FROZEN_FAULT_S, lossless: bool | None = None,
                 end_at_eof: bool | None = None, name: str | None = None,
                 confirm_1d_frames: int = DEFAULT_CONFIRM_1D_FRAMES,
                 clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic,
                 reconnect_delays: Callable[[], Iterable[float]] = backoff,
                 capture_factory: Callable[[], Any] | None = None, decode: DecodeOptions | None = None) -> None:
        if driver not in ("opencv", "picamera2"):
            raise ValueError(f"camera driver must be opencv or picamera2, not {driver!r}")
        self.source_spec = source
        self.source = name or f"camera:{source}"
        #: "file:PATH": a video file played at its frame rate, as a live camera
        self.realtime_file = isinstance(source, str) and source.startswith("file:") and driver == "opencv"
        if self.realtime_file:
            assert isinstance(source, str)
            source = source[len("file:"):]
        is_file = isinstance(source, str) and "://" not in source and driver == "opencv" and not self.realtime_file
        self.is_file = is_file
        self.lossless = is_file if lossless is None else lossless
        self.end_at_eof = is_file if end_at_eof is None else end_at_eof
        self.cascade = Cascade(budget_ms=budget_ms, options=decode)
        #: file: sources: monotonic time frame 0 was shown, and the file's frame rate
        self.playback_started_at: float | None = None
        self.playing = threading.Event()  # set when a file: source shows its first frame
        self.fps: float | None = None
        self.frames_dropped = 0
        self.late_reads = 0
        self.suppressor = Suppressor(suppress_s)
        self.confirmer = Confirmer(confirm_1d_frames)
        self.no_frame_fault_s = no_frame_fault_s
        # A recorded still scene repeats identical frames legitimately; only live sources freeze.
        self.frozen_fault_s = None if is_file else frozen_fault_s
        self._clock, self._monotonic = clock, monotonic
        self._reconnect_delays = reconnect_delays
        if capture_factory is None:
            if driver == "picamera2":
                capture_factory = lambda: _Picamera2Capture(size or (1280, 720))  # noqa: E731
            else:
                capture_factory = lambda: _open_cv2(source, size)  # noqa: E731
        self._capture_factory = capture_factory
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._slot = FrameSlot(self.lossless)
        self._pump: EventPump | None = None
        self._health = HealthTracker(self.source)
        self._health_lock = threading.Lock()
        self.frames_decoded = 0

    # -- asyncio side ---------------------------------------------------------------------------

    async def __aenter__(self) -> CameraScanner:
        self._pump = EventPump()
        self._stop.clear()
        self._slot = FrameSlot(self.lossless)
        self._threads = [
            threading.Thread(target=self._capture_loop, name=f"{self.source}-capture", daemon=True),
            threading.Thread(target=self._decode_loop, name=f"{self.source}-decode", daemon=True),
        ]
        for t in self._threads:
            t.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        import asyncio

        self._stop.set()
        self._slot.close()
        for t in self._threads:
            await asyncio.to_thread(t.join, 5 * SCANNER_TIMEOUT_S)
        self.cascade.close()
        if self._pump is not None:
            self._pump.close()

    def __aiter__(self) -> CameraScanner:
        return self

    async def __anext__(self) -> ScannerEvent:
        if self._pump is None:
            raise RuntimeError("use 'async with scanner:' before iterating")
        return await self._pump.get()

    # -- threads --------------------------------------------------------------------------------

    def _post(self, event: ScannerEvent | None) -> None:
        if event is not None and self._pump is not None:
            self._pump.post(event)

    def _fault(self, detail: str) -> None:
        with self._health_lock:
            self._post(self._health.fault(detail, self._clock()))

    def _ok(self, detail: str) -> None:
        with self._health_lock:
            self._post(self._health.ok(detail, self._clock()))

    def _capture_loop(self) -> None:
        import cv2

        delays: Iterator[float] = iter(self._reconnect_delays())
        index = 0
        while not self._stop.is_set():
            try:
                cap: Any = self._capture_factory()
                opened = bool(cap.isOpened())
            except Exception as exc:  # a driver error must not end the thread
                log.warning("camera %s open failed: %s", self.source, exc)
                cap, opened = None, False
            if not opened:
                self._fault(f"camera {self.source_spec} cannot be opened")
                self._stop.wait(next(delays, 1.0))
                continue
            fresh = True
            if self.realtime_file:
                self.fps = float(cap.get(cv2.CAP_PROP_FPS)) or 30.0
                start, shown = self._monotonic(), 0
                if self.playback_started_at is None:
                    self.playback_started_at = start
                    self.playing.set()
            try:
                while not self._stop.is_set():
                    if self.realtime_file:
                        # a camera does not wait: frames whose time has passed are skipped
                        due = start + shown / self.fps
                        while self._monotonic() - due > 1 / self.fps and cap.grab():
                            shown += 1
                            self.frames_dropped += 1
                            due = start + shown / self.fps
                        if self._stop.wait(max(0.0, due - self._monotonic())):
                            break
                    ok, image = cap.read()
                    if not ok or image is None:
                        break
                    if fresh:  # delivering again: the next loss starts the backoff afresh
                        delays, fresh = iter(self._reconnect_delays()), False
                    if self.realtime_file:
                        t = start + shown / self.fps
                        shown += 1
                    else:
                        t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000 if self.is_file else self._monotonic()
                    self._slot.put(Frame(image, t, index))
                    index += 1
            except Exception as exc:  # a driver error while reading is a lost camera, not a crash
                log.warning("camera %s read failed: %s", self.source, exc)
            finally:
                try:
                    cap.release()
                except Exception as exc:
                    log.warning("camera %s release failed: %s", self.source, exc)
            if self._stop.is_set():
                break
            if self.end_at_eof:
                log.info("camera %s: end of video after %d frames", self.source, index)
                self._slot.close()
                return
            if self.realtime_file and not fresh:  # played to the end: loop, as a camera keeps running
                continue
            self._fault(f"camera {self.source_spec} stopped delivering frames")
            self._stop.wait(next(delays, 1.0))

    def _decode_loop(self) -> None:
        last_frame_at = self._monotonic()
        last_crc: int | None = None
        same_since: float | None = None
        poll = min(0.25 * SCANNER_TIMEOUT_S, self.no_frame_fault_s / 4)
        last_t = 0.0
        while not self._stop.is_set():
            frame = self._slot.take(poll)
            now = self._monotonic()
            if frame is None:
                if self._slot.closed:
                    if not self._stop.is_set():
                        # end of a video file: what stages still running read, then the stream ends
                        self._report(self.cascade.drain(), last_t)
                    if not self._stop.is_set() and self._pump is not None:
                        self._pump.post(None)
                    return
                if now - last_frame_at > self.no_frame_fault_s:
                    self._fault(f"no frames for over {self.no_frame_fault_s:g} s")
                continue
            last_frame_at = now
            if self.frozen_fault_s is not None:
                crc = zlib.crc32(frame.image.data if frame.image.flags.c_contiguous else frame.image.tobytes())
                if crc == last_crc:
                    same_since = same_since if same_since is not None else now
                    if now - same_since > self.frozen_fault_s:
                        self._fault(f"image frozen for over {self.frozen_fault_s:g} s")
                        continue
                else:
                    same_since = None
                last_crc = crc
            self._ok("frames arriving")
            try:
                result = self.cascade.decode(frame.image)
            except Exception:  # never let one frame stop the camera
                log.exception("camera %s: frame %d could not be decoded", self.source, frame.index)
                continue
            self.frames_decoded += 1
            if result.late:
                # read by a stage that ran past an earlier frame's deadline: the code was in view
                # a frame ago, and most likely still is
                self.late_reads += len(result.late)
                log.debug("camera %s: %d code(s) read after their frame's deadline", self.source, len(result.late))
            last_t = frame.t
            self._report([*result.codes, *result.late], frame.t)

    def _report(self, codes: list[Decoded], t: float) -> None:
        for code in codes:
            if code.symbology in LINEAR_SYMBOLOGIES and not self.confirmer.confirmed(code.payload, t):
                continue
            if self.suppressor.admit(code.payload, t):
                self._post(Scan(code.payload, code.symbology, self.source, self._clock()))
