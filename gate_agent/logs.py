"""Log lines that name their gate and never carry a secret.

**Which gate.** The demo, the venue harness and the benchmarks run many gate agents in one
process, so a logger per gate would miss the libraries' own lines (websockets, uvicorn,
sync). Instead the agent runs its tasks inside :func:`gate_context`: a context variable that
asyncio copies into every task created within it, and that :class:`GateTagFilter` reads when
a line is written. A process that runs one gate (``gatehouse gate run``) also sets it as the
process default with :func:`set_process_gate`, which covers threads started outside a task.

**No secrets.** :class:`RedactFilter` rewrites each record before it is written:

- ``Authorization``/``Cookie``/``X-Gate-Session`` header lines and ``Bearer …`` become
  ``[redacted]``; so do the values of JSON or repr keys such as ``token``, ``pin``,
  ``rotating_secret`` and ``barcode``, and every exact secret registered with
  :func:`register_secret` (the gate's token, the staff-screen session);
- a websockets frame (logged at debug with the whole sync message: credentials, snapshots
  with rotating secrets) is shown as its opcode, message type and length only;
- a scanned credential (``GH1:…``, its base64 in a journal upload, ``payload=b'…'`` in a
  ``Scan``) is shown as :func:`redacted`: a short prefix, its length and a short keyed hash,
  so two lines about the same code can be matched up without the code being in the log.
  The hash key is random per process, so a short barcode cannot be recovered by hashing
  candidates.

The filters sit on the handlers (:func:`install`), so they see every record whatever logger
wrote it. This is hand-written: the standard library has filters but no redaction, and the
patterns are this system's own.
"""
from __future__ import annotations

import contextlib
import contextvars
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Iterable, Iterator
from typing import Any

#: the gate the current task works for (None: not a gate's task)
GATE_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("gatehouse_gate_id", default=None)
_process_gate: str | None = None

FORMAT = "%(asctime)s %(levelname)s %(gate)s%(name)s: %(message)s"
REDACTED = "[redacted]"
_HASH_KEY = secrets.token_bytes(16)
_secrets: set[str] = set()
_secret_re: re.Pattern[str] | None = None

_HEADER = re.compile(r"(?im)^([<>] )?(authorization|proxy-authorization|cookie|set-cookie|x-gate-session)(\s*:\s*).*$")
_BEARER = re.compile(r"(?i)\b(bearer)(\s+)[^\s'\",;)\]}]+")
_KEYS = r"token|access_token|enrolment_token|pin|pin_hash|rotating_secret|secret|barcode|password|session"
_JSON_VALUE = re.compile(rf"""(?i)(["'](?:{_KEYS})["']\s*:\s*)(b?["'])(?:[^"'\\]|\\.)*(["']?)""")
_QUERY_VALUE = re.compile(rf"(?i)([?&#](?:{_KEYS})=)[^&\s#'\"]+")
_CREDENTIAL = re.compile(r"GH1:[A-Z2-7]{12,}(?::[A-Z2-7]{4,})?")
# base64 of "GH1:" (a journal entry's raw credential as it goes over the wire)
_CREDENTIAL_B64 = re.compile(r"R0gxO[A-Za-z0-9+/]{12,}={0,2}")
_PAYLOAD = re.compile(r"""\b(payload|raw|credential)=(b?)(['"])((?:[^'"\\]|\\.)*)\3""")
_RAW_JSON = re.compile(r"""(["']raw["']\s*:\s*)(["'])([A-Za-z0-9+/=]*)(["']?)""")
_FRAME_TYPE = re.compile(rb'"type"\s*:\s*"([a-z_]{1,32})"')


# --- which gate --------------------------------------------------------------------------
@contextlib.contextmanager
def gate_context(gate_id: str) -> Iterator[None]:
    """Run the body (and every task it creates) as gate ``gate_id`` for logging."""
    token = GATE_ID.set(gate_id)
    try:
        yield
    finally:
        GATE_ID.reset(token)


def set_process_gate(gate_id: str | None) -> None:
    """The gate this whole process runs (``gatehouse gate run``): the tag when no task says."""
    global _process_gate
    _process_gate = gate_id


