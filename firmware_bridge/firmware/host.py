"""Run the reference controller's logic on a host, behind a real pseudo-terminal pair.

The controller owns the pty's master side; the bridge opens the slave path with pyserial,
exactly as it would open ``/dev/ttyACM0``. The mechanism is simulated: stdin takes one
command per line to play the outside world and to inject link faults; stdout prints one JSON
object per line (first ``{"event": "ready", "port": ...}``, then every mechanism action and
an ``{"event": "done", ...}`` after each command).

Commands: ``rotate in|out``, ``fire open|close``, ``tamper [text]``, ``fault CODE [text]``,
``manual in|out``, ``reboot``, ``hang``, ``resume``, ``drop_tx N`` (lose the next N bytes
sent), ``corrupt_tx N`` (flip a bit in each of the next N frames sent), ``drop_rx N`` (lose
the next N bytes received), ``garbage HEX`` (send raw bytes), ``state``, ``quit``.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import select
import sys
import time
import tty
from typing import Any

from firmware_bridge import frames
from firmware_bridge.firmware.main import Controller, Mechanism

DIRS = {"in": frames.DIR_IN, "out": frames.DIR_OUT}
DIR_NAMES = {v: k for k, v in DIRS.items()}
IND_NAMES = {frames.IND_IDLE: "idle", frames.IND_GREEN: "green", frames.IND_RED: "red",
             frames.IND_FAULT: "fault", frames.IND_EMERGENCY: "emergency"}


def _now_ms() -> int:
    return int(time.monotonic() * 1000)


def _say(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class SimMechanism(Mechanism):
    """Prints what a real mechanism would do, and keeps the physical state across reboots."""

    def __init__(self) -> None:
        self.released: str | None = None
        self.free = False
        self.fire_open = False

    def release(self, direction: int) -> None:
        self.released = DIR_NAMES[direction]
        _say({"event": "mechanism", "action": "release", "direction": self.released})

    def lock(self) -> None:
        self.released = None
        _say({"event": "mechanism", "action": "lock"})

    def free_egress(self, on: bool) -> None:
        self.free = bool(on)
        _say({"event": "mechanism", "action": "free_egress", "on": self.free})

    def indicate(self, code: int, text: str) -> None:
        _say({"event": "mechanism", "action": "indicate", "signal": IND_NAMES.get(code, str(code)),
              "text": text})


class HostController:
    """The select loop: pty master <-> :class:`Controller`, stdin commands, fault injection."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.mech = SimMechanism()
        self.mech.fire_open = args.fire_open
        self.ctl = self._boot()
        self.hung = False
        self.drop_tx = 0
        self.corrupt_tx = 0
        self.drop_rx = 0
        self.boots = 1

    def _boot(self) -> Controller:
        return Controller(
            self.mech, random.getrandbits(16), _now_ms(), heartbeat_ms=self.args.heartbeat_ms,
            host_timeout_ms=self.args.host_timeout_ms, ack_timeout_ms=self.args.ack_timeout_ms,
            max_retries=self.args.max_retries, fire_open=self.mech.fire_open)

    def run(self) -> int:
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no line discipline: a clean byte pipe like a UART
        os.set_blocking(master, False)
        _say({"event": "ready", "port": os.ttyname(slave), "boot_id": self.ctl.boot_id})
        stdin = sys.stdin.fileno()
        tick = self.args.tick_ms / 1000.0
        pending_in = b""
        try:
            while True:
                readable, _, _ = select.select([master, stdin], [], [], tick)
                now = _now_ms()
                if master in readable:
                    try:
                        data = os.read(master, 4096)
                    except (BlockingIOError, OSError):
                        data = b""
                    if data and not self.hung:
                        data = self._lose_rx(data)
                        self.ctl.receive(data, now)
                if stdin in readable:
                    chunk = os.read(stdin, 4096)
                    if not chunk:
                        return 0  # the test (or operator) closed stdin: power off
                    pending_in += chunk
                    while b"\n" in pending_in:
                        line, pending_in = pending_in.split(b"\n", 1)
                        if self._command(line.decode("utf-8", "replace").split(), now) == "quit":
                            return 0
                if not self.hung:
                    self.ctl.tick(now)
                    out = self.ctl.take_output()
                    if out:
                        self._write(master, out)
        finally:
            os.close(master)
            os.close(slave)

    def _lose_rx(self, data: bytes) -> bytes:
        if self.drop_rx:
            cut = min(self.drop_rx, len(data))
            self.drop_rx -= cut
            data = data[cut:]
        return data

    def _write(self, master: int, out: bytes) -> None:
        if self.corrupt_tx and len(out) > 3:
            b = bytearray(out)
            b[3] ^= 0x10  # the frame's SEQ/TYPE area: the CRC must catch it
            out = bytes(b)
            self.corrupt_tx -= 1
        if self.drop_tx:
            cut = min(self.drop_tx, len(out) - 1)
            if cut > 0:
                out = out[:1] + out[1 + cut:]  # keep START, lose the bytes after it
                self.drop_tx -= cut
        try:
            os.write(master, out)
        except (BlockingIOError, OSError):
            pass  # nobody reading: a UART would just lose it too

    def _command(self, words: list[str], now: int) -> str:
        if not words:
            return ""
        cmd, rest = words[0], words[1:]
        result: dict[str, Any] = {"event": "done", "cmd": cmd}
        try:
            if cmd == "rotate":
                self.ctl.rotation(DIRS[rest[0]], now)
            elif cmd == "fire":
                self.mech.fire_open = rest[0] == "open"
                self.ctl.fire_contact(self.mech.fire_open, now)
            elif cmd == "tamper":
                self.ctl.tamper(" ".join(rest) or "cabinet_open", now)
            elif cmd == "fault":
                self.ctl.fault(int(rest[0]), " ".join(rest[1:]), now)
            elif cmd == "manual":
                self.ctl.manual_release(DIRS[rest[0]], now)
            elif cmd == "reboot":
                self.boots += 1
                self.ctl = self._boot()
                result["boot_id"] = self.ctl.boot_id
            elif cmd == "hang":
                self.hung = True
            elif cmd == "resume":
                self.hung = False
            elif cmd == "drop_tx":
                self.drop_tx += int(rest[0])
            elif cmd == "corrupt_tx":
                self.corrupt_tx += int(rest[0])
            elif cmd == "drop_rx":
                self.drop_rx += int(rest[0])
            elif cmd == "garbage":
                self.ctl.out.extend(bytes.fromhex("".join(rest)))
            elif cmd == "state":
                result.update(
                    boot_id=self.ctl.boot_id, boots=self.boots, released=self.mech.released,
                    free_egress=self.mech.free, emergency=self.ctl.emergency,
                    fire_open=self.ctl.fire_open, host_lost=self.ctl.host_lost,
                    events_dropped=self.ctl.events_dropped, **self.ctl.decoder.stats())
            elif cmd == "quit":
                return "quit"
            else:
                result = {"event": "error", "cmd": cmd, "detail": "unknown command"}
        except (IndexError, KeyError, ValueError) as exc:
            result = {"event": "error", "cmd": cmd, "detail": f"bad arguments: {exc}"}
        _say(result)
        return cmd


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pty", action="store_true", default=True,
                        help="serve on a new pseudo-terminal and print its path (the only mode on a host)")
    parser.add_argument("--heartbeat-ms", type=int, default=500)
    parser.add_argument("--host-timeout-ms", type=int, default=2000,
                        help="lock and show FAULT when the host is silent this long")
    parser.add_argument("--ack-timeout-ms", type=int, default=200)
    parser.add_argument("--max-retries", type=int, default=3)
    parser.add_argument("--tick-ms", type=int, default=5)
    parser.add_argument("--fire-open", action="store_true", help="start with the fire contact open")


def run_host(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gatehouse turnstile controller", description=__doc__)
    add_arguments(parser)
    return HostController(parser.parse_args(argv)).run()
