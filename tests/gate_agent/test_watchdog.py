"""The systemd watchdog over a real notify socket (a unix datagram socket, as systemd makes).

The pings come from the agent's event loop: they arrive while it runs, stop while the loop is
hung (so systemd restarts the agent within ``WatchdogSec``) and stop when a lane task has died.
"""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gate_agent.agent import GateAgent
from gate_agent.config import GateConfig
from gate_agent.watchdog import SystemdNotifier, keepalive
from gatehouse.venue import ROOT, eventually
from tests.conftest import TIMEOUT_S

INTERVAL_S = 0.4  # WatchdogSec in the test: pings every 0.2 s


class NotifySocket:
    """What systemd listens on: every datagram with the time it arrived."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.05)
        self.messages: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:  # a thread: it must keep reading while the agent's loop is hung
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.messages.append((time.monotonic(), data.decode()))

    def pings(self, since: float = 0.0) -> list[float]:
        return [t for t, m in list(self.messages) if m == "WATCHDOG=1" and t >= since]

    def said(self, prefix: str) -> bool:
        return any(m.startswith(prefix) for _, m in list(self.messages))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1)
        self.sock.close()


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[NotifySocket]:
    s = NotifySocket(tmp_path / "notify.sock")
    yield s
    s.close()


def wait_for(condition, timeout: float = TIMEOUT_S, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_gate_run_reports_ready_pings_the_watchdog_and_stops_pinging_while_hung(
        notify: NotifySocket, tmp_path: Path) -> None:
    config = tmp_path / "gate.toml"
    config.write_text(f'gate_id = "wd-1"\ndata_dir = "{tmp_path / "data"}"\nstatus_port = 0\n')
    env = {**os.environ, "NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": str(int(INTERVAL_S * 1e6))}
    proc = subprocess.Popen([sys.executable, "-m", "gatehouse", "gate", "run", "--config", str(config)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: notify.said("READY=1"), TIMEOUT_S * 3, "READY=1")
        assert any("STATUS=gate wd-1 running" in m for _, m in notify.messages)
        ready_at = time.monotonic()
        wait_for(lambda: len(notify.pings(ready_at)) >= 3, what="three watchdog pings")
        # Hang the whole process (as a stuck loop would be, seen from systemd): no pings.
        os.kill(proc.pid, signal.SIGSTOP)
        stopped_at = time.monotonic()
        time.sleep(INTERVAL_S * 3)
        resumed_at = time.monotonic()
        os.kill(proc.pid, signal.SIGCONT)
        late = [t for t in notify.pings(stopped_at + 0.05) if t < resumed_at]
        assert late == [], "a hung agent must not ping the watchdog"
        wait_for(lambda: len(notify.pings(resumed_at)) >= 2, what="pings after the hang")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(TIMEOUT_S * 2) == 0
        assert notify.said("STOPPING=1")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_pings_come_from_the_event_loop_and_stop_while_it_is_blocked(
        notify: NotifySocket, tmp_path: Path) -> None:
    cfg = GateConfig(gate_id="wd-2", data_dir=tmp_path / "g", status_port=0)
    agent = GateAgent(cfg, serve_status=False)
    agent.notifier = SystemdNotifier({"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": str(int(INTERVAL_S * 1e6))})
    await agent.start()
    try:
        await eventually(lambda: len(notify.pings()) >= 2, what="pings from the running loop")
        blocked_at = time.monotonic()
        time.sleep(INTERVAL_S * 3)  # noqa: ASYNC251 - the point: a blocking call hangs the loop
        unblocked_at = time.monotonic()
        await eventually(lambda: len(notify.pings(unblocked_at)) >= 2, what="pings after the block")
        during = [t for t in notify.pings(blocked_at + 0.05) if t < unblocked_at]
        assert during == []
        assert any(m.startswith("STATUS=MANIFEST") for _, m in notify.messages)  # never synced: manifest mode
    finally:
        await agent.stop()


async def test_pings_are_withheld_while_a_lane_task_is_dead(notify: NotifySocket) -> None:
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "100000"})
    alive = True
    task = asyncio.create_task(keepalive(notifier, healthy=lambda: alive))
    try:
        await eventually(lambda: len(notify.pings()) >= 2, what="pings while healthy")
        alive = False
        await asyncio.sleep(0.06)  # one period in flight may still land
        dead_at = time.monotonic()
        await asyncio.sleep(0.3)
        assert notify.pings(dead_at) == []
    finally:
        task.cancel()
        notifier.close()


def test_without_systemd_nothing_is_sent_and_the_watchdog_is_off() -> None:
    notifier = SystemdNotifier({})
    assert not notifier.enabled and notifier.watchdog_s is None and notifier.notify("READY=1") is False
    other = SystemdNotifier({"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "5000000", "WATCHDOG_PID": "1"})
    assert other.watchdog_s is None  # the watchdog is meant for another process