def current_gate() -> str | None:
    return GATE_ID.get() or _process_gate


class GateTagFilter(logging.Filter):
    """Adds ``record.gate_id`` and ``record.gate`` (``"[north-1] "`` or ``""``) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        gate = current_gate()
        record.gate_id = gate or ""
        record.gate = f"[{gate}] " if gate else ""
        return True


# --- no secrets --------------------------------------------------------------------------
def register_secret(value: str | None) -> None:
    """Never write ``value`` to the log (a gate token, a session); ignores short values."""
    global _secret_re
    if not value or len(value) < 8 or value in _secrets:
        return
    _secrets.add(value)
    _secret_re = re.compile("|".join(re.escape(s) for s in sorted(_secrets, key=len, reverse=True)))


def redacted(data: bytes | str) -> str:
    """A scanned code as the log may show it: prefix, length and a short keyed hash."""
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogateescape")
    digest = hmac.new(_HASH_KEY, raw, hashlib.sha256).hexdigest()[:8]
    text = raw.decode("utf-8", "replace")
    prefix = "GH1:" if text.startswith("GH1:") else text[:2] if len(text) > 12 else ""
    return f"{prefix}…[{len(raw)}B #{digest}]"


def redact(text: str) -> str:
    """``text`` with every secret and scanned credential it contains replaced."""
    if _secret_re is not None:
        text = _secret_re.sub(REDACTED, text)
    text = _HEADER.sub(lambda m: f"{m.group(1) or ''}{m.group(2)}{m.group(3)}{REDACTED}", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = _JSON_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}{m.group(3)}", text)
    text = _QUERY_VALUE.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    text = _PAYLOAD.sub(lambda m: f"{m.group(1)}=<{redacted(_unrepr(m.group(4)))}>", text)
    text = _RAW_JSON.sub(lambda m: f"{m.group(1)}{m.group(2)}{redacted(m.group(3))}{m.group(4)}"
                         if m.group(3) else m.group(0), text)
    text = _CREDENTIAL.sub(lambda m: redacted(m.group(0)), text)
    return _CREDENTIAL_B64.sub(lambda m: redacted(m.group(0)), text)


def _unrepr(text: str) -> str:
    return text.replace("\\'", "'").replace('\\"', '"').replace("\\\\", "\\")


def _frame_summary(frame: Any) -> str:
    """A websockets frame without its payload: opcode, sync message type, length."""
    data = bytes(getattr(frame, "data", b""))
    opcode = getattr(getattr(frame, "opcode", None), "name", "FRAME")
    if opcode in ("PING", "PONG", "CLOSE"):
        return str(frame) if opcode == "CLOSE" else f"{opcode} [{len(data)} bytes]"
    kind = _FRAME_TYPE.search(data[:200])
    what = f" {kind.group(1).decode()}" if kind else ""
    return f"{opcode}{what} [{len(data)} bytes, payload not logged]"


def _is_frame(value: Any) -> bool:
    return type(value).__name__ == "Frame" and hasattr(value, "opcode") and hasattr(value, "data")


class RedactFilter(logging.Filter):
    """Rewrites a record's message (and traceback text) with :func:`redact`."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and any(_is_frame(a) for a in args):
            args = tuple(_frame_summary(a) if _is_frame(a) else a for a in args)
        try:
            message = str(record.msg) % args if args else str(record.msg)
        except (TypeError, ValueError, KeyError):
            return True  # a broken format string: logging reports it itself
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install(handlers: Iterable[logging.Handler]) -> None:
    """Put the gate tag and the redaction on each handler (once)."""
    for handler in handlers:
        if not any(isinstance(f, GateTagFilter) for f in handler.filters):
            handler.addFilter(GateTagFilter())
        if not any(isinstance(f, RedactFilter) for f in handler.filters):
            handler.addFilter(RedactFilter())


def configure(level: int) -> None:
    """The ``gatehouse`` command's logging: stderr, gate-tagged, redacted."""
    logging.basicConfig(level=level, format=FORMAT)
    install(logging.getLogger().handlers)
