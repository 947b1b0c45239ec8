"""The figures the forecast and the dashboard's reconciliation need, read from the hub.

Read-only queries that only the control room needs, each a plain function of a connection
run in one read transaction (``await store.db.read(fn)``), in the SQL SQLite and PostgreSQL
share. They lean on the tables the hub keeps up to date at ingest instead of replaying the
journal on every dashboard summary:

* ``entry_state`` (one row per ticket that came): who has arrived, per zone and per gate;
* ``pending_admits``: admits still waiting for their passage, per gate;
* the journal only where nothing else holds the figure: exits and admits that did not pass
  (one pass, no correlated sub-query), and the last few hours' admits per minute (a range
  on the ``at`` index) for the scan rates.

Functions:

* :func:`entry_figures` — admits waiting per gate, ``not_passed`` and ``exits``: with the
  store's ``stats()`` (inside, pending and unconfirmed per zone) "Entries" and "Inside now"
  on the dashboard reconcile;
* :func:`forecast_readings` / :func:`current_forecast` — the plain data
  :func:`hub.forecast.forecast` takes.

The HTTP routes are in :mod:`hub.routes.forecast`.
"""
from __future__ import annotations

import weakref
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from hub.event_settings import EventSettings, read_settings
from hub.forecast import RATE_WINDOW_S, Forecast, ForecastInput, GateReading, ZoneReading, forecast
from hub.store import HubStore
from hub.store.base import ADMIT_SQL, one, rows, scalar

#: how far back the best sustained lane rate is looked for
RATE_HISTORY_S = 4 * 3600.0
#: modes in which a gate admits (its lane counts as open)
ADMITTING_MODES = ("ONLINE", "OFFLINE", "MANIFEST")
_ADMITTED = f"kind IN ('scan', 'manual') AND reason IN {ADMIT_SQL}"


def _entry_figures(conn: Connection) -> dict[str, Any]:
    per_gate = {str(g): int(n) for g, n in rows(
        conn, "SELECT gate_id, COUNT(*) FROM pending_admits WHERE expired_at IS NULL GROUP BY gate_id")}
    # A passage entry carries its admit's direction, so one pass counts both figures.
    exits_all, not_passed_in, not_passed_out = rows(conn, (
        f"SELECT COALESCE(SUM(CASE WHEN {_ADMITTED} AND direction = 'out' THEN 1 ELSE 0 END), 0),"
        " COALESCE(SUM(CASE WHEN kind = 'passage' AND passage = 'not_passed' AND direction = 'in' THEN 1 ELSE 0 END), 0),"
        " COALESCE(SUM(CASE WHEN kind = 'passage' AND passage = 'not_passed' AND direction = 'out' THEN 1 ELSE 0 END), 0)"
        " FROM journal"))[0]
    return {"pending_by_gate": per_gate, "not_passed": int(not_passed_in),
            "exits": max(0, int(exits_all) - int(not_passed_out))}


async def entry_figures(store: HubStore) -> dict[str, Any]:
    """What the hub's :meth:`~hub.store.HubStore.stats` does not break down: admits waiting for
    their passage per gate (``pending_by_gate``, from ``pending_admits``; the totals and the
    per-zone figures are in ``stats``), admits that did not pass (``not_passed``) and exits
    that did (``exits``) for the whole event."""
    return await store.db.read(_entry_figures)


@dataclass
class _TicketCounts:
    """Valid tickets per zone, counted again only when a ticket or zone change has been
    appended since (a range read of the newest changes, not a count of the ticket table on
    every summary: entry changes arrive many times a second on a matchday, ticket changes
    rarely)."""

    seen_seq: int = -1
    counts: dict[int, int] = field(default_factory=dict)

    def read(self, conn: Connection) -> dict[int, int]:
        top = int(scalar(conn, "SELECT COALESCE(MAX(seq), 0) FROM changes"))
        moved = self.seen_seq < 0 or top < self.seen_seq or one(  # first read, a restore, or a change
            conn, "SELECT 1 FROM changes WHERE seq > :s AND kind IN ('ticket', 'zone') LIMIT 1",
            {"s": self.seen_seq}) is not None
        if moved:
            self.counts = {int(z): int(n) for z, n in rows(
                conn, "SELECT zone_id, COUNT(*) FROM tickets WHERE status = 'valid' GROUP BY zone_id")}
        self.seen_seq = top
        return self.counts


