"""Build the configured turnstile backend: ``gpio``, ``serial`` or ``sim``.

The Pi-only libraries are imported only by the backend that needs them, so a hub or a
laptop without gpiozero or pyserial can still import this package and run the simulator.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from firmware_bridge.base import DEFAULT_PASSAGE_TIMEOUT_S, Turnstile
from tickets.errors import ConfigError

BACKENDS = ("gpio", "serial", "sim")


def open_turnstile(
    config: Mapping[str, Any],
    *,
    clock: Callable[[], float] = time.monotonic,
    pin_factory: Any = None,
) -> Turnstile:
    """Return the turnstile described by ``config`` (not yet started: use ``async with``).

    ``config["backend"]`` picks the backend; ``passage_timeout_s`` (default 8) is how long
    :meth:`~firmware_bridge.base.Turnstile.passage` waits when not told; the other keys are
    the backend's (see ``docs/hardware.md``). ``pin_factory`` is passed to gpiozero (tests use ``MockFactory``).
    Raises :class:`tickets.errors.ConfigError` for a missing or invalid setting.
    """
    if not isinstance(config, Mapping):
        raise ConfigError("turnstile", f"expected a mapping, got {type(config).__name__}")
    timeout = config.get("passage_timeout_s", DEFAULT_PASSAGE_TIMEOUT_S)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ConfigError("passage_timeout_s", f"expected a positive number of seconds, got {timeout!r}")
    turnstile = _build(config, clock, pin_factory)
    turnstile.passage_timeout_s = float(timeout)
    return turnstile


def _build(config: Mapping[str, Any], clock: Callable[[], float], pin_factory: Any) -> Turnstile:
    backend = config.get("backend")
    if backend == "sim":
        from firmware_bridge.sim import SimTurnstile

        return SimTurnstile(clock=clock)
    if backend == "gpio":
        try:
            from firmware_bridge.gpio import GpioTurnstile
        except ImportError as exc:  # pragma: no cover - gpiozero is a declared dependency
            raise ConfigError("backend", f"gpio backend unavailable: {exc}") from exc
        return GpioTurnstile(config, clock=clock, pin_factory=pin_factory)
    if backend == "serial":
        try:
            from firmware_bridge.serial_backend import SerialTurnstile
        except ImportError as exc:  # pragma: no cover - pyserial is a declared dependency
            raise ConfigError("backend", f"serial backend unavailable: {exc}") from exc
        return SerialTurnstile(config, clock=clock)
    raise ConfigError("backend", f"expected one of {', '.join(BACKENDS)}, got {backend!r}")
