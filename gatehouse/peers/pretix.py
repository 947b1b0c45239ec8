"""A real pretix on this machine: installed from PyPI into its own virtualenv, migrated once,
served by gunicorn on 127.0.0.1, filled through its own REST API.

Used by the peer tests (``tests/peers/``) and the pretix benchmark. pretix is a Django
application with dependencies far from ours, so it gets its own virtualenv under a cache
directory and is only ever talked to over HTTP (and, for bootstrap, its management shell):

* :func:`ensure_installed` — ``pip install pretix==VERSION gunicorn`` into
  ``<cache>/venv`` (minutes, once per machine; a file lock keeps parallel runs from
  installing twice);
* :func:`ensure_template` — ``python -m pretix migrate`` on an SQLite database and a
  bootstrap in pretix's shell (organizer, a team with every permission, an API token),
  kept as a template that every server starts from a copy of;
* :class:`PretixServer` — one gunicorn process on a free port over a copy of the template;
* :class:`PretixAPI` — events, products, quotas, check-in lists and orders through
  pretix's REST API, so secrets are made by pretix itself;
* :func:`measure_redeem_rate` — pretix's own online check-in
  (``POST /api/v1/organizers/<org>/checkinrpc/redeem/``) in a closed loop.

SQLite, not PostgreSQL: nothing to start besides pretix, and a test run owns its copy. The
redeem figures are therefore pretix on SQLite (writes serialised by SQLite's lock); the
backend is part of every measurement this module returns.

``GATEHOUSE_PRETIX_CACHE`` moves the cache (default ``~/.cache/gatehouse/pretix/<version>``).
"""
from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from gatehouse.bench import percentile

PRETIX_VERSION = "2026.8.0"
GUNICORN_VERSION = "27.0.1"
ORGANIZER = "gatehouse"
DEFAULT_WORKERS = 2

#: pretix's management shell creates what its API cannot: an organizer, a team and a token.
_BOOTSTRAP = """
import json
from django_scopes import scopes_disabled
from pretix.base.models import Organizer, Team
with scopes_disabled():
    org = Organizer.objects.create(slug=%(org)r, name="gatehouse test venue")
    team = Team.objects.create(organizer=org, name="gatehouse", all_events=True,
                               all_event_permissions=True, all_organizer_permissions=True)
    token = team.tokens.create(name="gatehouse-tests")
    print("BOOTSTRAP " + json.dumps({"organizer": org.slug, "token": token.token}))
"""

#: pretix sets the secret generator per event in its control panel only (not in the API).
_SET_GENERATOR = """
from django_scopes import scopes_disabled
from pretix.base.models import Event
with scopes_disabled():
    event = Event.objects.get(organizer__slug=%(org)r, slug=%(event)r)
    event.settings.ticket_secret_generator = %(generator)r
    print("SET " + event.settings.ticket_secret_generator)
"""


class PretixHarnessError(RuntimeError):
    """pretix could not be installed, migrated, started or used; ``log`` holds its output."""

    def __init__(self, what: str, log: str = "") -> None:
        super().__init__(f"{what}\n{log[-4000:]}" if log else what)
        self.what = what
        self.log = log


def cache_root(version: str = PRETIX_VERSION) -> Path:
    base = os.environ.get("GATEHOUSE_PRETIX_CACHE")
    root = Path(base) if base else Path.home() / ".cache" / "gatehouse" / "pretix"
    return root / version


