"""The gate's own small web server: ``/status`` JSON, the staff screen and its API.

It runs in the agent's event loop (uvicorn ``Server.serve``) on 127.0.0.1 by default, so
the kiosk browser and local monitoring work with the hub unreachable.

The kiosk's browser may also show other pages (a captive portal, a link a steward opened),
and the Pi may sit on a venue network. A page from anywhere else must not be able to open
the turnstile or read the manifest, so every request passes :class:`ScreenGuard` first:

============================  ====  =========================================================
check                         code  why
============================  ====  =========================================================
``Host`` on the allow-list    421   DNS rebinding: the attacker's page talks to this port
                                    under the attacker's own name, which is not on the list
same ``Origin`` only          403   a page from another origin (``fetch``, a form) is refused;
                                    so is a cross-site sub-request (``Sec-Fetch-Site``)
JSON bodies only              415   a cross-site "simple request" (``text/plain``, a form) is
                                    sent without a CORS preflight; JSON never is, and this
                                    server grants no CORS
the screen session            403   every ``/api/`` call carries ``X-Gate-Session``: a random
                                    token made at each start
============================  ====  =========================================================

The kiosk gets the session inside the page, which is rendered with it only for a loopback
client whose ``Host`` passed the allow-list; another site's script cannot read that response
(same-origin policy, no CORS). A screen opened from another machine (``status_host`` not
loopback) gets a page without it and is opened as ``http://gate:8081/#session=TOKEN`` with
the token from ``staff-screen.token`` in the gate's data directory (owner-only).

Every refusal is answered ``{"error": {"code", "message"}}``, logged with its reason and
counted (``/status`` → ``screen.refused``). Bodies are validated by pydantic models; every
status code a route can return is in the OpenAPI document (``/openapi.json``), which
schemathesis checks against a real gate in the test suite.
"""
from __future__ import annotations

import hmac
import ipaddress
import logging
import secrets
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import uvicorn
from fastapi import FastAPI, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints
from starlette.exceptions import HTTPException as StarletteHTTPException

import i18n
from gate_agent.journal import JournalError
from tickets.model import Direction, Scan

if TYPE_CHECKING:
    from gate_agent.agent import GateAgent

log = logging.getLogger(__name__)

UI = Path(__file__).resolve().parent.parent / "ui"
MAX_KEYED_LEN = 128
MAX_NOTE_LEN = 500
#: the request header that carries the screen session
SESSION_HEADER = "x-gate-session"
#: the file (in the gate's data directory) holding the current session, for remote screens
SESSION_FILE = "staff-screen.token"
_WILDCARDS = frozenset({"", "0.0.0.0", "::", "[::]"})
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")


# --- request and response models ---------------------------------------------------------
def _encodable(value: str) -> str:
    """Refuse text that cannot be stored or sent on (a lone surrogate such as ``"\\ud800"``)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (no lone surrogates)") from None
    return value


Field128 = Annotated[str, StringConstraints(min_length=1, max_length=MAX_KEYED_LEN), AfterValidator(_encodable)]
Note = Annotated[str, StringConstraints(max_length=MAX_NOTE_LEN), AfterValidator(_encodable)]
SearchText = Annotated[str, StringConstraints(max_length=MAX_KEYED_LEN), AfterValidator(_encodable)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class KeyedRequest(_Body):
    """A ticket number (or any code) typed by staff."""

    code: Field128
    direction: Literal["in", "out"] = "in"


class ManualAdmitRequest(_Body):
    """A steward admits from the manifest with their id and PIN."""

    typed: Field128
    steward_id: Field128
    pin: Field128
    override: bool = False
    note: Note = ""


class ManifestModeRequest(_Body):
    """Staff switch MANIFEST mode on or off by hand."""

    on: bool
    steward_id: Field128
    pin: Field128


class ErrorDetail(BaseModel):
    code: str
    message: str
    #: for ``bad_request``: where in the request each problem is and what it is
    fields: list[dict[str, str]] | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class KeyedResult(BaseModel):
    seq: int
    reason: str
    message: str
    ticket: str | int | None
    right_gates: list[str]


class ManualAdmitResult(BaseModel):
    admitted: bool
    reason: str
    message: str
    seq: int
    ticket: str | None
    candidates: list[dict[str, Any]]
    attempts_left: int | None


class ManifestMatch(BaseModel):
    model_config = ConfigDict(extra="allow")
    ticket_id: int
    number: str
    check_code: str
    holder: str
    zone_id: int
    zone_name: str
    seat: str
    status: str
    how: str
    ticked_by: str | None


class ManifestSearchResult(BaseModel):
    #: the hub seq of the manifest searched; None: no manifest received yet
    manifest_hub_seq: int | None
    matches: list[ManifestMatch]


class ModeResult(BaseModel):
    mode: str


class GateStatus(BaseModel):
    """The gate's live state; the keys below are stable, others may be added."""

    model_config = ConfigDict(extra="allow")
    gate_id: str
    mode: str
    mode_cause: str
    cursor: int
    journal_last_seq: int | None
    backlog: int | None
    hub_connected: bool


