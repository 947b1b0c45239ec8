"""Decoding camera frames: three decoders and the cascade that combines them within a budget.

Single decoders (each usable alone, as the benchmark measures them):

* :func:`decode_zbar` — pyzbar (ZBar): QR and 1D codes, fast on clean frames.
* :func:`decode_zxing` — zxing-cpp: QR, PDF417 and 1D codes, rotation and inversion built in.
* :func:`decode_opencv_qr` — OpenCV's QR detector (QR only).

:class:`Cascade` runs cheap stages first and stops at the first stage that reads something;
before each further stage it checks the per-frame deadline against what that stage has cost
on recent frames (a running maximum that decays), and skips what would not fit. So a frame
full of clutter costs at most about the budget, and the camera thread never falls behind for
long: the capture side keeps only the newest frame anyway.

Everything here is pure computation on ``numpy`` images; no threads, no I/O.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import zxingcpp
from pyzbar import pyzbar

log = logging.getLogger(__name__)

#: default per-frame time budget of the cascade, in milliseconds
DEFAULT_BUDGET_MS = 40.0

#: symbologies a gate reads; anything else a decoder reports is dropped
SYMBOLOGIES = frozenset({"qrcode", "code128", "ean13", "itf", "pdf417"})

_ZBAR_NAMES = {"QRCODE": "qrcode", "CODE128": "code128", "EAN13": "ean13", "I25": "itf", "PDF417": "pdf417"}
_ZBAR_SYMBOLS = [
    pyzbar.ZBarSymbol.QRCODE, pyzbar.ZBarSymbol.CODE128, pyzbar.ZBarSymbol.EAN13, pyzbar.ZBarSymbol.I25,
]
_ZX_NAMES = {
    zxingcpp.BarcodeFormat.QRCode: "qrcode", zxingcpp.BarcodeFormat.Code128: "code128",
    zxingcpp.BarcodeFormat.EAN13: "ean13", zxingcpp.BarcodeFormat.ITF: "itf",
    zxingcpp.BarcodeFormat.PDF417: "pdf417",
}
_ZX_FORMATS = zxingcpp.barcode_formats_from_str("QRCode,Code128,EAN13,ITF,PDF417")
#: ITF lengths a gate accepts. ITF has no built-in checksum and ZBar happily reads a partial
#: run of bars as a shorter ITF, so only ITF-14 with a valid GS1 check digit is trusted.
ITF_LENGTHS = frozenset({14})


@dataclass(frozen=True, slots=True)
class Decoded:
    """One code read from a frame: the raw bytes and the symbology."""

    payload: bytes
    symbology: str


Decoder = Callable[[np.ndarray], list[Decoded]]


def to_gray(frame: np.ndarray) -> np.ndarray:
    """A grayscale view of a BGR or gray frame."""
    if frame.ndim == 3:
        return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    return frame


def _plausible(d: Decoded) -> bool:
    if not d.payload:
        return False
    if d.symbology == "itf":
        return len(d.payload) in ITF_LENGTHS and gs1_check_ok(d.payload)
    return d.symbology in SYMBOLOGIES


def gs1_check_ok(digits: bytes) -> bool:
    """Whether the last digit is the GS1 mod-10 check digit of the others."""
    if not digits.isdigit() or len(digits) < 2:
        return False
    body = digits[:-1]
    total = sum((d - 48) * (1 if i % 2 else 3) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == digits[-1] - 48


def _unique(found: list[Decoded]) -> list[Decoded]:
    seen: set[tuple[bytes, str]] = set()
    out = []
    for d in found:
        if _plausible(d) and (d.payload, d.symbology) not in seen:
            seen.add((d.payload, d.symbology))
            out.append(d)
    return out


def decode_zbar(frame: np.ndarray) -> list[Decoded]:
    """pyzbar on the frame as given (grayscale)."""
    results = pyzbar.decode(to_gray(frame), symbols=_ZBAR_SYMBOLS)
    return _unique([Decoded(r.data, _ZBAR_NAMES.get(r.type, r.type.lower())) for r in results])


def _zxing(gray: np.ndarray, *, rotate: bool, invert: bool, downscale: bool = True,
           binarizer: zxingcpp.Binarizer = zxingcpp.Binarizer.LocalAverage) -> list[Decoded]:
    results = zxingcpp.read_barcodes(
        gray, formats=_ZX_FORMATS, try_rotate=rotate, try_invert=invert, try_downscale=downscale,
        text_mode=zxingcpp.TextMode.Plain, binarizer=binarizer,
    )
    return _unique([Decoded(bytes(r.bytes), _ZX_NAMES.get(r.format, str(r.format))) for r in results if r.valid])


def decode_zxing(frame: np.ndarray) -> list[Decoded]:
    """zxing-cpp with its own defaults (rotation, inversion, downscaling all tried)."""
    return _zxing(to_gray(frame), rotate=True, invert=True)


_qr_detector: cv2.QRCodeDetector | None = None


def decode_opencv_qr(frame: np.ndarray) -> list[Decoded]:
    """OpenCV's QR detector and decoder (QR codes only)."""
    global _qr_detector
    if _qr_detector is None:
        _qr_detector = cv2.QRCodeDetector()
    try:
        ok, texts, _points, _ = _qr_detector.detectAndDecodeMulti(to_gray(frame))
    except cv2.error as exc:  # odd frames can trip its assertions; that frame reads as nothing
        log.debug("opencv qr: %s", exc)
        return []
    if not ok:
        return []
    return _unique([Decoded(t.encode("latin-1", "replace"), "qrcode") for t in texts if t])


