"""A photo-like corpus: tickets as a phone or gate camera photographs them, optics and sensor included.

:mod:`scanners.corpus` draws codes into a frame and then disturbs the frame. This module
models how a photograph of a code comes to be, step by step, so the artefacts interact the
way they do in a real picture:

1. **the object**: a paper ticket (perhaps bent round a cylinder, perhaps with a thumb over
   part of the code) or a phone screen (light or dark mode, its brightness set, its pixels
   drawn as red, green and blue sub-pixel stripes with dark gaps between them);
2. **the geometry**: a homography from a tilt of up to ~40° and any rotation, resampled at the
   camera's pixel grid, so a screen's sub-pixel grid aliases into real moiré;
3. **the light**: uneven illumination, vignetting, glare (a reflected lamp that saturates);
4. **the lens**: defocus (a disc point-spread function) and motion blur (a line in any direction);
5. **the sensor**: a low-light exposure (photon shot noise, read noise, then gain), a Bayer
   colour-filter mosaic demosaiced by OpenCV;
6. **the file**: JPEG or WebP compression at the qualities phones and IP cameras use.

It is still synthetic: nothing here is a photograph of a real ticket (there is no internet
on the machines that build gatehouse, so no public photo set can be fetched). It is closer to
one than :mod:`scanners.corpus`, and the benchmark measures both. The few real image files
that installed packages ship are added by :func:`package_samples`.

Held out: :func:`generate` takes a ``split``. The cascade's order and thresholds were chosen
looking at ``split="tune"`` only; ``gatehouse bench decode`` reports on ``split="report"``,
frames the tuning never saw (same recipe, independent random draws).

Payloads: signed ``GH1:`` credentials (QR, PDF417), legacy numbers (Code 128, EAN-13, ITF),
and, on some QR and PDF417 codes, a foreign seller's ticket text in another character set
(UTF-8, Shift_JIS, GB2312, Latin-1, with or without an ECI header), whose expected payload is
the text as UTF-8: a decoder that ignores the character set misreads it.
"""
from __future__ import annotations

import importlib.util
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import segno
import zxingcpp

from scanners.corpus import Sample, TicketTexts, gtin_with_check, render_code, seeded_key

SYMBOLOGIES = ("qrcode", "pdf417", "code128", "ean13", "itf")
CONDITIONS = (
    "paper", "paper_perspective", "paper_curved", "thumb", "screen", "screen_moire", "screen_glare",
    "screen_dim", "screen_dark", "motion_blur", "defocus", "low_light", "jpeg_heavy", "webp_heavy", "large",
)
SPLITS = ("tune", "report")
#: frame sizes (width, height) the corpus cycles through; "large" frames are 1920x1080
SIZES = ((640, 480), (1280, 720))
LARGE_SIZE = (1920, 1080)

#: foreign ticket texts and how they are encoded: (text, python codec, ECI header)
FOREIGN_TEXTS: tuple[tuple[str, str, bool], ...] = (
    ("チケット 第7ゲート 12列34番", "shift_jis", False),
    ("票号 北京 东看台 12排34座", "gb2312", True),
    ("Билет № 4711 · Сектор Б", "utf-8", True),
    ("Entrée Tribüne Süd · Reihe 12", "latin-1", False),
    ("Eintrittskarte Nord – Block Ü", "utf-8", False),
)


@dataclass(frozen=True, slots=True)
class Recipe:
    """What was done to make one photo (kept with the sample for failure reports)."""

    condition: str
    size: tuple[int, int]
    tilt_deg: float
    rotation_deg: float
    defocus_px: float
    motion_px: float
    light: float
    codec: str
    quality: int


