"""A seeded, deterministic corpus of camera frames: tickets as the gate's camera sees them.

Each :class:`Sample` is one frame (a BGR ``numpy`` image) with the exact bytes a correct
decoder must report, or ``None`` for frames with no code at all (any decode there is a false
positive). Codes are real ticket credentials: signed ``GH1:`` QR / PDF417 text from
:func:`tickets.credential.issue`, and legacy ticket numbers as Code 128, EAN-13 and ITF.

Conditions model what happens at a gate: a phone screen (glare, moiré, dark mode), paper that
was printed and creased, rotation (including upside down), perspective skew, blur, sensor
noise, low contrast, a code small in the frame, and a mirrored code (a selfie camera or a
reflection: decoders may read it correctly or not at all, but never as something else).

Nothing here is stored in the repository: the corpus is regenerated from its seed by the
tests (small), the benchmark (bigger) and ``gatehouse scanner corpus --out DIR``.
"""
from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import segno
import zxingcpp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tickets.credential import CredentialFields, issue
from tickets.keys import SigningKey, generate_key

SYMBOLOGIES = ("qrcode", "pdf417", "code128", "ean13", "itf")
CONDITIONS = (
    "clean", "phone", "phone_dark", "phone_glare", "phone_moire", "printed_creased", "rotated",
    "upside_down", "perspective", "blurred", "noisy", "low_contrast", "small", "mirrored",
)
#: Conditions where "no decode" is an acceptable outcome (a wrong decode never is).
OPTIONAL_CONDITIONS = frozenset({"mirrored"})

_ZX_FORMATS = {
    "pdf417": zxingcpp.BarcodeFormat.PDF417,
    "code128": zxingcpp.BarcodeFormat.Code128,
    "ean13": zxingcpp.BarcodeFormat.EAN13,
    "itf": zxingcpp.BarcodeFormat.ITF,
}


@dataclass(frozen=True, slots=True)
class Sample:
    """One frame of the corpus and what a decoder should read from it."""

    name: str
    image: np.ndarray  # BGR uint8, height x width x 3
    expected: bytes | None  # None: no code in the frame
    symbology: str | None
    condition: str

    @property
    def required(self) -> bool:
        """Whether a decoder is expected to read this frame (vs. "correct or nothing")."""
        return self.expected is not None and self.condition not in OPTIONAL_CONDITIONS


def gtin_with_check(digits: str) -> str:
    """``digits`` followed by their GS1 mod-10 check digit (EAN-13, ITF-14)."""
    if not digits.isdigit():
        raise ValueError("a GTIN is digits only")
    total = sum(int(d) * (1 if i % 2 else 3) for i, d in enumerate(reversed(digits)))
    return digits + str((10 - total % 10) % 10)


def ean13_with_check(digits12: str) -> str:
    """The 13-digit EAN with its check digit (what a decoder reports)."""
    if len(digits12) != 12:
        raise ValueError("EAN-13 needs 12 digits before the check digit")
    return gtin_with_check(digits12)


def seeded_key(rng: random.Random) -> SigningKey:
    """An event key drawn from ``rng``: same seed, same signatures, same corpus bytes.

    Only for test images; real event keys come from :func:`tickets.keys.generate_key`.
    """
    return SigningKey(rng.randrange(1, 0xFFFF), Ed25519PrivateKey.from_private_bytes(rng.randbytes(32)))


class TicketTexts:
    """Real ticket texts for each symbology, from one event key."""

    def __init__(self, rng: random.Random, key: SigningKey | None = None) -> None:
        self._rng = rng
        self._key = key or generate_key()

    def text(self, symbology: str) -> str:
        rng = self._rng
        if symbology in ("qrcode", "pdf417"):
            fields = CredentialFields(
                key_id=self._key.key_id, event_id=rng.randrange(1, 1000),
                ticket_id=rng.randrange(1, 10**9), zone_id=rng.randrange(1, 40),
                policy_id=rng.randrange(1, 5), valid_from=1_790_000_000,
                valid_until=1_790_100_000, serial=rng.randrange(0, 5),
            )
            return issue(self._key, fields)
        if symbology == "code128":
            return f"TK-{rng.randrange(2024, 2030)}-{rng.randrange(0, 10**6):06d}"
        if symbology == "ean13":
            return ean13_with_check("".join(str(rng.randrange(10)) for _ in range(12)))
        if symbology == "itf":  # ITF-14: 13 digits and a GTIN check digit
            return gtin_with_check("".join(str(rng.randrange(10)) for _ in range(13)))
        raise ValueError(f"unknown symbology {symbology!r}")


