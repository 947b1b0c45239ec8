"""Run the reference controller firmware as a real process behind a pty, for the tests.

:class:`ControllerProcess` starts ``python -m firmware_bridge.firmware.main`` with timings
scaled from :data:`UNIT`, reads its JSON lines (mechanism actions and command answers) and
sends it commands on stdin (the simulated mechanism and link-fault injection).
"""
from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import TIMEOUT_S
from tests.firmware_bridge.conftest import UNIT

ROOT = Path(__file__).resolve().parents[2]

#: controller side: heartbeat 2 units, host lost after 10, ack timeout 2, 3 retries
CONTROLLER_ARGS = ["--heartbeat-ms", str(int(2 * UNIT * 1000)),
                   "--host-timeout-ms", str(int(10 * UNIT * 1000)),
                   "--ack-timeout-ms", str(int(2 * UNIT * 1000)), "--max-retries", "3",
                   "--tick-ms", "2"]


def bridge_config(port: str, **over: Any) -> dict[str, Any]:
    """Serial backend config with the same scaled timings."""
    cfg: dict[str, Any] = {"backend": "serial", "port": port, "ack_timeout_s": 2 * UNIT,
                           "max_retries": 3, "heartbeat_s": 2 * UNIT, "silence_s": 8 * UNIT,
                           "connect_timeout_s": 40 * UNIT}
    cfg.update(over)
    return cfg


class ControllerProcess:
    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None
        self.lines: list[dict[str, Any]] = []
        self._changed = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None
        self.port = ""

    async def start(self, *extra: str) -> ControllerProcess:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "firmware_bridge.firmware.main", *CONTROLLER_ARGS, *extra,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=ROOT)
        self._reader = asyncio.create_task(self._read())
        ready = await self.expect(lambda m: m.get("event") == "ready", within=TIMEOUT_S * 3)
        self.port = ready["port"]
        return self

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            async with self._changed:
                self.lines.append(json.loads(line))
                self._changed.notify_all()

    async def expect(self, pred: Callable[[dict[str, Any]], bool], *, after: int = 0,
                     within: float = TIMEOUT_S * 2) -> dict[str, Any]:
        """Wait for the first line (from index ``after``) matching ``pred``."""
        async def scan() -> dict[str, Any]:
            async with self._changed:
                while True:
                    for msg in self.lines[after:]:
                        if pred(msg):
                            return msg
                    await self._changed.wait()
        return await asyncio.wait_for(scan(), within)

    def mark(self) -> int:
        """An index to pass as ``after=`` so only later lines count."""
        return len(self.lines)

    async def send(self, command: str) -> dict[str, Any]:
        """Send one stdin command and wait for the controller to have carried it out."""
        assert self.proc is not None and self.proc.stdin is not None
        start = self.mark()
        self.proc.stdin.write(command.encode() + b"\n")
        await self.proc.stdin.drain()
        name = command.split()[0]
        return await self.expect(lambda m: m.get("cmd") == name and m["event"] in ("done", "error"),
                                 after=start)

    async def mechanism(self, action: str, *, after: int = 0, **fields: Any) -> dict[str, Any]:
        return await self.expect(
            lambda m: m.get("event") == "mechanism" and m.get("action") == action
            and all(m.get(k) == v for k, v in fields.items()), after=after)

    async def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.returncode is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), 40 * UNIT)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
