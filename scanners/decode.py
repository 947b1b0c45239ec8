"""Decoding camera frames: two decoders, their preprocessing stages, and the cascade that runs them
within a per-frame time budget.

Single decoders (each usable alone, as the benchmark measures them):

* :func:`decode_zxing` — zxing-cpp: QR, PDF417 and 1D codes, rotation and inversion built in,
  and the character set of text honoured (ECI, or its own guess without one).
* :func:`decode_zbar` — ZBar through pyzbar's ctypes binding: QR and 1D codes.
* :func:`decode_opencv_qr` — OpenCV's QR detector (QR only; measured, not used in the cascade).

:class:`Cascade` runs two *lanes* of stages at once, one per core: a zxing-cpp lane (the plain
decoder, then rotation/inversion, dark-mode 1D, de-skewing, small-code enlargement, contrast
and denoise) and a ZBar lane (ZBar, then ZBar on sharpened and contrast-stretched copies).
Both libraries release the GIL while they decode, so the lanes really run in parallel. The
frame ends at the first plausible read from either lane, or when both lanes have nothing left
that fits, or at the deadline — whichever is first. A stage cannot be interrupted, but the
caller does not wait for it: a stage still running at the deadline finishes in the background
and what it reads is handed over with the next frame (:attr:`CascadeResult.late`), so one slow
frame (a large PDF417 photo costs zxing-cpp 250 ms and more) never blocks the lane.

Frames larger than 1280 px are reduced first. Within a lane the first stage always runs on a
fresh frame (on a copy made smaller, down to 640 px, if its estimate would not fit in 60% of
the time left); every later stage runs only if its estimated cost fits in the time left. The
ZBar lane waits up to a quarter of the budget for zxing-cpp's first look, which reads most
frames in a few milliseconds. Estimates adapt: a moving average of the stage's cost per pixel plus
twice its moving mean deviation (about a 95th percentile), so a busy moment raises them and a
quiet one lowers them again. Stages after the first are ordered by measured hits per
millisecond, so the camera's own conditions (dark-mode phones at one gate, glare at another)
decide what is tried first.

Text: a code's payload is its text encoded as UTF-8 when the code holds text (the character
set from its ECI header or zxing-cpp's detection), or its bytes as they are when it holds
binary data. ZBar ignores ECI and guesses character sets, so a QR that only ZBar read and
whose text is not ASCII is re-read with zxing-cpp at the place ZBar found it; if that fails
the ZBar text is kept and the frame is flagged (``charset_guessed``).

What a gate accepts is configuration (:class:`~scanners.options.DecodeOptions`): the
symbologies, the ITF lengths and check digit, and whether the lanes get threads. Defaults are strict: ITF only as ITF-14 with a GS1 check digit,
because ITF has no checksum of its own and a partial run of bars reads as a shorter ITF.
"""
from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from ctypes import c_void_p, cast
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import zxingcpp
from pyzbar import pyzbar  # type: ignore[import-untyped]
from pyzbar.wrapper import (  # type: ignore[import-untyped]
    ZBarConfig,
    ZBarSymbol,
    zbar_image_scanner_set_config,
    zbar_image_set_data,
    zbar_image_set_format,
    zbar_image_set_size,
    zbar_scan_image,
)

from scanners.options import (
    DEFAULT_SYMBOLOGIES,
    ITF_LENGTHS,
    KNOWN_SYMBOLOGIES,
    DecodeOptions,
    gs1_check_ok,
)

__all__ = ["DEFAULT_SYMBOLOGIES", "ITF_LENGTHS", "KNOWN_SYMBOLOGIES", "DecodeOptions", "gs1_check_ok"]

log = logging.getLogger(__name__)

#: default per-frame time budget of the cascade, in milliseconds
DEFAULT_BUDGET_MS = 40.0

#: kept for callers of the earlier API: the default set
SYMBOLOGIES = DEFAULT_SYMBOLOGIES

