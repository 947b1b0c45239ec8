"""Fault scenarios: real hub and gate processes, broken from outside, audited through the API.

Each scenario builds a small venue from the public command line only (``gatehouse hub init``,
``hub import``, ``hub enroll-gate``, ``gatehouse gate enroll``, ``gatehouse gate run`` with a
serial scanner on a pty and a simulated turnstile, ``gatehouse hub serve``), breaks something
the way it breaks at a stadium — a full disk, a wrong clock, ``kill -9``, a flapping cable —
and then checks every promise through what an operator sees: the gate's ``/status``, the
hub's HTTP API, the gate's journal file on disk.

A scenario returns a :class:`ScenarioResult`: one :class:`Check` per promise (what was
promised, whether it held, what was measured) and its figures. Three kinds of broken promise
are counted apart, because they are what ``gatehouse bench faults`` reports:

* ``lost``: a journal entry of a gate that the hub does not hold after the fault has passed;
* ``double``: an entry the hub holds twice, or holds though no gate journaled it, or an
  admit counted twice (a spurious conflict);
* ``silent``: a failure nobody was told about (no mode cause, no 503 reason, no alert).

The tests in ``tests/faults/test_scenario_*.py`` run the scenarios with short timings; the
benchmark ``gatehouse bench faults`` runs them with the full ones (the link flapping for five
minutes). Both use this module, so what the benchmark reports is what the tests prove.
"""
from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from gatehouse.venue import ROOT, TIMEOUT_S, fetch_all, free_port

EVENT_ID = 4242
#: an admit's passage wait at the scenario gates (the least a gate's config file allows)
PASSAGE_TIMEOUT_S = 0.5


class FaultError(RuntimeError):
    """A scenario could not be set up or driven (not a broken promise: a broken harness)."""


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Check:
    """One promise of a scenario: what was promised, whether it held, what was measured."""

    promise: str
    ok: bool
    measured: str
    #: ``lost``, ``double``, ``silent`` or ``other``: which count a broken promise adds to
    kind: str = "other"


@dataclass
class ScenarioResult:
    name: str
    checks: list[Check] = field(default_factory=list)
    #: figures with their unit in the name (``drain_s``, ``backlog_peak_count``)
    figures: dict[str, Any] = field(default_factory=dict)
    lost: int = 0
    double: int = 0
    duration_s: float = 0.0

    def check(self, promise: str, ok: object, measured: object = "", kind: str = "other") -> bool:
        self.checks.append(Check(promise, bool(ok), str(measured), kind))
        return bool(ok)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    @property
    def passed(self) -> bool:
        return not self.failed and self.lost == 0 and self.double == 0

    @property
    def silent(self) -> int:
        return sum(1 for c in self.failed if c.kind == "silent")

    def report(self) -> str:
        lines = [f"scenario {self.name}: {'passed' if self.passed else 'FAILED'} in {self.duration_s:.1f} s "
                 f"(lost {self.lost}, double {self.double}, silent {self.silent})"]
        lines += [f"  {'✔' if c.ok else '✖'} {c.promise}: {c.measured}" for c in self.checks]
        lines += [f"  · {k} = {v}" for k, v in self.figures.items()]
        return "\n".join(lines)


