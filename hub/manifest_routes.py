"""HTTP routes of the paper fallback: gate manifests, stewards and paper ticks.

Mounted on the hub app by :func:`add_manifest_routes` (called once from
:func:`hub.app.create_app`). Routes and who may call them:

* ``GET /api/v1/gates/{gate_id}/manifest.pdf`` / ``.csv`` (viewer): the printable manifest
  of one gate (the tickets of its zones), rendered on a worker thread;
* ``GET /api/v1/gates/{gate_id}/manifest.json`` (that gate's own token): the same rows for
  the gate to keep locally, with the stewards and their PIN hashes, paged with
  ``?after=&limit=`` and pinned to one version with ``?seq=``;
* ``GET/POST /api/v1/stewards``, ``DELETE /api/v1/stewards/{id}`` (admin);
* ``POST /api/v1/gates/{gate_id}/paper-ticks`` (supervisor): tickets ticked on paper,
  entered afterwards, reconciled like any other admit.

Reading 60,000 tickets and computing their check codes is CPU work, so a gate's manifest is
read once per hub sequence number and kept (:class:`ManifestCache`): the pages a gate
fetches one after the other come from one consistent version, even if tickets change
meanwhile.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import FastAPI, Query, Request
from fastapi.responses import Response
from pydantic import Field

import i18n
from hub.auth import admin, gate_auth, store_of, supervisor, viewer
from hub.errors import BadInput, Conflict, HubError
from hub.event_settings import read_settings
from hub.manifest import render_manifest_csv, render_manifest_pdf
from hub.routes import COMMON, MAX_ID, SMALL_PAGE, Body, SmallLimit, errors, keyset_page
from hub.store import GateManifest, HubStore, PaperTickIn, Principal

log = logging.getLogger(__name__)

API = "/api/v1"
#: rows per manifest.json page unless the gate asks for fewer (about 1 MB of JSON)
DEFAULT_PAGE_ROWS = 5000
MAX_PAGE_ROWS = 20_000
#: tickets in one paper-ticks request (a whole gate's sheets fit; larger batches: split)
MAX_PAPER_TICKS = 20_000
#: versions of one gate's manifest kept (the one a gate may still be paging through, and the new one)
VERSIONS_PER_GATE = 2
#: rows kept across all cached manifests (about 1 KB each in memory)
MAX_CACHED_ROWS = 250_000


class _Body(Body):
    """Unknown keys refused, types strict, integral numbers taken as integers, text storable."""


class StewardIn(_Body):
    # The patterns are documented for clients (and API fuzzing) but checked by the store, so a
    # bad value gets its stable code (bad_steward_id, bad_name, bad_pin), not a generic 422.
    steward_id: str = Field(min_length=1, max_length=64, json_schema_extra={"pattern": "^[A-Za-z0-9._-]{1,64}$"})
    name: str = Field(min_length=1, max_length=100, json_schema_extra={"pattern": "\\S"})
    pin: str = Field(min_length=4, max_length=12, description="4-12 digits (what a gate keypad can enter)",
                     json_schema_extra={"pattern": "^[0-9]{4,12}$"})
    replace: bool = False


#: a ticket number as a steward copies it from paper: something other than spaces
#: (the pattern is documented, checked by the route: bad_number)
TickNumber = Annotated[str, Field(min_length=1, max_length=64, json_schema_extra={"pattern": "\\S"})]


class PaperTickBody(_Body):
    number: TickNumber
    at: float | None = Field(default=None, ge=0)
    steward_id: str | None = Field(default=None, max_length=64)


class PaperTicksIn(_Body):
    tickets: list[TickNumber | PaperTickBody] = Field(min_length=1, max_length=MAX_PAPER_TICKS)
    manifest_hub_seq: int | None = Field(default=None, ge=0)


class ManifestCache:
    """Gate manifests by ``(gate_id, hub_seq)``: each gate's latest few, least recently used
    dropped first beyond ``max_rows`` rows in all.

    Concurrent requests for a gate's version not yet read share one read (a lock per
    gate), so a gate asking again while its manifest is being read costs nothing more.
    """

    def __init__(self, *, per_gate: int = VERSIONS_PER_GATE, max_rows: int = MAX_CACHED_ROWS) -> None:
        self.per_gate = per_gate
        self.max_rows = max_rows
        self._items: OrderedDict[tuple[str, int], GateManifest] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}

    def get(self, gate_id: str, seq: int) -> GateManifest | None:
        hit = self._items.get((gate_id, seq))
        if hit is not None:
            self._items.move_to_end((gate_id, seq))
        return hit

    def put(self, m: GateManifest) -> None:
        self._items[(m.gate_id, m.hub_seq)] = m
        self._items.move_to_end((m.gate_id, m.hub_seq))
        mine = sorted(seq for gate, seq in self._items if gate == m.gate_id)
        for seq in mine[:-self.per_gate]:
            del self._items[(m.gate_id, seq)]
        while len(self._items) > 1 and sum(len(x.rows) for x in self._items.values()) > self.max_rows:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)

    async def current(self, store: HubStore, gate_id: str) -> GateManifest:
        """The gate's manifest at the hub's current sequence number (read if not cached)."""
        lock = self._locks.setdefault(gate_id, asyncio.Lock())
        async with lock:
            hit = self.get(gate_id, await store.current_seq())
            if hit is not None:
                return hit
            m = await store.gate_manifest(gate_id)
            self.put(m)
            return m


async def _record(store: HubStore, gate_id: str, key: str, m: GateManifest, **extra: Any) -> None:
    """Note in ``gates.info`` which manifest a gate got or had printed (see :mod:`hub.readiness`)."""
    from hub.readiness import merge_gate_info

    value: dict[str, Any] = {"hub_seq": m.hub_seq, "rows": len(m.rows), "at": time.time()}
    value.update(extra)
    if key == "stewards_pushed":
        value = {"count": extra["count"], "seq": extra["seq"], "at": value["at"]}
    await merge_gate_info(store, {gate_id: {key: value}})


def _filename(m: GateManifest, ext: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in m.gate_id)
    return f"manifest-{safe}-seq{m.hub_seq}.{ext}"


def add_manifest_routes(app: FastAPI) -> None:
    """Add the manifest, steward and paper-tick routes to the hub ``app``."""
    cache = ManifestCache()
    app.state.manifest_cache = cache

    async def printable(request: Request, gate_id: str, fmt: str) -> Response:
        m = await cache.current(store_of(request), gate_id)
        render = render_manifest_pdf if fmt == "pdf" else render_manifest_csv
        # the event's language, unless the request asks for another (?lang=ru)
        asked = request.query_params.get("lang")
        lang = i18n.normalize(asked) if asked else (await read_settings(store_of(request))).language
        if lang is None:
            raise BadInput(f"no catalogue for language {asked!r} (en, zh-Hans, ru, kk)", code="bad_language")
        started = time.perf_counter()
        body = await asyncio.to_thread(render, m.rows, event_name=m.event_name, gate_name=m.gate_name,
                                       generated_at=m.generated_at, hub_seq=m.hub_seq, lang=lang)
        log.info("manifest %s for gate %s: %d rows in %.2f s", fmt, gate_id, len(m.rows),
                 time.perf_counter() - started)
        if fmt == "pdf":  # the readiness report asks whether the paper is as current as the hub
            await _record(store_of(request), gate_id, "manifest_printed", m, via="api")
        media = "application/pdf" if fmt == "pdf" else "text/csv; charset=utf-8"
        return Response(body, media_type=media, headers={
            "Content-Disposition": f"attachment; filename=\"{quote(_filename(m, fmt))}\"",
            "X-Hub-Seq": str(m.hub_seq), "X-Manifest-Rows": str(len(m.rows))})

    @app.get(f"{API}/gates/{{gate_id}}/manifest.pdf", tags=["manifest"], response_class=Response,
             responses={**COMMON, **errors(404, 409), 200: {"content": {"application/pdf": {}}}})
    async def manifest_pdf(gate_id: str, request: Request, _p: Principal = viewer) -> Response:
        return await printable(request, gate_id, "pdf")

    @app.get(f"{API}/gates/{{gate_id}}/manifest.csv", tags=["manifest"], response_class=Response,
             responses={**COMMON, **errors(404, 409), 200: {"content": {"text/csv": {}}}})
    async def manifest_csv(gate_id: str, request: Request, _p: Principal = viewer) -> Response:
        return await printable(request, gate_id, "csv")

    @app.get(f"{API}/gates/{{gate_id}}/manifest.json", tags=["manifest"], responses={**COMMON, **errors(404, 409)})
    async def manifest_json(gate_id: str, request: Request,
                            after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
                            limit: Annotated[int, Query(ge=1, le=MAX_PAGE_ROWS)] = DEFAULT_PAGE_ROWS,
                            seq: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None) -> dict[str, Any]:
        """One page of the gate's manifest for the gate itself (its own bearer token).

        ``after`` is the number of rows already received; ``seq`` (the ``hub_seq`` of the
        first page) keeps later pages on the same version. If that version is no longer
        held, 409 ``manifest_changed``: the gate starts again from the first page.
        """
        store = await gate_auth(request, gate_id)
        if after < 0 or not 1 <= limit <= MAX_PAGE_ROWS:
            raise BadInput(f"after must be >= 0 and limit 1..{MAX_PAGE_ROWS}", code="bad_page")
        if seq is None:
            m = await cache.current(store, gate_id)
        else:
            held = cache.get(gate_id, seq)
            if held is None:
                current = await cache.current(store, gate_id)
                if current.hub_seq != seq:
                    raise Conflict(f"manifest version {seq} is gone (now {current.hub_seq}); start again",
                                   code="manifest_changed", hub_seq=current.hub_seq)
                held = current
            m = held
        page = m.rows[after:after + limit]
        stewards = [[i, n, h.to_wire()] for i, n, h in await store.steward_pins()] if after == 0 else None
        next_after = after + len(page) if after + len(page) < len(m.rows) else None
        # what the gate now holds, for the readiness report (gates.info)
        if stewards is not None:
            await _record(store, gate_id, "stewards_pushed", m, count=len(stewards),
                          seq=await store.current_seq())
        if next_after is None:
            await _record(store, gate_id, "manifest_pushed", m)
        return {"gate_id": gate_id, "hub_seq": m.hub_seq, "generated_at": m.generated_at,
                "event_id": m.event_id, "event_name": m.event_name, "total_rows": len(m.rows),
                "after": after, "next_after": next_after, "rows": [r.to_wire() for r in page],
                "stewards": stewards}

    # --- stewards --------------------------------------------------------------------------

    @app.get(f"{API}/stewards", tags=["manifest"], responses=COMMON)
    async def stewards(request: Request, response: Response, _p: Principal = admin,
                       after: Annotated[str | None, Query(max_length=128)] = None,
                       limit: SmallLimit = SMALL_PAGE) -> list[dict[str, Any]]:
        """Stewards by id (never their PINs); a ``Link: rel="next"`` header when more follow."""
        return keyset_page(request, response, await store_of(request).stewards(), "steward_id", after, limit)

    @app.post(f"{API}/stewards", tags=["manifest"], responses={**COMMON, **errors(409)})
    async def add_steward(body: StewardIn, request: Request, p: Principal = admin) -> dict[str, Any]:
        return await store_of(request).add_steward(p, body.steward_id, body.name, body.pin, replace=body.replace)

    @app.delete(f"{API}/stewards/{{steward_id}}", tags=["manifest"], responses={**COMMON, **errors(404)})
    async def remove_steward(steward_id: str, request: Request, p: Principal = admin) -> dict[str, Any]:
        return await store_of(request).remove_steward(p, steward_id)

    # --- paper ticks -----------------------------------------------------------------------

    @app.post(f"{API}/gates/{{gate_id}}/paper-ticks", tags=["manifest"], responses={**COMMON, **errors(404, 409)})
    async def paper_ticks(gate_id: str, body: PaperTicksIn, request: Request,
                          p: Principal = supervisor) -> dict[str, Any]:
        ticks = [PaperTickIn(t) if isinstance(t, str) else PaperTickIn(t.number, t.at, t.steward_id)
                 for t in body.tickets]
        if any(not t.number.strip() for t in ticks):
            raise BadInput("a ticket number is empty", code="bad_number")
        try:
            return await store_of(request).enter_paper_ticks(p, gate_id, ticks,
                                                              manifest_hub_seq=body.manifest_hub_seq)
        except HubError:
            raise
        except ValueError as exc:  # bulk_ticks refusing its input
            raise BadInput(str(exc), code="bad_paper_ticks") from None