_ZX_FORMAT = {
    "qrcode": zxingcpp.BarcodeFormat.QRCode, "pdf417": zxingcpp.BarcodeFormat.PDF417,
    "code128": zxingcpp.BarcodeFormat.Code128, "code39": zxingcpp.BarcodeFormat.Code39,
    "ean13": zxingcpp.BarcodeFormat.EAN13, "ean8": zxingcpp.BarcodeFormat.EAN8, "itf": zxingcpp.BarcodeFormat.ITF,
}
_ZX_NAMES = {v: k for k, v in _ZX_FORMAT.items()}
# ZBar's PDF417 decoder is incomplete (it finds the symbol but does not decode it): never asked for
_ZBAR_SYMBOL = {
    "qrcode": ZBarSymbol.QRCODE, "code128": ZBarSymbol.CODE128, "code39": ZBarSymbol.CODE39,
    "ean13": ZBarSymbol.EAN13, "ean8": ZBarSymbol.EAN8, "itf": ZBarSymbol.I25,
}
_ZBAR_NAMES = {"QRCODE": "qrcode", "CODE128": "code128", "CODE39": "code39", "EAN13": "ean13", "EAN8": "ean8",
               "I25": "itf", "PDF417": "pdf417"}


STRICT = DecodeOptions(decode_threads=1)


def _zxing_formats(options: DecodeOptions) -> zxingcpp.BarcodeFormats:
    return zxingcpp.barcode_formats_from_str(",".join(_ZX_FORMAT[s].name for s in sorted(options.symbologies)))


def _zbar_symbols(options: DecodeOptions) -> list[ZBarSymbol]:
    return [_ZBAR_SYMBOL[s] for s in sorted(options.symbologies) if s in _ZBAR_SYMBOL]


@dataclass(frozen=True, slots=True)
class Decoded:
    """One code read from a frame.

    ``payload``: the text as UTF-8 for codes that hold text, the raw bytes for binary content.
    ``text``: the text (None for binary content). ``charset_guessed``: ZBar's guess of a
    non-ASCII character set that zxing-cpp could not confirm.
    """

    payload: bytes
    symbology: str
    text: str | None = None
    charset_guessed: bool = False


Decoder = Callable[[np.ndarray], list["Decoded"]]


def to_gray(frame: np.ndarray) -> np.ndarray:
    """A grayscale view of a BGR or gray frame."""
    if frame.ndim == 3:
        return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    return frame


def _unique(found: list[Decoded], options: DecodeOptions) -> list[Decoded]:
    seen: set[tuple[bytes, str]] = set()
    out = []
    for d in found:
        if options.plausible(d) and (d.payload, d.symbology) not in seen:
            seen.add((d.payload, d.symbology))
            out.append(d)
    return out


# -- zxing-cpp ---------------------------------------------------------------------------------

def _from_zxing(r: zxingcpp.Barcode) -> Decoded:
    symbology = _ZX_NAMES.get(r.format, str(r.format))
    if r.content_type == zxingcpp.ContentType.Binary:
        return Decoded(bytes(r.bytes), symbology)
    if r.content_type == zxingcpp.ContentType.UnknownECI:
        # an ECI zxing-cpp has no table for: keep the bytes rather than a wrong text
        log.warning("zxing-cpp: %s with an unknown ECI; reporting its bytes", symbology)
        return Decoded(bytes(r.bytes), symbology)
    return Decoded(r.text.encode("utf-8", "surrogatepass"), symbology, r.text)


def _zxing(gray: np.ndarray, options: DecodeOptions, *, rotate: bool, invert: bool, downscale: bool = True,
           binarizer: zxingcpp.Binarizer = zxingcpp.Binarizer.LocalAverage) -> list[Decoded]:
    results = zxingcpp.read_barcodes(
        gray, formats=_zxing_formats(options), try_rotate=rotate, try_invert=invert, try_downscale=downscale,
        text_mode=zxingcpp.TextMode.Plain, binarizer=binarizer,
    )
    return _unique([_from_zxing(r) for r in results if r.valid], options)


def decode_zxing(frame: np.ndarray, options: DecodeOptions = STRICT) -> list[Decoded]:
    """zxing-cpp with its own defaults (rotation, inversion, downscaling all tried)."""
    return _zxing(to_gray(frame), options, rotate=True, invert=True)


# -- ZBar --------------------------------------------------------------------------------------
# pyzbar's decode() cannot set ZBar's options (scan density, lengths); these few lines call the
# same libzbar functions through pyzbar's ctypes wrapper, with the options set.

