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

import i18n

UI_DIR = Path(__file__).resolve().parent.parent / "ui"


@functools.cache
def _env(code: str = i18n.DEFAULT) -> Environment:
    env = Environment(loader=FileSystemLoader(UI_DIR / "templates"), autoescape=select_autoescape(["html"]),
                      extensions=["jinja2.ext.i18n"])
    env.install_gettext_translations(i18n.translations(code), newstyle=True)  # type: ignore[attr-defined]
    return env


@functools.cache
def _script(name: str) -> Markup:
    text = (UI_DIR / "static" / name).read_text(encoding="utf-8")
    return Markup(text.replace("</", "<\\/"))  # a script body must not close its own tag


def render_fan_page(data: dict[str, Any] | None, *, error: str | None = None, now: float | None = None,
                    lang: str | None = None) -> str:
    """The page in ``lang`` (English if it is not one gatehouse speaks); the route picks it
    from ``?lang=`` or the phone's own languages (:func:`hub.routes.languages.page_language`)."""
    code = i18n.normalize(lang) or i18n.DEFAULT
    env = _env(code)
    words = i18n.get(code)
    if data is None:
        return env.get_template("fan.html").render(title=words._("Ticket"), error=error or "Ticket not found",
                                                   lang_tag=i18n.tag_of(code))
    payload = {**data, "server_now": time.time() if now is None else now}
    data_json = Markup(json.dumps(payload).replace("<", "\\u003c"))
    return env.get_template("fan.html").render(
        title=words._("Ticket {number}", number=data["number"]), data=data, data_json=data_json,
        qrcode_js=_script("qrcode.js"), rotating_js=_script("rotating.js"), error=None, lang_tag=i18n.tag_of(code),
    )
