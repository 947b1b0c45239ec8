"""The supervisor dashboard: the control-room page, its summary API and its live feed.

``add_dashboard_routes(app)`` adds to a hub app:

* ``GET /`` and ``GET /dashboard``: the page (``ui/templates/dashboard.html`` with
  ``ui/static/dashboard.js`` and ``dashboard.css``; no build step, no CDN — the control room
  may have no internet).
* ``GET /api/v1/dashboard`` (viewer): everything the page shows in one JSON document —
  stats, each gate's state (connected, its mode and cause from its latest MODE journal
  entry, last seen, what it still has to upload), open conflicts, the emergency state and
  recent alerts. The page loads it at start and polls it when the live feed is down.
* ``/ws/dashboard``: the live feed. A browser cannot put a bearer header on a websocket, so
  the first message is ``{"token": "..."}`` (never the URL: URLs end up in logs). After that
  the hub sends ``alert`` messages at once (mode changes, hardware and sync events,
  conflicts, gates connecting or dropping, control-room commands) and a fresh ``summary``
  at most every :data:`SUMMARY_MIN_INTERVAL_S` after anything changed, at least every
  :data:`SUMMARY_IDLE_INTERVAL_S`.

The feed is fed by the store's listener hooks (ingest, changes, commands, gate revocation)
and by watching the sync registry's connected gates. A listener only marks state and drops
small messages into bounded per-browser queues: a slow or stuck browser loses messages (and
is told to reload the summary), it never slows ingest. One summary is computed per tick and
serialised once for all browsers.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse
from starlette.websockets import WebSocketState

from hub.auth import bearer, principal_for
from hub.errors import Forbidden, Unauthorized
from hub.forecast_data import current_forecast, entry_figures
from hub.routes.gates import gate_connected
from hub.store import HubStore, Principal, StoredBatch
from i18n import N_, reason_messages
from sync.tasks import spawn

log = logging.getLogger(__name__)

UI_DIR = Path(__file__).resolve().parent.parent / "ui"
#: a summary is pushed no more often than this after a change (scans arrive continuously)
SUMMARY_MIN_INTERVAL_S = 1.0
#: an urgent change (a mode change, an alarm) pushes a summary after at most this
URGENT_INTERVAL_S = 0.2
#: with nothing changing a summary still goes out this often (ages, "last seen")
SUMMARY_IDLE_INTERVAL_S = 5.0
#: messages a browser may have waiting before it is considered stuck
CLIENT_QUEUE = 100
#: how long a new feed connection has to send its token
AUTH_TIMEOUT_S = 10.0
#: how many open conflicts and alerts the page gets (the API has the rest)
CONFLICTS_SHOWN = 50
ALERTS_SHOWN = 60

#: modes other than ONLINE, and how serious each is
MODE_SEVERITY = {"EMERGENCY": "alarm", "MANIFEST": "warn", "OFFLINE": "warn", "CLOSED": "warn", "ONLINE": "ok"}
#: journal event prefixes (``what: detail``) → (severity, title for the control room)
#: (titles are msgids: the page shows them in its language)
EVENT_TITLES = {
    "hub_rolled_back": ("alarm", N_("Hub rolled back: gate re-sending its journal")),
    "hub_incompatible": ("warn", N_("Hub incompatible with this gate")),
    "turnstile_forced": ("alarm", N_("Forced passage")),
    "turnstile_alarm": ("alarm", N_("Fire alarm")),
    "turnstile_alarm_cleared": ("ok", N_("Fire alarm reset")),
    "turnstile_tamper": ("alarm", N_("Turnstile tamper")),
    "turnstile_fault": ("alarm", N_("Turnstile fault")),
    "turnstile_recovered": ("ok", N_("Turnstile recovered")),
    "turnstile_manual_release": ("info", N_("Manual release")),
    "clock_skew": ("warn", N_("Gate clock wrong")),
    "journal_writable_again": ("ok", N_("Journal writable again")),
}
#: titles made in code below, listed for the catalogue
_TITLES = (N_("Mode {mode}"), N_("Back ONLINE"), N_("Scanner fault"), N_("Scanner working"), N_("Event"),
           N_("Conflict: {kind}"), N_("Control-room emergency"), N_("Control-room emergency ended"),
           N_("Gate revoked"), N_("Gate connected"), N_("Gate disconnected"), N_("no live link to the hub"),
           N_("ticket {ticket}"), N_("all gates"), N_("Gate starting: waiting for the hub's snapshot"),
           N_("Gate refused by the hub"))


#: the cause a gate gives for MANIFEST before its first snapshot (gate_agent.modes.NEVER_SYNCED)
STARTING_CAUSE = "replica never synced from the hub"


def classify(entry: dict[str, Any]) -> dict[str, Any]:
    """A journal MODE/EVENT entry as an alert: severity, title and detail for the page."""
    detail = str(entry.get("detail") or "")
    what, _sep, rest = detail.partition(": ")
    if entry.get("kind") == "mode":
        mode = str(entry.get("mode") or "")
        severity = MODE_SEVERITY.get(mode, "info")
        title, args = ("Mode {mode}", {"mode": mode}) if severity != "ok" else ("Back ONLINE", {})
        text = f"{what.replace('->', ' → ')}: {rest}" if rest else detail
        if mode == "MANIFEST" and rest == STARTING_CAUSE:
            # a new or rebuilt gate waits for its first snapshot: start-up, not a degradation
            # (the gate's tile still shows MANIFEST if it never gets the snapshot)
            severity, title, args = "info", "Gate starting: waiting for the hub's snapshot", {}
    elif what == "scanner":
        state, _s, why = rest.partition(": ")
        severity = "alarm" if state == "fault" else "ok" if state == "ok" else "info"
        title, args = ("Scanner fault" if state == "fault" else "Scanner working"), {}
        text = why or rest
    else:
        severity, title = EVENT_TITLES.get(what, ("info", what.replace("_", " ").capitalize() or "Event"))
        args = {}
        direction, _s, why = rest.partition(" ")
        # turnstile events read "in forced": say "forced (in)"
        text = f"{why} ({direction})" if what.startswith("turnstile_") and direction in ("in", "out") and why \
            else rest
    return {"source": "journal", "gate_id": entry.get("gate_id"), "seq": entry.get("seq"), "at": entry.get("at"),
            "kind": entry.get("kind"), "severity": severity, **_title(title, args), "text": text}


def _title(msgid: str, args: dict[str, Any]) -> dict[str, Any]:
    """An alert title in English (``title``) and as its catalogue msgid and arguments, so the
    page can show it in its own language (``title_id``, ``title_args``)."""
    return {"title": msgid.format(**args) if args else msgid, "title_id": msgid, "title_args": args}


class _Client:
    """One browser on the feed: a bounded queue of serialised messages."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal
        self.queue: asyncio.Queue[str] = asyncio.Queue(CLIENT_QUEUE)
        self.dropped = 0

    def offer(self, text: str) -> None:
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            # Stuck browser: throw its backlog away and tell it to reload the summary.
            self.dropped += self.queue.qsize()
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(json.dumps({"type": "resync", "dropped": self.dropped}))


