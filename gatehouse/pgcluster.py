"""Throwaway PostgreSQL clusters for tests, benchmarks and the failover drill.

A :class:`PgCluster` is a real PostgreSQL server from Debian's packages (``initdb`` and
``pg_ctl`` from ``/usr/lib/postgresql/*/bin``), in a temporary directory, on a free port on
127.0.0.1. PostgreSQL refuses to run as root, so when this process is root the cluster runs as
the unprivileged ``postgres`` user (created by the Debian package) via ``runuser``.

:meth:`PgCluster.standby` makes a streaming-replication standby of a running primary
(``pg_basebackup -R``); :meth:`PgCluster.promote` promotes it (``pg_ctl promote``).
"""
from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


class PgUnavailable(RuntimeError):
    """PostgreSQL's server binaries are not installed (``apt-get install postgresql``)."""


def bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise PgUnavailable("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin "
                            "(install the Debian package postgresql)")
    return Path(found[-1]).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgCluster:
    """One PostgreSQL server process with its own data directory."""

    def __init__(self, root: Path, *, port: int | None = None, name: str = "primary") -> None:
        self.bin = bindir()
        self.root = root
        self.data = root / name
        self.port = port or free_port()
        self.name = name
        self.log = root / f"{name}.log"
        self.user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        self.running = False

    # --- running commands as the cluster's owner ------------------------------------------

    def _cmd(self, *args: str) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *args]
        return list(args)

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self._cmd(*args), check=True, capture_output=True, text=True, timeout=timeout)

    def _own(self, path: Path) -> None:
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            for p in (path, *path.rglob("*")):
                os.chown(p, pw.pw_uid, pw.pw_gid)

    # --- life cycle -------------------------------------------------------------------------

    def init(self) -> PgCluster:
        self.root.mkdir(parents=True, exist_ok=True)
        self._own(self.root)
        os.chmod(self.root, 0o755)
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                  "--no-sync", "-E", "UTF8", "--locale=C")
        with open(self.data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(
                f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.root}'\n"
                "max_connections = 200\nwal_level = replica\nmax_wal_senders = 5\nhot_standby = on\n"
                "fsync = on\nsynchronous_commit = on\nshared_buffers = 128MB\n")
        with open(self.data / "pg_hba.conf", "a", encoding="utf-8") as hba:
            hba.write("host replication all 127.0.0.1/32 trust\n")
        return self

    def start(self, timeout: float = 60) -> PgCluster:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t",
                  str(int(timeout)), "start", timeout=timeout + 10)
        self.running = True
        return self

    def stop(self, mode: str = "fast") -> None:
        if not self.running:
            return
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop", timeout=60)
        self.running = False

    def kill(self) -> None:
        """Stop the server like a machine that died: ``pg_ctl stop -m immediate`` (no checkpoint)."""
        self.stop("immediate")

    def promote(self, timeout: float = 60) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-t", str(int(timeout)), "promote",
                  timeout=timeout + 10)

    def standby(self, name: str = "standby") -> PgCluster:
        """A streaming-replication standby of this (running) primary, started."""
        other = PgCluster(self.root, name=name)
        self._run(str(self.bin / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                  "-D", str(other.data), "-R", "-X", "stream", "--no-sync", timeout=300)
        conf = other.data / "postgresql.conf"
        text = conf.read_text(encoding="utf-8").replace(f"port = {self.port}", f"port = {other.port}")
        conf.write_text(text, encoding="utf-8")
        return other.start()

    def psql(self, sql: str, db: str = "postgres") -> str:
        psql = str(self.bin / "psql") if (self.bin / "psql").exists() else "psql"
        out = self._run(psql,
                        "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", db, "-At", "-c", sql)
        return out.stdout.strip()

    def create_database(self, name: str) -> str:
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def url(self, db: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{db}"

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.data, ignore_errors=True)


def multi_host_url(db: str, *clusters: PgCluster) -> str:
    """A libpq URL naming several servers: it connects to whichever accepts writes (failover)."""
    hosts = ",".join(f"127.0.0.1:{c.port}" for c in clusters)
    return f"postgresql+psycopg://postgres@/{db}?host={hosts}&target_session_attrs=read-write&connect_timeout=3"


@contextlib.contextmanager
def temporary_cluster(prefix: str = "gatehouse-pg-") -> Iterator[PgCluster]:
    root = Path(tempfile.mkdtemp(prefix=prefix))
    cluster = PgCluster(root).init().start()
    try:
        yield cluster
    finally:
        cluster.destroy()
        shutil.rmtree(root, ignore_errors=True)


def wait_until_accepting(cluster: PgCluster, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            with socket.create_connection(("127.0.0.1", cluster.port), timeout=1):
                return
        time.sleep(0.05)
    raise TimeoutError(f"PostgreSQL on port {cluster.port} did not start")
