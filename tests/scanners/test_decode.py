"""The decode cascade: its stages and budget logic, the lanes' deadline, text encodings, and reads
on small generated and photo-like corpora."""
from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest
import segno

from scanners import corpus, photos
from scanners.decode import Cascade, Decoded, Stage, decode_zbar, decode_zxing, gs1_check_ok
from scanners.options import DecodeOptions
from tests.scanners.conftest import TIMEOUT_S

ONE_THREAD = DecodeOptions(decode_threads=1)


@pytest.fixture(scope="module")
def samples() -> list[corpus.Sample]:
    return list(corpus.generate(40, size=(640, 480), seed=11, negatives=8))


@pytest.fixture(scope="module")
def photo_samples() -> list[corpus.Sample]:
    # tune split: the tests may look at it; the benchmark reports on "report"
    return list(photos.generate(20, split="tune", seed=3, negatives=6, sizes=((640, 480),)))


def _reads(decoder, samples):  # type: ignore[no-untyped-def]
    read, wrong = set(), []
    for s in samples:
        got = {d.payload for d in decoder(s.image)}
        wrong += [(s.name, p) for p in got if p != s.expected]
        if s.expected in got:
            read.add(s.name)
    return read, wrong


# -- reads ------------------------------------------------------------------------------------

def test_cascade_reads_every_code_that_zxing_or_zbar_alone_reads_given_the_time(samples, photo_samples):
    frames = [s for s in samples + photo_samples if s.required]
    union = _reads(decode_zxing, frames)[0] | _reads(decode_zbar, frames)[0]
    with Cascade(budget_ms=2000, options=ONE_THREAD) as cascade:
        read, wrong = _reads(cascade, frames)
    assert union - read == set()
    assert wrong == []
    assert len(read) >= 0.8 * len(frames)


def test_nothing_is_read_in_frames_without_a_code(samples, photo_samples):
    negatives = [s for s in samples + photo_samples if s.expected is None]
    assert len(negatives) == 14
    with Cascade(budget_ms=2000, options=ONE_THREAD) as cascade:  # every stage: the most chances to invent one
        assert [(s.name, cascade(s.image)) for s in negatives if cascade(s.image)] == []


def test_railing_inverted_reads_no_ean_unless_zbar_agrees():
    from scanners.decode import _stage_inverted

    # light stripes on dark: what the dark-mode stage sees as bars
    img = np.full((480, 640), 30, np.uint8)
    rng = np.random.default_rng(4)
    x = 60
    while x < 580:
        w = int(rng.integers(2, 9))
        img[120:360, x:x + w] = 230
        x += w + int(rng.integers(2, 10))
    assert [d for d in _stage_inverted(img, ONE_THREAD) if d.symbology == "ean13"] == []


def test_mirrored_and_upside_down_codes_read_correctly_or_not_at_all(samples):
    with Cascade(budget_ms=2000, options=ONE_THREAD) as cascade:
        for s in samples:
            if s.condition in ("mirrored", "upside_down"):
                assert all(d.payload == s.expected for d in cascade(s.image)), s.name


def test_package_sample_images_read_as_their_tests_say():
    found = photos.package_samples()
    assert {s.name for s in found} >= {"package_pyzbar_qrcode", "package_pyzbar_code128_null_character"}
    with Cascade(budget_ms=2000, options=ONE_THREAD) as cascade:
        for s in found:
            assert s.expected in {d.payload for d in cascade(s.image)}, s.name


def test_photo_corpus_is_deterministic_per_split_and_the_splits_differ():
    a = next(iter(photos.generate(1, split="tune", seed=5, negatives=0)))
    b = next(iter(photos.generate(1, split="tune", seed=5, negatives=0)))
    c = next(iter(photos.generate(1, split="report", seed=5, negatives=0)))
    assert np.array_equal(a.image, b.image) and a.expected == b.expected
    assert a.expected != c.expected
    with pytest.raises(ValueError):
        next(iter(photos.generate(1, split="train")))


def test_corpus_tickets_are_real_signed_credentials():
    import random

    from tickets.credential import SignedCredential, read
    from tickets.keys import KeyRing

    rng = random.Random(3)
    key = corpus.seeded_key(rng)
    text = corpus.TicketTexts(rng, key).text("qrcode")
    assert isinstance(read(text.encode(), KeyRing([key.verify_key])), SignedCredential)


# -- text encodings ---------------------------------------------------------------------------

