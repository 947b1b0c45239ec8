"""Owner-only files for what a gate keeps on its SD card.

The replica holds rotating-code secrets, ``manifest.sqlite3`` holds steward PIN hashes, the
journal holds every scanned credential, and ``gate-credentials.json`` the gate's token. Each
is created 0600 whatever the umask, and one found with a looser mode (made by an older
version, or copied by hand) is tightened with a log line.

SQLite creates a database's ``-wal``, ``-shm`` and ``-journal`` files with the mode of the
database file itself, so creating the database file 0600 *before* SQLite opens it covers
them; any that already exist are tightened too.
"""
from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE = 0o600
PRIVATE_DIR = 0o700
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if missing; a new directory is owner-only."""
    path = Path(path)
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    return path


def tighten(path: Path) -> bool:
    """Make an existing file owner-only; True (and a log line) if it was looser."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(st.st_mode) or not st.st_mode & 0o077:
        return False
    os.chmod(path, PRIVATE)
    log.warning("%s was readable by others (mode %03o); tightened to %03o", path, stat.S_IMODE(st.st_mode), PRIVATE)
    return True


def private_file(path: Path) -> Path:
    """Make sure ``path`` exists owner-only (created empty if missing) before SQLite opens it.

    Also tightens the database's ``-wal``/``-shm``/``-journal`` files if present.
    """
    path = Path(path)
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE)
    except FileExistsError:
        tighten(path)
    else:
        try:
            os.fchmod(fd, PRIVATE)  # the umask can only take bits away, but say it outright
        finally:
            os.close(fd)
    for suffix in SQLITE_COMPANIONS:
        tighten(path.with_name(path.name + suffix))
    return path


def write_private(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (temp file, fsync, rename), owner-only."""
    path = Path(path)
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # an old temp file might carry a looser mode
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            os.fchmod(fh.fileno(), PRIVATE)
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    os.replace(tmp, path)
    return path