def render_code(text: str, symbology: str, module_px: int) -> np.ndarray:
    """The code alone, black on white with its quiet zone, as a grayscale image."""
    if symbology == "qrcode":
        qr = segno.make(text, error="m", micro=False)
        matrix = np.array([list(row) for row in qr.matrix], dtype=np.uint8)
        img = np.where(matrix > 0, 0, 255).astype(np.uint8)
        img = np.pad(img, 4, constant_values=255)
        return cv2.resize(img, None, fx=module_px, fy=module_px, interpolation=cv2.INTER_NEAREST)
    fmt = _ZX_FORMATS[symbology]
    barcode = zxingcpp.create_barcode(text, fmt)
    img = np.array(zxingcpp.write_barcode_to_image(barcode, scale=1, add_quiet_zones=True))
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)  # type: ignore[assignment]
    if symbology == "pdf417":
        img = cv2.resize(img, None, fx=module_px, fy=module_px, interpolation=cv2.INTER_NEAREST)  # type: ignore[assignment]
    else:
        # 1D codes: scale bars horizontally, make them tall enough to aim at.
        img = cv2.resize(img, None, fx=module_px, fy=1, interpolation=cv2.INTER_NEAREST)  # type: ignore[assignment]
        img = cv2.resize(img, (img.shape[1], max(60, img.shape[1] // 4)), interpolation=cv2.INTER_NEAREST)  # type: ignore[assignment]
        img = np.pad(img, ((12, 12), (0, 0)), constant_values=255)
    return img


def _ticket_card(code: np.ndarray, rng: random.Random, dark: bool) -> np.ndarray:
    """The code on a ticket or phone screen, with a header band and some text lines."""
    h, w = code.shape
    pad = max(10, w // 10)
    card = np.full((h + 3 * pad, w + 2 * pad), 255, np.uint8)
    cv2.rectangle(card, (0, 0), (card.shape[1], pad), rng.randrange(60, 160), -1)
    card[2 * pad:2 * pad + h, pad:pad + w] = code
    for i in range(2):
        y = 2 * pad + h + pad // 3 + i * pad // 3
        cv2.line(card, (pad, y), (pad + rng.randrange(w // 3, w), y), 120, max(1, pad // 8))
    if dark:
        card = 255 - card
    return cv2.cvtColor(card, cv2.COLOR_GRAY2BGR)


def _background(size: tuple[int, int], rng: random.Random) -> np.ndarray:
    """A cluttered gate scene: gradient, blobs, lines and a little text (no codes)."""
    w, h = size
    nrng = np.random.default_rng(rng.randrange(2**32))
    base = np.linspace(rng.randrange(40, 120), rng.randrange(120, 220), w, dtype=np.float32)
    img = np.repeat(np.repeat(base[None, :, None], h, 0), 3, 2)
    img += nrng.normal(0, 4, img.shape).astype(np.float32)
    img = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(rng.randrange(3, 9)):
        color = tuple(rng.randrange(0, 256) for _ in range(3))
        if rng.random() < 0.5:
            center = (rng.randrange(w), rng.randrange(h))
            cv2.circle(img, center, rng.randrange(10, max(11, h // 4)), color, -1)
        else:
            p1 = (rng.randrange(w), rng.randrange(h))
            p2 = (rng.randrange(w), rng.randrange(h))
            cv2.line(img, p1, p2, color, rng.randrange(1, 8))
    for _ in range(rng.randrange(0, 3)):
        cv2.putText(img, "GATE " + str(rng.randrange(1, 40)), (rng.randrange(w // 2), rng.randrange(20, h)),
                    cv2.FONT_HERSHEY_SIMPLEX, rng.uniform(0.5, 1.5), (rng.randrange(256),) * 3, 2)
    return img


def _place(scene: np.ndarray, card: np.ndarray, rng: random.Random, *, width_px: float,
           angle: float, skew: float, mirrored: bool) -> None:
    """Warp ``card`` into ``scene`` (in place) at a width, angle and perspective skew.

    The width is reduced if needed so the card, as rotated, fits inside the frame.
    """
    sh, sw = scene.shape[:2]
    ch, cw = card.shape[:2]
    if mirrored:
        card = card[:, ::-1].copy()
    scale = width_px / cw
    theta0 = math.radians(angle)
    box_w = abs(cw * math.cos(theta0)) + abs(ch * math.sin(theta0))
    box_h = abs(cw * math.sin(theta0)) + abs(ch * math.cos(theta0))
    scale = min(scale, 0.95 * sw / box_w, 0.95 * sh / box_h)
    tw, th = cw * scale, ch * scale
    cx = rng.uniform(tw / 2 + 4, max(tw / 2 + 5, sw - tw / 2 - 4))
    cy = rng.uniform(th / 2 + 4, max(th / 2 + 5, sh - th / 2 - 4))
    corners = np.array([[-tw / 2, -th / 2], [tw / 2, -th / 2], [tw / 2, th / 2], [-tw / 2, th / 2]])
    if skew:
        # Foreshortening: one side shorter than the other, as when tilted away from the lens.
        side = rng.randrange(4)
        shrink = 1 - skew
        a, b = (side, (side + 1) % 4)
        mid = (corners[a] + corners[b]) / 2
        corners[a] = mid + (corners[a] - mid) * shrink
        corners[b] = mid + (corners[b] - mid) * shrink
    theta = math.radians(angle)
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    dst = (corners @ rot.T + [cx, cy]).astype(np.float32)
    src = np.array([[0, 0], [cw, 0], [cw, ch], [0, ch]], np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(card, m, (sw, sh), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.full((ch, cw), 255, np.uint8), m, (sw, sh))
    scene[mask > 127] = warped[mask > 127]


def _phone(card: np.ndarray, rng: random.Random) -> np.ndarray:
    """The card shown on a phone: a black bezel around a slightly blue-tinted screen."""
    h, w = card.shape[:2]
    border = max(8, w // 12)
    phone = np.full((h + 4 * border, w + 2 * border, 3), 20, np.uint8)
    tint = card.astype(np.float32) * np.array([1.0, 0.97, 0.92], np.float32)
    phone[2 * border:2 * border + h, border:border + w] = np.clip(tint, 0, 255).astype(np.uint8)
    return phone


def _glare(img: np.ndarray, rng: random.Random) -> np.ndarray:
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h
    sigma = rng.uniform(0.06, 0.12) * min(w, h)
    blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2)) * rng.uniform(120, 170)
    return np.clip(img.astype(np.float32) + blob[..., None], 0, 255).astype(np.uint8)  # type: ignore[no-any-return]


def _moire(img: np.ndarray, rng: random.Random) -> np.ndarray:
    """Interference of the screen's pixel grid with the sensor: a beating stripe pattern."""
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    theta = rng.uniform(0, math.pi)
    period = rng.uniform(5, 9)
    wave = np.sin((xx * math.cos(theta) + yy * math.sin(theta)) * 2 * math.pi / period)
    factor = 1 + 0.18 * wave
    return np.clip(img.astype(np.float32) * factor[..., None], 0, 255).astype(np.uint8)  # type: ignore[no-any-return]


def _crease(card: np.ndarray, rng: random.Random) -> np.ndarray:
    """A fold across printed paper: a shaded band and a slight bend of one half."""
    h, w = card.shape[:2]
    out = card.astype(np.float32)
    x0 = rng.uniform(0.35, 0.65) * w
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dist = np.abs(xx - x0 - (yy - h / 2) * rng.uniform(-0.3, 0.3))
    shade = 1 - 0.35 * np.exp(-(dist**2) / (2 * (w * 0.01 + 1) ** 2))
    half = (xx > x0).astype(np.float32) * rng.uniform(0.0, 0.12)
    out = out * (shade - half)[..., None]
    paper = np.random.default_rng(rng.randrange(2**32)).normal(0, 6, out.shape)
    return np.clip(out + paper, 0, 255).astype(np.uint8)  # type: ignore[no-any-return]


def _finish(img: np.ndarray, condition: str, rng: random.Random) -> np.ndarray:
    """Whole-frame effects: blur, noise, low contrast and mild JPEG-like softness."""
    if condition == "blurred":
        k = rng.choice([5, 7])
        if rng.random() < 0.5:
            img = cv2.GaussianBlur(img, (k, k), 0)
        else:  # motion blur
            kernel = np.zeros((k, k), np.float32)
            kernel[k // 2, :] = 1 / k
            img = cv2.filter2D(img, -1, kernel)
    elif condition == "noisy":
        noise = np.random.default_rng(rng.randrange(2**32)).normal(0, rng.uniform(18, 28), img.shape)
        img = np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    elif condition == "low_contrast":
        mid = rng.uniform(110, 150)
        img = np.clip((img.astype(np.float32) - 128) * rng.uniform(0.18, 0.28) + mid, 0, 255).astype(np.uint8)
    else:
        noise = np.random.default_rng(rng.randrange(2**32)).normal(0, 3, img.shape)
        img = np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    return img


def make_sample(index: int, symbology: str, condition: str, size: tuple[int, int],
                texts: TicketTexts, rng: random.Random) -> Sample:
    """One frame of ``size`` (width, height) showing a ticket under ``condition``.

    The code's size is set in camera pixels per module (what decides legibility), scaled
    with the frame height as a nearer or sharper camera would give, and clamped to the frame.
    """
    text = texts.text(symbology)
    matrix = symbology in ("qrcode", "pdf417")
    render_px = 4
    code = render_code(text, symbology, render_px)
    modules = code.shape[1] / render_px
    phone = condition.startswith("phone")
    card = _ticket_card(code, rng, dark=condition == "phone_dark")
    if condition == "printed_creased":
        card = _crease(card, rng)
    if phone:
        card = _phone(card, rng)
    resolution = size[1] / 480
    ppm = (rng.uniform(1.3, 1.7) if condition == "small" else rng.uniform(2.0, 3.4)) * resolution
    card_width = ppm * modules * card.shape[1] / code.shape[1]
    angle = rng.uniform(-6, 6)
    if condition == "rotated":
        angle = rng.uniform(15, 75) * rng.choice([-1, 1]) if matrix else rng.uniform(10, 30) * rng.choice([-1, 1])
    elif condition == "upside_down":
        angle = 180 + rng.uniform(-5, 5)
    skew = rng.uniform(0.2, 0.3) if condition == "perspective" else 0.0
    scene = _background(size, rng)
    _place(scene, card, rng, width_px=card_width, angle=angle, skew=skew, mirrored=condition == "mirrored")
    if condition == "phone_glare":
        scene = _glare(scene, rng)
    elif condition == "phone_moire":
        scene = _moire(scene, rng)
    scene = _finish(scene, condition, rng)
    name = f"{index:04d}_{symbology}_{condition}_{size[0]}x{size[1]}"
    return Sample(name, scene, text.encode("ascii"), symbology, condition)


def make_negative(index: int, size: tuple[int, int], rng: random.Random) -> Sample:
    """A frame with no code: a scene, sometimes with a code-free card, stripes or text on it."""
    scene = _background(size, rng)
    kind = rng.choice(["scene", "card", "stripes", "text", "noise"])
    w, h = size
    if kind == "card":
        blank = np.full((rng.randrange(80, 200), rng.randrange(120, 300)), 255, np.uint8)
        cv2.putText(blank, "ADMIT ONE", (8, blank.shape[0] // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 0, 2)
        _place(scene, _ticket_card(blank, rng, dark=rng.random() < 0.3), rng,
               width_px=rng.uniform(0.4, 0.7) * w, angle=rng.uniform(-20, 20), skew=0.0, mirrored=False)
    elif kind == "stripes":
        # Irregular vertical stripes (a railing, a shirt): the classic 1D false-positive bait.
        x = rng.randrange(w // 2)
        top, bottom = rng.randrange(h // 2), rng.randrange(h // 2, h)
        while x < w - 10:
            width = rng.randrange(2, 12)
            cv2.rectangle(scene, (x, top), (x + width, bottom), (rng.randrange(60),) * 3, -1)
            x += width + rng.randrange(2, 14)
    elif kind == "text":
        for i in range(rng.randrange(3, 8)):
            cv2.putText(scene, "".join(rng.choice("ABCDEFGH0123456789 ") for _ in range(14)),
                        (10, 30 + i * 40), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 0, 0), 2)
    elif kind == "noise":
        noise = np.random.default_rng(rng.randrange(2**32)).integers(0, 256, (h, w, 1), dtype=np.uint8)
        scene = np.repeat(noise, 3, 2)
    scene = _finish(scene, "clean", rng)
    return Sample(f"{index:04d}_none_{kind}_{w}x{h}", scene, None, None, kind)


def generate(count: int, *, size: tuple[int, int] = (640, 480), seed: int = 1,
             negatives: int | None = None, symbologies: Sequence[str] = SYMBOLOGIES,
             conditions: Sequence[str] = CONDITIONS) -> Iterator[Sample]:
    """``count`` frames with codes (cycling symbologies × conditions) then the negatives.

    Deterministic for a given seed (the signing key too), so a failure can be regenerated.
    Without ``negatives``, one frame in five is added without a code.
    """
    rng = random.Random(seed)
    texts = TicketTexts(rng, seeded_key(rng))
    combos = [(s, c) for c in conditions for s in symbologies]
    offset = rng.randrange(len(combos))
    for i in range(count):
        symbology, condition = combos[(i + offset) % len(combos)]
        yield make_sample(i, symbology, condition, size, texts, rng)
    for j in range(count // 5 if negatives is None else negatives):
        yield make_negative(count + j, size, rng)


def write(samples: Sequence[Sample] | Iterator[Sample], out: Path) -> int:
    """Write frames as PNG plus ``expected.json`` (name → expected text or null)."""
    out.mkdir(parents=True, exist_ok=True)
    index: dict[str, dict[str, str | None]] = {}
    for sample in samples:
        cv2.imwrite(str(out / f"{sample.name}.png"), sample.image)
        index[sample.name] = {
            "expected": sample.expected.decode("ascii") if sample.expected is not None else None,
            "symbology": sample.symbology, "condition": sample.condition,
        }
    (out / "expected.json").write_text(json.dumps(index, indent=1, sort_keys=True))
    return len(index)