# -- the cascade -------------------------------------------------------------------------------

def _stage_zxing_fast(gray: np.ndarray) -> list[Decoded]:
    return _zxing(gray, rotate=False, invert=False)


def _stage_zbar(gray: np.ndarray) -> list[Decoded]:
    return decode_zbar(gray)


def _stage_zxing_full(gray: np.ndarray) -> list[Decoded]:
    # rotation (1D codes at steep angles) and inversion (dark-mode phone screens)
    return _zxing(gray, rotate=True, invert=True)


def _stage_inverted(gray: np.ndarray) -> list[Decoded]:
    # dark-mode phone screens: light bars on dark; zxing's own inversion covers matrix codes only
    return _zxing(cv2.bitwise_not(gray), rotate=True, invert=False)


def dominant_angle(gray: np.ndarray) -> float:
    """How far to turn ``gray`` (degrees, in ``cv2.getRotationMatrix2D``'s sense) to make its
    main edges vertical: from the doubled-angle average of the gradient (the structure tensor),
    so the two edges of a bar reinforce instead of cancelling."""
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    jxx, jyy, jxy = float((gx * gx).sum()), float((gy * gy).sum()), float((gx * gy).sum())
    return float(np.degrees(0.5 * np.arctan2(2 * jxy, jxx - jyy)))


