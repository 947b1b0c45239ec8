"""Keyboard-wedge decoding from kernel key events, without a device or evdev."""
from __future__ import annotations

import importlib.util

import pytest

from scanners.hid import (
    KEY_CAPSLOCK,
    KEY_DOWN,
    KEY_ENTER,
    KEY_KPENTER,
    KEY_LEFTSHIFT,
    KEY_REPEAT,
    KEY_RIGHTSHIFT,
    KEY_UP,
    HidScanner,
    KeyDecoder,
)

# kernel key codes (linux/input-event-codes.h)
K = {"G": 34, "H": 35, "1": 2, "2": 3, "3": 4, "T": 20, "K": 37, "-": 12, ";": 39, "A": 30}


def press(dec: KeyDecoder, code: int, t: float, *, shift: bool = False) -> list[bytes | None]:
    out = []
    if shift:
        out.append(dec.feed(KEY_LEFTSHIFT, KEY_DOWN, t))
    out.append(dec.feed(code, KEY_DOWN, t))
    out.append(dec.feed(code, KEY_UP, t))
    if shift:
        out.append(dec.feed(KEY_LEFTSHIFT, KEY_UP, t))
    return out


def type_text(dec: KeyDecoder, keys: list[tuple[str, bool]], start: float = 0.0, gap: float = 0.005):
    t = start
    for key, shift in keys:
        press(dec, K[key], t, shift=shift)
        t += gap
    return dec.feed(KEY_ENTER, KEY_DOWN, t)


def test_shifted_letters_digits_and_symbols_end_on_enter():
    dec = KeyDecoder()
    got = type_text(dec, [("G", True), ("H", True), ("1", False), (";", True), ("T", True),
                          ("K", True), ("-", False), ("2", False), ("3", False)])
    assert got == b"GH1:TK-23"


def test_lowercase_without_shift_and_right_shift_works_too():
    dec = KeyDecoder()
    dec.feed(K["A"], KEY_DOWN, 0.0)
    dec.feed(KEY_RIGHTSHIFT, KEY_DOWN, 0.001)
    dec.feed(K["A"], KEY_DOWN, 0.002)
    dec.feed(KEY_RIGHTSHIFT, KEY_UP, 0.003)
    assert dec.feed(KEY_KPENTER, KEY_DOWN, 0.004) == b"aA"


def test_caps_lock_inverts_letters_only():
    dec = KeyDecoder()
    dec.feed(KEY_CAPSLOCK, KEY_DOWN, 0.0)
    dec.feed(K["A"], KEY_DOWN, 0.001)
    dec.feed(K["1"], KEY_DOWN, 0.002)
    assert dec.feed(KEY_ENTER, KEY_DOWN, 0.003) == b"A1"


def test_autorepeat_and_key_up_add_no_characters():
    dec = KeyDecoder()
    dec.feed(K["1"], KEY_DOWN, 0.0)
    dec.feed(K["1"], KEY_REPEAT, 0.001)
    dec.feed(K["1"], KEY_UP, 0.002)
    assert dec.feed(KEY_ENTER, KEY_DOWN, 0.003) == b"1"


def test_partial_code_is_discarded_after_the_timeout():
    dec = KeyDecoder(timeout_s=0.1)
    dec.feed(K["1"], KEY_DOWN, 0.0)
    dec.feed(K["2"], KEY_DOWN, 0.01)
    # the scanner was cut off; a human presses 3 and Enter much later
    dec.feed(K["3"], KEY_DOWN, 1.0)
    assert dec.feed(KEY_ENTER, KEY_DOWN, 1.01) == b"3"
    assert dec.discarded == 1


def test_expire_drops_a_partial_code_when_idle():
    dec = KeyDecoder(timeout_s=0.1)
    dec.feed(K["1"], KEY_DOWN, 0.0)
    dec.expire(0.5)
    assert dec.feed(KEY_ENTER, KEY_DOWN, 0.51) is None
    assert dec.discarded == 1


def test_over_long_code_is_dropped_whole():
    dec = KeyDecoder(max_len=4)
    for i in range(10):
        dec.feed(K["1"], KEY_DOWN, i * 0.001)
    assert dec.feed(KEY_ENTER, KEY_DOWN, 0.02) is None
    assert type_text(dec, [("2", False)], start=0.03) == b"2"


def test_enter_alone_and_unmapped_keys_produce_nothing():
    dec = KeyDecoder()
    assert dec.feed(KEY_ENTER, KEY_DOWN, 0.0) is None
    assert dec.feed(999, KEY_DOWN, 0.001) is None
    assert dec.feed(KEY_ENTER, KEY_DOWN, 0.002) is None


@pytest.mark.skipif(importlib.util.find_spec("evdev") is not None, reason="evdev is installed here")
async def test_hid_backend_without_evdev_fails_clearly_on_start():
    scanner = HidScanner("/dev/input/event0")
    with pytest.raises(ImportError):
        async with scanner:
            pass