def say(text: str) -> None:
    print(f"[faults] {text}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- helpers
def gatehouse(*args: str, env: dict[str, str] | None = None, timeout: float | None = None) -> str:
    """Run one ``gatehouse`` command to completion; its stdout, or :class:`FaultError` with its stderr."""
    r = subprocess.run([sys.executable, "-m", "gatehouse", *args], cwd=ROOT, capture_output=True, text=True,
                       timeout=timeout or TIMEOUT_S * 6, env={**os.environ, **(env or {})})
    if r.returncode != 0:
        raise FaultError(f"gatehouse {' '.join(args[:3])} … exited {r.returncode}: {r.stderr.strip()[-2000:]}")
    return r.stdout


async def agatehouse(*args: str, **kw: Any) -> str:
    return await asyncio.to_thread(gatehouse, *args, **kw)


async def wait_until(condition: Callable[[], Awaitable[Any] | Any], what: str, timeout: float = TIMEOUT_S * 2,
                     step: float = 0.05) -> Any:
    """Poll ``condition`` (sync or async) until it gives something truthy; :class:`TimeoutError` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
            if asyncio.iscoroutine(value):
                value = await value
        except (httpx.HTTPError, OSError, ValueError, KeyError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(step)


# --------------------------------------------------------------------------- a small filesystem
@dataclass
class SmallDisk:
    """A directory whose free space the scenario controls: a tmpfs of ``size_mb`` mounted
    there (as root), or else the files of one process capped with ``RLIMIT_FSIZE``.

    :meth:`fill` takes every free byte (a filler file written until ``ENOSPC``);
    :meth:`free` gives it back."""

    path: Path
    size_mb: int
    method: str = ""
    _filler: Path | None = None
    _pid: int | None = None

    def mount(self) -> SmallDisk:
        self.path.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0 and shutil.which("mount"):
            r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size_mb}m,mode=0700", "tmpfs",
                                str(self.path)], capture_output=True, text=True)
            if r.returncode == 0:
                self.method = "tmpfs"
                return self
            say(f"cannot mount a tmpfs ({r.stderr.strip()}); capping file sizes with RLIMIT_FSIZE instead")
        self.method = "rlimit_fsize"
        return self

    def attach(self, pid: int) -> None:
        """The process whose file sizes :meth:`fill` caps (RLIMIT_FSIZE fallback only)."""
        self._pid = pid

    def fill(self) -> int:
        """Take every free byte; returns the bytes taken."""
        if self.method == "tmpfs":
            self._filler = self.path / "filler.bin"
            taken = 0
            chunk = b"\0" * 65536
            with open(self._filler, "wb", buffering=0) as fh:
                while True:
                    try:
                        taken += fh.write(chunk)
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break
                # the last partial pages
                for size in (4096, 512, 1):
                    with contextlib.suppress(OSError):
                        while True:
                            taken += fh.write(b"\0" * size)
            return taken
        if self._pid is None:
            raise FaultError("RLIMIT_FSIZE needs the process to cap (attach it first)")
        largest = max((p.stat().st_size for p in self.path.rglob("*") if p.is_file()), default=0)
        resource.prlimit(self._pid, resource.RLIMIT_FSIZE, (largest, largest))
        return 0

    def free(self) -> None:
        if self._filler is not None:
            self._filler.unlink(missing_ok=True)
            self._filler = None
        if self.method == "rlimit_fsize" and self._pid is not None:
            with contextlib.suppress(ProcessLookupError):
                resource.prlimit(self._pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

    def free_mb(self) -> float:
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize / 1e6

    def unmount(self) -> None:
        if self.method != "tmpfs":
            return
        for _ in range(50):
            if subprocess.run(["umount", str(self.path)], capture_output=True).returncode == 0:
                return
            time.sleep(0.1)
        subprocess.run(["umount", "-l", str(self.path)], capture_output=True)


@contextlib.contextmanager
def small_disk(path: Path, size_mb: int) -> Iterator[SmallDisk]:
    disk = SmallDisk(path, size_mb).mount()
    try:
        yield disk
    finally:
        disk.free()
        disk.unmount()


# --------------------------------------------------------------------------- a shifted clock
def faketime_library() -> str | None:
    """Debian's libfaketime (package ``faketime``), or None if it is not installed."""
    import glob

    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1") + glob.glob("/usr/lib/faketime/libfaketime.so.1"))
    return found[0] if found else None


def shifted_clock_env(shift_s: float) -> dict[str, str]:
    """Environment that runs a process with its wall clock ``shift_s`` seconds off (libfaketime,
    preloaded into the process itself — the ``faketime`` wrapper forks, and a signal sent to it
    would not reach the gate). The monotonic clock stays true, as on a Pi whose date is wrong."""
    lib = faketime_library()
    if lib is None:
        raise FaultError("libfaketime is not installed: apt-get install faketime (./run test installs it)")
    return {"LD_PRELOAD": lib, "FAKETIME": f"{shift_s:+.0f}", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


# --------------------------------------------------------------------------- the hub process
def tickets_csv(count: int, zone: str = "North", prefix: str = "N", extra: Sequence[str] = ()) -> str:
    header = "number,zone,holder,seat,valid_from,valid_until,rotating"
    rows = [f"{prefix}{i:05d},{zone},Fan {i},{zone[:1]}-{i // 30}-{i % 30},,," for i in range(1, count + 1)]
    return "\n".join([header, *rows, *extra]) + "\n"


@dataclass
class Hub:
    """``gatehouse hub serve`` as a child process; its log is kept outside its data directory
    (a full data disk must not also take the log)."""

    data: Path
    port: int
    admin: str
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @classmethod
    async def create(cls, root: Path, *, tickets: int = 200, zones: Sequence[str] = ("North",),
                     data: Path | None = None, extra_rows: Sequence[str] = ()) -> Hub:
        data = data or root / "hub"
        now = time.time()
        out = await agatehouse("hub", "init", "--data", str(data), "--event", str(EVENT_ID), "--name", "Fault cup",
                               "--valid-from", str(now - 3600), "--valid-until", str(now + 86_400))
        hub = cls(data, free_port(), out.strip().splitlines()[-1].strip(), root / "hub.log")
        for zone in zones:
            await agatehouse("hub", "zone", zone, "--data", str(data))
        csv = root / "tickets.csv"
        csv.write_text(tickets_csv(tickets, zones[0], extra=extra_rows), encoding="utf-8")
        await agatehouse("hub", "import", str(csv), "--data", str(data))
        return hub

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, timeout: float = TIMEOUT_S) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, headers={"Authorization": f"Bearer {self.admin}"},
                                 timeout=timeout)

    async def start(self) -> float:
        """Start serving; returns the seconds until ``/healthz`` answered."""
        t0 = time.monotonic()
        await asyncio.to_thread(self._spawn)
        self.starts += 1

        async def up() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise FaultError(f"the hub exited {self.proc.returncode}: {self.log_tail()}")
            async with httpx.AsyncClient(timeout=2) as c:
                return (await c.get(self.url + "/healthz")).status_code == 200

        try:
            await wait_until(up, "the hub to serve", TIMEOUT_S * 3)
        except TimeoutError:
            self.kill()
            raise FaultError(f"the hub did not start: {self.log_tail()}") from None
        return time.monotonic() - t0

    def _spawn(self) -> None:
        with open(self.log, "ab") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen([sys.executable, "-m", "gatehouse", "hub", "serve", "--data", str(self.data),
                                          "--port", str(self.port)], cwd=ROOT, stdout=log, stderr=log)

    def kill(self) -> None:
        """SIGKILL, exactly like a crash (no clean shutdown, nothing flushed)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        (self.data / "hub.pid").unlink(missing_ok=True)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    async def tickets(self) -> list[dict[str, Any]]:
        async with self.client() as c:
            return await fetch_all(c, "/api/v1/tickets", {"limit": 1000})

    async def credentials(self, numbers: Sequence[str]) -> dict[str, str]:
        """The signed QR text of each ticket (what a fan's phone or print-out shows)."""
        out: dict[str, str] = {}
        async with self.client() as c:
            for n in numbers:
                r = await c.get(f"/api/v1/tickets/{n}/credential")
                r.raise_for_status()
                out[n] = str(r.json()["text"])
        return out

    async def validations(self, gate_id: str) -> list[dict[str, Any]]:
        async with self.client() as c:
            return await fetch_all(c, "/api/v1/validations", {"gate_id": gate_id, "limit": 10_000})


# --------------------------------------------------------------------------- a gate process
@dataclass
class Gate:
    """``gatehouse gate run`` with a serial scanner on a pty and a simulated turnstile."""

    name: str
    gate_id: str
    data: Path
    config: Path
    port: int
    log: Path
    #: extra environment for the gate process (e.g. :func:`shifted_clock_env`)
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    scanner_fd: int | None = None
    _slave: int | None = None

    @classmethod
    async def create(cls, root: Path, hub: Hub, name: str, *, zones: str = "North", data: Path | None = None,
                     hub_url: str | None = None,
                     env: dict[str, str] | None = None) -> Gate:
        """Register the gate at the hub (its API), enrol it (``gatehouse gate enroll``) and write its config."""
        data = data or root / name
        async with hub.client() as c:
            zone_ids = {z["name"]: z["zone_id"] for z in (await c.get("/api/v1/zones")).json()}
            got = await c.post("/api/v1/gates", json={"name": name, "zones": [zone_ids[z] for z in zones.split(",")]})
            got.raise_for_status()
            token = str(got.json()["enrolment_token"])
        await agatehouse("gate", "enroll", "--hub", hub_url or hub.url, f"--token={token}", "--data-dir", str(data))
        gate_id = json.loads((data / "gate-credentials.json").read_text())["gate_id"]
        master, slave = os.openpty()
        port = free_port()
        config = root / f"{name}.toml"
        config.write_text(
            f'gate_id = "{gate_id}"\ndata_dir = "{data}"\nstatus_port = {port}\n'
            f"passage_timeout_s = {PASSAGE_TIMEOUT_S}\n"
            + (f'hub_url = "{hub_url}"\n' if hub_url else "")
            + f'[scanner]\nbackend = "serial"\nport = "{os.ttyname(slave)}"\n[turnstile]\nbackend = "sim"\n',
            encoding="utf-8")
        return cls(name, gate_id, data, config, port, root / f"{name}.log", dict(env or {}),
                   scanner_fd=master, _slave=slave)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self) -> None:
        with open(self.log, "ab") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen([sys.executable, "-m", "gatehouse", "gate", "run", "--config",
                                          str(self.config)], cwd=ROOT, stdout=log, stderr=log,
                                         env={**os.environ, **self.env})

    async def start(self) -> None:
        await asyncio.to_thread(self._spawn)

        async def up() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise FaultError(f"gate {self.name} exited {self.proc.returncode}: {self.log_tail()}")
            return bool(await self.status())

        await wait_until(up, f"gate {self.name}'s status server", TIMEOUT_S * 3)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(TIMEOUT_S * 2)
            except subprocess.TimeoutExpired:
                self.kill()

    def close(self) -> None:
        self.stop()
        for fd in (self.scanner_fd, self._slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.scanner_fd = self._slave = None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    async def status(self) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=TIMEOUT_S) as c:
            r = await c.get(self.url + "/status")
            r.raise_for_status()
            return dict(r.json())

    async def wait_mode(self, mode: str, timeout: float = TIMEOUT_S * 2) -> dict[str, Any]:
        return dict(await wait_until(lambda: self._in_mode(mode), f"{self.name} {mode}", timeout))

    async def _in_mode(self, mode: str) -> dict[str, Any] | None:
        s = await self.status()
        return s if s["mode"] == mode else None

    @staticmethod
    def decided(status: dict[str, Any]) -> int:
        """Scans the lane has decided, journaled or not."""
        lane = status.get("lane", {})
        return int(lane.get("scans", 0)) + int(lane.get("unjournaled", 0))

    async def scan(self, code: str) -> dict[str, Any]:
        """A code read by the serial scanner; returns the decision as the staff screen shows it."""
        assert self.scanner_fd is not None
        before = self.decided(await self.status())
        os.write(self.scanner_fd, code.encode() + b"\r")
        s = await wait_until(lambda: self._decided_after(before), f"a decision at {self.name}", TIMEOUT_S * 2,
                             step=0.02)
        return dict(s["recent"][0])

    async def _decided_after(self, before: int) -> dict[str, Any] | None:
        s = await self.status()
        return s if self.decided(s) > before and s["recent"] else None

    def journal(self) -> list[dict[str, Any]]:
        """Every entry of the gate's journal file, read as an operator could (read-only)."""
        path = self.data / "journal.sqlite3"
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            cols = ("seq", "nonce", "at", "kind", "reason", "ticket_number", "passage", "ref_seq", "mode", "detail")
            got = conn.execute(f"SELECT {', '.join(cols)} FROM journal ORDER BY seq").fetchall()
        finally:
            conn.close()
        return [dict(zip(cols, r, strict=True)) for r in got]

    async def drained(self, timeout: float = TIMEOUT_S * 3) -> float:
        """Wait until the hub has acknowledged the whole journal; returns the seconds it took."""
        t0 = time.monotonic()

        async def done() -> bool:
            s = await self.status()
            return bool(s["hub_connected"] and s["backlog"] == 0)

        await wait_until(done, f"{self.name} drained", timeout)
        return time.monotonic() - t0