def _stage_deskew(gray: np.ndarray) -> list[Decoded]:
    # 1D codes and PDF417 held at an angle: zxing reads rows (and 90°), not 10–45°. Find the
    # bars' orientation in the busiest region and turn them upright.
    roi = region_of_interest(gray)
    if roi is None:
        return []
    x, y, w, h = roi
    pad = max(w, h) // 4
    x0, y0 = max(0, x - pad), max(0, y - pad)
    crop = gray[y0:y + h + pad, x0:x + w + pad]
    angle = dominant_angle(crop)
    if abs(angle) < 4 or abs(abs(angle) - 90) < 4:
        return []
    ch, cw = crop.shape
    m = cv2.getRotationMatrix2D((cw / 2, ch / 2), angle, 1.0)
    upright = cv2.warpAffine(crop, m, (cw, ch), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return _zxing(upright, rotate=True, invert=False)


def _stage_contrast(gray: np.ndarray) -> list[Decoded]:
    # low contrast, glare and creases: local histogram equalisation, then a global histogram binarizer
    clahe = cv2.createCLAHE(clipLimit=3.0, tileGridSize=(8, 8)).apply(gray)
    return _zxing(clahe, rotate=True, invert=True, binarizer=zxingcpp.Binarizer.GlobalHistogram) or decode_zbar(clahe)


def _stage_denoise(gray: np.ndarray) -> list[Decoded]:
    # sensor noise and moiré: a median filter removes both before thresholding
    smooth = cv2.medianBlur(gray, 3)
    return _zxing(smooth, rotate=True, invert=True) or decode_zbar(smooth)


def _stage_roi_upscale(gray: np.ndarray) -> list[Decoded]:
    # small codes: find the busiest region (dense edges), cut it out and enlarge it
    roi = region_of_interest(gray)
    if roi is None:
        return []
    x, y, w, h = roi
    crop = gray[y:y + h, x:x + w]
    scale = min(3.0, ROI_SIDE / max(w, h))
    if scale > 1.1:
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    elif scale < 1.0:  # the region is most of the frame: nothing to gain from full size
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return _zxing(crop, rotate=True, invert=True, downscale=False) or decode_zbar(crop)


def _stage_sharpen(gray: np.ndarray) -> list[Decoded]:
    # blur: unsharp mask, then zbar (whose scanner likes crisp edges) and zxing
    soft = cv2.GaussianBlur(gray, (0, 0), 2.0)
    sharp = cv2.addWeighted(gray, 1.8, soft, -0.8, 0)
    return decode_zbar(sharp) or _zxing(sharp, rotate=True, invert=True)


#: longest side of the enlarged (or reduced) region the ROI stage decodes
ROI_SIDE = 720


def region_of_interest(gray: np.ndarray) -> tuple[int, int, int, int] | None:
    """The bounding box (x, y, w, h) of the densest patch of strong edges, or None."""
    h, w = gray.shape
    small_scale = 320 / max(h, w)
    small = cv2.resize(gray, None, fx=small_scale, fy=small_scale, interpolation=cv2.INTER_AREA)
    grad = cv2.morphologyEx(small, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    _, mask = cv2.threshold(grad, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8))
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    best = max(contours, key=cv2.contourArea)
    bx, by, bw, bh = cv2.boundingRect(best)
    if bw * bh < 100:
        return None
    margin = 6
    x0 = max(0, int((bx - margin) / small_scale))
    y0 = max(0, int((by - margin) / small_scale))
    x1 = min(w, int((bx + bw + margin) / small_scale))
    y1 = min(h, int((by + bh + margin) / small_scale))
    return x0, y0, x1 - x0, y1 - y0


#: how fast a stage's cost estimate forgets an expensive frame (per frame it runs or is skipped)
COST_DECAY = 0.97
#: a stage starts only if ``cost * COST_MARGIN`` fits in the time left
COST_MARGIN = 1.4


@dataclass
class Stage:
    """One step of the cascade, with a running estimate of what it costs."""

    name: str
    run: Callable[[np.ndarray], list[Decoded]]
    cost_s: float = 0.0  # decaying maximum of recent run times
    floor_s: float = 0.0  # calibrated cost: the estimate never decays below it
    #: work on a copy reduced to this longest side (preprocessing stages: a 720p frame costs
    #: what a 480p one does); None means full resolution
    max_side: int | None = None
    runs: int = 0
    hits: int = 0
    skips: int = 0

    def note(self, elapsed: float) -> None:
        self.runs += 1
        self.cost_s = max(elapsed, self.cost_s * COST_DECAY, self.floor_s)


#: longest side the preprocessing stages work at
WORK_SIDE = 800


def _reduced(gray: np.ndarray, max_side: int | None, cache: dict[int, np.ndarray]) -> np.ndarray:
    side = max(gray.shape[:2])
    if max_side is None or side <= max_side:
        return gray
    if max_side not in cache:
        f = max_side / side
        cache[max_side] = cv2.resize(gray, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    return cache[max_side]


def default_stages() -> list[Stage]:
    return [
        Stage("zxing_fast", _stage_zxing_fast),
        Stage("zxing_full", _stage_zxing_full, max_side=960),
        Stage("inverted", _stage_inverted, max_side=WORK_SIDE),
        Stage("deskew", _stage_deskew, max_side=WORK_SIDE),
        Stage("roi_upscale", _stage_roi_upscale),
        Stage("zbar", _stage_zbar, max_side=WORK_SIDE),
        Stage("contrast", _stage_contrast, max_side=WORK_SIDE),
        Stage("sharpen", _stage_sharpen, max_side=WORK_SIDE),
        Stage("denoise", _stage_denoise, max_side=WORK_SIDE),
    ]


@dataclass
class CascadeResult:
    codes: list[Decoded]
    elapsed_s: float
    stages_run: tuple[str, ...]
    stages_skipped: tuple[str, ...] = ()


@dataclass
class Cascade:
    """Fast path first, then preprocessing and the second decoder, inside ``budget_ms``.

    The first stage always runs (a frame must get a first look). Every later stage runs only
    if the time left exceeds that stage's recent cost, so the frame finishes within the budget
    unless a single stage's cost jumps above everything it has cost before.
    ``clock`` is injectable for tests.
    """

    budget_ms: float = DEFAULT_BUDGET_MS
    stages: list[Stage] = field(default_factory=default_stages)
    clock: Callable[[], float] = time.perf_counter
    max_side: int = 1280  # frames larger than this are reduced first (a 4K stream stays bounded)

    def __post_init__(self) -> None:
        if not self.budget_ms > 0:
            raise ValueError("budget_ms must be positive")

    def calibrate(self, shape: tuple[int, ...], *, seed: int = 0) -> None:
        """Seed every stage's cost with its time on a worst-case frame of ``shape``.

        Without it the first frame would run every stage unmeasured. Dense noise with some
        structure keeps the decoders busiest (many candidate edges, nothing to find).
        """
        rng = np.random.default_rng(seed)
        h, w = shape[:2]
        f = min(1.0, self.max_side / max(h, w))
        h, w = int(h * f), int(w * f)
        frame = rng.integers(0, 256, (h, w), dtype=np.uint8)
        frame = cv2.GaussianBlur(frame, (3, 3), 0)
        cv2.rectangle(frame, (w // 4, h // 4), (3 * w // 4, 3 * h // 4), 255, 3)
        cache: dict[int, np.ndarray] = {}
        for stage in self.stages:
            # the fastest of three runs: what the stage costs, not what a busy moment cost
            runs = []
            for _ in range(3):
                t = self.clock()
                try:
                    stage.run(_reduced(frame, stage.max_side, cache))
                except Exception:
                    log.exception("decode stage %s failed during calibration", stage.name)
                runs.append(self.clock() - t)
            stage.floor_s = min(runs)
            stage.cost_s = max(stage.cost_s, stage.floor_s)

    def decode(self, frame: np.ndarray) -> CascadeResult:
        start = self.clock()
        deadline = start + self.budget_ms / 1000
        gray = to_gray(frame)
        side = max(gray.shape[:2])
        if side > self.max_side:
            f = self.max_side / side
            gray = cv2.resize(gray, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        ran: list[str] = []
        skipped: list[str] = []
        cache: dict[int, np.ndarray] = {}
        for i, stage in enumerate(self.stages):
            now = self.clock()
            if i > 0 and now + stage.cost_s * COST_MARGIN > deadline:
                stage.skips += 1
                # Skipping still lets the estimate decay, so a stage that once ran long is
                # tried again later rather than never.
                stage.cost_s = max(stage.cost_s * COST_DECAY, stage.floor_s)
                skipped.append(stage.name)
                continue
            try:
                found = stage.run(_reduced(gray, stage.max_side, cache))
            except Exception:  # a decoder bug on one frame must not stop the camera
                log.exception("decode stage %s failed on a frame", stage.name)
                found = []
            stage.note(self.clock() - now)
            ran.append(stage.name)
            if found:
                stage.hits += 1
                return CascadeResult(found, self.clock() - start, tuple(ran), tuple(skipped))
        return CascadeResult([], self.clock() - start, tuple(ran), tuple(skipped))

    def __call__(self, frame: np.ndarray) -> list[Decoded]:
        return self.decode(frame).codes


SINGLE_DECODERS: dict[str, Decoder] = {
    "pyzbar": decode_zbar,
    "zxing": decode_zxing,
    "opencv_qr": decode_opencv_qr,
}


def stage_names(stages: Sequence[Stage]) -> list[str]:
    return [s.name for s in stages]
