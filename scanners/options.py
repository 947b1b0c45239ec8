"""What a camera accepts: symbologies, ITF lengths and check digit, decode threads.

The one place the ``camera`` scanner's decoding keys are read and checked (``scanners.factory``
passes the scanner's config table here). No image libraries are imported, so a gate with a
serial scanner does not load OpenCV to read its config.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tickets.errors import ConfigError

if TYPE_CHECKING:
    from scanners.decode import Decoded

#: every symbology the decoders here can be asked for
KNOWN_SYMBOLOGIES = frozenset({"qrcode", "pdf417", "code128", "code39", "ean13", "ean8", "itf"})
#: what a gate reads unless its config says otherwise
DEFAULT_SYMBOLOGIES = frozenset({"qrcode", "pdf417", "code128", "ean13", "itf"})
#: ITF lengths a gate accepts by default: ITF-14 only (with a GS1 check digit)
ITF_LENGTHS = frozenset({14})


@dataclass(frozen=True, slots=True)
class DecodeOptions:
    """What a camera accepts: the configuration keys of the ``camera`` scanner that shape decoding.

    ``symbologies``: which codes to read (default QR, PDF417, Code 128, EAN-13, ITF).
    ``itf_lengths``: ITF lengths accepted (even numbers of digits; default 14 only).
    ``itf_check_digit``: require a GS1 mod-10 check digit on ITF (default true).
    ``decode_threads``: 2 runs the zxing-cpp and ZBar lanes at once on two cores; 1 runs them
    one after the other in the camera's thread (default: 2 where there are two cores).
    """

    symbologies: frozenset[str] = DEFAULT_SYMBOLOGIES
    itf_lengths: frozenset[int] = ITF_LENGTHS
    itf_check_digit: bool = True
    decode_threads: int = field(default_factory=lambda: 2 if (os.cpu_count() or 1) >= 2 else 1)

    #: the config keys this class reads (the camera backend's other keys are its own)
    KEYS = ("symbologies", "itf_lengths", "itf_check_digit", "decode_threads")

    def __post_init__(self) -> None:
        unknown = set(self.symbologies) - KNOWN_SYMBOLOGIES
        if unknown or not self.symbologies:
            raise ConfigError("scanner.symbologies",
                              f"must be a non-empty list from {sorted(KNOWN_SYMBOLOGIES)}; unknown: {sorted(unknown)}")
        bad = [n for n in self.itf_lengths if not (isinstance(n, int) and 4 <= n <= 64 and n % 2 == 0)]
        if bad or not self.itf_lengths:
            raise ConfigError("scanner.itf_lengths", f"must be even digit counts from 4 to 64, not {sorted(bad)}")
        if self.decode_threads not in (1, 2):
            raise ConfigError("scanner.decode_threads", "must be 1 or 2")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DecodeOptions:
        """The options a scanner config (a TOML table) asks for; :class:`ConfigError` names a bad key."""
        kwargs: dict[str, Any] = {}
        if "symbologies" in config:
            value = config["symbologies"]
            if isinstance(value, str) or not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
                raise ConfigError("scanner.symbologies", "must be a list of names, e.g. [\"qrcode\", \"itf\"]")
            kwargs["symbologies"] = frozenset(v.lower() for v in value)
        if "itf_lengths" in config:
            value = config["itf_lengths"]
            if not isinstance(value, Sequence) or isinstance(value, str) or not all(
                    isinstance(v, int) and not isinstance(v, bool) for v in value):
                raise ConfigError("scanner.itf_lengths", "must be a list of digit counts, e.g. [10, 14]")
            kwargs["itf_lengths"] = frozenset(value)
        if "itf_check_digit" in config:
            if not isinstance(config["itf_check_digit"], bool):
                raise ConfigError("scanner.itf_check_digit", "must be true or false")
            kwargs["itf_check_digit"] = config["itf_check_digit"]
        if "decode_threads" in config:
            value = config["decode_threads"]
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError("scanner.decode_threads", "must be 1 or 2")
            kwargs["decode_threads"] = value
        return cls(**kwargs)

    def plausible(self, d: Decoded) -> bool:
        """Whether a read may be reported: an asked-for symbology, and ITF of an allowed shape."""
        if not d.payload or d.symbology not in self.symbologies:
            return False
        if d.symbology == "itf":
            return len(d.payload) in self.itf_lengths and (not self.itf_check_digit or gs1_check_ok(d.payload))
        return True


def gs1_check_ok(digits: bytes) -> bool:
    """Whether the last digit is the GS1 mod-10 check digit of the others."""
    if not digits.isdigit() or len(digits) < 2:
        return False
    body = digits[:-1]
    total = sum((d - 48) * (1 if i % 2 else 3) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == digits[-1] - 48
