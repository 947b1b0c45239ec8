"""Gate agent configuration (TOML), validated once at start with clear errors.

See ``deploy/pi/gate.toml.example`` for every key.
"""
from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import i18n
from tickets.errors import ConfigError


@dataclass(frozen=True)
class GateConfig:
    gate_id: str
    data_dir: Path
    hub_url: str | None = None
    ca_file: Path | None = None
    passage_timeout_s: float = 8.0
    max_replica_age_s: float = 6 * 3600.0
    #: how often the gate pulls its manifest and stewards while online (and at each reconnect)
    manifest_refresh_s: float = 300.0
    status_host: str = "127.0.0.1"
    status_port: int = 8081
    #: sync protocol versions this gate speaks (min, max); None: every version it knows
    protocol: tuple[int, int] | None = None
    #: the staff screen's language (en, zh-Hans, ru, kk)
    language: str = "en"
    scanner: Mapping[str, Any] = field(default_factory=lambda: {"backend": "sim"})
    turnstile: Mapping[str, Any] = field(default_factory=lambda: {"backend": "sim"})

    @property
    def replica_path(self) -> Path:
        return self.data_dir / "replica.sqlite3"

    @property
    def journal_path(self) -> Path:
        return self.data_dir / "journal.sqlite3"

    @property
    def credentials_path(self) -> Path:
        return self.data_dir / "gate-credentials.json"


def load_config(path: Path) -> GateConfig:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(path), "config file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"not valid TOML: {exc}") from None
    return config_from_dict(data, base=Path(path).parent)


def config_from_dict(data: Mapping[str, Any], base: Path = Path(".")) -> GateConfig:
    def need(key: str, kind: type | tuple[type, ...]) -> Any:
        if key not in data:
            raise ConfigError(key, "is required")
        return check(key, data[key], kind)

    def check(key: str, value: Any, kind: type | tuple[type, ...]) -> Any:
        if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
            raise ConfigError(key, f"must be {getattr(kind, '__name__', kind)}, got {value!r}")
        return value

    def opt(key: str, kind: type | tuple[type, ...], default: Any) -> Any:
        return check(key, data[key], kind) if key in data else default

    gate_id = need("gate_id", str)
    if not gate_id or len(gate_id) > 64:
        raise ConfigError("gate_id", "must be 1..64 characters")
    data_dir = Path(need("data_dir", str))
    if not data_dir.is_absolute():
        data_dir = base / data_dir
    timeout = float(opt("passage_timeout_s", (int, float), 8.0))
    if not 0.5 <= timeout <= 120:
        raise ConfigError("passage_timeout_s", "must be between 0.5 and 120 seconds")
    refresh = float(opt("manifest_refresh_s", (int, float), 300.0))
    if not 1 <= refresh <= 86400:
        raise ConfigError("manifest_refresh_s", "must be between 1 and 86400 seconds")
    port = opt("status_port", int, 8081)
    if not 0 <= port <= 65535:
        raise ConfigError("status_port", "must be a TCP port")
    ca = opt("ca_file", str, None)
    protocol = None
    if "protocol" in data:
        text = check("protocol", data["protocol"], str)
        try:
            lo, hi = (int(v) for v in text.split("-"))
            if not 1 <= lo <= hi:
                raise ValueError
        except ValueError:
            raise ConfigError("protocol", f"must be MIN-MAX such as \"1-2\", got {text!r}") from None
        protocol = (lo, hi)
    scanner = opt("scanner", dict, {"backend": "sim"})
    turnstile = opt("turnstile", dict, {"backend": "sim"})
    for name, section in (("scanner", scanner), ("turnstile", turnstile)):
        if "backend" not in section:
            raise ConfigError(f"{name}.backend", "is required")
    language = opt("language", str, "en")
    if i18n.normalize(language) is None:
        raise ConfigError("language", f"no catalogue for {language!r}; choose en, zh-Hans, ru or kk")
    return GateConfig(
        gate_id=gate_id,
        language=i18n.normalize(language) or "en",
        data_dir=data_dir,
        hub_url=opt("hub_url", str, None),
        ca_file=Path(ca) if ca else None,
        passage_timeout_s=timeout,
        max_replica_age_s=float(opt("max_replica_age_s", (int, float), 6 * 3600.0)),
        manifest_refresh_s=refresh,
        status_host=opt("status_host", str, "127.0.0.1"),
        status_port=port,
        protocol=protocol,
        scanner=scanner,
        turnstile=turnstile,
    )