def _say(msg: str) -> None:
    print(f"[pretix] {msg}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _timings(root: Path) -> dict[str, float]:
    path = root / "timings.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {k: float(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _record_timing(root: Path, key: str, seconds: float) -> None:
    data = _timings(root)
    data[key] = round(seconds, 1)
    (root / "timings.json").write_text(json.dumps(data, indent=1) + "\n")


def _run(cmd: Sequence[str], *, env: dict[str, str] | None = None, timeout: float, what: str,
         cwd: Path | None = None) -> str:
    proc = subprocess.run(list(cmd), env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise PretixHarnessError(f"{what} failed (exit {proc.returncode})", proc.stdout + proc.stderr)
    return proc.stdout


def ensure_installed(root: Path | None = None) -> Path:
    """The pretix virtualenv's python, installing pretix first if it is missing."""
    root = root or cache_root()
    python = root / "venv" / "bin" / "python"
    marker = root / "venv" / ".gatehouse-installed"
    want = f"pretix=={PRETIX_VERSION} gunicorn=={GUNICORN_VERSION}"
    with _locked(root):
        if marker.exists() and marker.read_text().strip() == want:
            return python
        _say(f"installing {want} into {root / 'venv'} (takes minutes, once per machine)")
        started = time.monotonic()
        shutil.rmtree(root / "venv", ignore_errors=True)
        _run([sys.executable, "-m", "venv", str(root / "venv")], timeout=300, what="creating pretix's virtualenv")
        _run([str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"], timeout=600, what="upgrading pip")
        _run([str(python), "-m", "pip", "install", "-q", f"pretix=={PRETIX_VERSION}",
              f"gunicorn=={GUNICORN_VERSION}"], timeout=1800, what=f"pip install {want}")
        marker.write_text(want + "\n")
        _record_timing(root, "install_s", time.monotonic() - started)
        _say(f"installed in {time.monotonic() - started:.0f} s")
    return python


def write_config(path: Path, data_dir: Path, port: int) -> Path:
    """A pretix.cfg for an SQLite instance on 127.0.0.1 that sends no mail and fetches nothing."""
    path.write_text(
        "[pretix]\n"
        "instance_name=gatehouse-test\n"
        f"url=http://127.0.0.1:{port}\n"
        f"datadir={data_dir}\n"
        "ecb_rates=off\n"
        # the hub under test listens on 127.0.0.1: pretix blocks webhooks to loopback otherwise
        "allow_http_to_private_networks=on\n"
        "[django]\n"
        f"secret={uuid.uuid4().hex}{uuid.uuid4().hex}\n"
        "debug=off\n"
        "[database]\n"
        "backend=sqlite3\n"
        "[mail]\n"
        "from=pretix@localhost\n"
        "host=127.0.0.1\n"
        "port=9\n"
    )
    return path


def _pretix_env(config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PRETIX_CONFIG_FILE"] = str(config)
    env["DJANGO_SETTINGS_MODULE"] = "pretix.settings"
    return env


def shell(python: Path, config: Path, code: str, *, timeout: float = 300) -> str:
    """Run Python code in pretix's management shell (Django set up); returns its stdout."""
    return _run([str(python), "-m", "pretix", "shell", "-c", code], env=_pretix_env(config), timeout=timeout,
                what="pretix shell", cwd=config.parent)


@dataclass(frozen=True)
class Template:
    """A migrated, bootstrapped pretix database to copy for each server."""

    db: Path
    organizer: str
    token: str


def ensure_template(root: Path | None = None) -> Template:
    """Migrate an SQLite database and bootstrap it once; later runs reuse it."""
    root = root or cache_root()
    python = ensure_installed(root)
    tdir = root / "template"
    info_path = tdir / "bootstrap.json"
    with _locked(root):
        if info_path.exists():
            info = json.loads(info_path.read_text())
            return Template(tdir / "data" / "db.sqlite3", info["organizer"], info["token"])
        _say(f"migrating a fresh pretix database in {tdir} (takes minutes, once per machine)")
        shutil.rmtree(tdir, ignore_errors=True)
        (tdir / "data").mkdir(parents=True)
        config = write_config(tdir / "pretix.cfg", tdir / "data", 8000)
        started = time.monotonic()
        _run([str(python), "-m", "pretix", "migrate", "--no-input"], env=_pretix_env(config), timeout=1800,
             what="pretix migrate", cwd=tdir)
        _record_timing(root, "migrate_s", time.monotonic() - started)
        out = shell(python, config, _BOOTSTRAP % {"org": ORGANIZER})
        line = next((x for x in out.splitlines() if x.startswith("BOOTSTRAP ")), None)
        if line is None:
            raise PretixHarnessError("pretix bootstrap printed no token", out)
        info = json.loads(line[len("BOOTSTRAP "):])
        info_path.write_text(json.dumps(info) + "\n")
        _say(f"migrated and bootstrapped in {time.monotonic() - started:.0f} s")
        return Template(tdir / "data" / "db.sqlite3", info["organizer"], info["token"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PretixServer:
    """One pretix (gunicorn) process on 127.0.0.1 over its own copy of the template database."""

    workdir: Path
    workers: int = DEFAULT_WORKERS
    root: Path | None = None
    port: int = 0
    organizer: str = ORGANIZER
    token: str = ""
    python: Path | None = None
    config: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    started_in_s: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "gunicorn.log"

    def start(self, *, timeout: float = 240.0) -> PretixServer:
        root = self.root or cache_root()
        template = ensure_template(root)
        self.python = root / "venv" / "bin" / "python"
        self.organizer, self.token = template.organizer, template.token
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template.db, data / "db.sqlite3")
        self.port = self.port or _free_port()
        self.config = write_config(self.workdir / "pretix.cfg", data, self.port)
        return self._spawn(root, timeout)

    def restart(self, *, timeout: float = 240.0) -> PretixServer:
        """Start again after :meth:`stop`, on the same port and database (an outage ends)."""
        assert self.config is not None, "start() first"
        return self._spawn(self.root or cache_root(), timeout)

    def _spawn(self, root: Path, timeout: float) -> PretixServer:
        started = time.monotonic()
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                [str(root / "venv" / "bin" / "gunicorn"), "pretix.wsgi", "--bind", f"127.0.0.1:{self.port}",
                 "--workers", str(self.workers), "--timeout", "60", "--no-control-socket"],
                env=_pretix_env(self.config), cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise PretixHarnessError(f"pretix exited with {self.proc.returncode} while starting",
                                         self.log_path.read_text(errors="replace"))
            # pretix's /healthcheck/ answers 503 without a real cache (none here): ask the API.
            try:
                r = httpx.get(f"{self.url}/api/v1/organizers/{self.organizer}/", timeout=5.0,
                              headers={"Authorization": f"Token {self.token}"})
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                pass  # not answering yet: the deadline below ends the wait with pretix's log
            if time.monotonic() > deadline:
                self.stop()
                raise PretixHarnessError(f"pretix did not answer within {timeout:.0f} s",
                                         self.log_path.read_text(errors="replace"))
            time.sleep(0.2)
        self.started_in_s = time.monotonic() - started
        return self

    def stop(self, *, timeout: float = 20.0) -> None:
        """Stop gunicorn and its workers (the whole process group), forcefully if need be."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout)

    def set_secret_generator(self, event: str, generator: str) -> None:
        """Choose pretix's ticket secret generator for an event (``random`` or ``pretix_sig1``)."""
        assert self.python is not None and self.config is not None
        out = shell(self.python, self.config, _SET_GENERATOR % {"org": self.organizer, "event": event,
                                                               "generator": generator})
        if f"SET {generator}" not in out:
            raise PretixHarnessError(f"could not set {event}'s secret generator to {generator}", out)

    def api(self) -> PretixAPI:
        return PretixAPI(self.url, self.organizer, self.token)


@dataclass(frozen=True)
class Product:
    item: int
    variations: tuple[int, ...] = ()


class PretixAPI:
    """pretix's REST API for one organizer (a thin synchronous client; errors raise)."""

    def __init__(self, url: str, organizer: str, token: str, *, timeout: float = 60.0) -> None:
        self.base = f"{url}/api/v1/organizers/{organizer}"
        self.headers = {"Authorization": f"Token {token}"}
        self.client = httpx.Client(headers=self.headers, timeout=timeout)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> PretixAPI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, method: str, path: str, **kw: Any) -> Any:
        r = self.client.request(method, self.base + path, **kw)
        if r.status_code >= 400:
            raise PretixHarnessError(f"pretix {method} {path}: HTTP {r.status_code}", r.text)
        return r.json() if r.content else None

    def create_event(self, slug: str, *, name: str = "Integration cup", date_from: str = "2026-12-01T18:00:00Z") -> None:
        self.call("POST", "/events/", json={"name": {"en": name}, "slug": slug, "currency": "EUR",
                                            "date_from": date_from, "live": False})

    def create_product(self, event: str, name: str, variations: Sequence[str] = (), *, price: str = "10.00") -> Product:
        body: dict[str, Any] = {"name": {"en": name}, "default_price": price, "admission": True,
                                "personalized": False}
        if variations:
            body["variations"] = [{"value": {"en": v}, "default_price": price} for v in variations]
        item = self.call("POST", f"/events/{event}/items/", json=body)
        return Product(int(item["id"]), tuple(int(v["id"]) for v in item.get("variations", [])))

    def create_quota(self, event: str, products: Sequence[Product], size: int) -> int:
        body = {"name": "all", "size": size, "items": [p.item for p in products],
                "variations": [v for p in products for v in p.variations]}
        return int(self.call("POST", f"/events/{event}/quotas/", json=body)["id"])

    def create_checkin_list(self, event: str, name: str = "gates") -> int:
        return int(self.call("POST", f"/events/{event}/checkinlists/", json={"name": name, "all_products": True})["id"])

    def create_order(self, event: str, positions: Sequence[tuple[int, int | None]], *,
                     email: str = "fan@example.org", price: str = "10.00") -> dict[str, Any]:
        """A paid order made by pretix (it assigns the secrets). ``positions``: (item, variation)."""
        body = {"email": email, "locale": "en", "sales_channel": "web", "status": "p", "payment_provider": "manual",
                "positions": [{"item": i, "variation": v, "price": price} for i, v in positions]}
        order: dict[str, Any] = self.call("POST", f"/events/{event}/orders/", json=body)
        return order

    def event(self, event: str) -> dict[str, Any]:
        data: dict[str, Any] = self.call("GET", f"/events/{event}/")
        return data

    def cancel_order(self, event: str, code: str) -> dict[str, Any]:
        """Cancel an order as the box office would (pretix notifies its webhooks)."""
        order: dict[str, Any] = self.call("POST", f"/events/{event}/orders/{code}/mark_canceled/", json={})
        return order

    def create_webhook(self, target_url: str, actions: Sequence[str] = ("pretix.event.order.canceled",
                                                                        "pretix.event.order.placed",
                                                                        "pretix.event.order.paid",
                                                                        "pretix.event.order.changed.*")) -> int:
        body = {"target_url": target_url, "enabled": True, "all_events": True, "limit_events": [],
                "action_types": list(actions)}
        return int(self.call("POST", "/webhooks/", json=body)["id"])

    def checkins(self, event: str, code: str) -> list[dict[str, Any]]:
        """Every check-in pretix holds for an order's positions (``position`` added to each)."""
        order = self.call("GET", f"/events/{event}/orders/{code}/")
        return [{**c, "position": p["positionid"]} for p in order["positions"] for c in p.get("checkins", [])]

    def sig1_keys(self, event: str) -> list[str]:
        """The event's pretix_sig1 public keys as pretix publishes them (``valid_keys``)."""
        return list(self.event(event).get("valid_keys", {}).get("pretix_sig1", []))

    def positions(self, event: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        url: str | None = f"{self.base}/events/{event}/orderpositions/?page_size=500"
        while url:
            r = self.client.get(url)
            if r.status_code >= 400:
                raise PretixHarnessError(f"pretix GET orderpositions: HTTP {r.status_code}", r.text)
            body = r.json()
            out.extend(body["results"])
            url = body.get("next")
        return out


# --------------------------------------------------------------------------- check-in rate
async def measure_redeem_rate(url: str, organizer: str, token: str, secrets: Sequence[str], list_id: int, *,
                              concurrency: int = 1, timeout: float = 60.0) -> dict[str, Any]:
    """pretix's own online check-in, closed loop: ``concurrency`` clients, each redeeming the
    next unused secret as soon as its previous answer arrived, until every secret was tried.

    Returns flat figures: ``redeem_count`` (accepted), ``errors_count`` (refused or failed,
    with the first reasons in ``error_reasons``), ``redeem_per_s`` over the wall time, and
    latency percentiles of all requests.
    """
    endpoint = f"{url}/api/v1/organizers/{organizer}/checkinrpc/redeem/"
    pending = list(reversed(secrets))
    latencies: list[float] = []
    ok = 0
    errors: list[str] = []

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal ok
        while pending:
            secret = pending.pop()
            body = {"secret": secret, "lists": [list_id], "type": "entry", "nonce": uuid.uuid4().hex,
                    "questions_supported": False}
            t0 = time.perf_counter()
            try:
                r = await client.post(endpoint, json=body)
            except httpx.HTTPError as exc:
                errors.append(f"{type(exc).__name__}")
                continue
            latencies.append(time.perf_counter() - t0)
            if r.status_code == 201 and r.json().get("status") == "ok":
                ok += 1
            else:
                try:
                    reason = str(r.json().get("reason") or r.json())[:80]
                except ValueError:
                    reason = "not JSON (see pretix's log)"
                errors.append(f"HTTP {r.status_code}: {reason}")

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(headers={"Authorization": f"Token {token}"}, timeout=timeout, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall = time.perf_counter() - started

    def pct(p: float) -> float:
        return round(1000 * percentile(latencies, p * 100), 1)

    return {
        "concurrency": concurrency,
        "redeem_count": ok,
        "errors_count": len(errors),
        "error_reasons": sorted(set(errors))[:5],
        "wall_s": round(wall, 2),
        "redeem_per_s": round(ok / wall, 1) if wall > 0 else 0.0,
        "redeem_p50_ms": pct(0.50),
        "redeem_p99_ms": pct(0.99),
        "backend": "sqlite",
    }
