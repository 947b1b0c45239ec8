"""A real hub process and a real gate agent process, set up and driven only as an operator
would: the ``gatehouse`` CLI, HTTP, the scanner's serial line (a pty) and the files on disk.

Used by the tests of the staff screen's hardening, the gate's files and its log.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from gatehouse.venue import TIMEOUT_S, free_port

ROOT = Path(__file__).resolve().parents[2]
TICKETS = 30


def gatehouse(*args: str, umask: int | None = None) -> subprocess.CompletedProcess[str]:
    """Run one ``gatehouse`` command to completion; fail the test with its stderr if it fails."""
    result = subprocess.run([sys.executable, "-m", "gatehouse", *args], cwd=ROOT, capture_output=True, text=True,
                            timeout=TIMEOUT_S * 3, preexec_fn=_umask(umask))
    assert result.returncode == 0, f"gatehouse {' '.join(args)} failed:\n{result.stderr[-3000:]}"
    return result


def _umask(value: int | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` that gives the child this umask (None: inherit ours)."""
    if value is None:
        return None

    def set_umask() -> None:
        os.umask(value)

    return set_umask


def wait_for(condition: Callable[[], Any], what: str, timeout: float = TIMEOUT_S * 2) -> Any:
    """Poll ``condition`` until it gives something truthy (the event has happened)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except (httpx.HTTPError, OSError, ValueError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


@dataclass
class Hub:
    data: Path
    port: int
    admin: str
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str) -> str:
        return gatehouse("hub", *args, "--data", str(self.data)).stdout

    def start(self) -> None:
        with open(self.data.parent / "hub.log", "ab") as log:  # the child keeps its own copy
            self.proc = subprocess.Popen([sys.executable, "-m", "gatehouse", "hub", "serve", "--data",
                                          str(self.data), "--port", str(self.port)], cwd=ROOT, stdout=log, stderr=log)
        wait_for(lambda: httpx.get(self.url + "/healthz", timeout=2).status_code == 200, "the hub to serve")

    def stop(self) -> None:
        stop_process(self.proc)


def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(TIMEOUT_S * 2)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start_hub(root: Path) -> Hub:
    """``hub init``, one zone, TICKETS tickets N0001…, then ``hub serve`` on a free port."""
    data = root / "hub"
    now = time.time()
    out = gatehouse("hub", "init", "--data", str(data), "--event", "4242", "--name", "Outside cup",
                    "--valid-from", str(now - 3600), "--valid-until", str(now + 86_400)).stdout
    hub = Hub(data, free_port(), out.strip().splitlines()[0].strip())
    hub.cli("zone", "North")
    csv = root / "tickets.csv"
    csv.write_text("number,zone,holder,seat\n" + "".join(
        f"N{i:04d},North,Fan {i},N-{i}\n" for i in range(1, TICKETS + 1)), encoding="utf-8")
    hub.cli("import", str(csv))
    return hub


@dataclass
class GateProcess:
    """``gatehouse -vv gate run`` with a serial scanner on a pty and a simulated turnstile."""

    root: Path
    data: Path
    config: Path
    port: int
    log: Path
    gate_id: str = ""
    umask: int | None = None
    proc: subprocess.Popen[bytes] | None = None
    scanner_fd: int | None = None
    _pty_keep: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.log, "ab") as log:  # the child keeps its own copy
            self.proc = subprocess.Popen([sys.executable, "-m", "gatehouse", "-vv", "gate", "run", "--config",
                                          str(self.config)], cwd=ROOT, stdout=log, stderr=log,
                                         preexec_fn=_umask(self.umask))
        wait_for(lambda: self.proc is not None and (self.proc.poll() is None or self._died())
                 and httpx.get(self.url + "/status", timeout=2).status_code == 200, "the gate's status server")

    def _died(self) -> bool:
        raise AssertionError(f"gate exited:\n{self.log.read_text(errors='replace')[-3000:]}")

    def stop(self) -> None:
        stop_process(self.proc)
        for fd in [*self._pty_keep, *([self.scanner_fd] if self.scanner_fd is not None else [])]:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._pty_keep.clear()
        self.scanner_fd = None

    def status(self) -> dict[str, Any]:
        r = httpx.get(self.url + "/status", timeout=TIMEOUT_S)
        r.raise_for_status()
        return dict(r.json())

    def session(self) -> str:
        """The screen session as a remote screen gets it: the owner-only token file."""
        return (self.data / "staff-screen.token").read_text(encoding="utf-8").strip()

    def api(self, headers: dict[str, str] | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=TIMEOUT_S, headers=headers or {})

    def scan(self, code: str) -> None:
        """A code read by the serial scanner: its bytes and a CR on the line."""
        assert self.scanner_fd is not None
        os.write(self.scanner_fd, code.encode() + b"\r")

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def mode_lines(self) -> list[tuple[str, str]]:
        """(level, "OLD → NEW (cause)") for each mode transition the gate logged."""
        return [(m.group(1), m.group(2)) for m in
                re.finditer(r"^\S+ \S+ (\w+) .*?gate_agent\.agent: mode (.*)$", self.log_text(), re.M)]


def make_gate(root: Path, *, name: str = "gate", hub: Hub | None = None, umask: int | None = None,
              gate_id: str = "solo-1") -> GateProcess:
    """Enrol (if ``hub``) and configure a gate in ``root/name``; not started."""
    data = root / name
    if hub is not None:
        token = hub.cli("enroll-gate", f"{name} one", "--zones", "North").strip().splitlines()[-1].strip()
        gatehouse("gate", "enroll", "--hub", hub.url, "--token", token, "--data-dir", str(data), umask=umask)
        gate_id = json.loads((data / "gate-credentials.json").read_text())["gate_id"]
    data.mkdir(parents=True, exist_ok=True)
    master, slave = os.openpty()
    port = free_port()
    config = root / f"{name}.toml"
    config.write_text(
        f'gate_id = "{gate_id}"\ndata_dir = "{data}"\nstatus_port = {port}\npassage_timeout_s = 0.5\n'
        f'[scanner]\nbackend = "serial"\nport = "{os.ttyname(slave)}"\n'
        '[turnstile]\nbackend = "sim"\n', encoding="utf-8")
    gate = GateProcess(root, data, config, port, root / f"{name}.log", gate_id=gate_id, umask=umask)
    gate.scanner_fd = master
    gate._pty_keep.append(slave)  # the slave stays open so the line does not hang up between opens
    return gate


@contextlib.contextmanager
def running(*things: Hub | GateProcess) -> Iterator[None]:
    try:
        yield
    finally:
        for thing in reversed(things):
            thing.stop()
