"""Build the configured turnstile backend: ``gpio``, ``serial`` or ``sim``.

The settings are validated first, by the models of :mod:`firmware_bridge.config` (a gate
passes the model its own config already validated; a dict is validated here). The Pi-only
libraries are imported only by the backend that needs them, so a hub or a laptop without
gpiozero or pyserial can still import this package and run the simulator.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from firmware_bridge.base import Turnstile
from firmware_bridge.config import (
    BACKENDS,
    GpioTurnstileConfig,
    SerialTurnstileConfig,
    TurnstileConfigError,
    TurnstileSettings,
    turnstile_settings,
)

__all__ = ["BACKENDS", "TurnstileConfigError", "open_turnstile"]


def open_turnstile(
    config: Mapping[str, Any] | TurnstileSettings,
    *,
    clock: Callable[[], float] = time.monotonic,
    pin_factory: Any = None,
) -> Turnstile:
    """Return the turnstile described by ``config`` (not yet started: use ``async with``).

    ``config`` is a :data:`~firmware_bridge.config.TurnstileConfig` model or the mapping it
    is read from: ``backend`` picks the backend; ``passage_timeout_s`` (default 8) is how long
    :meth:`~firmware_bridge.base.Turnstile.passage` waits when not told; the other keys are
    the backend's (see ``docs/hardware.md``). ``pin_factory`` is passed to gpiozero (tests use
    ``MockFactory``). Raises :class:`~firmware_bridge.config.TurnstileConfigError` naming every
    missing or invalid setting.
    """
    settings = turnstile_settings(config)
    turnstile = _build(settings, clock, pin_factory)
    turnstile.passage_timeout_s = float(settings.passage_timeout_s)
    return turnstile


def _build(settings: TurnstileSettings, clock: Callable[[], float], pin_factory: Any) -> Turnstile:
    if isinstance(settings, GpioTurnstileConfig):
        try:
            from firmware_bridge.gpio import GpioTurnstile
        except ImportError as exc:  # pragma: no cover - gpiozero is a declared dependency
            raise TurnstileConfigError([("backend", f"gpio backend unavailable: {exc}")]) from exc
        return GpioTurnstile(settings, clock=clock, pin_factory=pin_factory)
    if isinstance(settings, SerialTurnstileConfig):
        try:
            from firmware_bridge.serial_backend import SerialTurnstile
        except ImportError as exc:  # pragma: no cover - pyserial is a declared dependency
            raise TurnstileConfigError([("backend", f"serial backend unavailable: {exc}")]) from exc
        return SerialTurnstile(settings, clock=clock)
    from firmware_bridge.sim import SimTurnstile

    return SimTurnstile(clock=clock)
