"""The gate's own small web server: ``/status`` JSON and the staff screen.

It runs in the agent's event loop (uvicorn ``Server.serve``) on 127.0.0.1 by default, so
the kiosk browser and local monitoring work with the hub unreachable.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

import i18n
from tickets.model import Direction, Scan

if TYPE_CHECKING:
    from gate_agent.agent import GateAgent

UI = Path(__file__).resolve().parent.parent / "ui"
MAX_KEYED_LEN = 128


def create_status_app(agent: GateAgent) -> FastAPI:
    app = FastAPI(title=f"gatehouse gate {agent.config.gate_id}", docs_url=None, redoc_url=None)
    envs: dict[str, Environment] = {}
    app.mount("/static", StaticFiles(directory=UI / "static"), name="static")

    def env_for(code: str) -> Environment:
        """A template environment speaking ``code`` (one per language, made on first use)."""
        if code not in envs:
            env = Environment(loader=FileSystemLoader(UI / "templates"), autoescape=select_autoescape(),
                              extensions=["jinja2.ext.i18n"])
            env.install_gettext_translations(i18n.translations(code), newstyle=True)  # type: ignore[attr-defined]
            envs[code] = env
        return envs[code]

    @app.get("/status")
    async def status() -> dict[str, Any]:
        data = await agent.status()
        # a replica snapshot in progress, for the screen's progress bar (rows and share)
        owner = getattr(agent, "sync_owner", None)
        progress = getattr(owner, "snapshot_progress", None)
        data["snapshot"] = {"done_rows": progress[0], "total_rows": progress[1]} if progress else None
        data["language"] = i18n.tag_of(gate_language())
        return data

    def gate_language() -> str:
        return i18n.normalize(getattr(agent.config, "language", None)) or i18n.DEFAULT

    @app.get("/", response_class=HTMLResponse)
    async def screen(lang: str | None = None) -> str:
        """The staff screen in the gate's language (``?lang=ru`` shows another one)."""
        code = i18n.normalize(lang) or gate_language()
        catalogue = i18n.catalogue_json(code).decode("utf-8").replace("<", "\\u003c")
        return env_for(code).get_template("gate.html").render(
            gate_id=agent.config.gate_id, lang_tag=i18n.tag_of(code), catalogue_json=Markup(catalogue))

    @app.get("/i18n/{tag}.json", include_in_schema=False)
    async def catalogue(tag: str) -> Response:
        code = gate_language() if tag == "auto" else i18n.normalize(tag)
        if code is None:
            return JSONResponse({"error": {"code": "unknown_language", "message": f"no catalogue for {tag!r}"}},
                                status_code=404)
        return Response(i18n.catalogue_json(code), media_type="application/json")

    @app.post("/api/keyed")
    async def keyed(request: Request) -> JSONResponse:
        """A ticket number typed by staff: decided exactly like a scan (symbology "keyed")."""
        try:
            body = await request.json()
            code = body["code"]
            if not isinstance(code, str) or not 0 < len(code) <= MAX_KEYED_LEN:
                raise ValueError
        except Exception:
            return _bad('send {"code": "ticket number"}')
        direction = Direction.OUT if body.get("direction") == "out" else Direction.IN
        decision = await agent.handle_scan(Scan(code.encode("utf-8"), "keyed", "staff", time.time(), direction))
        v = decision.verdict
        return JSONResponse({"seq": decision.entry.seq, "reason": str(v.reason), "message": v.message,
                             "ticket": v.ticket_number or v.ticket_id, "right_gates": list(v.right_gates)})

    @app.get("/api/manifest/search")
    async def manifest_search(q: str = "") -> JSONResponse:
        if agent.manifest is None or not q.strip() or len(q) > MAX_KEYED_LEN:
            return JSONResponse({"matches": []})
        matches = await agent.manifest.search(q)
        info = await agent.manifest.info()
        return JSONResponse({
            "manifest_hub_seq": info.hub_seq,
            "matches": [{**m.row.to_wire(), "how": m.how,
                         "ticked_by": m.tick.steward_id if m.tick else None} for m in matches],
        })

    @app.post("/api/manual-admit")
    async def manual(request: Request) -> JSONResponse:
        try:
            body = await request.json()
            typed, steward, pin = body["typed"], body["steward_id"], body["pin"]
            if not all(isinstance(v, str) and 0 < len(v) <= MAX_KEYED_LEN for v in (typed, steward, pin)):
                raise ValueError
            override = bool(body.get("override", False))
            note = str(body.get("note", ""))[:500]
        except Exception:
            return _bad('send {"typed": "...", "steward_id": "...", "pin": "..."} (+ "override", "note")')
        result = await agent.manual_admit(typed=typed, steward_id=steward, pin=pin, override=override, note=note)
        return JSONResponse({
            "admitted": result.admitted, "reason": result.reason, "message": result.message,
            "seq": result.entry.seq, "ticket": result.row.number if result.row else result.entry.ticket_number,
            "candidates": [r.to_wire() for r in result.candidates], "attempts_left": result.attempts_left,
        })

    @app.post("/api/manifest-mode")
    async def manifest_mode(request: Request) -> JSONResponse:
        """Staff switch MANIFEST mode on or off by hand (needs a steward PIN)."""
        try:
            body = await request.json()
            on, steward, pin = bool(body["on"]), str(body["steward_id"]), str(body["pin"])
        except Exception:
            return _bad('send {"on": true|false, "steward_id": "...", "pin": "..."}')
        assert agent.manifest is not None
        check = await agent.manifest.check_pin(steward, pin, time.time())
        if not check.ok:
            return JSONResponse({"error": {"code": check.reason, "message": check.detail}}, status_code=403)
        await agent.set_staff_manifest(on)
        return JSONResponse({"mode": str(agent.ladder.mode)})

    return app


def _bad(message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": "bad_request", "message": message}}, status_code=400)


def make_server(agent: GateAgent, host: str, port: int) -> uvicorn.Server:
    config = uvicorn.Config(create_status_app(agent), host=host, port=port, log_level="warning", lifespan="off")
    return uvicorn.Server(config)
