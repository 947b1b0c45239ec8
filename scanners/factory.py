"""Build the scanner a gate's config asks for.

The settings are validated first, by the models of :mod:`scanners.config` (``backend`` is
``camera``, ``serial``, ``hid`` or ``sim``; the other keys belong to that backend, see
``docs/scanners.md``): unknown backends, unknown keys and bad values raise
:class:`~tickets.errors.ConfigError` naming the key. A gate passes its own config's scanner
model, already validated. Pi-only libraries (evdev, picamera2) are imported by their backend
when it starts, never here.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from scanners.base import Scanner
from scanners.config import (
    CameraScannerConfig,
    HidScannerConfig,
    ScannerSettings,
    SerialScannerConfig,
    scanner_settings,
)


def open_scanner(config: Mapping[str, Any] | ScannerSettings, *,
                 clock: Callable[[], float] = time.time) -> Scanner:
    """The scanner described by ``config``, not yet started (``async with`` starts it)."""
    settings = scanner_settings(config)
    name = settings.name
    if isinstance(settings, SerialScannerConfig):
        from scanners.serial import SerialScanner

        return SerialScanner(
            settings.port, baud=settings.baud, terminator=settings.terminator, prefix=settings.prefix,
            suffix=settings.suffix, max_len=settings.max_len, symbology=settings.symbology, source=name,
            clock=clock,
        )
    if isinstance(settings, HidScannerConfig):
        from scanners.hid import DEFAULT_KEY_TIMEOUT_S, HidScanner

        return HidScanner(
            settings.device, grab=settings.grab,
            timeout_s=settings.timeout_s if settings.timeout_s is not None else DEFAULT_KEY_TIMEOUT_S,
            max_len=settings.max_len, symbology=settings.symbology, source=name, clock=clock,
        )
    if isinstance(settings, CameraScannerConfig):
        return _camera(settings, clock)
    from scanners.sim import SimScanner

    return SimScanner(name or "sim", clock=clock)


def _camera(settings: CameraScannerConfig, clock: Callable[[], float]) -> Scanner:
    from scanners.camera import (
        DEFAULT_FROZEN_FAULT_S,
        DEFAULT_NO_FRAME_FAULT_S,
        DEFAULT_SUPPRESS_S,
        CameraScanner,
    )
    from scanners.decode import DEFAULT_BUDGET_MS

    def pick(value: float | None, default: float) -> float:
        return float(default if value is None else value)

    return CameraScanner(
        settings.device, driver=settings.driver, size=settings.size,
        budget_ms=pick(settings.budget_ms, DEFAULT_BUDGET_MS),
        suppress_s=pick(settings.repeat_suppress_s, DEFAULT_SUPPRESS_S),
        no_frame_fault_s=pick(settings.no_frame_fault_s, DEFAULT_NO_FRAME_FAULT_S),
        frozen_fault_s=pick(settings.frozen_fault_s, DEFAULT_FROZEN_FAULT_S),
        lossless=settings.lossless, confirm_1d_frames=settings.confirm_1d_frames, name=settings.name, clock=clock,
        decode=settings.decode_options(),
    )
