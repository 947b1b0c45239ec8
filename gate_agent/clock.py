"""The gate's clock: decisions and the journal run on the hub's time.

A Raspberry Pi has no battery-backed clock: it boots with the time it last saved and relies
on NTP to correct it, and a gate on an isolated venue network may never reach an NTP server.
A gate minutes off would refuse every rotating code (they change every 15 s and are checked
against the fan's phone, which has network time), admit tickets before their window opens or
after it closes, and stamp its journal so that the hub's per-minute reports put its entries
in the wrong minute — or outside the report window altogether.

So the gate measures its clock against the hub's at every connection (the hub's time in its
``hello_reply`` against the middle of the hello's round trip, as NTP does; error at most half
the round trip) and from then on decides and journals on ``system time + offset``. The hub
measures the same skew from the hello, records it per gate and raises an alert, because a
wrong clock means the gate's time sync is broken and should be fixed.

The offset is kept in ``DATA/clock.json`` with the kernel's boot id: a gate agent restarted
while the hub is unreachable goes on with the correction, but after a reboot (when the
system clock has been set anew) it starts from the system clock until it hears the hub.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CLOCK_FILE = "clock.json"
#: an offset smaller than this is noise: the gate keeps its own clock (NTP does better)
TOLERANCE_S = 0.5
#: a measurement over a round trip longer than this is too coarse to use
MAX_RTT_S = 2.0
#: a change of the offset by more than this is journaled (and so reaches the hub's alerts)
NOTE_CHANGE_S = 1.0


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


class GateClock:
    """``clock()`` is the gate's time for decisions and the journal: the system clock plus the
    offset measured against the hub (0 until measured, or when within :data:`TOLERANCE_S`)."""

    def __init__(self, system: Callable[[], float] = time.time, path: Path | None = None) -> None:
        self.system = system
        self.path = path
        self.offset_s = 0.0
        self.rtt_s: float | None = None
        self.measured_at: float | None = None
        self.measured_offset_s: float | None = None

    def __call__(self) -> float:
        return self.system() + self.offset_s

    def load(self) -> None:
        """Take the offset kept by an earlier run of this boot (see the module docstring)."""
        if self.path is None:
            return
        try:
            d = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.warning("clock offset file %s unreadable (%s); using the system clock", self.path, exc)
            return
        if d.get("boot_id") != boot_id() or not isinstance(d.get("offset_s"), int | float):
            return
        self.offset_s = float(d["offset_s"])
        self.measured_at = d.get("measured_at")
        self.measured_offset_s = self.offset_s
        if self.offset_s:
            log.warning("clock: going on with the offset %+.1f s measured against the hub before this restart",
                        self.offset_s)

    def measured(self, offset_s: float, rtt_s: float) -> str | None:
        """Take a measurement (hub clock minus system clock). Returns a sentence for the journal
        when the correction changed notably, else None."""
        if rtt_s > MAX_RTT_S:
            log.info("clock: measurement over a %.1f s round trip not used", rtt_s)
            return None
        self.rtt_s, self.measured_at, self.measured_offset_s = rtt_s, self(), offset_s
        new = offset_s if abs(offset_s) >= TOLERANCE_S else 0.0
        old, self.offset_s = self.offset_s, new
        self._save()
        if abs(new - old) < NOTE_CHANGE_S:
            return None
        if new == 0.0:
            return f"the gate's clock agrees with the hub's again ({offset_s:+.2f} s); deciding on its own clock"
        way = "behind" if new > 0 else "ahead of"
        return (f"the gate's clock is {abs(new):.1f} s {way} the hub's (±{rtt_s / 2:.2f} s): deciding and recording"
                f" on hub time; fix the gate's time sync (NTP)")

    def _save(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"offset_s": self.offset_s, "measured_at": self.measured_at, "rtt_s": self.rtt_s,
                           "boot_id": boot_id()}, fh)
            os.replace(tmp, self.path)
        except OSError as exc:  # a full disk: the correction holds in memory, only a restart loses it
            log.warning("clock offset not saved to %s: %s", self.path, exc)
            with contextlib.suppress(OSError):
                tmp.unlink()

    def status(self) -> dict[str, Any]:
        return {"offset_s": round(self.offset_s, 3), "source": "hub" if self.offset_s else "system",
                "measured_offset_s": None if self.measured_offset_s is None else round(self.measured_offset_s, 3),
                "rtt_ms": None if self.rtt_s is None else round(self.rtt_s * 1000, 1),
                "measured_at": self.measured_at}