ADMITS = ("ADMIT", "ADMIT_REENTRY", "ADMIT_ON_SIGNATURE")


@dataclass(frozen=True)
class Audit:
    journal_count: int
    hub_count: int
    lost: list[int]
    doubled: list[int]
    admits_journaled: int
    admits_at_hub: int


async def audit(hub: Hub, gate: Gate) -> Audit:
    """The gate's journal against what the hub holds of it: every (seq, nonce) exactly once."""
    mine = {(e["seq"], e["nonce"]) for e in await asyncio.to_thread(gate.journal)}
    held_rows = await hub.validations(gate.gate_id)
    held = [(int(v["seq"]), str(v["nonce"])) for v in held_rows]
    lost = sorted(s for s, n in mine - set(held))
    seen: set[tuple[int, str]] = set()
    doubled = []
    for item in held:
        if item in seen or item not in mine:
            doubled.append(item[0])
        seen.add(item)
    journal = await asyncio.to_thread(gate.journal)
    return Audit(len(mine), len(held), lost, sorted(doubled),
                 sum(1 for e in journal if e["kind"] in ("scan", "manual") and e["reason"] in ADMITS),
                 sum(1 for v in held_rows if v["kind"] in ("scan", "manual") and v["reason"] in ADMITS))


def add_audit(result: ScenarioResult, a: Audit, gate: Gate) -> None:
    result.lost += len(a.lost)
    result.double += len(a.doubled)
    result.check(f"every journal entry of {gate.name} reached the hub", not a.lost,
                 f"{a.journal_count} journaled, {a.hub_count} at the hub, missing seqs {a.lost[:10]}", "lost")
    result.check(f"no entry of {gate.name} held twice or invented", not a.doubled,
                 f"doubled seqs {a.doubled[:10]}", "double")
    result.check(f"{gate.name}'s admits counted once at the hub", a.admits_at_hub == a.admits_journaled,
                 f"{a.admits_journaled} admits journaled, {a.admits_at_hub} at the hub", "double")


async def open_conflicts(hub: Hub) -> list[dict[str, Any]]:
    async with hub.client() as c:
        return await fetch_all(c, "/api/v1/conflicts", {"open": "true"})


# --------------------------------------------------------------------------- running scenarios
@dataclass(frozen=True)
class Params:
    """Timings and sizes; the tests use the defaults, the benchmark the full ones."""

    #: link flapping: how long, and the cut/heal intervals (seconds, drawn uniformly)
    flap_s: float = 45.0
    cut_s: tuple[float, float] = (0.5, 2.5)
    heal_s: tuple[float, float] = (1.0, 4.0)
    #: scans per second at each flapping gate
    scan_rate: float = 3.0
    #: kill -9 during group commit: lightweight gates and entries each
    burst_gates: int = 40
    burst_entries: int = 150
    kills: int = 2
    #: kill -9 during a backup: tickets in the hub (sets the database size)
    backup_tickets: int = 60_000
    #: clock skew of the two skewed gates (seconds)
    skew_s: float = 300.0
    seed: int = 2026


Scenario = Callable[[Path, Params], Awaitable[ScenarioResult]]
