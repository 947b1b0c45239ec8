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
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from tickets.model import Direction, Scan

if TYPE_CHECKING:
    from gate_agent.agent import GateAgent

UI = Path(__file__).resolve().parent.parent / "ui"
MAX_KEYED_LEN = 128


def create_status_app(agent: GateAgent) -> FastAPI:
    app = FastAPI(title=f"gatehouse gate {agent.config.gate_id}", docs_url=None, redoc_url=None)
    env = Environment(loader=FileSystemLoader(UI / "templates"), autoescape=select_autoescape())
    app.mount("/static", StaticFiles(directory=UI / "static"), name="static")

    @app.get("/status")
    async def status() -> dict[str, Any]:
        return await agent.status()

    @app.get("/", response_class=HTMLResponse)
    async def screen() -> str:
        return env.get_template("gate.html").render(gate_id=agent.config.gate_id)

    @app.post("/api/keyed")
    async def keyed(request: Request) -> JSONResponse:
        """A ticket number typed by staff: decided exactly like a scan (symbology "keyed")."""
        try:
            body = await request.json()
            code = body["code"]
            if not isinstance(code, str) or not 0 < len(code) <= MAX_KEYED_LEN:
                raise ValueError
        except Exception:
            return JSONResponse({"error": {"code": "bad_request", "message": "send {\"code\": \"ticket number\"}"}},
                                status_code=400)
        direction = Direction.OUT if body.get("direction") == "out" else Direction.IN
        decision = await agent.handle_scan(Scan(code.encode("utf-8"), "keyed", "staff", time.time(), direction))
        v = decision.verdict
        return JSONResponse({"seq": decision.entry.seq, "reason": str(v.reason), "message": v.message,
                             "ticket": v.ticket_number or v.ticket_id, "right_gates": list(v.right_gates)})

    return app


def make_server(agent: GateAgent, host: str, port: int) -> uvicorn.Server:
    config = uvicorn.Config(create_status_app(agent), host=host, port=port, log_level="warning", lifespan="off")
    return uvicorn.Server(config)
