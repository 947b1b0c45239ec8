"""Event settings beyond what ``hub init`` stores: kick-off time, the event's language and
the forecast's planning figures.

They live where the other event settings live, in the hub database's ``meta`` table
(``event_name``, ``event_id``, …), under the keys in :data:`KEYS`, read with
:meth:`HubStore.meta` and written with :meth:`HubStore.set_meta` in one audited transaction
(``event_settings``) that also appends an ``event`` change, so every serving hub process
hears of a new kick-off at once and its dashboards show the new forecast. Gates do not need
them: a gate's screen speaks the language of its own config, and paper manifests are
printed by the hub.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from hub.errors import BadInput
from hub.forecast import DEFAULT_SHOW_RATIO, GUIDE_LANE_RATE_PER_MIN
from hub.store import HubStore, Principal
from i18n import DEFAULT, normalize, tag_of

#: meta key of each setting
KEYS = {"kickoff_at": "kickoff_at", "language": "event_language", "show_ratio": "forecast_show_ratio",
        "lane_rate_per_min": "forecast_lane_rate_per_min"}


@dataclass(frozen=True)
class EventSettings:
    #: kick-off (epoch seconds); None until set
    kickoff_at: float | None = None
    #: the event's language (manifests, and the default for screens); a catalogue id such as ``kk``
    language: str = DEFAULT
    #: share of ticket holders expected to come
    show_ratio: float = DEFAULT_SHOW_RATIO
    #: persons per minute one lane takes, until the venue's own rate is measured
    lane_rate_per_min: float = GUIDE_LANE_RATE_PER_MIN

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "language": tag_of(self.language)}


def settings_from_meta(meta: dict[str, str]) -> EventSettings:
    def num(key: str, default: float | None) -> float | None:
        raw = meta.get(KEYS[key])
        try:
            return float(raw) if raw not in (None, "") else default
        except ValueError:
            return default

    show = num("show_ratio", DEFAULT_SHOW_RATIO)
    rate = num("lane_rate_per_min", GUIDE_LANE_RATE_PER_MIN)
    return EventSettings(
        kickoff_at=num("kickoff_at", None),
        language=normalize(meta.get(KEYS["language"])) or DEFAULT,
        show_ratio=show if show is not None else DEFAULT_SHOW_RATIO,
        lane_rate_per_min=rate if rate is not None else GUIDE_LANE_RATE_PER_MIN,
    )


async def read_settings(store: HubStore) -> EventSettings:
    return settings_from_meta(await store.meta())


def parse_kickoff(text: str) -> float:
    """Kick-off as ISO 8601 with its UTC offset (``2026-05-12T19:00+05:00``) or epoch seconds."""
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        value = _iso_kickoff(text)
    if not math.isfinite(value) or value <= 0:
        raise BadInput("kick-off must be a time", code="bad_kickoff")
    return value


def _iso_kickoff(text: str) -> float:
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise BadInput(f"kick-off {text!r} is neither ISO 8601 (2026-05-12T19:00+05:00) nor epoch seconds",
                       code="bad_kickoff") from None
    if dt.tzinfo is None:
        raise BadInput(f"kick-off {text!r} needs its UTC offset (…+05:00 or …Z): a stadium clock is local",
                       code="bad_kickoff")
    return dt.timestamp()


def validate(changes: dict[str, Any]) -> dict[str, str | None]:
    """Setting names and values as given (API or CLI) → meta rows (None deletes one)."""
    out: dict[str, str | None] = {}
    for name, value in changes.items():
        if name not in KEYS:
            raise BadInput(f"unknown event setting {name!r}; known: {', '.join(KEYS)}", code="bad_setting")
        key = KEYS[name]
        if value is None:
            out[key] = None
        elif name == "kickoff_at":
            out[key] = repr(parse_kickoff(str(value)))  # a number too: finite and after 1970
        elif name == "language":
            code = normalize(str(value))
            if code is None:
                raise BadInput(f"no catalogue for language {value!r} (en, zh-Hans, ru, kk)", code="bad_language")
            out[key] = code
        elif name == "show_ratio":
            ratio = float(value)
            if not 0.05 <= ratio <= 1.0:
                raise BadInput("show_ratio must be between 0.05 and 1", code="bad_setting")
            out[key] = repr(ratio)
        else:
            rate = float(value)
            if not 1.0 <= rate <= 60.0:
                raise BadInput("lane_rate_per_min must be between 1 and 60 persons per minute", code="bad_setting")
            out[key] = repr(rate)
    return out


async def write_settings(store: HubStore, actor: Principal, changes: dict[str, Any]) -> EventSettings:
    """Validate and store settings (audited as ``event_settings``); return them all."""
    rows = validate(changes)
    if rows:
        await store.set_meta(actor, rows, action="event_settings", announce=True)
    return await read_settings(store)
