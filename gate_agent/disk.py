"""The gate's data disk: free space, and a reserve that lets a full disk still be put on record.

A gate whose journal cannot commit must not admit anyone (the decision would not be on
record), and it must say so — to the steward on its screen *and* to the control room, which
hears of a gate only through its journal. On a disk with no byte left, the journal cannot
even record that it is full. So the gate keeps a reserve: a file of :data:`RESERVE_BYTES`
beside its stores, allocated at start. When a journal write fails, or free space drops
below :data:`LOW_BYTES`, the gate closes (:class:`gate_agent.modes.Mode` CLOSED, with the
cause) and deletes the reserve: the room it leaves records the closing, every refusal while
closed and the passage outcomes still owed, and carries them to the hub.

The gate reopens only when there is room for the reserve again *and* the low-water margin
(free ≥ reserve + low), so it does not flap open and shut around the limit; it re-takes the
reserve before it admits the next fan.

Why a file and not the filesystem's own reserved blocks: those belong to root, and the gate
runs as its own user; a file it owns is the one reserve it can hand back to itself.
"""
from __future__ import annotations

import contextlib
import errno
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

RESERVE_NAME = "disk-reserve.bin"
#: room kept back for recording a full disk: about a thousand journal entries in WAL frames
RESERVE_BYTES = 4 * 1024 * 1024
#: below this much free space (besides the reserve) the gate closes before a write fails
LOW_BYTES = 1024 * 1024


class DiskGuard:
    """Free space and the reserve file of one gate's data directory."""

    def __init__(self, data_dir: Path, *, reserve_bytes: int = RESERVE_BYTES, low_bytes: int = LOW_BYTES) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / RESERVE_NAME
        self.reserve_bytes = reserve_bytes
        self.low_bytes = low_bytes

    def free_bytes(self) -> int:
        """Bytes this (unprivileged) process may still write on the data disk; -1 if unknown."""
        try:
            st = os.statvfs(self.data_dir)
        except OSError:
            return -1
        return int(st.f_bavail * st.f_frsize)

    def held(self) -> bool:
        try:
            return self.path.stat().st_size >= self.reserve_bytes
        except OSError:
            return False

    def take(self) -> bool:
        """Allocate the reserve (a no-op if held). False, with nothing left behind, if the disk
        has no room for it."""
        if self.held():
            return True
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
        except OSError as exc:
            log.error("cannot create the disk reserve %s: %s", self.path, exc)
            return False
        try:
            try:
                os.posix_fallocate(fd, 0, self.reserve_bytes)
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                    raise
                _write_zeros(fd, self.reserve_bytes)  # a filesystem without fallocate
            os.fsync(fd)
        except OSError as exc:
            os.close(fd)
            with contextlib.suppress(OSError):
                self.path.unlink()
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                log.error("cannot allocate the disk reserve %s: %s", self.path, exc)
            return False
        os.close(fd)
        return True

    def release(self) -> int:
        """Delete the reserve; returns the bytes it held (0 if there was none)."""
        try:
            size = self.path.stat().st_size
            self.path.unlink()
        except FileNotFoundError:
            return 0
        except OSError as exc:
            log.error("cannot release the disk reserve %s: %s", self.path, exc)
            return 0
        return int(size)

    def low(self) -> bool:
        """Free space is below the low-water mark (the reserve aside)."""
        free = self.free_bytes()
        return 0 <= free < self.low_bytes

    def room_to_reopen(self) -> bool:
        """Enough room to take the reserve back and still be above the low-water mark."""
        free = self.free_bytes() + (0 if not self.path.exists() else self.path.stat().st_size)
        return free >= self.reserve_bytes + self.low_bytes


def _write_zeros(fd: int, size: int) -> None:
    chunk = b"\0" * 65536
    done = 0
    while done < size:
        done += os.write(fd, chunk[: min(len(chunk), size - done)])
