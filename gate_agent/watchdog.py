"""The systemd watchdog: READY, STATUS and WATCHDOG pings sent from the agent's event loop.

The unit runs the agent with ``Type=notify`` and ``WatchdogSec=``; systemd then passes the
notify socket (``NOTIFY_SOCKET``) and the interval (``WATCHDOG_USEC``). :func:`keepalive` pings
at half the interval from a task *on the event loop*, and only while the lane's own tasks are
alive: a loop that hangs (a blocking call, a deadlock) or a lane task that died stops the pings,
and systemd kills and restarts the agent within the interval — and the restart resolves any
admit left open (see :mod:`gate_agent.passages`).

The protocol is one datagram per message on a unix socket (``sd_notify(3)``); a dozen lines
here rather than a dependency. Without ``NOTIFY_SOCKET`` (a terminal, the tests, the demo)
every call is a no-op.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)


class SystemdNotifier:
    """Sends ``sd_notify`` messages to the socket systemd gave this process (if any)."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        address = env.get("NOTIFY_SOCKET", "")
        # An abstract socket is written "@name"; the kernel wants a leading NUL.
        self.address = "\0" + address[1:] if address.startswith("@") else address
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        for_us = not pid or pid == str(os.getpid())
        self.watchdog_s = int(usec) / 1e6 if usec.isdigit() and int(usec) > 0 and for_us else None
        self.sent = 0
        self.failed = 0
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def notify(self, message: str) -> bool:
        """Send one message (``READY=1``, ``WATCHDOG=1``, ``STATUS=…``); False if it could not go."""
        if not self.address:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(message.encode("utf-8"), self.address)
        except OSError as exc:
            self.failed += 1
            # Said once per run of failures: systemd will restart us if the pings stay away.
            (log.debug if self.failed > 1 else log.error)("sd_notify %r failed: %s", message.split("\n")[0], exc)
            return False
        self.failed = 0
        self.sent += 1
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


async def keepalive(notifier: SystemdNotifier, healthy: Callable[[], bool],
                    status: Callable[[], str] | None = None) -> None:
    """Ping the watchdog every half interval while ``healthy()``; runs until cancelled."""
    if notifier.watchdog_s is None:
        return
    period = notifier.watchdog_s / 2
    last_status = ""
    while True:
        if healthy():
            notifier.notify("WATCHDOG=1")
        else:
            log.error("gate agent unhealthy: watchdog pings withheld, systemd will restart the agent")
        if status is not None:
            text = status()
            if text != last_status:
                notifier.notify(f"STATUS={text}")
                last_status = text
        await asyncio.sleep(period)
