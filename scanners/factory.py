"""Build the scanner a gate's config asks for.

``config["backend"]`` is ``camera``, ``serial``, ``hid`` or ``sim``; the other keys belong to
that backend (see ``docs/scanners.md``). Unknown backends, unknown keys and bad values raise
:class:`~tickets.errors.ConfigError` naming the key. Pi-only libraries (evdev, picamera2)
are imported by their backend when it starts, never here.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from scanners.base import Scanner
from scanners.options import DecodeOptions
from tickets.errors import ConfigError

_COMMON = {"backend", "name"}
_KEYS = {
    "camera": {"device", "driver", "width", "height", "budget_ms", "repeat_suppress_s", "no_frame_fault_s",
               "frozen_fault_s", "lossless", "confirm_1d_frames", *DecodeOptions.KEYS},
    "serial": {"port", "baud", "terminator", "prefix", "suffix", "max_len", "symbology"},
    "hid": {"device", "grab", "timeout_s", "max_len", "symbology"},
    "sim": set(),
}


def _get(config: Mapping[str, Any], key: str, kind: type | tuple[type, ...], default: Any = None,
         *, required: bool = False) -> Any:
    if key not in config:
        if required:
            raise ConfigError(f"scanner.{key}", "is required")
        return default
    value = config[key]
    if isinstance(value, bool) and kind is not bool and not (isinstance(kind, tuple) and bool in kind):
        raise ConfigError(f"scanner.{key}", f"must be {_name(kind)}, not a boolean")
    if not isinstance(value, kind):
        raise ConfigError(f"scanner.{key}", f"must be {_name(kind)}, not {type(value).__name__}")
    return value


def _name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


def _positive(key: str, value: float | None) -> None:
    if value is not None and not value > 0:
        raise ConfigError(f"scanner.{key}", "must be positive")


def _bytes(config: Mapping[str, Any], key: str) -> bytes:
    value = _get(config, key, (str, bytes), b"")
    return value.encode("latin-1") if isinstance(value, str) else value


def open_scanner(config: Mapping[str, Any], *, clock: Callable[[], float] = time.time) -> Scanner:
    """The scanner described by ``config``, not yet started (``async with`` starts it)."""
    if not isinstance(config, Mapping):
        raise ConfigError("scanner", "must be a table of settings")
    backend = config.get("backend")
    if backend not in _KEYS:
        raise ConfigError("scanner.backend", f"must be one of {sorted(_KEYS)}, not {backend!r}")
    unknown = set(config) - _COMMON - _KEYS[backend]
    if unknown:
        raise ConfigError(f"scanner.{sorted(unknown)[0]}", f"is not a setting of the {backend} backend")
    name = _get(config, "name", str)
    if backend == "sim":
        from scanners.sim import SimScanner

        return SimScanner(name or "sim", clock=clock)
    if backend == "serial":
        from scanners.serial import TERMINATORS, SerialScanner

        baud = _get(config, "baud", int, 9600)
        _positive("baud", baud)
        terminator = _get(config, "terminator", str, "CR").upper()
        if terminator not in TERMINATORS:
            raise ConfigError("scanner.terminator", f"must be one of {sorted(TERMINATORS)}")
        max_len = _get(config, "max_len", int, 1024)
        _positive("max_len", max_len)
        return SerialScanner(
            _get(config, "port", str, required=True), baud=baud, terminator=terminator,
            prefix=_bytes(config, "prefix"), suffix=_bytes(config, "suffix"), max_len=max_len,
            symbology=_get(config, "symbology", str, "unknown"), source=name, clock=clock,
        )
    if backend == "hid":
        from scanners.hid import DEFAULT_KEY_TIMEOUT_S, HidScanner

        timeout_s = _get(config, "timeout_s", (int, float), DEFAULT_KEY_TIMEOUT_S)
        _positive("timeout_s", timeout_s)
        max_len = _get(config, "max_len", int, 1024)
        _positive("max_len", max_len)
        return HidScanner(
            _get(config, "device", str, required=True), grab=_get(config, "grab", bool, True),
            timeout_s=float(timeout_s), max_len=max_len,
            symbology=_get(config, "symbology", str, "unknown"), source=name, clock=clock,
        )
    from scanners.camera import (
        DEFAULT_FROZEN_FAULT_S,
        DEFAULT_NO_FRAME_FAULT_S,
        DEFAULT_SUPPRESS_S,
        CameraScanner,
    )
    from scanners.decode import DEFAULT_BUDGET_MS

    device = _get(config, "device", (int, str), 0)
    driver = _get(config, "driver", str, "opencv")
    if driver not in ("opencv", "picamera2"):
        raise ConfigError("scanner.driver", "must be opencv or picamera2")
    width, height = _get(config, "width", int), _get(config, "height", int)
    if (width is None) != (height is None):
        raise ConfigError("scanner.width", "width and height go together")
    budget_ms = float(_get(config, "budget_ms", (int, float), DEFAULT_BUDGET_MS))
    suppress_s = float(_get(config, "repeat_suppress_s", (int, float), DEFAULT_SUPPRESS_S))
    no_frame = float(_get(config, "no_frame_fault_s", (int, float), DEFAULT_NO_FRAME_FAULT_S))
    frozen = _get(config, "frozen_fault_s", (int, float), DEFAULT_FROZEN_FAULT_S)
    for key, value in (("budget_ms", budget_ms), ("no_frame_fault_s", no_frame), ("frozen_fault_s", frozen)):
        _positive(key, value)
    confirm = _get(config, "confirm_1d_frames", int, 2)
    _positive("confirm_1d_frames", confirm)
    if suppress_s < 0:
        raise ConfigError("scanner.repeat_suppress_s", "must not be negative")
    return CameraScanner(
        device, driver=driver, size=(width, height) if width and height else None, budget_ms=budget_ms,
        suppress_s=suppress_s, no_frame_fault_s=no_frame, frozen_fault_s=float(frozen),
        lossless=_get(config, "lossless", bool), confirm_1d_frames=confirm, name=name, clock=clock,
        decode=DecodeOptions.from_config(config),
    )
