"""Gate agent configuration (TOML): one validated model for the gate, its scanner and turnstile.

:class:`GateConfig` composes the scanner's model (:data:`scanners.config.ScannerConfig`) and
the turnstile's (:data:`firmware_bridge.config.TurnstileConfig`): each package owns its
settings, the gate validates them all at once, before anything is opened. Every problem is
reported with its dotted path (``turnstile.relay_pin``) and, for an unknown key, the closest
valid one ("did you mean relay_in?"), so ``gatehouse gate run`` refuses a bad file at once
(exit 2) and ``gatehouse gate check-config`` lists every mistake in one go.

See ``deploy/pi/gate.toml.example`` for every key.
"""
from __future__ import annotations

import difflib
import tomllib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

import i18n
from firmware_bridge.config import SimTurnstileConfig, TurnstileConfig
from scanners.config import ScannerConfig, SimScannerConfig
from tickets.errors import ConfigError

HUB_SCHEMES = ("https", "wss", "http", "ws")
#: (min, max) seconds for timings read from a file
FILE_RANGES = {"passage_timeout_s": (0.5, 120.0), "manifest_refresh_s": (1.0, 86400.0)}


def _check_hub_url(value: str) -> None:
    if value.split("://", 1)[0] not in HUB_SCHEMES or "://" not in value:
        raise ValueError(f"must start with https:// (or wss://; http:// and ws:// on a closed test network), "
                         f"got {value!r}")