class DashboardFeed:
    """Live state for the browsers: listens to the store and the gate registry."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.clients: set[_Client] = set()
        self._dirty = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._connected: set[str] | None = None
        self._last_summary = 0.0
        #: seconds the last summary took: with a huge journal the intervals stretch so the
        #: dashboard never takes more than a fifth of the reader connection's time
        self._cost = 0.0
        #: summaries computed (for tests and metrics: one per tick, not one per browser)
        self.summaries = 0

    # --- store hooks (quick, never wait on a browser) ------------------------------------
    def attach(self, store: HubStore) -> None:
        store.ingest_listeners.append(self.on_ingest)

    def attach_feed(self, feed: Any) -> None:
        """Every change committed by any hub process (through :class:`hub.feed.ChangeFeed`)."""
        feed.listeners.append(self.on_changes)

    def on_changes(self, changes: list[Any]) -> None:
        for c in changes:
            if c.kind == "command":
                self.on_command(c.row)
            elif c.kind == "gate" and c.row.get("status") == "revoked":
                self.on_gate_revoked(str(c.row.get("gate_id")))
        self.mark()

    def on_ingest(self, result: StoredBatch) -> None:
        urgent = False
        for e in result.stored:
            if e.kind in ("mode", "event"):
                alert = classify({"gate_id": e.gate_id, "seq": e.seq, "at": e.at, "kind": str(e.kind),
                                  "mode": e.mode, "detail": e.detail})
                if not e.detail.startswith("turnstile_passage:"):
                    self.broadcast({"type": "alert", "alert": alert})
                    urgent = True
        for c in result.conflicts:
            self.broadcast({"type": "alert", "alert": {
                "source": "conflict", "gate_id": c.get("second_gate") or c.get("first_gate"), "at": time.time(),
                "severity": "warn", **_title("Conflict: {kind}", {"kind": str(c.get("kind", "")).replace("_", " ")}),
                "text": f"ticket {c.get('ticket_id')}" if c.get("ticket_id") else ""}})
            urgent = True
        self.mark(urgent=urgent)

    def on_command(self, command: dict[str, Any]) -> None:
        name = str(command.get("name", ""))
        gates = command.get("gates") or ["all gates"]
        self.broadcast({"type": "alert", "alert": {
            "source": "control", "gate_id": None, "at": time.time(),
            "severity": "alarm" if name == "emergency_on" else "ok",
            **_title("Control-room emergency" if name == "emergency_on" else "Control-room emergency ended", {}),
            "text": f"{', '.join(gates)}: {command.get('reason', '')}"}})
        self.mark(urgent=True)

    def on_gate_revoked(self, gate_id: str) -> None:
        self.broadcast({"type": "alert", "alert": {
            "source": "control", "gate_id": gate_id, "at": time.time(), "severity": "warn",
            **_title("Gate revoked", {}), "text": ""}})
        self.mark(urgent=True)

    def mark(self, *, urgent: bool = False) -> None:
        self._dirty = True
        if urgent:
            self._wake.set()

    def broadcast(self, message: dict[str, Any]) -> None:
        if not self.clients:
            return
        text = json.dumps(message)
        for client in list(self.clients):
            client.offer(text)

    # --- browsers --------------------------------------------------------------------------
    def join(self, client: _Client) -> None:
        self.clients.add(client)
        if self._task is None or self._task.done():
            self._task = spawn(self._ticker(), "dashboard-feed")

    def leave(self, client: _Client) -> None:
        self.clients.discard(client)

    def _live_gates(self) -> set[str]:
        live = set(getattr(self.app.state, "connected_gates", ()))
        registry = getattr(self.app.state, "sync_registry", None)
        if registry is not None:
            live.update(registry.connected())
        return live

    def _watch_connections(self) -> None:
        live = self._live_gates()
        if self._connected is not None:
            for gate_id in sorted(live - self._connected):
                self.broadcast({"type": "alert", "alert": {
                    "source": "sync", "gate_id": gate_id, "at": time.time(), "severity": "ok",
                    **_title("Gate connected", {}), "text": ""}})
                self.mark(urgent=True)
            for gate_id in sorted(self._connected - live):
                self.broadcast({"type": "alert", "alert": {
                    "source": "sync", "gate_id": gate_id, "at": time.time(), "severity": "warn",
                    **_title("Gate disconnected", {}), "text": "no live link to the hub"}})
                self.mark(urgent=True)
        self._connected = live

    async def _ticker(self) -> None:
        """While any browser listens: watch connections, push summaries when due."""
        loop = asyncio.get_running_loop()
        try:
            while self.clients:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 0.25)
                urgent = self._wake.is_set()
                self._watch_connections()
                urgent = urgent or self._wake.is_set()
                since = loop.time() - self._last_summary
                urgent_gap = max(URGENT_INTERVAL_S, self._cost)
                due = (urgent and since >= urgent_gap) \
                    or (self._dirty and since >= max(SUMMARY_MIN_INTERVAL_S, 5 * self._cost)) \
                    or since >= max(SUMMARY_IDLE_INTERVAL_S, 5 * self._cost)
                if not due:
                    if urgent:  # too soon after the last one: sleep out the rest, then push
                        await asyncio.sleep(urgent_gap - since)
                    continue
                self._wake.clear()
                self._dirty = False
                self._last_summary = loop.time()
                try:
                    summary = await dashboard_summary(self.app)
                except Exception:  # a failing query must not end the feed for everyone
                    log.exception("dashboard summary failed")
                    continue
                finally:
                    self._cost = loop.time() - self._last_summary
                self.summaries += 1
                self.broadcast({"type": "summary", "summary": summary})
        finally:
            self._connected = None


#: a gate refused by the hub stays on the page this long after its last attempt (seconds)
REFUSAL_ALERT_S = 600.0


def refusal_alerts(refusals: list[dict[str, Any]], now: float) -> list[dict[str, Any]]:
    """Gates the hub refused lately, newest first, one alert per gate with its attempt count:
    a gate the hub does not know (restored from an older backup) cannot journal its own alert."""
    latest: dict[str, dict[str, Any]] = {}
    for r in refusals:
        if now - float(r["at"]) > REFUSAL_ALERT_S:
            continue
        key = str(r.get("gate_id") or r.get("peer"))
        seen = latest.get(key)
        latest[key] = {"source": "sync", "gate_id": r.get("gate_id"), "seq": None, "at": r["at"], "kind": "refused",
                       "severity": "alarm", **_title("Gate refused by the hub", {}), "text": r["reason"],
                       "attempts": (seen["attempts"] if seen else 0) + 1}
    return sorted(latest.values(), key=lambda a: -float(a["at"]))


async def dashboard_summary(app: FastAPI) -> dict[str, Any]:
    """Everything the page shows, from the store and the gate registry."""
    store: HubStore = app.state.store
    now = store.clock()
    stats = await store.stats()
    modes = await store.latest_modes()
    live = set(getattr(app.state, "connected_gates", ()))
    registry = getattr(app.state, "sync_registry", None)
    connections: dict[str, Any] = {}
    if registry is not None:
        live.update(registry.connected())
        connections = dict(registry.connections)
    current_seq = await store.current_seq()
    gates = []
    gate_rows = await store.gates()
    for g in gate_rows:
        gate_id = g["gate_id"]
        mode = modes.get(gate_id)
        conn = connections.get(gate_id)
        hello = getattr(getattr(conn, "session", None), "hello", None)
        # what the gate said it holds when it connected, less what the hub has stored since
        backlog = max(0, int(hello.journal_seq) - int(g["high_water"])) if hello is not None else None
        sent_seq = getattr(getattr(conn, "session", None), "sent_seq", None)
        gates.append({
            "gate_id": gate_id, "name": g["name"], "zones": g["zones"], "status": g["status"],
            # connected here, or to another hub process (which refreshes last_seen while it is)
            "connected": gate_id in live or gate_connected(app, g, now),
            "mode": mode["mode"] if mode else None,
            "mode_cause": mode["cause"] if mode else "", "mode_at": mode["at"] if mode else None,
            "last_seen": g["last_seen"], "high_water": g["high_water"], "backlog": backlog,
            "clock_skew_s": g["info"].get("clock_skew_s"),
            "replica_lag": max(0, current_seq - int(sent_seq)) if sent_seq is not None else None,
            "manifest_pdf": f"/api/v1/gates/{gate_id}/manifest.pdf",
            "manifest_csv": f"/api/v1/gates/{gate_id}/manifest.csv",
        })
    meta = await store.meta()
    try:
        forecast: dict[str, Any] | None = (await current_forecast(store, now=now, gates=gate_rows,
                                                                  modes=modes)).to_json()
    except Exception:  # the forecast is advice: a failure must not take the dashboard down
        log.exception("forecast failed")
        forecast = None
    return {
        "at": now, "event": {"name": meta.get("event_name", ""), "event_id": meta.get("event_id")},
        "current_seq": current_seq, "stats": stats, "gates": gates,
        "entry_figures": await entry_figures(store),
        "forecast": forecast,
        "conflicts": await store.conflicts(open_only=True, limit=CONFLICTS_SHOWN),
        "emergency": await store.emergency(),
        "alerts": refusal_alerts(list(getattr(getattr(app.state, "sync_backend", None), "refusals", ())), now)
        + [classify(e) for e in await store.alert_entries(limit=ALERTS_SHOWN)],
        "reason_messages": reason_messages(),
    }


def add_dashboard_routes(app: FastAPI) -> DashboardFeed:
    """Add the dashboard page, ``/api/v1/dashboard`` and ``/ws/dashboard`` to a hub app."""
    feed = DashboardFeed(app)
    app.state.dashboard_feed = feed

    async def wire(store: HubStore) -> None:
        feed.attach(store)

    app.state.on_store_open.append(wire)
    app.state.on_feed_start = [*getattr(app.state, "on_feed_start", []), feed.attach_feed]
    page = (UI_DIR / "templates" / "dashboard.html")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    @app.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
    async def dashboard_page() -> HTMLResponse:
        # read per request: a small file, and an upgraded page shows without a restart
        return HTMLResponse(page.read_text(encoding="utf-8"), headers={"Cache-Control": "no-store"})

    @app.get("/api/v1/dashboard", tags=["control"])
    async def dashboard_data(request: Request) -> dict[str, Any]:
        p = await principal_for(request.app.state.store, bearer(request))
        return {**await dashboard_summary(request.app), "role": p.role, "viewer": p.name}

    @app.websocket("/ws/dashboard")
    async def dashboard_socket(ws: WebSocket) -> None:
        await ws.accept()
        try:
            first = await asyncio.wait_for(ws.receive_text(), AUTH_TIMEOUT_S)
            token = json.loads(first).get("token")
            if not isinstance(token, str) or not token:
                raise ValueError("no token")
            p = await principal_for(ws.app.state.store, token)
        except (TimeoutError, ValueError, AttributeError, Unauthorized, Forbidden) as exc:
            reason = getattr(exc, "code", None) or "send {\"token\": \"...\"} first"
            log.info("dashboard feed refused: %s", reason)
            with contextlib.suppress(Exception):
                await ws.send_text(json.dumps({"type": "error", "code": reason}))
                await ws.close(code=1008, reason=str(reason)[:120])
            return
        except WebSocketDisconnect:
            return
        client = _Client(p)
        client.offer(json.dumps({"type": "hello", "role": p.role, "viewer": p.name}))
        client.offer(json.dumps({"type": "summary", "summary": await dashboard_summary(ws.app)}))
        feed.join(client)

        async def pump() -> None:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):  # the browser left: the reader ends too
                while True:
                    await ws.send_text(await client.queue.get())

        sender = spawn(pump(), "dashboard-sender")
        try:
            while True:  # the browser sends nothing more; this notices it leaving
                msg = await ws.receive()
                if msg["type"] == "websocket.disconnect":
                    break
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            feed.leave(client)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender
            if ws.application_state is WebSocketState.CONNECTED:
                with contextlib.suppress(Exception):
                    await ws.close()

    return feed
