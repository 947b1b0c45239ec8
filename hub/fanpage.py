"""The fan's ticket page for rotating credentials (``/t/{opaque}``).

The page carries the static signed part and the ticket's rotating secret, and computes the
15-second code on the phone (``ui/static/rotating.js``, the same function as
:mod:`tickets.rotating`), drawing the QR itself (``ui/static/qrcode.js``). Both scripts are
inlined so the page keeps working with no connection once loaded, even after a reload from
the browser cache.
"""
from __future__ import annotations

import contextvars
import functools
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.types import ASGIApp, Receive, Scope, Send

import i18n

UI_DIR = Path(__file__).resolve().parent.parent / "ui"
#: the language of the page being rendered (set per request by :class:`FanLanguage`)
fan_language: contextvars.ContextVar[str] = contextvars.ContextVar("fan_language", default=i18n.DEFAULT)


class FanLanguage:
    """ASGI middleware: the fan page speaks ``?lang=`` or else the phone's own language
    (``Accept-Language``). Only ``/t/…`` requests are looked at."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith("/t/"):
            asked = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("lang", [""])[0]
            header = dict(scope.get("headers", [])).get(b"accept-language", b"").decode("latin-1")
            token = fan_language.set(i18n.normalize(asked) or i18n.negotiate(header))
            try:
                await self.app(scope, receive, send)
            finally:
                fan_language.reset(token)
            return
        await self.app(scope, receive, send)


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
    """The page in ``lang`` (default: the request's language, see :class:`FanLanguage`)."""
    code = i18n.normalize(lang) or fan_language.get()
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