def _err(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


#: refusals any request can get from :class:`ScreenGuard`
GUARD_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: _err("from another origin (Origin / Sec-Fetch-Site)"),
    421: _err("Host is not one of this gate's names (DNS rebinding)"),
}
#: and the ones an ``/api/`` route adds
API_RESPONSES: dict[int | str, dict[str, Any]] = {
    **GUARD_RESPONSES,
    400: _err("the body or query does not match the documented model"),
    403: _err("no or wrong screen session (X-Gate-Session), or from another origin"),
}
POST_RESPONSES: dict[int | str, dict[str, Any]] = {
    **API_RESPONSES,
    415: _err("the body is not application/json"),
    503: _err("the journal cannot be written: nothing was decided or admitted"),
}


# --- the guard ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Refusal:
    status: int
    code: str
    message: str


def _split_host(value: str) -> tuple[str, int | None] | None:
    """``name:port`` / ``[v6]:port`` / ``name`` → (lower-case name, port); None if malformed."""
    value = value.strip().lower()
    if not value or any(c.isspace() or c in "/@?#\\" for c in value):
        return None
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[: end + 1], value[end + 1:]
        if rest and not rest.startswith(":"):
            return None
        port_text = rest[1:] if rest else None
    else:
        name, sep, port_text = value.partition(":")
        port_text = port_text if sep else None
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) <= 65535:
            return None
        return name.rstrip("."), int(port_text)
    return name.rstrip("."), None


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name[1:-1] if name.startswith("[") else name)
    except ValueError:
        return False
    return True


