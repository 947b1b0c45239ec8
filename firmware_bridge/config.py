"""The turnstile's settings: one validated model per backend (the gate's ``[turnstile]`` table).

``backend`` picks the model (``gpio``, ``serial`` or ``sim``); every other key belongs to that
backend and an unknown one is refused, so a misspelt pin name stops the gate at start with
the key named instead of leaving a lane that never unlocks. The gate agent composes
:data:`TurnstileConfig` into its own model (``gate_agent.config``), which turns the errors
into dotted paths with the closest valid key; used on its own,
:func:`turnstile_settings` raises :class:`TurnstileConfigError`.

This package must not import ``tickets``: its error type is its own, a ``ValueError``.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

#: default time a fan has to pass after an unlock (the gate's config may override it)
DEFAULT_PASSAGE_TIMEOUT_S = 8.0


class TurnstileConfigError(ValueError):
    """The turnstile's settings are invalid. ``key`` names the first problem's setting;
    ``problems`` lists every ``(key, message)``."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = tuple(problems)
        self.key, self.detail = self.problems[0] if self.problems else ("turnstile", "invalid")
        super().__init__("; ".join(f"{k}: {m}" for k, m in self.problems))


def _pin(value: Any) -> int | str:
    # gpiozero takes a BCM number (17) or a name ("GPIO17", "BOARD11", "J8:11").
    if isinstance(value, bool) or not isinstance(value, int | str) or value in ("", -1):
        raise ValueError(f'must be a GPIO pin number (17) or name ("GPIO17", "BOARD11"), not {value!r}')
    if isinstance(value, int) and not 0 <= value <= 53:
        raise ValueError(f"GPIO pin {value} does not exist (BCM 0..53)")
    return value


Pin = Annotated[int | str, PlainValidator(_pin)]
Seconds = Annotated[float, Field(ge=0)]
PositiveSeconds = Annotated[float, Field(gt=0)]


class _Section(BaseModel):
    """Every settings table: unknown keys refused, types strict (TOML "8" is not 8), frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class _Common(_Section):
    #: how long :meth:`~firmware_bridge.base.Turnstile.passage` waits when not told
    passage_timeout_s: PositiveSeconds = DEFAULT_PASSAGE_TIMEOUT_S


class SimTurnstileConfig(_Common):
    """The simulator: no hardware, every actuator action recorded."""

    backend: Literal["sim"] = "sim"


GPIO_PINS = ("relay_in", "relay_out", "sensor_in", "sensor_out", "fire_contact", "led_green",
             "led_red", "buzzer", "manual_release", "tamper")


class GpioTurnstileConfig(_Common):
    """A turnstile wired to the Pi's header (see :mod:`firmware_bridge.gpio` and docs/hardware.md)."""

    backend: Literal["gpio"]
    relay_in: Pin
    sensor_in: Pin
    relay_out: Pin | None = None
    sensor_out: Pin | None = None
    fire_contact: Pin | None = None
    led_green: Pin | None = None
    led_red: Pin | None = None
    buzzer: Pin | None = None
    manual_release: Pin | None = None
    tamper: Pin | None = None
    relay_mode: Literal["pulse", "hold"] = "pulse"
    relay_active_high: bool = True
    sensor_active_low: bool = True
    sensor_kind: Literal["rotation", "beam"] = "rotation"
    manual_release_direction: Literal["in", "out"] = "in"
    pulse_s: Seconds = 0.5
    debounce_s: Seconds = 0.05
    beep_s: Seconds = 0.15
    blink_s: Seconds = 0.5

    @model_validator(mode="after")
    def _one_device_per_pin(self) -> GpioTurnstileConfig:
        seen: dict[int | str, str] = {}
        for key in GPIO_PINS:
            pin = getattr(self, key)
            if pin is None:
                continue
            if pin in seen:
                raise ValueError(f"pin {pin!r} is given to both {seen[pin]} and {key}")
            seen[pin] = key
        return self

    def pins(self) -> dict[str, int | str]:
        """Every configured pin by its setting name (for the doctor and the status page)."""
        return {k: getattr(self, k) for k in GPIO_PINS if getattr(self, k) is not None}


class SerialTurnstileConfig(_Common):
    """A controller board on a UART/USB port (see :mod:`firmware_bridge.serial_backend`)."""

    backend: Literal["serial"]
    port: Annotated[str, Field(min_length=1)]
    baudrate: Annotated[int, Field(gt=0)] = 115200
    ack_timeout_s: PositiveSeconds = 0.2
    max_retries: Annotated[int, Field(ge=0)] = 3
    heartbeat_s: PositiveSeconds = 0.5
    silence_s: PositiveSeconds = 2.0
    #: how long ``async with`` waits for the first handshake before carrying on in fault
    connect_timeout_s: Seconds = 3.0
    #: 0: the controller holds an unlock until the passage or a lock
    hold_s: Seconds = 0.0

    @field_validator("silence_s")
    @classmethod
    def _silence_after_heartbeat(cls, value: float, info: ValidationInfo) -> float:
        heartbeat = info.data.get("heartbeat_s")  # validated before: declared above
        if heartbeat is not None and value <= heartbeat:
            raise ValueError(f"must be longer than heartbeat_s ({heartbeat:g} s), got {value:g}")
        return value


#: the ``[turnstile]`` table: one of the backends' models, chosen by ``backend``
TurnstileConfig = Annotated[
    SimTurnstileConfig | GpioTurnstileConfig | SerialTurnstileConfig, Field(discriminator="backend")]
TurnstileSettings = SimTurnstileConfig | GpioTurnstileConfig | SerialTurnstileConfig
BACKENDS = ("gpio", "serial", "sim")

_ADAPTER: TypeAdapter[TurnstileSettings] = TypeAdapter(TurnstileConfig)


def turnstile_settings(config: Mapping[str, Any] | TurnstileSettings) -> TurnstileSettings:
    """The validated settings for ``config`` (a model passes through unchanged).

    Raises :class:`TurnstileConfigError` listing every problem, each with its key.
    """
    if isinstance(config, SimTurnstileConfig | GpioTurnstileConfig | SerialTurnstileConfig):
        return config
    if not isinstance(config, Mapping):
        raise TurnstileConfigError([("turnstile", f"must be a table of settings, not {type(config).__name__}")])
    try:
        return _ADAPTER.validate_python(dict(config))
    except ValidationError as exc:
        raise TurnstileConfigError(plain_problems(exc)) from None


def plain_problems(exc: ValidationError) -> list[tuple[str, str]]:
    """``(key, message)`` for each pydantic error, the backend tag left out of the key."""
    out: list[tuple[str, str]] = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"] if p not in BACKENDS]
        kind = err["type"]
        if kind in ("union_tag_invalid", "union_tag_not_found"):
            got = err.get("ctx", {}).get("tag")
            out.append(("backend", f"must be one of {', '.join(BACKENDS)}"
                        + (f", not {got!r}" if got is not None else "")))
            continue
        key = ".".join(loc) or "turnstile"
        if kind == "missing":
            out.append((key, "is required"))
        elif kind == "extra_forbidden":
            out.append((key, "is not a setting of this backend"))
        else:
            out.append((key, f"{_message(err['msg'])} (got {err['input']!r})"
                        if kind != "value_error" else _message(err["msg"])))
    return out


def _message(msg: str) -> str:
    return msg.removeprefix("Value error, ")
