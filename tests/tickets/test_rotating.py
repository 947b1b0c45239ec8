"""Rotating codes: pinned vectors (the fan page's JavaScript must match these)."""
from __future__ import annotations

from tickets import rotating

SECRET = bytes(range(20))


def test_code_vectors_are_stable() -> None:
    # If these change, every phone showing a rotating ticket breaks: never change them.
    assert rotating.step_at(1_780_000_000) == 118_666_666
    assert {step: rotating.code_for(SECRET, step) for step in VECTORS} == VECTORS


#: secret = bytes(range(20)); also used by the fan page's JavaScript test.
VECTORS = {0: "6VMOGWWO", 1: "AC7GXQH6", 118_666_666: "JMIDEWZZ"}


def test_code_changes_every_step() -> None:
    codes = {rotating.code_for(SECRET, s) for s in range(100)}
    assert len(codes) == 100


def test_code_is_accepted_within_one_step_either_side_only() -> None:
    now = 1_780_000_007.0
    for offset, ok in [(-2, False), (-1, True), (0, True), (1, True), (2, False)]:
        code = rotating.code_at(SECRET, now + offset * rotating.STEP_S)
        assert rotating.check_code(SECRET, code, now) is ok, offset


def test_code_from_another_secret_is_refused() -> None:
    now = 1_780_000_007.0
    assert not rotating.check_code(b"x" * 20, rotating.code_at(SECRET, now), now)