def _is_loopback(client: tuple[str, int] | None) -> bool:
    if client is None:
        return False
    try:
        addr = ipaddress.ip_address(client[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback


class ScreenSecurity:
    """The staff screen's session, allowed host names, and refusal counters (one per gate start)."""

    def __init__(self, *, bind_host: str, port: int, session: str | None = None,
                 hostname: str | None = None) -> None:
        self.session = session or secrets.token_urlsafe(32)
        self.port = port
        bind = bind_host.strip().lower()
        self.wildcard = bind in _WILDCARDS
        names = set(_LOOPBACK_NAMES)
        if not self.wildcard:
            names.add(f"[{bind}]" if ":" in bind and not bind.startswith("[") else bind)
        else:
            # Bound to every interface: the machine's own names too. Any IP literal is safe
            # as well (a rebinding page can only send a Host of its own domain name).
            host = (hostname if hostname is not None else socket.gethostname()).lower()
            if host:
                names.update({host, f"{host}.local"})
        self.names = frozenset(names)
        self.refused: Counter[str] = Counter()

    # -- checks (pure, so they are tested without a server) --
    def check_host(self, host: str | None) -> Refusal | None:
        where = f"http://127.0.0.1:{self.port}/"
        if not host:
            return Refusal(421, "bad_host", f"no Host header; open the staff screen at {where}")
        parsed = _split_host(host)
        if parsed is None:
            return Refusal(421, "bad_host", f"malformed Host header {host[:80]!r}")
        name, port = parsed
        if (port if port is not None else 80) != self.port:
            return Refusal(421, "bad_host", f"Host {host[:80]!r} names another port; open {where}")
        if name in self.names or (self.wildcard and _is_ip_literal(name)):
            return None
        return Refusal(421, "bad_host", f"Host {host[:80]!r} is not a name of this gate (DNS rebinding?); open {where}")

    def check_origin(self, host: str, origin: str | None, fetch_site: str | None, fetch_mode: str | None) -> Refusal | None:
        if origin is not None and origin.strip().lower() != f"http://{host.strip().lower()}":
            return Refusal(403, "cross_origin", f"request from another origin ({origin[:80]!r}) refused")
        if fetch_site in ("cross-site", "same-site") and fetch_mode != "navigate":
            return Refusal(403, "cross_origin", f"request from another site (Sec-Fetch-Site: {fetch_site}) refused")
        return None

    def check_api(self, method: str, content_type: str | None, session: str | None) -> Refusal | None:
        if method not in ("GET", "HEAD"):
            media = (content_type or "").split(";", 1)[0].strip().lower()
            if media != "application/json":
                shown = (content_type or "none")[:80]
                return Refusal(415, "unsupported_media_type", f"send the body as application/json (got {shown!r})")
        if not session:
            return Refusal(403, "session_required",
                           "this call needs the staff screen's session (X-Gate-Session): reload the staff screen")
        if not hmac.compare_digest(session.encode("utf-8", "replace"), self.session.encode()):
            return Refusal(403, "session_invalid",
                           "the staff screen's session is not current (the gate restarted?): reload the screen")
        return None

    def status(self) -> dict[str, Any]:
        return {"refused": dict(self.refused), "allowed_hosts": sorted(self.names), "port": self.port}


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

#: added to every response: no framing (clickjacking), no sniffing, no referrer, no caching
SECURITY_HEADERS = (
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
)


class ScreenGuard:
    """ASGI middleware: Host, Origin, content type and session checks before any route runs."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], *, security: ScreenSecurity,
                 api_routes: set[tuple[str, str]]) -> None:
        self.app = app
        self.security = security
        #: (method, path) of every /api/ route; other methods on those paths fall through to a 405
        self.api_routes = api_routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._check(scope)
        if refusal is not None:
            self._refused(scope, refusal)
            body = ErrorBody(error=ErrorDetail(code=refusal.code, message=refusal.message))
            response = JSONResponse(body.model_dump(exclude_none=True), status_code=refusal.status)
            await response(scope, receive, self._with_headers(send))
            return
        await self.app(scope, receive, self._with_headers(send))

    def _check(self, scope: Scope) -> Refusal | None:
        headers: dict[str, str] = {}
        for key, value in scope.get("headers", ()):
            headers.setdefault(key.decode("latin-1").lower(), value.decode("latin-1"))
        sec = self.security
        host = headers.get("host")
        refusal = sec.check_host(host)
        if refusal is None:
            assert host is not None
            refusal = sec.check_origin(host, headers.get("origin"), headers.get("sec-fetch-site"),
                                       headers.get("sec-fetch-mode"))
        if refusal is None and (scope["method"], scope["path"]) in self.api_routes:
            refusal = sec.check_api(scope["method"], headers.get("content-type"), headers.get(SESSION_HEADER))
        return refusal

    def _refused(self, scope: Scope, refusal: Refusal) -> None:
        self.security.refused[refusal.code] += 1
        client = scope.get("client")
        log.warning("staff screen refused %s %s from %s: %s (HTTP %s): %s", scope["method"], scope["path"][:80],
                    client[0] if client else "?", refusal.code, refusal.status, refusal.message)

    @staticmethod
    def _with_headers(send: Send) -> Send:
        async def wrapped(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        return wrapped


# --- the app -----------------------------------------------------------------------------
def _problems(errors: Iterable[Any]) -> list[dict[str, str]]:
    """Validation errors as text fit to send back (never the raw input, which may not be UTF-8)."""
    out = []
    for e in errors:
        loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
        out.append({"field": _safe(loc or "body"), "problem": _safe(str(e.get("msg", "invalid")))})
    return out


def _safe(text: str) -> str:
    return text.encode("utf-8", "replace").decode("utf-8")[:200]


HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}


def _error(status: int, code: str, message: str, fields: list[dict[str, str]] | None = None,
           headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(ErrorBody(error=ErrorDetail(code=code, message=message, fields=fields))
                        .model_dump(exclude_none=True), status_code=status, headers=headers)


def create_status_app(agent: GateAgent, security: ScreenSecurity) -> FastAPI:
    app = FastAPI(title=f"gatehouse gate {agent.config.gate_id}", docs_url=None, redoc_url=None,
                  description="The gate's staff screen and local status. See gate_agent/status_server.py.")
    envs: dict[str, Environment] = {}
    app.mount("/static", StaticFiles(directory=UI / "static"), name="static")
    # Checked by ScreenGuard before any route runs; declared here so the OpenAPI says so.
    session = [Security(APIKeyHeader(name="X-Gate-Session", auto_error=False, scheme_name="screen_session",
                                     description="the staff screen's session (see the module docs)"))]

    def env_for(code: str) -> Environment:
        """A template environment speaking ``code`` (one per language, made on first use)."""
        if code not in envs:
            env = Environment(loader=FileSystemLoader(UI / "templates"), autoescape=select_autoescape(),
                              extensions=["jinja2.ext.i18n"])
            env.install_gettext_translations(i18n.translations(code), newstyle=True)  # type: ignore[attr-defined]
            envs[code] = env
        return envs[code]

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = _problems(exc.errors())
        security.refused["bad_request"] += 1
        log.info("staff screen API: bad request to %s: %s", request.url.path,
                 "; ".join(f"{f['field']}: {f['problem']}" for f in fields))
        summary = "; ".join(f"{f['field']}: {f['problem']}" for f in fields[:3])
        return _error(400, "bad_request", f"request does not match the documented model: {summary}", fields)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """Starlette's own refusals (a body that is not UTF-8, 404, 405) in the same shape."""
        code = HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        if exc.status_code == 400:
            security.refused["bad_request"] += 1
            log.info("staff screen API: bad request to %s: %s", request.url.path, exc.detail)
        return _error(exc.status_code, code, _safe(str(exc.detail)), headers=exc.headers)

    @app.get("/status", response_model=GateStatus, responses=GUARD_RESPONSES)
    async def status() -> dict[str, Any]:
        """The gate's mode, counters, backlog, sync state and recent decisions (for monitoring)."""
        data = await agent.status()
        # a replica snapshot in progress, for the screen's progress bar (rows and share)
        owner = getattr(agent, "sync_owner", None)
        progress = getattr(owner, "snapshot_progress", None)
        data["snapshot"] = {"done_rows": progress[0], "total_rows": progress[1]} if progress else None
        data["language"] = i18n.tag_of(gate_language())
        return data

    def gate_language() -> str:
        return i18n.normalize(agent.config.language) or i18n.DEFAULT

    @app.get("/", response_class=HTMLResponse, responses=GUARD_RESPONSES)
    async def screen(request: Request, lang: str | None = None) -> str:
        """The staff screen in the gate's language (``?lang=ru`` shows another one). Carries the
        session only for a loopback client (the kiosk)."""
        session = security.session if _is_loopback(request.scope.get("client")) else ""
        code = i18n.normalize(lang) or gate_language()
        return env_for(code).get_template("gate.html").render(
            gate_id=agent.config.gate_id, session=session, lang_tag=i18n.tag_of(code),
            catalogue_json=_inline_catalogue(code))

    @app.get("/i18n/{tag}.json", include_in_schema=False)
    async def catalogue(tag: str) -> Response:
        """A language's catalogue for the page's script (``auto``: the gate's own language)."""
        code = gate_language() if tag == "auto" else i18n.normalize(tag)
        if code is None:
            return _error(404, "unknown_language", f"no catalogue for {_safe(tag[:40])!r}")
        return Response(i18n.catalogue_json(code), media_type="application/json")

    @app.get("/api/doctor", responses=API_RESPONSES, dependencies=session)
    async def doctor() -> dict[str, Any]:
        """The same checks as ``gatehouse gate doctor``, judged from this running agent."""
        from gate_agent.doctor import run_checks

        return (await run_checks(agent.config, agent=agent)).as_dict()

    @app.get("/service", response_class=HTMLResponse, responses=GUARD_RESPONSES)
    async def service(request: Request) -> str:
        """The technician's service page: the doctor's checks, refreshed by the page."""
        session = security.session if _is_loopback(request.scope.get("client")) else ""
        code = gate_language()
        return env_for(code).get_template("service.html").render(
            gate_id=agent.config.gate_id, session=session, lang_tag=i18n.tag_of(code),
            catalogue_json=_inline_catalogue(code))

    @app.post("/api/keyed", response_model=KeyedResult, responses=POST_RESPONSES, dependencies=session)
    async def keyed(body: KeyedRequest) -> Any:
        """A ticket number typed by staff: decided exactly like a scan (symbology "keyed")."""
        direction = Direction.OUT if body.direction == "out" else Direction.IN
        try:
            decision = await agent.handle_scan(Scan(body.code.encode("utf-8"), "keyed", "staff", time.time(),
                                                    direction))
        except JournalError as exc:
            return _journal_down(exc)
        v = decision.verdict
        return KeyedResult(seq=decision.entry.seq, reason=str(v.reason), message=v.message,
                           ticket=v.ticket_number or v.ticket_id, right_gates=list(v.right_gates))

    @app.get("/api/manifest/search", response_model=ManifestSearchResult, responses=API_RESPONSES, dependencies=session)
    async def manifest_search(q: Annotated[SearchText, Query(description="number, check code or holder name")] = ""
                              ) -> Any:
        """Manifest rows matching what a steward typed (needs the screen session: holder names)."""
        assert agent.manifest is not None  # opened before the server starts
        info = await agent.manifest.info()
        if not q.strip():
            return ManifestSearchResult(manifest_hub_seq=info.hub_seq, matches=[])
        matches = await agent.manifest.search(q)
        return ManifestSearchResult(manifest_hub_seq=info.hub_seq, matches=[
            ManifestMatch(**m.row.to_wire(), how=m.how, ticked_by=m.tick.steward_id if m.tick else None)  # type: ignore[arg-type]
            for m in matches])

    @app.post("/api/manual-admit", response_model=ManualAdmitResult, responses=POST_RESPONSES, dependencies=session)
    async def manual(body: ManualAdmitRequest) -> Any:
        """A steward admits from the manifest; a refusal (wrong PIN, not on the manifest) is a 200 answer."""
        try:
            result = await agent.manual_admit(typed=body.typed, steward_id=body.steward_id, pin=body.pin,
                                              override=body.override, note=body.note)
        except JournalError as exc:
            return _journal_down(exc)
        return ManualAdmitResult(
            admitted=result.admitted, reason=result.reason, message=result.message, seq=result.entry.seq,
            ticket=result.row.number if result.row else result.entry.ticket_number,
            candidates=[r.to_wire() for r in result.candidates], attempts_left=result.attempts_left)

    @app.post("/api/manifest-mode", response_model=ModeResult, dependencies=session, responses={
        **POST_RESPONSES, 403: _err("PIN refused (code: the refusal), no screen session, or another origin")})
    async def manifest_mode(body: ManifestModeRequest) -> Any:
        """Staff switch MANIFEST mode on or off by hand (needs a steward PIN)."""
        assert agent.manifest is not None  # opened before the server starts
        check = await agent.manifest.check_pin(body.steward_id, body.pin, time.time())
        if not check.ok:
            log.warning("manifest mode %s refused for steward %r: %s", "on" if body.on else "off",
                        body.steward_id, check.reason)
            return _error(403, check.reason, check.detail or "PIN refused")
        try:
            await agent.set_staff_manifest(body.on)
        except JournalError as exc:
            return _journal_down(exc)
        return ModeResult(mode=str(agent.ladder.mode))

    _document_errors_as_400(app)
    api_routes = {(m, r.path) for r in app.routes if isinstance(r, APIRoute) and r.path.startswith("/api/")
                  for m in (r.methods or ())}
    app.add_middleware(ScreenGuard, security=security, api_routes=api_routes)
    return app


def _inline_catalogue(code: str) -> Markup:
    """The language's catalogue as JSON to put inside a ``<script>`` element (no ``<``, so
    no message can close the element)."""
    return Markup(i18n.catalogue_json(code).decode("utf-8").replace("<", "\\u003c"))


def _journal_down(exc: JournalError) -> JSONResponse:
    log.error("staff screen call not acted on: the journal cannot be written: %s", exc)
    return _error(503, "journal_unavailable", f"not recorded, so nothing was admitted: {exc}")


def _document_errors_as_400(app: FastAPI) -> None:
    """FastAPI documents validation errors as 422; this server answers them 400 (``bad_request``)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    operation.get("responses", {}).pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def write_session_file(data_dir: Path, session: str) -> Path:
    """The current session for screens opened from another machine (owner-only)."""
    from gate_agent.files import write_private

    return write_private(data_dir / SESSION_FILE, session + "\n")


def make_server(agent: GateAgent, host: str, port: int, security: ScreenSecurity) -> uvicorn.Server:
    config = uvicorn.Config(create_status_app(agent, security), host=host, port=port, log_level="warning",
                            lifespan="off")
    return uvicorn.Server(config)


__all__ = ["SESSION_FILE", "SESSION_HEADER", "ScreenGuard", "ScreenSecurity", "create_status_app",
           "make_server"]
