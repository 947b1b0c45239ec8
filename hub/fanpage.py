"""The fan's ticket page for rotating credentials (``/t/{opaque}``).

The page carries the static signed part and the ticket's rotating secret, and computes the
15-second code on the phone (``ui/static/rotating.js``, the same function as
:mod:`tickets.rotating`), drawing the QR itself (``ui/static/qrcode.js``). Both scripts are
inlined so the page keeps working with no connection once loaded, even after a reload from
the browser cache.
"""
from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

UI_DIR = Path(__file__).resolve().parent.parent / "ui"


@functools.cache
def _env() -> Environment:
    return Environment(loader=FileSystemLoader(UI_DIR / "templates"), autoescape=select_autoescape(["html"]))


@functools.cache
def _script(name: str) -> Markup:
    text = (UI_DIR / "static" / name).read_text(encoding="utf-8")
    return Markup(text.replace("</", "<\\/"))  # a script body must not close its own tag


def render_fan_page(data: dict[str, Any] | None, *, error: str | None = None, now: float | None = None) -> str:
    if data is None:
        return _env().get_template("fan.html").render(title="Ticket", error=error or "Ticket not found")
    payload = {**data, "server_now": time.time() if now is None else now}
    data_json = Markup(json.dumps(payload).replace("<", "\\u003c"))
    return _env().get_template("fan.html").render(
        title=f"Ticket {data['number']}", data=data, data_json=data_json,
        qrcode_js=_script("qrcode.js"), rotating_js=_script("rotating.js"), error=None,
    )