def encode_text_code(text: str, codec: str, eci: bool, symbology: str, module_px: int) -> np.ndarray:
    """A QR or PDF417 holding ``text`` in character set ``codec`` (with an ECI header if ``eci``)."""
    if symbology == "qrcode":
        # segno names GB2312's ECI (29) by its superset GB18030: GB2312 text has the same bytes in both
        qr = segno.make(text, encoding="gb18030" if codec == "gb2312" else codec, eci=eci, micro=False, error="m")
        matrix = np.array([list(row) for row in qr.matrix], dtype=np.uint8)
        img = np.pad(np.where(matrix > 0, 0, 255).astype(np.uint8), 4, constant_values=255)
        return cv2.resize(img, None, fx=module_px, fy=module_px, interpolation=cv2.INTER_NEAREST)
    # zxing-cpp's writer encodes non-Latin-1 text as UTF-8 with an ECI; Latin-1 text without one
    barcode = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.PDF417)
    img = np.array(zxingcpp.write_barcode_to_image(barcode, scale=1, add_quiet_zones=True))
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)  # type: ignore[assignment]
    return cv2.resize(img, None, fx=module_px, fy=module_px, interpolation=cv2.INTER_NEAREST)


def _card(code: np.ndarray, rng: random.Random) -> np.ndarray:
    """Paper: the code on an off-white ticket with a coloured header and lines of text (BGR)."""
    h, w = code.shape
    pad = max(16, w // 8)
    card = np.full((h + 3 * pad, w + 2 * pad, 3), (rng.randrange(225, 250),) * 3, np.uint8)
    card[:, :] = np.array([rng.randrange(225, 250), rng.randrange(228, 252), rng.randrange(232, 255)], np.uint8)
    header = tuple(rng.randrange(40, 200) for _ in range(3))
    cv2.rectangle(card, (0, 0), (card.shape[1], pad), header, -1)
    cv2.putText(card, "MATCHDAY", (pad // 2, int(pad * 0.75)), cv2.FONT_HERSHEY_SIMPLEX, pad / 40, (255, 255, 255), 2)
    region = card[2 * pad:2 * pad + h, pad:pad + w]
    ink = rng.randrange(0, 50)
    region[code < 128] = ink
    for i in range(2):
        y = 2 * pad + h + pad // 3 + i * pad // 3
        cv2.line(card, (pad, y), (pad + rng.randrange(w // 3, w), y), (90, 90, 90), max(1, pad // 10))
    return card


def _curve(card: np.ndarray, rng: random.Random) -> np.ndarray:
    """Paper bent round a cylinder (a ticket held in one hand): columns compress towards the edges."""
    h, w = card.shape[:2]
    bend = rng.uniform(0.5, 1.1)  # half-angle of the arc, radians
    xs = np.linspace(-1, 1, w, dtype=np.float32)
    # a point at arc length s appears at sin(s * bend) / sin(bend) across the image
    src_x = (np.arcsin(np.clip(xs * math.sin(bend), -1, 1)) / bend + 1) / 2 * (w - 1)
    shade = (0.75 + 0.25 * np.cos(np.arcsin(np.clip(xs * math.sin(bend), -1, 1)))).astype(np.float32)
    map_x = np.repeat(src_x[None, :], h, 0)
    map_y = np.repeat(np.arange(h, dtype=np.float32)[:, None], w, 1)
    out = cv2.remap(card, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.clip(out.astype(np.float32) * shade[None, :, None], 0, 255).astype(np.uint8)  # type: ignore[no-any-return]


def _thumb(card: np.ndarray, code_box: tuple[int, int, int, int], symbology: str, rng: random.Random) -> None:
    """A thumb over one edge of the code, in place: skin tone, shaded, covering a few percent of it."""
    x, y, w, h = code_box
    skin = np.array([rng.randrange(90, 150), rng.randrange(120, 170), rng.randrange(170, 230)], np.float32)
    if symbology in ("qrcode", "pdf417"):
        # from the bottom edge (away from a QR's three finder patterns), over about 8% of the area
        cx = x + rng.uniform(0.45, 0.75) * w
        cy = y + h + rng.uniform(0.02, 0.08) * h
        axes = (int(rng.uniform(0.14, 0.2) * w), int(rng.uniform(0.12, 0.18) * h))
    else:
        # 1D: over the top of the bars (a reader needs one clean row, not all of them)
        cx = x + rng.uniform(0.2, 0.8) * w
        cy = y - rng.uniform(0.05, 0.15) * h
        axes = (int(rng.uniform(0.12, 0.2) * w), int(rng.uniform(0.35, 0.45) * h))
    mask = np.zeros(card.shape[:2], np.uint8)
    cv2.ellipse(mask, (int(cx), int(cy)), axes, rng.uniform(-20, 20), 0, 360, 255, -1)
    soft = cv2.GaussianBlur(mask, (0, 0), 3).astype(np.float32) / 255
    yy = np.linspace(0.8, 1.1, card.shape[0], dtype=np.float32)[:, None, None]
    blended = card.astype(np.float32) * (1 - soft[..., None]) + skin * yy * soft[..., None]
    card[:] = np.clip(blended, 0, 255).astype(np.uint8)


def _screen(code: np.ndarray, rng: random.Random, *, dark: bool, brightness: float) -> np.ndarray:
    """A phone showing the code: the app's page, then each screen pixel as R, G, B stripes (float32)."""
    h, w = code.shape
    pad = max(10, w // 10)
    page = np.full((h + 4 * pad, w + 2 * pad), 255, np.uint8)
    page[2 * pad:2 * pad + h, pad:pad + w] = code
    cv2.rectangle(page, (0, 0), (page.shape[1], pad), 200, -1)
    if dark:
        page = 255 - page
        # dark-mode apps usually keep a light quiet zone round the code, but not always
        if rng.random() < 0.5:
            page[2 * pad - pad // 2:2 * pad + h + pad // 2, pad // 2:pad + w + pad // 2] = 255 - page[
                2 * pad - pad // 2:2 * pad + h + pad // 2, pad // 2:pad + w + pad // 2]
    bezel = max(6, page.shape[1] // 14)
    phone = np.full((page.shape[0] + 4 * bezel, page.shape[1] + 2 * bezel), 12, np.uint8)
    phone[2 * bezel:2 * bezel + page.shape[0], bezel:bezel + page.shape[1]] = page
    # sub-pixels: each screen pixel is 3 px wide here (R, G, B), with a dark gap row
    sub = 3
    rgb = np.repeat(np.repeat(phone, sub, 1), sub, 0).astype(np.float32)
    stripes = np.zeros((sub, sub, 3), np.float32)
    for c in range(3):  # BGR order: blue column last on screen (R, G, B left to right)
        stripes[:, c, 2 - c] = 1.0
    stripes[-1, :, :] *= 0.35
    tile = np.tile(stripes, (phone.shape[0], phone.shape[1], 1))
    # radiance, not clipped: a white screen pixel averages to ~240 x brightness once the
    # lens has merged its sub-pixels (each sub-pixel alone is far brighter than that)
    return rgb[..., None] * tile * np.float32(240 * brightness / (255 * float(stripes.mean())))


def _scene(size: tuple[int, int], rng: random.Random) -> np.ndarray:
    """A gate scene: a lit gradient with blurred blobs (people, fences), mildly textured."""
    w, h = size
    nrng = np.random.default_rng(rng.randrange(2**32))
    small = nrng.integers(30, 200, (6, 8, 3)).astype(np.uint8)
    img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    for _ in range(rng.randrange(2, 6)):
        color = tuple(rng.randrange(0, 256) for _ in range(3))
        cv2.circle(img, (rng.randrange(w), rng.randrange(h)), rng.randrange(h // 10, h // 3), color, -1)
    for _ in range(rng.randrange(0, 4)):  # railings and cables: straight dark lines
        p1 = (rng.randrange(w), rng.randrange(h))
        p2 = (rng.randrange(w), rng.randrange(h))
        cv2.line(img, p1, p2, (rng.randrange(60),) * 3, rng.randrange(2, 10))
    img = cv2.GaussianBlur(img, (0, 0), 3)  # type: ignore[assignment]
    img += nrng.standard_normal(img.shape, dtype=np.float32) * 3
    return np.clip(img, 0, 255).astype(np.uint8)


def _warp_into(scene: np.ndarray, obj: np.ndarray, rng: random.Random, *, width_px: float, tilt_deg: float,
               rotation_deg: float, alias: float = 1.0) -> None:
    """Project ``obj`` into ``scene`` (in place): a tilt about a random axis, then a rotation.

    The object is first shrunk with area averaging (the lens and the pixel's area) to
    ``alias`` times its final size, then warped with bilinear sampling. With ``alias`` 2 fine
    periodic detail (a screen's sub-pixels) aliases into moiré instead of being averaged away.
    """
    sh, sw = scene.shape[:2]
    oh, ow = obj.shape[:2]
    pre = min(1.0, alias * width_px / ow)
    if pre < 1.0:
        obj = cv2.resize(obj, None, fx=pre, fy=pre, interpolation=cv2.INTER_AREA)
        oh, ow = obj.shape[:2]
    scale = width_px / ow
    tilt = math.radians(tilt_deg)
    axis = rng.uniform(0, math.pi)
    # corners in object space, centred; tilt = foreshortening along the axis with perspective
    corners = np.array([[-ow / 2, -oh / 2], [ow / 2, -oh / 2], [ow / 2, oh / 2], [-ow / 2, oh / 2]], np.float64) * scale
    d = np.array([math.cos(axis), math.sin(axis)])
    along = corners @ d
    focal = 2.5 * max(sw, sh)
    depth = focal + along * math.sin(tilt)
    proj = corners - np.outer(along * (1 - math.cos(tilt)), d)
    proj = proj * (focal / depth)[:, None]
    theta = math.radians(rotation_deg)
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    proj = proj @ rot.T
    span = proj.max(0) - proj.min(0)
    fit = min(1.0, 0.96 * sw / span[0], 0.96 * sh / span[1])
    proj *= fit
    span *= fit
    lo = -proj.min(0)
    cx = rng.uniform(2, max(3, sw - span[0] - 2))
    cy = rng.uniform(2, max(3, sh - span[1] - 2))
    dst = (proj + lo + [cx, cy]).astype(np.float32)
    src = np.array([[0, 0], [ow, 0], [ow, oh], [0, oh]], np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(obj, m, (sw, sh), flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.full((oh, ow), 255, np.uint8), m, (sw, sh), flags=cv2.INTER_LINEAR)
    alpha = (mask.astype(np.float32) / 255)[..., None]
    scene[:] = np.clip(scene * (1 - alpha) + warped.astype(np.float32) * alpha, 0, 255).astype(np.uint8)


def _lighting(img: np.ndarray, rng: random.Random, *, glare: bool) -> np.ndarray:
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # uneven light: a linear gradient, and vignetting towards the corners
    gx, gy = rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3)
    light = 1 + gx * (xx / w - 0.5) + gy * (yy / h - 0.5)
    r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
    light *= 1 - 0.25 * r2 / 2
    out = img.astype(np.float32) * light[..., None]
    if glare:  # a lamp reflected in the screen's glass: a bright, saturating patch with a halo
        cx, cy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h
        sx, sy = rng.uniform(0.02, 0.06) * w, rng.uniform(0.02, 0.05) * h
        blob = np.exp(-(((xx - cx) / sx) ** 2 + ((yy - cy) / sy) ** 2) / 2)
        halo = np.exp(-(((xx - cx) / (3 * sx)) ** 2 + ((yy - cy) / (3 * sy)) ** 2) / 2)
        out += (blob * rng.uniform(90, 200) + halo * rng.uniform(15, 40))[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)  # type: ignore[no-any-return]


def _lens(img: np.ndarray, defocus_px: float, motion_px: float, rng: random.Random) -> np.ndarray:
    if defocus_px >= 0.6:
        r = defocus_px
        k = math.ceil(r) * 2 + 1
        disc = np.zeros((k, k), np.float32)
        cv2.circle(disc, (k // 2, k // 2), max(1, round(r)), 1.0, -1, lineType=cv2.LINE_AA)
        img = cv2.filter2D(img, -1, disc / disc.sum())
    if motion_px >= 1.5:
        k = math.ceil(motion_px) | 1
        line = np.zeros((k, k), np.float32)
        angle = rng.uniform(0, math.pi)
        c = k // 2
        dx, dy = math.cos(angle) * c, math.sin(angle) * c
        cv2.line(line, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0, 1, lineType=cv2.LINE_AA)
        img = cv2.filter2D(img, -1, line / line.sum())
    return img


def _sensor(img: np.ndarray, light: float, rng: random.Random) -> np.ndarray:
    """Expose at ``light`` (1: good light), add shot and read noise, apply gain, mosaic and demosaic.

    Shot noise is Poisson in the electron count; at these counts a normal distribution with
    the same variance is indistinguishable and far cheaper to draw.
    """
    nrng = np.random.default_rng(rng.randrange(2**32))
    electrons_per_level = 60.0 * light
    read_noise_e = 5.0
    f = img.astype(np.float32)
    sigma = np.sqrt(f / electrons_per_level + (read_noise_e / electrons_per_level) ** 2)
    f += nrng.standard_normal(img.shape, dtype=np.float32) * sigma
    out = np.clip(f, 0, 255).astype(np.uint8)
    h, w = out.shape[:2]
    bayer = np.empty((h, w), np.uint8)  # RGGB pattern sampled from the BGR image
    bayer[0::2, 0::2] = out[0::2, 0::2, 2]
    bayer[0::2, 1::2] = out[0::2, 1::2, 1]
    bayer[1::2, 0::2] = out[1::2, 0::2, 1]
    bayer[1::2, 1::2] = out[1::2, 1::2, 0]
    return cv2.cvtColor(bayer, cv2.COLOR_BayerRG2BGR)


def _compress(img: np.ndarray, codec: str, quality: int) -> np.ndarray:
    flag = cv2.IMWRITE_JPEG_QUALITY if codec == "jpeg" else cv2.IMWRITE_WEBP_QUALITY
    ok, buf = cv2.imencode(".jpg" if codec == "jpeg" else ".webp", img, [flag, quality])
    if not ok:
        raise RuntimeError(f"OpenCV could not encode {codec}")
    decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    assert decoded is not None
    return decoded


def make_photo(index: int, symbology: str, condition: str, texts: TicketTexts, rng: random.Random,
               size: tuple[int, int]) -> tuple[Sample, Recipe]:
    """One photo-like frame of a ticket under ``condition``."""
    if condition == "large":
        size = LARGE_SIZE
    elif symbology == "pdf417" and size[1] < 720:
        # a 175-module-wide PDF417 ticket is not legible at 640x480 from a gate's distance:
        # lanes that read PDF417 run 720p cameras
        size = (1280, 720)
    matrix = symbology in ("qrcode", "pdf417")
    foreign = matrix and rng.random() < 0.25
    render_px = 4 if matrix else 3
    if foreign:
        text, codec, eci = FOREIGN_TEXTS[rng.randrange(len(FOREIGN_TEXTS))]
        code = encode_text_code(text, codec, eci, symbology, render_px)
    else:
        text = texts.text(symbology)
        code = render_code(text, symbology, render_px)
    modules = code.shape[1] / render_px
    w, h = size
    screen = condition.startswith("screen")
    # pixels per module in the photo: what decides legibility. Scales with the frame height
    # (a sharper camera at the same distance); "large" is a close-up at 1080p.
    ppm = {"qrcode": rng.uniform(2.6, 5.0), "pdf417": rng.uniform(2.2, 3.6)}.get(symbology, rng.uniform(1.8, 3.2))
    ppm *= h / 480
    if condition == "large":
        ppm *= rng.uniform(1.0, 1.6) / 1.5
    ppm = min(ppm, 0.8 * w / modules)  # the whole code in the frame, with a margin
    tilt = rng.uniform(0, 20)
    if condition in ("paper_perspective", "screen_glare"):
        tilt = rng.uniform(25, 42)
    # QR is read at any angle; people hold a printed or on-screen 1D code or PDF417 roughly
    # level, now and then at a steeper angle (which row-scanning decoders cannot follow)
    # (zxing-cpp's PDF417 reader loses a code turned by 5° or more: most are held level, some not)
    if symbology == "qrcode":
        rotation = rng.uniform(-180, 180)
    elif symbology == "pdf417":
        steep = rng.random() < 0.3
        rotation = rng.uniform(5, 25) * rng.choice([-1, 1]) if steep else rng.uniform(-3, 3)
        rotation += rng.choice([0, 0, 180])
    else:
        steep = rng.random() < 0.2
        rotation = rng.uniform(12, 30) * rng.choice([-1, 1]) if steep else rng.uniform(-12, 12)
        rotation += rng.choice([0, 0, 180])
    # the same optics blur a sharper sensor's image over more pixels
    defocus = rng.uniform(0, 0.7) * h / 480
    motion = rng.uniform(0, 1.0) * h / 480
    if condition == "defocus":
        defocus = rng.uniform(1.2, 2.2) * h / 480
    elif condition == "motion_blur":
        motion = rng.uniform(3.0, 6.0) * h / 480
    light = rng.uniform(0.6, 1.0)
    if condition in ("low_light", "screen_dim"):
        light = rng.uniform(0.012, 0.04)
    codec, quality = ("jpeg", rng.randrange(70, 92)) if rng.random() < 0.7 else ("webp", rng.randrange(65, 90))
    if condition == "jpeg_heavy":
        codec, quality = "jpeg", rng.randrange(18, 35)
    elif condition == "webp_heavy":
        codec, quality = "webp", rng.randrange(15, 35)
    if screen:
        brightness = {"screen_dim": rng.uniform(0.45, 0.65)}.get(condition, rng.uniform(0.75, 1.0))
        obj = _screen(code, rng, dark=condition == "screen_dark", brightness=brightness)
        code_width_in_obj = code.shape[1] * 3
    else:
        obj = _card(code, rng)
        pad = max(16, code.shape[1] // 8)
        if condition == "thumb":
            _thumb(obj, (pad, 2 * pad, code.shape[1], code.shape[0]), symbology, rng)
        if condition == "paper_curved":
            obj = _curve(obj, rng)
        code_width_in_obj = code.shape[1]
    width_px = ppm * modules * obj.shape[1] / code_width_in_obj
    scene = _scene(size, rng)
    _warp_into(scene, obj, rng, width_px=width_px, tilt_deg=tilt, rotation_deg=rotation, alias=1.6 if condition == "screen_moire" else 1.0)
    scene = _lighting(scene, rng, glare=condition == "screen_glare")
    scene = _lens(scene, defocus, motion, rng)
    scene = _sensor(scene, light, rng)
    scene = _compress(scene, codec, quality)
    recipe = Recipe(condition, size, round(tilt, 1), round(rotation, 1), round(defocus, 2), round(motion, 2),
                    round(light, 3), codec, quality)
    name = f"{index:04d}_{symbology}_{condition}_{size[0]}x{size[1]}{'_foreign' if foreign else ''}"
    return Sample(name, scene, text.encode("utf-8"), symbology, condition), recipe


def make_photo_negative(index: int, rng: random.Random, size: tuple[int, int]) -> Sample:
    """A photo with no code: a blank ticket, a phone showing text, stripes or a dark scene."""
    scene = _scene(size, rng)
    kind = rng.choice(["ticket", "screen", "stripes", "dark"])
    w, h = size
    if kind == "ticket":
        blank = np.full((rng.randrange(80, 160), rng.randrange(160, 300)), 255, np.uint8)
        cv2.putText(blank, "ADMIT ONE", (8, blank.shape[0] // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 0, 2)
        _warp_into(scene, _card(blank, rng), rng, width_px=rng.uniform(0.3, 0.6) * w, tilt_deg=rng.uniform(0, 30),
                   rotation_deg=rng.uniform(-40, 40))
    elif kind == "screen":
        page = np.full((220, 160), 255, np.uint8)
        for i in range(6):
            cv2.putText(page, "".join(rng.choice("ABCDEF0123 ") for _ in range(9)), (6, 30 + 30 * i),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.6, 0, 1)
        _warp_into(scene, _screen(page, rng, dark=rng.random() < 0.4, brightness=0.9), rng,
                   width_px=rng.uniform(0.2, 0.4) * w, tilt_deg=rng.uniform(0, 30), rotation_deg=rng.uniform(-30, 30))
    elif kind == "stripes":  # a railing or a striped shirt: 1D false-positive bait
        x = rng.randrange(w // 3)
        top, bottom = rng.randrange(h // 2), rng.randrange(h // 2, h)
        while x < w - 10:
            width = rng.randrange(2, 10)
            cv2.rectangle(scene, (x, top), (x + width, bottom), (rng.randrange(60),) * 3, -1)
            x += width + rng.randrange(2, 12)
    scene = _lighting(scene, rng, glare=rng.random() < 0.3)
    scene = _lens(scene, rng.uniform(0, 1.5), rng.uniform(0, 3), rng)
    scene = _sensor(scene, rng.uniform(0.012, 0.04) if kind == "dark" else rng.uniform(0.5, 1.0), rng)
    scene = _compress(scene, "jpeg", rng.randrange(30, 90))
    return Sample(f"{index:04d}_none_photo_{kind}_{w}x{h}", scene, None, None, f"photo_{kind}")


def generate(count: int, *, split: str = "report", seed: int = 1, negatives: int | None = None,
             sizes: Sequence[tuple[int, int]] = SIZES, symbologies: Sequence[str] = SYMBOLOGIES,
             conditions: Sequence[str] = CONDITIONS) -> Iterator[Sample]:
    """``count`` photo-like frames (cycling symbology x condition x size), then the negatives.

    ``split`` is part of the random seed: "tune" and "report" frames never coincide.
    Deterministic for a given (split, seed). Without ``negatives``, one in five.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    rng = random.Random(f"photos:{split}:{seed}")
    texts = TicketTexts(rng, seeded_key(rng))
    combos = [(s, c) for c in conditions for s in symbologies]
    rng.shuffle(combos)
    for i in range(count):
        symbology, condition = combos[i % len(combos)]
        yield make_photo(i, symbology, condition, texts, rng, sizes[(i // len(combos)) % len(sizes)])[0]
    for j in range(count // 5 if negatives is None else negatives):
        yield make_photo_negative(count + j, rng, sizes[j % len(sizes)])


#: real image files shipped inside installed packages, with what they hold:
#: (module whose package ships it, relative path, symbology, expected payload)
PACKAGE_SAMPLES: tuple[tuple[str, str, str, bytes], ...] = (
    ("pyzbar", "tests/code128_null_character.png", "code128", b"Hello\x00Goodbye"),
    ("pyzbar", "tests/qrcode.png", "qrcode", b"Thalassiodracon"),
    ("pyzbar", "tests/qrcode_rotated.png", "qrcode", b"Thalassiodracon"),
)


def package_samples() -> list[Sample]:
    """The sample images installed packages ship (pyzbar's test images), as corpus samples.

    Found by searching this machine's installed PyPI wheels, Debian packages and npm tarballs
    for images of codes; see ``docs/scanners.md``. Missing files are skipped (a package built
    without its tests), never invented.
    """
    out = []
    for module, rel, symbology, expected in PACKAGE_SAMPLES:
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            continue
        path = Path(spec.origin).parent / rel
        image = cv2.imread(str(path))
        if image is None:
            continue
        out.append(Sample(f"package_{module}_{Path(rel).stem}", image, expected, symbology, "package"))
    return out


def legacy_itf(rng: random.Random, length: int) -> str:
    """An ITF number of ``length`` digits (even) whose last digit is a GS1 check digit."""
    return gtin_with_check("".join(str(rng.randrange(10)) for _ in range(length - 1)))