class GateConfig(BaseModel):
    """A gate's whole configuration; build it with :func:`load_config` or as a model."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    gate_id: Annotated[str, Field(min_length=1, max_length=64)]
    #: replica, journal, credentials and manifest live here (relative: to the config file)
    data_dir: Annotated[Path, Field(strict=False)]
    hub_url: str | None = None
    #: several hub addresses (hub processes on one PostgreSQL): the gate fails over between
    #: them; ``hub_url``, if also set, is tried first
    hub_urls: Annotated[tuple[str, ...], Field(strict=False)] = ()
    ca_file: Annotated[Path | None, Field(strict=False)] = None
    passage_timeout_s: Annotated[float, Field(gt=0)] = 8.0
    max_replica_age_s: Annotated[float, Field(gt=0)] = 6 * 3600.0
    #: how often the gate pulls its manifest and stewards while online (and at each reconnect)
    manifest_refresh_s: Annotated[float, Field(gt=0)] = 300.0
    status_host: Annotated[str, Field(min_length=1)] = "127.0.0.1"
    status_port: Annotated[int, Field(ge=0, le=65535)] = 8081
    #: sync protocol versions this gate speaks (min, max); None: every version it knows
    protocol: tuple[int, int] | None = None
    #: the staff screen's language (en, zh-Hans, ru, kk; ``kk-KZ`` and the like are accepted)
    language: str = "en"
    scanner: ScannerConfig = SimScannerConfig()
    turnstile: TurnstileConfig = SimTurnstileConfig()

    @field_validator("data_dir", "ca_file")
    @classmethod
    def _relative_to_the_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        base = (info.context or {}).get("base")
        if value is not None and base is not None and not value.is_absolute():
            return Path(base) / value
        return value

    @field_validator("passage_timeout_s", "manifest_refresh_s")
    @classmethod
    def _sane_in_a_file(cls, value: float, info: ValidationInfo) -> float:
        # A file on a gate gets the ranges that catch a typo (a 0.1 s passage timeout strands
        # every fan); code (tests, the demo, the venue harness) may use shorter timings.
        if info.context is None:
            return value
        lo, hi = FILE_RANGES[str(info.field_name)]
        if not lo <= value <= hi:
            raise ValueError(f"must be between {lo:g} and {hi:g} seconds, got {value:g}")
        return value

    @field_validator("hub_url")
    @classmethod
    def _hub_scheme(cls, value: str | None) -> str | None:
        if value is not None:
            _check_hub_url(value)
        return value

    @field_validator("hub_urls")
    @classmethod
    def _hub_schemes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for url in value:
            _check_hub_url(url)
        if len(set(value)) != len(value):
            raise ValueError("lists an address twice")
        return value

    @property
    def hub_addresses(self) -> list[str]:
        """Every hub address this file names, ``hub_url`` first; empty: the enrolment's."""
        return list(dict.fromkeys([*([self.hub_url] if self.hub_url else []), *self.hub_urls]))

    @field_validator("language")
    @classmethod
    def _has_a_catalogue(cls, value: str) -> str:
        code = i18n.normalize(value)
        if code is None:
            choices = ", ".join(i18n.tag_of(c) for c in i18n.LANGUAGES[:-1]) + " or " + i18n.tag_of(i18n.LANGUAGES[-1])
            raise ValueError(f"no catalogue for {value!r}; choose {choices}")
        return code

    @field_validator("protocol", mode="before")
    @classmethod
    def _protocol_range(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            lo, hi = (int(v) for v in value.split("-"))
            if not 1 <= lo <= hi:
                raise ValueError
        except ValueError:
            raise ValueError(f'must be MIN-MAX such as "1-2", got {value!r}') from None
        return (lo, hi)

    @property
    def replica_path(self) -> Path:
        return self.data_dir / "replica.sqlite3"

    @property
    def journal_path(self) -> Path:
        return self.data_dir / "journal.sqlite3"

    @property
    def credentials_path(self) -> Path:
        return self.data_dir / "gate-credentials.json"

    @property
    def lane_path(self) -> Path:
        """Controller passage counters at each unlock (see :mod:`gate_agent.passages`)."""
        return self.data_dir / "lane.sqlite3"


@dataclass(frozen=True)
class ConfigProblem:
    """One mistake in a config file: where (dotted path) and what to do about it."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class GateConfigError(ConfigError):
    """The gate's config is unusable. ``problems`` lists every mistake; ``key``/``detail``
    are the first one's (so it reads like any :class:`~tickets.errors.ConfigError`)."""

    def __init__(self, source: str, problems: list[ConfigProblem]) -> None:
        first = problems[0]
        super().__init__(first.path, first.message)
        self.source = source
        self.problems = tuple(problems)

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


def load_config(path: Path) -> GateConfig:
    """Read and validate a gate's TOML file. Raises :class:`GateConfigError` with every problem."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GateConfigError(str(path), [ConfigProblem(str(path), "config file not found")]) from None
    except OSError as exc:
        raise GateConfigError(str(path), [ConfigProblem(str(path), f"cannot read: {exc.strerror or exc}")]) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise GateConfigError(str(path), [ConfigProblem(str(path), f"not valid TOML: {exc}")]) from None
    return config_from_dict(data, base=path.parent, source=str(path))


def config_from_dict(data: typing.Mapping[str, Any], base: Path | None = None, source: str = "config") -> GateConfig:
    """Validate ``data`` (a parsed TOML file); relative paths are taken from ``base``."""
    try:
        return GateConfig.model_validate(dict(data), context={"base": base})
    except ValidationError as exc:
        raise GateConfigError(source, explain(exc, GateConfig)) from None


def check_config(path: Path) -> list[ConfigProblem]:
    """Every problem in the file at ``path`` (empty: it is valid). For ``gate check-config``."""
    try:
        load_config(path)
    except GateConfigError as exc:
        return list(exc.problems)
    return []


# --- turning pydantic's errors into an operator's -------------------------------------------
def explain(exc: ValidationError, root: type[BaseModel]) -> list[ConfigProblem]:
    """One :class:`ConfigProblem` per error: a dotted path without pydantic's union tags, a
    plain message, and for an unknown key or backend the closest valid name."""
    problems: list[ConfigProblem] = []
    for err in exc.errors():
        parts, model = _resolve(root, tuple(err["loc"]))
        path = ".".join(parts)
        kind = err["type"]
        ctx = err.get("ctx") or {}
        if kind in ("union_tag_invalid", "union_tag_not_found"):
            field = str(ctx.get("discriminator", "'backend'")).strip("'")
            tags = [t.strip().strip("'") for t in str(ctx.get("expected_tags", "")).split(",") if t.strip()]
            if not tags:
                tags = _tags_at(root, parts)
            where = f"{path}.{field}" if path else field
            if kind == "union_tag_not_found":
                problems.append(ConfigProblem(where, f"is required: one of {', '.join(tags)}"))
            else:
                got = str(ctx.get("tag"))
                problems.append(ConfigProblem(where, f"unknown {field} {got!r}{_hint(got, tags)}"
                                                     f" (one of {', '.join(tags)})"))
        elif kind == "extra_forbidden":
            known = sorted(model.model_fields) if model is not None else []
            problems.append(ConfigProblem(path, f"unknown key{_hint(parts[-1], known)}"))
        elif kind == "missing":
            problems.append(ConfigProblem(path, "is required"))
        else:
            msg = str(err["msg"]).removeprefix("Value error, ")
            if kind != "value_error":
                msg = f"{msg[:1].lower()}{msg[1:]}, got {err['input']!r}"
            problems.append(ConfigProblem(path or root.__name__, msg))
    return problems


def _hint(got: str, valid: list[str]) -> str:
    """The closest valid name: the same words in another order first (``green_led`` →
    ``led_green``), else the nearest spelling."""
    words = set(got.lower().split("_"))
    by_words = max(valid, key=lambda v: len(words & set(v.split("_"))) / len(words | set(v.split("_"))),
                   default=None)
    if by_words is not None and len(words & set(by_words.split("_"))) >= 2:
        return f"; did you mean {by_words}?"
    close = difflib.get_close_matches(got, valid, n=1, cutoff=0.5)
    return f"; did you mean {close[0]}?" if close else ""


def _strip(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _members(annotation: Any) -> list[Any]:
    annotation = _strip(annotation)
    if get_origin(annotation) in (typing.Union, types.UnionType):
        return [_strip(a) for a in get_args(annotation) if a is not type(None)]
    return [annotation]


def _is_model(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, BaseModel)


def _tag_of(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("backend")
    if field is None or get_origin(field.annotation) is not Literal:
        return None
    return str(get_args(field.annotation)[0])


def _resolve(root: type[BaseModel], loc: tuple[Any, ...]) -> tuple[list[str], type[BaseModel] | None]:
    """Walk ``loc`` through the models: the user-facing path parts (union tags dropped) and
    the model the last key was looked up in (for "did you mean")."""
    parts: list[str] = []
    current: Any = root
    owner: type[BaseModel] | None = root
    for item in loc:
        models = [m for m in _members(current) if _is_model(m)]
        tagged = [m for m in models if _tag_of(m) == item]
        if tagged:  # pydantic names the union member it tried: not part of the user's path
            current = owner = tagged[0]
            continue
        model = models[0] if len(models) == 1 else None
        parts.append(str(item))
        if model is not None and isinstance(item, str) and item in model.model_fields:
            owner = model
            current = model.model_fields[item].annotation
        else:
            owner = model
            current = None
    return parts, owner


def _tags_at(root: type[BaseModel], parts: list[str]) -> list[str]:
    current: Any = root
    for part in parts:
        models = [m for m in _members(current) if _is_model(m)]
        if len(models) != 1 or part not in models[0].model_fields:
            return []
        current = models[0].model_fields[part].annotation
    return sorted(t for m in _members(current) if _is_model(m) and (t := _tag_of(m)) is not None)