def _zbar_raw(gray: np.ndarray, options: DecodeOptions, density: int = 1) -> list[Any]:
    gray = np.ascontiguousarray(gray)
    height, width = gray.shape[:2]
    pixels = gray.tobytes()
    with pyzbar._image_scanner() as scanner:
        zbar_image_scanner_set_config(scanner, 0, ZBarConfig.CFG_ENABLE, 0)
        for symbol in _zbar_symbols(options):
            zbar_image_scanner_set_config(scanner, symbol, ZBarConfig.CFG_ENABLE, 1)
        if "itf" in options.symbologies:  # ZBar's own ITF length window, from the configured lengths
            zbar_image_scanner_set_config(scanner, ZBarSymbol.I25, ZBarConfig.CFG_MIN_LEN, min(options.itf_lengths))
            zbar_image_scanner_set_config(scanner, ZBarSymbol.I25, ZBarConfig.CFG_MAX_LEN, max(options.itf_lengths))
        if density != 1:
            zbar_image_scanner_set_config(scanner, 0, ZBarConfig.CFG_X_DENSITY, density)
            zbar_image_scanner_set_config(scanner, 0, ZBarConfig.CFG_Y_DENSITY, density)
        with pyzbar._image() as image:
            zbar_image_set_format(image, pyzbar._FOURCC["L800"])
            zbar_image_set_size(image, width, height)
            zbar_image_set_data(image, cast(pixels, c_void_p), len(pixels), None)  # type: ignore[arg-type]
            if zbar_scan_image(scanner, image) < 0:
                raise RuntimeError("libzbar refused the image format")
            return list(pyzbar._decode_symbols(pyzbar._symbols_for_image(image)))


def _zbar_text_checked(gray: np.ndarray, r: Any, options: DecodeOptions) -> Decoded:
    """A ZBar read as :class:`Decoded`; non-ASCII QR text is confirmed by zxing-cpp where ZBar found it."""
    symbology = _ZBAR_NAMES.get(r.type, str(r.type).lower())
    data: bytes = r.data
    if symbology != "qrcode" or data.isascii():
        return Decoded(data, symbology, data.decode("latin-1") if data.isascii() else None)
    x, y, w, h = r.rect
    pad = max(w, h) // 4 + 8
    crop = gray[max(0, y - pad):y + h + pad, max(0, x - pad):x + w + pad]
    if crop.size:
        for scale in (1.0, 2.0):
            img = crop if scale == 1.0 else cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
            again = [d for d in _zxing(img, options, rotate=True, invert=True) if d.symbology == "qrcode"]
            if again:
                return again[0]
    try:
        text: str | None = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    log.warning("ZBar read a non-ASCII QR that zxing-cpp could not confirm; its character set is ZBar's guess")
    return Decoded(data, symbology, text, charset_guessed=True)


def _zbar(gray: np.ndarray, options: DecodeOptions, density: int = 1) -> list[Decoded]:
    return _unique([_zbar_text_checked(gray, r, options) for r in _zbar_raw(gray, options, density)], options)


def decode_zbar(frame: np.ndarray, options: DecodeOptions = STRICT) -> list[Decoded]:
    """ZBar on the frame as given (grayscale), every line scanned."""
    return _zbar(to_gray(frame), options)


_qr_detector: cv2.QRCodeDetector | None = None


def decode_opencv_qr(frame: np.ndarray, options: DecodeOptions = STRICT) -> list[Decoded]:
    """OpenCV's QR detector and decoder (QR codes only)."""
    global _qr_detector
    if "qrcode" not in options.symbologies:
        return []
    if _qr_detector is None:
        _qr_detector = cv2.QRCodeDetector()
    try:
        ok, texts, _points, _ = _qr_detector.detectAndDecodeMulti(to_gray(frame))
    except cv2.error as exc:  # odd frames can trip its assertions; that frame reads as nothing
        log.debug("opencv qr: %s", exc)
        return []
    if not ok:
        return []
    return _unique([Decoded(t.encode("utf-8"), "qrcode", t) for t in texts if t], options)


# -- stages ------------------------------------------------------------------------------------

StageFn = Callable[[np.ndarray, DecodeOptions], list[Decoded]]


def _stage_zxing_fast(gray: np.ndarray, o: DecodeOptions) -> list[Decoded]:
    return _zxing(gray, o, rotate=False, invert=False)


def _stage_zxing_full(gray: np.ndarray, o: DecodeOptions) -> list[Decoded]:
    # rotation (1D codes at 90°) and inversion (dark-mode phone screens, matrix codes)
    return _zxing(gray, o, rotate=True, invert=True)


#: symbologies whose check is too weak to trust a read of an inverted image on one decoder's word
WEAK_CHECK = frozenset({"ean13", "ean8", "itf", "code39"})


