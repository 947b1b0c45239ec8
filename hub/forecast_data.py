"""The figures the forecast and the dashboard's reconciliation need, read from the hub.

Kept apart from :mod:`hub.store` on purpose: these are read-only queries over the journal
and tickets that only the control room needs. Each is one small function; they read on the
store's reader connection.

* :func:`entry_figures` — admits still waiting for their passage (pending), admits that did
  not pass, and exits, so "Entries" and "Inside now" on the dashboard reconcile;
* :func:`forecast_readings` / :func:`current_forecast` — the plain data
  :func:`hub.forecast.forecast` takes;
* :func:`add_forecast_routes` — ``GET /api/v1/forecast`` (viewer) and
  ``GET``/``PUT /api/v1/event/settings`` (viewer / admin).
"""
from __future__ import annotations

import time
import weakref
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field

from hub.errors import Forbidden, Unauthorized
from hub.event_settings import EventSettings, read_settings, write_settings
from hub.forecast import RATE_WINDOW_S, Forecast, ForecastInput, GateReading, ZoneReading, forecast
from hub.store import HubStore, Principal

API = "/api/v1"
_ADMIT = "('ADMIT','ADMIT_REENTRY','ADMIT_ON_SIGNATURE')"
#: an admit older than this with no passage at the hub is not "waiting at the turnstile" any
#: more (the passage timeout is at most 120 s): its gate has not uploaded the outcome yet
PENDING_WINDOW_S = 600.0
#: how far back the best sustained lane rate is looked for
RATE_HISTORY_S = 4 * 3600.0
#: modes in which a gate admits (its lane counts as open)
ADMITTING_MODES = ("ONLINE", "OFFLINE", "MANIFEST")


async def entry_figures(store: HubStore, now: float) -> dict[str, Any]:
    """Admits by what became of them: ``pending`` (no passage outcome yet, per gate and in all),
    ``not_passed`` and ``exits`` for the whole event."""
    pending_rows = await store._all(
        f"SELECT j.gate_id, COUNT(*) FROM journal j WHERE j.kind IN ('scan', 'manual') AND j.reason IN {_ADMIT}"
        " AND j.direction = 'in' AND j.at >= ? AND NOT EXISTS (SELECT 1 FROM journal p WHERE p.gate_id = j.gate_id"
        " AND p.kind = 'passage' AND p.ref_seq = j.seq) GROUP BY j.gate_id", (now - PENDING_WINDOW_S,))
    not_passed, exits = await store._one(
        f"SELECT COALESCE(SUM(j.direction = 'in' AND EXISTS (SELECT 1 FROM journal p WHERE p.gate_id = j.gate_id"
        f" AND p.kind = 'passage' AND p.ref_seq = j.seq AND p.passage = 'not_passed')), 0),"
        f" COALESCE(SUM(j.direction = 'out'), 0)"
        f" FROM journal j WHERE j.kind IN ('scan', 'manual') AND j.reason IN {_ADMIT}")
    per_gate = {str(g): int(n) for g, n in pending_rows}
    return {"pending": sum(per_gate.values()), "pending_by_gate": per_gate,
            "not_passed": int(not_passed), "exits": int(exits)}


class _TicketCounts:
    """Valid tickets per zone, read again only when the hub's sequence number moves."""

    def __init__(self) -> None:
        self.seq = -1
        self.counts: dict[int, int] = {}

    async def get(self, store: HubStore) -> dict[int, int]:
        seq = await store.current_seq()
        if seq != self.seq:
            rows = await store._all("SELECT zone_id, COUNT(*) FROM tickets WHERE status = 'valid' GROUP BY zone_id")
            self.counts = {int(z): int(n) for z, n in rows}
            self.seq = seq
        return self.counts


#: one cache per open store (dropped with it)
_ticket_counts: weakref.WeakKeyDictionary[HubStore, _TicketCounts] = weakref.WeakKeyDictionary()