def _qr(text: str | bytes, **kw) -> np.ndarray:  # type: ignore[no-untyped-def]
    qr = segno.make(text, micro=False, **kw)
    m = np.array([list(row) for row in qr.matrix], dtype=np.uint8)
    img = np.pad(np.where(m > 0, 0, 255).astype(np.uint8), 4, constant_values=255)
    return np.pad(cv2.resize(img, None, fx=5, fy=5, interpolation=cv2.INTER_NEAREST), 40, constant_values=255)


@pytest.mark.parametrize(("text", "encoding", "eci"), [
    ("チケット 第7ゲート", "shift_jis", False),            # Shift_JIS, no ECI: zxing-cpp recognises it
    ("票号 北京 东看台", "gb18030", True),                  # GB2312 text under ECI 29 (GB18030 ⊇ GB2312)
    ("Билет № 4711", "utf-8", True),
    ("Eintrittskarte Süd", "utf-8", False),
    ("Entrée Tribüne", "latin-1", False),                  # QR's default byte character set
])
def test_text_payloads_come_out_as_their_text_in_utf8(text, encoding, eci):
    if encoding == "gb18030":
        assert text.encode("gb2312") == text.encode("gb18030")  # the bytes are GB2312's
    img = _qr(text, encoding=encoding, eci=eci)
    with Cascade(budget_ms=2000, options=ONE_THREAD) as cascade:
        codes = cascade(img)
    assert [(d.payload, d.text) for d in codes] == [(text.encode("utf-8"), text)]
    assert [d.payload for d in decode_zxing(img)] == [text.encode("utf-8")]


def test_zbar_guess_of_a_gb2312_qr_is_replaced_by_zxings_reading_of_its_eci():
    text = "票号 北京 东看台"
    img = _qr(text, encoding="gb18030", eci=True)
    (read,) = decode_zbar(img)  # ZBar alone would garble it; it is re-read where ZBar found it
    assert read.payload == text.encode("utf-8") and not read.charset_guessed


def test_binary_payload_keeps_its_bytes():
    raw = bytes(range(0, 256, 5))
    with Cascade(budget_ms=2000, options=ONE_THREAD) as cascade:
        codes = cascade(_qr(raw))
    assert [(d.payload, d.text) for d in codes] == [(raw, None)]


def test_pdf417_with_utf8_text_decodes_to_that_text():
    text = "票号 Ticket Süd"
    img = np.pad(photos.encode_text_code(text, "utf-8", True, "pdf417", 3), 30, constant_values=255)
    assert [d.text for d in decode_zxing(img)] == [text]


# -- symbologies and ITF lengths from configuration --------------------------------------------

def _itf(digits: str) -> np.ndarray:
    img = corpus.render_code(digits, "itf", 3)
    return np.pad(img, 30, constant_values=255)


def test_itf_of_other_lengths_is_refused_by_default_and_read_when_configured():
    ten = corpus.gtin_with_check("123456789")  # 10 digits with a GS1 check digit
    img = _itf(ten)
    with Cascade(budget_ms=2000, options=ONE_THREAD) as strict:
        assert strict(img) == []
    opts = DecodeOptions(itf_lengths=frozenset({10, 14}), decode_threads=1)
    with Cascade(budget_ms=2000, options=opts) as venue:
        assert [d.payload for d in venue(img)] == [ten.encode()]
    assert [d.payload for d in decode_zbar(img, opts)] == [ten.encode()]


def test_itf_without_a_check_digit_needs_the_check_turned_off():
    digits = "1234567890"
    assert not gs1_check_ok(digits.encode())
    opts = DecodeOptions(itf_lengths=frozenset({10}), decode_threads=1)
    assert decode_zxing(_itf(digits), opts) == []
    loose = DecodeOptions(itf_lengths=frozenset({10}), itf_check_digit=False, decode_threads=1)
    assert [d.payload for d in decode_zxing(_itf(digits), loose)] == [digits.encode()]


def test_a_symbology_left_out_of_the_config_is_not_reported():
    img = np.pad(corpus.render_code("TK-2026-000123", "code128", 2), 30, constant_values=255)
    qr_only = DecodeOptions(symbologies=frozenset({"qrcode"}), decode_threads=1)
    assert decode_zxing(img, qr_only) == [] and decode_zbar(img, qr_only) == []
    assert [d.payload for d in decode_zxing(img)] == [b"TK-2026-000123"]


def test_itf_reads_need_a_valid_check_digit_by_default():
    assert gs1_check_ok(corpus.gtin_with_check("1234567890123").encode())
    assert not gs1_check_ok(b"12345678901230")
    assert not gs1_check_ok(b"12ab")