#: one cache per open store (dropped with it)
_ticket_counts: weakref.WeakKeyDictionary[HubStore, _TicketCounts] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class _Journal:
    counts: dict[int, int]
    zones: list[tuple[int, str]]
    #: tickets that came, per zone and per gate (of their last entry)
    zone_arrived: dict[int, int]
    gate_arrived: dict[str, int]
    minutes: dict[str, dict[int, int]]
    recent: dict[str, int]


def _forecast_reads(conn: Connection, minute: str, now: float, cache: _TicketCounts) -> _Journal:
    zone_arrived = {int(z): int(n) for z, n in rows(
        conn, "SELECT t.zone_id, COUNT(*) FROM entry_state s JOIN tickets t ON t.ticket_id = s.ticket_id"
              " WHERE s.entries > 0 GROUP BY t.zone_id")}
    gate_arrived = {str(g): int(n) for g, n in rows(
        conn, "SELECT last_gate, COUNT(*) FROM entry_state WHERE entries > 0 AND last_gate IS NOT NULL"
              " GROUP BY last_gate")}
    minutes: dict[str, dict[int, int]] = defaultdict(dict)
    # "+at": four hours are most of a matchday's journal, read faster in one pass than through
    # the at index (SQLite would fetch each row again by its primary key)
    for gate_id, m, n in rows(conn, f"SELECT gate_id, {minute} AS m, COUNT(*) FROM journal WHERE {_ADMITTED}"
                                    " AND direction = 'in' AND +at >= :since AND +at < :until GROUP BY gate_id, m",
                              {"since": now - RATE_HISTORY_S, "until": now + 60}):
        minutes[str(gate_id)][int(m)] = int(n)
    recent = {str(g): int(n) for g, n in rows(
        conn, f"SELECT gate_id, COUNT(*) FROM journal WHERE {_ADMITTED} AND direction = 'in'"
              " AND at > :since AND at <= :now GROUP BY gate_id", {"since": now - RATE_WINDOW_S, "now": now})}
    zones = [(int(z), str(n)) for z, n in rows(conn, "SELECT zone_id, name FROM zones ORDER BY zone_id")]
    return _Journal(cache.read(conn), zones, zone_arrived, gate_arrived, dict(minutes), recent)


async def forecast_readings(store: HubStore, *, now: float, gates: Sequence[Mapping[str, Any]],
                            modes: Mapping[str, Mapping[str, Any]], settings: EventSettings) -> ForecastInput:
    """The plain data the forecast takes: who came (entry state), valid tickets per zone, the
    gates' recent admits per minute and their modes."""
    cache = _ticket_counts.setdefault(store, _TicketCounts())
    j = await store.db.read(_forecast_reads, store.db.minute("at"), now, cache)
    zones = [ZoneReading(zid, name, j.counts.get(zid, 0), j.zone_arrived.get(zid, 0)) for zid, name in j.zones]
    readings = []
    for g in gates:
        if g.get("status") != "active":
            continue
        gate_id = str(g["gate_id"])
        mode = str((modes.get(gate_id) or {}).get("mode") or "ONLINE")
        readings.append(GateReading(
            gate_id=gate_id, name=str(g.get("name") or gate_id),
            zones=tuple(int(z) for z in g.get("zones") or ()),
            lanes=1 if mode in ADMITTING_MODES else 0,
            recent_admits=j.recent.get(gate_id, 0), arrivals=j.gate_arrived.get(gate_id, 0),
            mode=mode, best_rate_per_min=best_rate(j.minutes.get(gate_id, {}), now)))
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