async def forecast_readings(store: HubStore, *, now: float, gates: Sequence[Mapping[str, Any]],
                            modes: Mapping[str, Mapping[str, Any]], settings: EventSettings) -> ForecastInput:
    """The plain data the forecast takes, from the journal, the tickets and the gates' modes."""
    counts = await _ticket_counts.setdefault(store, _TicketCounts()).get(store)
    zone_arrived = dict(await store._all(
        f"SELECT zone_id, COUNT(*) FROM journal j WHERE kind IN ('scan', 'manual') AND reason IN {_ADMIT}"
        " AND direction = 'in' AND zone_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM journal p WHERE"
        " p.gate_id = j.gate_id AND p.kind = 'passage' AND p.ref_seq = j.seq AND p.passage = 'not_passed')"
        " GROUP BY zone_id"))
    gate_arrived = dict(await store._all(
        f"SELECT gate_id, COUNT(*) FROM journal WHERE kind IN ('scan', 'manual') AND reason IN {_ADMIT}"
        " AND direction = 'in' GROUP BY gate_id"))
    minutes: dict[str, dict[int, int]] = defaultdict(dict)
    for gate_id, minute, n in await store._all(
            f"SELECT gate_id, CAST(at / 60 AS INTEGER), COUNT(*) FROM journal WHERE kind IN ('scan', 'manual')"
            f" AND reason IN {_ADMIT} AND direction = 'in' AND at >= ? AND at < ? GROUP BY gate_id, 2",
            (now - RATE_HISTORY_S, now + 60)):
        minutes[str(gate_id)][int(minute)] = int(n)
    recent = dict(await store._all(
        f"SELECT gate_id, COUNT(*) FROM journal WHERE kind IN ('scan', 'manual') AND reason IN {_ADMIT}"
        " AND direction = 'in' AND at > ? AND at <= ? GROUP BY gate_id", (now - RATE_WINDOW_S, now)))
    zones = [ZoneReading(int(z["zone_id"]), str(z["name"]), counts.get(int(z["zone_id"]), 0),
                         int(zone_arrived.get(z["zone_id"], 0))) for z in await store.zones()]
    readings = []
    for g in gates:
        if g.get("status") != "active":
            continue
        mode = str((modes.get(g["gate_id"]) or {}).get("mode") or "ONLINE")
        readings.append(GateReading(
            gate_id=str(g["gate_id"]), name=str(g.get("name") or g["gate_id"]),
            zones=tuple(int(z) for z in g.get("zones") or ()),
            lanes=1 if mode in ADMITTING_MODES else 0,
            recent_admits=int(recent.get(g["gate_id"], 0)), arrivals=int(gate_arrived.get(g["gate_id"], 0)),
            mode=mode, best_rate_per_min=best_rate(minutes.get(str(g["gate_id"]), {}), now)))
    return ForecastInput(now=now, kickoff_at=settings.kickoff_at, zones=zones, gates=readings,
                         lane_rate_per_min=settings.lane_rate_per_min, show_ratio=settings.show_ratio)


def best_rate(per_minute: Mapping[int, int], now: float, window_min: int = int(RATE_WINDOW_S // 60)) -> float:
    """The best admits-per-minute a lane sustained over any complete ``window_min``-minute window."""
    if not per_minute:
        return 0.0
    current = int(now // 60)
    first = min(per_minute)
    best = 0
    for end in range(first + window_min - 1, current):  # windows ending before the current minute
        best = max(best, sum(per_minute.get(m, 0) for m in range(end - window_min + 1, end + 1)))
    return best / window_min


async def current_forecast(store: HubStore, *, now: float | None = None,
                           gates: Sequence[Mapping[str, Any]] | None = None,
                           modes: Mapping[str, Mapping[str, Any]] | None = None) -> Forecast:
    now = store.clock() if now is None else now
    settings = await read_settings(store)
    inp = await forecast_readings(store, now=now, gates=gates if gates is not None else await store.gates(),
                                  modes=modes if modes is not None else await store.latest_modes(),
                                  settings=settings)
    return forecast(inp)


class SettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kickoff_at: float | str | None = Field(default=None, description="ISO 8601 with offset, or epoch seconds")
    language: str | None = Field(default=None, description="en, zh-Hans, ru or kk")
    show_ratio: float | None = None
    lane_rate_per_min: float | None = None


def add_forecast_routes(app: FastAPI) -> None:
    async def principal(request: Request, role: str) -> Principal:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("missing bearer token (Authorization: Bearer …)", code="missing_token")
        p = await request.app.state.store.authenticate(token.strip())
        if p is None:
            raise Unauthorized("unknown or revoked token", code="bad_token")
        if not p.may(role):
            raise Forbidden(f"this needs the {role} role; the token has {p.role}", code="role_required")
        return p  # type: ignore[no-any-return]

    @app.get(f"{API}/forecast", tags=["control"])
    async def forecast_route(request: Request) -> dict[str, Any]:
        """Per zone and gate: arrivals, not yet arrived, scan rate, lanes, estimated queue and
        time to clear; alerts for zones that will not be inside by kick-off, with suggestions."""
        await principal(request, "viewer")
        started = time.perf_counter()
        result = (await current_forecast(request.app.state.store)).to_json()
        result["computed_ms"] = round((time.perf_counter() - started) * 1000, 2)
        return result

    @app.get(f"{API}/event/settings", tags=["event"])
    async def settings_get(request: Request) -> dict[str, Any]:
        await principal(request, "viewer")
        return (await read_settings(request.app.state.store)).to_json()

    @app.put(f"{API}/event/settings", tags=["event"])
    async def settings_put(body: SettingsIn, request: Request) -> dict[str, Any]:
        """Set kick-off, the event's language (manifests) or the forecast's planning figures;
        a field sent as null is left alone."""
        p = await principal(request, "admin")
        changes = {k: v for k, v in body.model_dump().items() if v is not None}
        return (await write_settings(request.app.state.store, p, changes)).to_json()