# -- budget logic, single thread, injected clock -------------------------------------------------

class FakeTime:
    """A clock that moves only when a fake stage "works" for its cost."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def stage(self, name: str, cost: float, takes: float | None = None, result=()) -> Stage:  # type: ignore[no-untyped-def]
        def run(_gray, _options):  # type: ignore[no-untyped-def]
            self.t += cost if takes is None else takes
            return list(result)

        return Stage(name, run, cost_s=cost)


FRAME = np.zeros((10, 10), np.uint8)


def test_a_stage_that_would_not_fit_in_what_is_left_of_the_budget_is_skipped():
    clock = FakeTime()
    cascade = Cascade(budget_ms=40, clock=clock, options=ONE_THREAD, adaptive_order=False, stages=[
        clock.stage("first", 0.010), clock.stage("cheap", 0.005), clock.stage("dear", 0.030),
        clock.stage("tail", 0.010),
    ])
    result = cascade.decode(FRAME)
    # 15 ms used; "dear" needs 30 ms > 25 ms left; "tail" fits
    assert result.stages_run == ("first", "cheap", "tail")
    assert result.stages_skipped == ("dear",)
    assert result.elapsed_s <= 0.040


def test_a_stage_that_ran_long_is_skipped_then_tried_again_as_its_estimate_decays():
    clock = FakeTime()
    slow = clock.stage("slow", 0.005, takes=0.060)
    cascade = Cascade(budget_ms=40, clock=clock, options=ONE_THREAD, stages=[clock.stage("first", 0.001), slow])
    assert cascade.decode(FRAME).stages_run == ("first", "slow")  # estimate said 5 ms: it ran 60
    assert cascade.decode(FRAME).stages_skipped == ("slow",)  # now it is known to be dear
    slow.run = clock.stage("slow", 0.005).run  # the busy moment has passed
    runs = [cascade.decode(FRAME).stages_run for _ in range(40)]
    assert ("first", "slow") in runs  # skipping decays the estimate, so it is tried again


def test_estimates_follow_the_cost_per_pixel_so_a_bigger_frame_is_expected_to_cost_more():
    stage = Stage("s", lambda g, o: [])
    stage.note(0.004, 640 * 480)
    assert stage.estimate(1280 * 720) == pytest.approx(3 * stage.estimate(640 * 480))


def test_later_stages_are_ordered_by_hits_per_millisecond():
    clock = FakeTime()
    hit = Decoded(b"TK-1", "code128")
    a = clock.stage("a", 0.001)
    b = clock.stage("b", 0.002)                # cheap, but never reads
    c = clock.stage("c", 0.004, result=[hit])  # dearer, and reads
    cascade = Cascade(budget_ms=40, clock=clock, options=ONE_THREAD, stages=[a, b, c])
    assert cascade.decode(FRAME).stages_run == ("a", "b", "c")  # nothing measured yet: cheapest first
    for _ in range(5):
        cascade.decode(FRAME)
    assert cascade.decode(FRAME).stages_run == ("a", "c")
    fixed = Cascade(budget_ms=40, clock=clock, options=ONE_THREAD, adaptive_order=False,
                    stages=[clock.stage("a", 0.001), clock.stage("b", 0.002), clock.stage("c", 0.004, result=[hit])])
    for _ in range(5):
        fixed.decode(FRAME)
    assert fixed.decode(FRAME).stages_run == ("a", "b", "c")


def test_cascade_stops_at_the_first_stage_that_reads_a_code():
    hit = Decoded(b"TK-1", "code128")
    stages = [Stage("a", lambda g, o: []), Stage("b", lambda g, o: [hit]), Stage("c", lambda g, o: [])]
    result = Cascade(stages=stages, options=ONE_THREAD).decode(FRAME)
    assert result.codes == [hit] and result.stages_run == ("a", "b")


def test_a_stage_that_raises_is_logged_and_the_frame_goes_on(caplog):
    def boom(_gray, _options):  # type: ignore[no-untyped-def]
        raise RuntimeError("decoder bug")

    hit = Decoded(b"X", "qrcode")
    cascade = Cascade(stages=[Stage("boom", boom), Stage("ok", lambda g, o: [hit])], options=ONE_THREAD)
    assert cascade(FRAME) == [hit]
    assert "decode stage boom failed" in caplog.text


# -- the lanes on threads: the deadline holds whatever a stage costs ------------------------------

def test_a_stage_that_blocks_does_not_hold_the_frame_past_its_deadline_and_its_read_comes_late():
    release = threading.Event()
    hit = Decoded(b"GH1:LATE", "qrcode")

    def stuck(_gray, _options):  # type: ignore[no-untyped-def]
        release.wait(TIMEOUT_S)  # a decoder lost in a huge frame
        return [hit]

    lanes = [[Stage("stuck", stuck)], [Stage("other", lambda g, o: [])]]
    with Cascade(budget_ms=40, stages=lanes, threads=2) as cascade:
        first = cascade.decode(FRAME)
        assert first.codes == []
        assert first.elapsed_s < 0.040 + 0.5  # the caller left at the deadline, not after the stage
        release.set()
        deadline = time.monotonic() + TIMEOUT_S
        late: list[Decoded] = []
        while not late and time.monotonic() < deadline:
            result = cascade.decode(FRAME)
            late = result.late
        assert late == [hit]
        assert cascade.stages[0].late == 1


def test_a_large_pdf417_photo_does_not_block_the_lane_as_zxing_alone_does():
    # a 12-megapixel phone photo of a PDF417 ticket: zxing-cpp alone spends hundreds of ms on it
    big = np.full((3000, 4000, 3), 200, np.uint8)
    code = corpus.render_code(corpus.TicketTexts(__import__("random").Random(2)).text("pdf417"), "pdf417", 9)
    y, x = (3000 - code.shape[0]) // 2, (4000 - code.shape[1]) // 2
    big[y:y + code.shape[0], x:x + code.shape[1]] = code[..., None]
    big = cv2.GaussianBlur(big, (0, 0), 2)
    t = time.perf_counter()
    decode_zxing(big)
    alone_s = time.perf_counter() - t
    with Cascade(budget_ms=40, threads=2) as cascade:
        cascade.decode(big)  # first frame: lanes start, estimates learn
        times = [cascade.decode(big).elapsed_s for _ in range(3)]
    assert alone_s > 0.1  # the frame is slow for the decoder alone ...
    assert max(times) < 0.25 and max(times) < alone_s  # ... but not for the lane


# -- stages ------------------------------------------------------------------------------------

@pytest.mark.parametrize("angle", [-35.0, -12.0, 20.0, 40.0])
def test_dominant_angle_finds_how_far_bars_are_turned(angle):
    from scanners.decode import dominant_angle

    bars = np.full((300, 300), 255, np.uint8)
    for x in range(40, 260, 12):
        bars[:, x:x + 5] = 0
    m = cv2.getRotationMatrix2D((150, 150), angle, 1.0)
    turned = cv2.warpAffine(bars, m, (300, 300), borderValue=255)[60:240, 60:240]
    # the angle to turn back by (cv2.getRotationMatrix2D's sense): minus the turn
    assert abs(dominant_angle(turned) + angle) < 3


def test_deskew_reads_a_code128_held_at_thirty_degrees():
    from scanners.decode import _stage_deskew, _zxing

    code = corpus.render_code("TK-2026-000123", "code128", 2)
    canvas = np.full((480, 640), 200, np.uint8)
    h, w = code.shape
    canvas[(480 - h) // 2:(480 - h) // 2 + h, (640 - w) // 2:(640 - w) // 2 + w] = code
    m = cv2.getRotationMatrix2D((320, 240), 30, 1.0)
    turned = cv2.warpAffine(canvas, m, (640, 480), borderValue=200)
    assert _zxing(turned, ONE_THREAD, rotate=True, invert=True) == []  # the plain decoder does not
    assert [d.payload for d in _stage_deskew(turned, ONE_THREAD)] == [b"TK-2026-000123"]


def test_a_lane_that_hits_a_bug_outside_a_stage_logs_it_and_keeps_serving_frames(monkeypatch, caplog):
    from scanners import decode as decode_module

    hit = Decoded(b"GH1:OK", "qrcode")
    real_input = decode_module._Frame.input
    calls = {"n": 0}

    def flaky(self, stage, fit_s=None):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise TypeError("a bug in the lane")
        return real_input(self, stage, fit_s)

    monkeypatch.setattr(decode_module._Frame, "input", flaky)
    with Cascade(budget_ms=1000, stages=[[Stage("a", lambda g, o: [hit])], [Stage("b", lambda g, o: [])]],
                 threads=2) as cascade:
        results = [cascade.decode(FRAME).codes for _ in range(3)]
    assert cascade.lane_errors == 1 and "decode lane" in caplog.text
    assert results[1:] == [[hit], [hit]]