def _stage_inverted(gray: np.ndarray, o: DecodeOptions) -> list[Decoded]:
    # dark-mode phone screens: light bars on dark; zxing's own inversion covers matrix codes only.
    # A railing inverted is a fine field of bars: an EAN or ITF read here (one mod-10 digit)
    # counts only if ZBar reads the same number in the same inverted image.
    inverted = cv2.bitwise_not(gray)
    found = _zxing(inverted, o, rotate=True, invert=False)
    if any(d.symbology in WEAK_CHECK for d in found):
        confirmed = {(d.payload, d.symbology) for d in _zbar(inverted, o)}
        found = [d for d in found if d.symbology not in WEAK_CHECK or (d.payload, d.symbology) in confirmed]
    return found


def dominant_angle(gray: np.ndarray) -> float:
    """How far to turn ``gray`` (degrees, in ``cv2.getRotationMatrix2D``'s sense) to make its
    main edges vertical: from the doubled-angle average of the gradient (the structure tensor),
    so the two edges of a bar reinforce instead of cancelling."""
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    jxx, jyy, jxy = float((gx * gx).sum()), float((gy * gy).sum()), float((gx * gy).sum())
    return float(np.degrees(0.5 * np.arctan2(2 * jxy, jxx - jyy)))


def _stage_deskew(gray: np.ndarray, o: DecodeOptions) -> list[Decoded]:
    # 1D codes and PDF417 held at an angle: zxing reads rows (and 90°), not 5–45°. Find the
    # bars' orientation in the busiest region and turn them upright.
    roi = region_of_interest(gray)
    if roi is None:
        return []
    x, y, w, h = roi
    pad = max(w, h) // 4
    x0, y0 = max(0, x - pad), max(0, y - pad)
    crop = gray[y0:y + h + pad, x0:x + w + pad]
    angle = dominant_angle(crop)
    if abs(angle) < 2.5 or abs(abs(angle) - 90) < 2.5:
        return []
    ch, cw = crop.shape
    m = cv2.getRotationMatrix2D((cw / 2, ch / 2), angle, 1.0)
    upright = cv2.warpAffine(crop, m, (cw, ch), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return _zxing(upright, o, rotate=True, invert=True)


def _stage_contrast(gray: np.ndarray, o: DecodeOptions) -> list[Decoded]:
    # low contrast, glare and creases: local histogram equalisation, then a global histogram binarizer
    clahe = cv2.createCLAHE(clipLimit=3.0, tileGridSize=(8, 8)).apply(gray)
    return _zxing(clahe, o, rotate=True, invert=True, binarizer=zxingcpp.Binarizer.GlobalHistogram)


def _stage_denoise(gray: np.ndarray, o: DecodeOptions) -> list[Decoded]:
    # sensor noise and moiré: a median filter removes both before thresholding
    return _zxing(cv2.medianBlur(gray, 3), o, rotate=True, invert=True)


#: longest side of the enlarged (or reduced) region the ROI stage decodes
ROI_SIDE = 720


def _stage_roi_upscale(gray: np.ndarray, o: DecodeOptions) -> list[Decoded]:
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
    return _zxing(crop, o, rotate=True, invert=True, downscale=False) or _zbar(crop, o)


def _stage_zbar(gray: np.ndarray, o: DecodeOptions) -> list[Decoded]:
    return _zbar(gray, o)


def _stage_zbar_fast(gray: np.ndarray, o: DecodeOptions) -> list[Decoded]:
    # every second line each way: half of ZBar's cost, and most of its reads
    return _zbar(gray, o, density=2)


def _stage_zbar_sharpen(gray: np.ndarray, o: DecodeOptions) -> list[Decoded]:
    # blur: unsharp mask; ZBar's edge detector likes crisp edges
    soft = cv2.GaussianBlur(gray, (0, 0), 2.0)
    return _zbar(cv2.addWeighted(gray, 1.8, soft, -0.8, 0), o)


def _stage_zbar_contrast(gray: np.ndarray, o: DecodeOptions) -> list[Decoded]:
    # low light and dim screens: stretch local contrast (and light-on-dark bars turned dark-on-light)
    clahe = cv2.createCLAHE(clipLimit=3.0, tileGridSize=(8, 8)).apply(gray)
    return _zbar(clahe, o) or _zbar(cv2.bitwise_not(clahe), o)


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


#: weight of the newest run in a stage's moving cost average
COST_ALPHA = 0.15
#: a stage's estimate is its mean cost plus this many mean deviations (~ a 95th percentile)
COST_SPREAD = 2.0
#: per skipped frame, a stage's estimate shrinks by this factor
SKIP_DECAY = 0.95


@dataclass
class Stage:
    """One step of a lane, with what it has cost and found so far.

    ``run(gray, options)`` returns the codes it read. ``max_side`` reduces its input first
    (preprocessing stages: a 720p frame then costs what a 480p one does); None: the frame as
    the cascade has it. ``cost_s`` seeds the estimate (tests; otherwise learned).
    """

    name: str
    run: StageFn
    max_side: int | None = None
    cost_s: float = 0.0
    runs: int = 0
    hits: int = 0
    skips: int = 0
    late: int = 0
    #: moving average and mean deviation of the cost per input pixel
    per_px_s: float = 0.0
    dev_per_px_s: float = 0.0

    def estimate(self, pixels: int) -> float:
        """Seconds this stage is expected to take on ``pixels`` input pixels (0 before its first run)."""
        if self.runs == 0:
            return self.cost_s
        return (self.per_px_s + COST_SPREAD * self.dev_per_px_s) * pixels

    def skipped(self) -> None:
        """Not run for lack of time: let the estimate shrink, so one run during a busy moment
        does not bar the stage for good (a stage that really is too dear is retried now and then,
        and its next run puts the estimate back up)."""
        self.skips += 1
        if self.runs:
            self.per_px_s *= SKIP_DECAY
            self.dev_per_px_s *= SKIP_DECAY

    def note(self, elapsed: float, pixels: int) -> None:
        per_px = elapsed / max(1, pixels)
        if self.runs == 0:
            self.per_px_s, self.dev_per_px_s = per_px, per_px / 4
        else:
            self.dev_per_px_s += COST_ALPHA * (abs(per_px - self.per_px_s) - self.dev_per_px_s)
            self.per_px_s += COST_ALPHA * (per_px - self.per_px_s)
        self.runs += 1
        self.cost_s = elapsed

    def value(self, pixels: int) -> float:
        """Expected reads per second of its cost: (hits + 1) / (runs + 2) over the estimate."""
        return (self.hits + 1) / (self.runs + 2) / max(1e-5, self.estimate(pixels))


def zxing_lane() -> list[Stage]:
    """zxing-cpp: upright codes first (a third of the full cost, ~95% of its reads), then the rest."""
    return [
        Stage("zxing_fast", _stage_zxing_fast),
        Stage("zxing_full", _stage_zxing_full),
        Stage("deskew", _stage_deskew, max_side=WORK_SIDE),
        Stage("roi_upscale", _stage_roi_upscale),
        Stage("inverted", _stage_inverted, max_side=WORK_SIDE),
        Stage("contrast", _stage_contrast, max_side=WORK_SIDE),
        Stage("denoise", _stage_denoise, max_side=WORK_SIDE),
    ]


def zbar_lane() -> list[Stage]:
    """ZBar: half the scan lines on a reduced frame first, then every line, then preprocessed copies."""
    return [
        Stage("zbar_fast", _stage_zbar_fast, max_side=ZBAR_FAST_SIDE),
        Stage("zbar", _stage_zbar),
        Stage("zbar_sharpen", _stage_zbar_sharpen, max_side=WORK_SIDE),
        Stage("zbar_contrast", _stage_zbar_contrast, max_side=WORK_SIDE),
    ]


#: longest side the preprocessing stages work at
WORK_SIDE = 800
#: longest side ZBar's first look works at (its cost grows with every scanned line)
ZBAR_FAST_SIDE = 960
#: a lane that picks a frame up later than this share of the budget treats its first stage like the rest
LATE_START = 0.25
#: a lane's first stage is given a smaller copy of the frame if its estimate exceeds this share
#: of the time left (never smaller than FIRST_LOOK_MIN_SIDE)
FIRST_LOOK_SHARE = 0.6
FIRST_LOOK_MIN_SIDE = 640
#: how long (share of the budget) later lanes wait for the first lane's first look
SECOND_LANE_HOLD = 0.25
#: the caller stops waiting this long before the deadline: collecting the result and handing it
#: back take time too, and a thread woken on time may wait for a core (measured at load 2-4 on
#: two cores: p99 40.9 ms over a 40 ms budget without it, 40.4 ms with 2 ms)
RETURN_MARGIN_S = 0.004
#: weight of the newest wake-up delay in the caller's moving estimate of it
WAKE_ALPHA = 0.2
#: frames larger than this are reduced first, so no stage sees more pixels (a 4K stream stays bounded)
MAX_SIDE = 1280


def default_stages() -> list[list[Stage]]:
    """The two lanes: zxing-cpp and its preprocessing, ZBar and its preprocessing."""
    return [zxing_lane(), zbar_lane()]


def _reduced(gray: np.ndarray, max_side: int | None, cache: dict[int, np.ndarray], lock: threading.Lock) -> np.ndarray:
    side = max(gray.shape[:2])
    if max_side is None or side <= max_side:
        return gray
    with lock:
        if max_side not in cache:
            f = max_side / side
            cache[max_side] = cv2.resize(gray, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        return cache[max_side]


@dataclass
class CascadeResult:
    codes: list[Decoded]
    elapsed_s: float
    stages_run: tuple[str, ...]
    stages_skipped: tuple[str, ...] = ()
    #: codes that a stage of an earlier frame read after that frame's deadline
    late: list[Decoded] = field(default_factory=list)
    #: lanes still busy with an earlier frame when this one began
    lanes_busy: tuple[str, ...] = ()
    charset_guessed: bool = False


class _Frame:
    """One frame's shared state between the caller and the lanes."""

    def __init__(self, gray: np.ndarray, start: float, deadline: float, lanes: int) -> None:
        self.gray = gray
        self.start = start
        self.deadline = deadline
        self.cond = threading.Condition()
        self.cache: dict[int, np.ndarray] = {}
        self.cache_lock = threading.Lock()
        self.codes: list[Decoded] = []
        self.pending = lanes
        self.closed = False  # the caller has returned: later finds are late
        self.ran: list[str] = []
        self.skipped: list[str] = []
        self.first_look_done = False  # the first lane's first stage has finished
        self.busy_lanes: set[int] = set()  # lanes still on an earlier frame when this one came

    def input(self, stage: Stage, fit_s: float | None = None) -> np.ndarray:
        """The stage's input; with ``fit_s``, reduced further (to no less than FIRST_LOOK_MIN_SIDE)
        so that the stage's estimate fits in ``fit_s``."""
        max_side = stage.max_side
        if fit_s is not None and stage.runs:
            side = max(self.gray.shape[:2]) if max_side is None else min(max_side, max(self.gray.shape[:2]))
            h, w = self.gray.shape[:2]
            f = side / max(h, w)
            pixels = h * w * f * f
            expected = stage.estimate(int(pixels))
            if expected > fit_s:
                shrink = (fit_s / expected) ** 0.5 if fit_s > 0 else 0.0
                fitted = max(FIRST_LOOK_MIN_SIDE, int(side * shrink) // 64 * 64)
                if fitted < side:
                    max_side = fitted
        return _reduced(self.gray, max_side, self.cache, self.cache_lock)


class _LaneWorker:
    """A thread that runs one lane's stages on the newest frame it has been given."""

    def __init__(self, cascade: Cascade, index: int) -> None:
        self.cascade, self.index = cascade, index
        self.cond = threading.Condition()
        self.frame: _Frame | None = None
        self.busy = False
        self.stopped = False
        self.thread = threading.Thread(target=self._loop, name=f"decode-lane-{index}", daemon=True)
        self.thread.start()

    def submit(self, frame: _Frame) -> bool:
        """Hand over a frame; False if the lane is still on an earlier one (it will take this one after)."""
        with self.cond:
            was_busy = self.busy
            replaced, self.frame = self.frame, frame
            self.cond.notify()
        if replaced is not None:  # an earlier frame never started on this lane: it has nothing to add
            self.cascade._lane_finished(replaced)
        return not was_busy

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify()

    def _loop(self) -> None:
        while True:
            with self.cond:
                while self.frame is None and not self.stopped:
                    self.cond.wait()
                if self.stopped:
                    return
                frame, self.frame = self.frame, None
                assert frame is not None
                self.busy = True
            try:
                self.cascade._run_lane(self.index, frame)
            except Exception:  # a bug here must not end the lane: the camera would lose a core for good
                self.cascade.lane_errors += 1
                log.exception("decode lane %d failed on a frame; it goes on with the next", self.index)
            finally:
                with self.cond:
                    self.busy = False
                    self.cond.notify_all()


class Cascade:
    """Two lanes of decode stages, run at once, within ``budget_ms`` per frame.

    ``stages`` is a list of lanes (each a list of :class:`Stage`); a flat list is one lane.
    ``threads``: 2 runs the lanes on their own threads (the caller waits at most until the
    deadline); 1 runs them one after the other in the caller's thread (then a stage already
    started can overrun the deadline). ``adaptive_order`` orders each lane's later stages by
    measured hits per millisecond. ``clock`` is injectable for tests (single-thread mode).
    """

    def __init__(self, budget_ms: float = DEFAULT_BUDGET_MS, stages: Sequence[Stage] | Sequence[Sequence[Stage]] | None = None,
                 *, options: DecodeOptions | None = None, threads: int | None = None,
                 adaptive_order: bool = True, max_side: int = MAX_SIDE,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        if not budget_ms > 0:
            raise ValueError("budget_ms must be positive")
        self.budget_ms = budget_ms
        self.options = options or DecodeOptions()
        if stages is None:
            lanes = default_stages()
        elif stages and isinstance(stages[0], Stage):
            lanes = [list(stages)]  # type: ignore[arg-type]
        else:
            lanes = [list(lane) for lane in stages]  # type: ignore[arg-type]
        self.lanes: list[list[Stage]] = lanes
        self.threads = self.options.decode_threads if threads is None else threads
        if self.threads not in (1, 2):
            raise ValueError("threads must be 1 or 2")
        self.adaptive_order = adaptive_order
        self.max_side = max_side
        self.clock = clock
        self._workers: list[_LaneWorker] = []
        self._late: list[Decoded] = []
        self._lock = threading.Lock()
        self._wake_late_s = 0.0
        self.lane_errors = 0
        self.frames = 0
        self.late_count = 0
        self.over_budget = 0

    @property
    def stages(self) -> list[Stage]:
        """Every stage of every lane."""
        return [s for lane in self.lanes for s in lane]

    def drain(self, timeout_s: float = 5.0) -> list[Decoded]:
        """Wait (at most ``timeout_s``) for stages still running from earlier frames, and return
        what they read after their deadline (the end of a video must not lose its last read)."""
        end = time.monotonic() + timeout_s
        for w in self._workers:
            with w.cond:
                while (w.busy or w.frame is not None) and time.monotonic() < end:
                    w.cond.wait(max(0.0, end - time.monotonic()))
        with self._lock:
            late, self._late = self._late, []
        return late

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the lane threads, waiting for a stage still running to finish (a thread torn
        down inside the C++ decoder at interpreter exit aborts the process)."""
        workers, self._workers = self._workers, []
        for w in workers:
            w.stop()
        for w in workers:
            w.thread.join(timeout_s)
            if w.thread.is_alive():
                log.warning("decode lane %d still busy after %.1f s at close", w.index, timeout_s)

    def __enter__(self) -> Cascade:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def calibrate(self, shape: tuple[int, ...], *, seed: int = 0) -> None:
        """Kept for callers of the earlier API: the estimates now learn from real frames."""

    # -- the lanes -----------------------------------------------------------------------------

    def _order(self, lane: list[Stage], pixels: int) -> list[Stage]:
        if not self.adaptive_order or len(lane) <= 2:
            return lane
        return [lane[0], *sorted(lane[1:], key=lambda s: -s.value(pixels))]

    def _run_lane(self, index: int, frame: _Frame) -> None:
        lane = self.lanes[index]
        if index > 0 and 0 in frame.busy_lanes:
            # the first lane is still on an earlier frame: this lane gives the frame its first look
            lane = [self.lanes[0][0], *lane]
            index = -index  # it must not wait for the first lane
        try:
            pixels = frame.gray.shape[0] * frame.gray.shape[1]
            # a lane that was still busy with an earlier frame starts late: then even its first
            # stage must fit (a fresh frame always gets a first look)
            started_late = abs(index) in frame.busy_lanes and (
                self.clock() - frame.start > LATE_START * (frame.deadline - frame.start))
            if index > 0 and 0 not in frame.busy_lanes:
                # Later lanes hold back until the first lane's first look is done (it reads most
                # frames in a few milliseconds): on a shared machine work that a hit makes
                # useless is work taken from the next frame. They wait at most SECOND_LANE_HOLD.
                with frame.cond:
                    hold_until = frame.start + SECOND_LANE_HOLD * (frame.deadline - frame.start)
                    while not frame.first_look_done and not frame.codes and not frame.closed:
                        left = hold_until - self.clock()
                        if left <= 0:
                            break
                        frame.cond.wait(left)
            for i, stage in enumerate(self._order(lane, pixels)):
                with frame.cond:
                    if frame.codes or frame.closed:
                        return
                now = self.clock()
                # a lane's first look must fit: on a machine too busy for it at full size, it
                # looks at a smaller copy (big codes still read) rather than miss the deadline
                img = frame.input(stage, FIRST_LOOK_SHARE * (frame.deadline - now) if i == 0 else None)
                n = img.shape[0] * img.shape[1]
                if (i > 0 or started_late) and now + stage.estimate(n) > frame.deadline:
                    stage.skipped()
                    frame.skipped.append(stage.name)
                    continue
                try:
                    found = stage.run(img, self.options)
                except Exception:  # a decoder bug on one frame must not stop the camera
                    log.exception("decode stage %s failed on a frame", stage.name)
                    found = []
                stage.note(self.clock() - now, n)
                frame.ran.append(stage.name)
                if index == 0 and i == 0:
                    with frame.cond:
                        frame.first_look_done = True
                        frame.cond.notify_all()
                if found:
                    stage.hits += 1
                    with frame.cond:
                        if frame.closed:
                            stage.late += 1
                            with self._lock:
                                self._late.extend(found)
                                self.late_count += len(found)
                        elif not frame.codes:
                            frame.codes = found
                        frame.cond.notify_all()
                    return
        finally:
            self._lane_finished(frame)

    def _lane_finished(self, frame: _Frame) -> None:
        with frame.cond:
            frame.pending -= 1
            frame.first_look_done = True  # a lane that ends has nothing more to hold others for
            frame.cond.notify_all()

    # -- one frame -----------------------------------------------------------------------------

    def decode(self, frame: np.ndarray) -> CascadeResult:
        start = self.clock()
        deadline = start + self.budget_ms / 1000
        gray = to_gray(frame)
        side = max(gray.shape[:2])
        if side > self.max_side:
            f = self.max_side / side
            gray = cv2.resize(gray, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        gray = np.ascontiguousarray(gray)
        state = _Frame(gray, start, deadline, len(self.lanes))
        busy: list[str] = []
        if self.threads == 1 or len(self.lanes) == 1:
            for i in range(len(self.lanes)):
                self._run_lane(i, state)
        else:
            if not self._workers:
                self._workers = [_LaneWorker(self, i) for i in range(len(self.lanes))]
                _LIVE.add(self)
            for i, worker in enumerate(self._workers):
                if worker.busy:
                    state.busy_lanes.add(i)
                if not worker.submit(state):
                    busy.append(self.lanes[i][0].name)
            # Return early by how late this thread has been waking up lately: on a loaded
            # machine the scheduler hands the CPU back milliseconds after the timeout.
            aim = deadline - RETURN_MARGIN_S - min(self._wake_late_s, 0.5 * self.budget_ms / 1000)
            with state.cond:
                while not state.codes and state.pending > 0:
                    left = aim - self.clock()
                    if left <= 0:
                        break
                    state.cond.wait(left)
                    woke = self.clock()
                    if woke >= aim:  # a timeout: how late did it return?
                        late_by = woke - aim
                        self._wake_late_s += WAKE_ALPHA * ((late_by * 1.5) - self._wake_late_s)
                state.closed = True
        with self._lock:
            late, self._late = self._late, []
        codes = list(state.codes)
        elapsed = self.clock() - start
        self.frames += 1
        if elapsed * 1000 > self.budget_ms:
            self.over_budget += 1
        return CascadeResult(codes, elapsed, tuple(state.ran), tuple(state.skipped), late, tuple(busy),
                             any(c.charset_guessed for c in codes))

    def __call__(self, frame: np.ndarray) -> list[Decoded]:
        return self.decode(frame).codes


#: cascades with lane threads, closed at interpreter exit (a lane torn down mid-decode aborts)
_LIVE: weakref.WeakSet[Cascade] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for cascade in list(_LIVE):
        cascade.close()


SINGLE_DECODERS: dict[str, Callable[..., list[Decoded]]] = {
    "zxing": decode_zxing,
    "pyzbar": decode_zbar,
    "opencv_qr": decode_opencv_qr,
}


def stage_names(stages: Sequence[Stage]) -> list[str]:
    return [s.name for s in stages]
