"""Rotating codes: a time-based part that changes every 15 s, so a screenshot stops working.

The phone computes ``code_for(secret, step)`` from a per-ticket secret it was given once;
the gate holds the same secret in its replica and accepts the code for the current step
and ``window`` steps either side. Codes are 8 characters of RFC 4648 base32 from
HMAC-SHA256(secret, b"GHR1" + step as 8 big-endian bytes): 40 bits, alphanumeric-mode safe.

The fan's ticket page implements the same function in JavaScript (``ui/static/rotating.js``);
the test vectors in ``tests/tickets/test_rotating.py`` pin both.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

STEP_S = 15
CODE_LEN = 8
SECRET_LEN = 20
_DOMAIN = b"GHR1"


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_LEN)


def step_at(now: float) -> int:
    return int(now // STEP_S)


def code_for(secret: bytes, step: int) -> str:
    digest = hmac.new(secret, _DOMAIN + step.to_bytes(8, "big", signed=True), hashlib.sha256).digest()
    return base64.b32encode(digest[:5]).decode("ascii")[:CODE_LEN]


def code_at(secret: bytes, now: float) -> str:
    return code_for(secret, step_at(now))


def check_code(secret: bytes, code: str, now: float, window: int = 1) -> bool:
    """True if ``code`` is the code for a step within ``window`` of now (constant-time compare)."""
    step = step_at(now)
    ok = False
    for s in range(step - window, step + window + 1):
        ok |= hmac.compare_digest(code_for(secret, s), code)
    return ok
