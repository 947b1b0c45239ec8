"""Real PostgreSQL for the tests: one throwaway cluster per test session, a database per test.

The cluster is Debian's PostgreSQL (``initdb``/``pg_ctl`` under a temporary directory, on a
free port, as the ``postgres`` user when the tests run as root; see
:mod:`gatehouse.pgcluster`). ``./run test`` installs the ``postgresql`` package when it is
missing, so a test skips only when the server binaries truly are not on the machine, and
says so.

Fixtures:

* ``pg_cluster`` (session): the running cluster;
* ``pg_databases`` (session): ``pg_databases.new()`` creates an empty database and returns its
  URL (they go with the cluster at the end of the session);
* ``pg_url`` (function): a fresh database for one test;
* ``backend`` (function, parametrized ``sqlite`` / ``postgresql``): the database URL a hub under
  test should use, or None for the embedded SQLite default — a test that takes it runs on both.
"""
from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from gatehouse.pgcluster import PgCluster, PgUnavailable, bindir

BACKENDS = ("sqlite", "postgresql")


class Databases:
    """Creates databases on one cluster (they go when the cluster does)."""

    def __init__(self, cluster: PgCluster) -> None:
        self.cluster = cluster
        self._n = itertools.count(1)

    def new(self) -> str:
        return self.cluster.create_database(f"gh_test_{os.getpid()}_{next(self._n)}")


def unavailable_reason() -> str | None:
    try:
        bindir()
    except PgUnavailable as exc:
        return f"PostgreSQL cannot be used on this machine: {exc}"
    return None


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    # Not under pytest's tmp_path: its base directory is private to the test user, and the
    # server runs as ``postgres`` when the tests run as root.
    root = Path(tempfile.mkdtemp(prefix="gatehouse-pg-test-"))
    cluster = PgCluster(root)
    try:
        cluster.init()
        # These tests check logic, not crash safety (the failover drill has its own durable
        # clusters): without fsync a database per test costs a fraction of a second.
        with open(cluster.data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
        cluster.start()
    except Exception:
        shutil.rmtree(root, ignore_errors=True)
        raise
    try:
        yield cluster
    finally:
        cluster.destroy()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_databases(pg_cluster: PgCluster) -> Databases:
    return Databases(pg_cluster)


@pytest.fixture
def pg_url(pg_databases: Databases) -> str:
    return pg_databases.new()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str | None:
    """None for SQLite (the hub's default file), else a fresh PostgreSQL database's URL."""
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("pg_databases").new())
