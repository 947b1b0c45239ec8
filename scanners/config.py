"""The scanner's settings: one validated model per backend (the gate's ``[scanner]`` table).

``backend`` picks the model (``camera``, ``serial``, ``hid`` or ``sim``); every other key
belongs to that backend and an unknown one is refused. The gate agent composes
:data:`ScannerConfig` into its own model (``gate_agent.config``); used on its own,
:func:`scanner_settings` raises :class:`~tickets.errors.ConfigError` naming the key.

**Adding a setting** (for example a camera's symbologies or ITF lengths): add a field to the
backend's model below, with its type, range and default — that alone makes the gate accept it,
``gatehouse gate check-config`` check it and an unknown near-miss get a "did you mean" — then
read it in :func:`scanners.factory.open_scanner`. A default of ``None`` means "the backend's
own default", so this module needs no heavy import (OpenCV) to be validated.

No module here imports a Pi-only library; this one imports nothing but pydantic.
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
)

from tickets.errors import ConfigError

BACKENDS = ("camera", "hid", "serial", "sim")
TERMINATOR_NAMES = ("CR", "LF", "CRLF")

Positive = Annotated[float, Field(gt=0)]
PositiveInt = Annotated[int, Field(gt=0)]


def _device(value: Any) -> int | str:
    if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
        raise ValueError(f"must be a V4L2 index (0), a device path, a video file or a stream URL, not {value!r}")
    return value


def _raw_bytes(value: Any) -> bytes:
    if isinstance(value, str):
        try:
            return value.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError(f"must be plain 8-bit text, got {value!r}") from None
    if isinstance(value, bytes):
        return value
    raise ValueError(f"must be text, got {value!r}")


class _Section(BaseModel):
    """Every settings table: unknown keys refused, types strict (TOML "8" is not 8), frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    #: shown as the scan's source (default: the backend's)
    name: str | None = None


class SimScannerConfig(_Section):
    """A scanner fed by tests, the demo and ``gatehouse scanner`` tools."""

    backend: Literal["sim"] = "sim"


class SerialScannerConfig(_Section):
    """A hand-held or fixed-mount scanner on a serial (USB-CDC) port."""

    backend: Literal["serial"]
    port: Annotated[str, Field(min_length=1)]
    baud: PositiveInt = 9600
    terminator: Literal["CR", "LF", "CRLF"] = "CR"
    prefix: Annotated[bytes, PlainValidator(_raw_bytes)] = b""
    suffix: Annotated[bytes, PlainValidator(_raw_bytes)] = b""
    max_len: PositiveInt = 1024
    symbology: str = "unknown"

    @field_validator("terminator", mode="before")
    @classmethod
    def _terminator_any_case(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class HidScannerConfig(_Section):
    """A USB keyboard-wedge scanner read through evdev."""

    backend: Literal["hid"]
    device: Annotated[str, Field(min_length=1)]
    grab: bool = True
    #: longest gap between two keys of one code (default: the backend's)
    timeout_s: Positive | None = None
    max_len: PositiveInt = 1024
    symbology: str = "unknown"


class CameraScannerConfig(_Section):
    """A camera (OpenCV or picamera2) decoded by the pyzbar + zxing-cpp cascade."""

    backend: Literal["camera"]
    device: Annotated[int | str, PlainValidator(_device)] = 0
    driver: Literal["opencv", "picamera2"] = "opencv"
    height: PositiveInt | None = None
    width: Annotated[PositiveInt | None, Field(validate_default=True)] = None
    #: hard per-frame decode budget (default: the decoder's)
    budget_ms: Positive | None = None
    repeat_suppress_s: Annotated[float, Field(ge=0)] | None = None
    no_frame_fault_s: Positive | None = None
    frozen_fault_s: Positive | None = None
    #: decode every frame (a video file); default: on for files, off for live cameras
    lossless: bool | None = None
    confirm_1d_frames: PositiveInt = 2
    #: which codes to read (default: qrcode, pdf417, code128, ean13, itf; see scanners.options)
    symbologies: list[str] | None = None
    #: ITF lengths accepted, even digit counts 4..64 (default: 14 only)
    itf_lengths: list[int] | None = None
    #: require a GS1 mod-10 check digit on ITF
    itf_check_digit: bool = True
    #: 2: the zxing-cpp and ZBar lanes on two cores at once; 1: one after the other (default: 2 on 2+ cores)
    decode_threads: Annotated[int, Field(ge=1, le=2)] | None = None

    @field_validator("symbologies")
    @classmethod
    def _known_symbologies(cls, value: list[str] | None) -> list[str] | None:
        from scanners.options import KNOWN_SYMBOLOGIES

        if value is None:
            return value
        unknown = sorted({v.lower() for v in value} - KNOWN_SYMBOLOGIES)
        if unknown or not value:
            raise ValueError(f"must be a non-empty list from {sorted(KNOWN_SYMBOLOGIES)}; unknown: {unknown}")
        return [v.lower() for v in value]

    @field_validator("itf_lengths")
    @classmethod
    def _itf_lengths(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and (not value or any(not (4 <= n <= 64 and n % 2 == 0) for n in value)):
            raise ValueError("must be even digit counts from 4 to 64, e.g. [10, 14]")
        return value

    def decode_options(self) -> Any:
        """The :class:`scanners.options.DecodeOptions` these settings ask for."""
        from scanners.options import DecodeOptions

        table = {k: getattr(self, k) for k in DecodeOptions.KEYS if getattr(self, k) is not None}
        try:
            return DecodeOptions.from_config(table)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("width")
    @classmethod
    def _size_together(cls, value: int | None, info: ValidationInfo) -> int | None:
        # height is declared first, so it has been validated when width is checked.
        if "height" in info.data and (value is None) != (info.data["height"] is None):
            raise ValueError("width and height go together: give both or neither")
        return value

    @property
    def size(self) -> tuple[int, int] | None:
        return (self.width, self.height) if self.width and self.height else None


#: the ``[scanner]`` table: one of the backends' models, chosen by ``backend``
ScannerConfig = Annotated[
    SimScannerConfig | SerialScannerConfig | HidScannerConfig | CameraScannerConfig,
    Field(discriminator="backend")]
ScannerSettings = SimScannerConfig | SerialScannerConfig | HidScannerConfig | CameraScannerConfig

_ADAPTER: TypeAdapter[ScannerSettings] = TypeAdapter(ScannerConfig)


def scanner_settings(config: Mapping[str, Any] | ScannerSettings) -> ScannerSettings:
    """The validated settings for ``config`` (a model passes through unchanged).

    Raises :class:`~tickets.errors.ConfigError` for the first problem, its key as
    ``scanner.KEY``.
    """
    if isinstance(config, SimScannerConfig | SerialScannerConfig | HidScannerConfig | CameraScannerConfig):
        return config
    if not isinstance(config, Mapping):
        raise ConfigError("scanner", f"must be a table of settings, not {type(config).__name__}")
    try:
        return _ADAPTER.validate_python(dict(config))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(p) for p in err["loc"] if p not in BACKENDS]
        kind = err["type"]
        if kind in ("union_tag_invalid", "union_tag_not_found"):
            got = config.get("backend")
            raise ConfigError("scanner.backend", f"must be one of {sorted(BACKENDS)}, not {got!r}") from None
        key = "scanner." + ".".join(loc) if loc else "scanner"
        if kind == "missing":
            raise ConfigError(key, "is required") from None
        if kind == "extra_forbidden":
            raise ConfigError(key, f"is not a setting of the {config.get('backend')} backend") from None
        raise ConfigError(key, err["msg"].removeprefix("Value error, ")) from None
