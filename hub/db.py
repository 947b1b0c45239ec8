"""The hub's database behind one door: SQLite (embedded default) or PostgreSQL.

Every transaction is a plain function ``fn(conn, *args)`` over a SQLAlchemy Core
connection, run whole on a worker thread by :meth:`Database.read` or :meth:`Database.write`
(``async``) or their ``*_sync`` twins (CLI, the ingest writer). This is the hub's one
transaction helper:

* a transaction always ends: commit when ``fn`` returns, rollback when it raises — and a
  cancelled request cannot leave one half-open, because cancellation only stops the
  *awaiting* task, never the thread inside the transaction (the class of "cannot start a
  transaction within a transaction" wedges is gone by construction);
* writes run on one writer thread per process, so a SQLite file has one writer and
  ``BEGIN IMMEDIATE`` never waits on itself; reads run on a small pool and see committed
  data only;
* the same functions run on both engines: the SQL they use is the subset SQLite and
  PostgreSQL share, plus the few helpers below where they differ.

Why SQLAlchemy Core over its synchronous API instead of the asyncio extension: the hub's
heavy path (journal ingest) already is a group-commit thread, and a whole transaction on a
thread is exactly the atomicity wanted; the async extension would add a greenlet hop per
statement and bring the cancellation wedges back.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, OperationalError

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA busy_timeout=30000",
    "PRAGMA foreign_keys=OFF",
)
#: PostgreSQL advisory lock key held by every transaction that appends to the change log,
#: so change seqs commit in the order they were drawn (a reader never skips a seq that
#: commits after a higher one).
CHANGE_LOG_LOCK = 0x6761_7465  # "gate"


class StorageUnavailable(Exception):
    """The database cannot be reached or refused the transaction (disk full, failover)."""


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{Path(path).resolve()}"


def redact(url: str) -> str:
    """The URL as it may appear in a log or an error: no password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparseable URL is refused elsewhere with its own message
        return "<unparseable database URL>"


class Database:
    """One hub database. ``url``: ``sqlite:///PATH`` or ``postgresql+psycopg://…``."""

    def __init__(self, url: str | URL, *, readers: int = 4) -> None:
        self.url = make_url(url)
        backend = self.url.get_backend_name()
        if backend not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database {backend!r}: use sqlite:///PATH or postgresql+psycopg://…")
        self.is_pg = backend == "postgresql"
        if self.is_pg and self.url.drivername == "postgresql":
            self.url = self.url.set(drivername="postgresql+psycopg")
        self.path: Path | None = None
        if self.is_pg:
            engine = create_engine(self.url, pool_size=readers + 2, max_overflow=4, pool_pre_ping=True,
                                   pool_recycle=300)
            self._write_engine = self._read_engine = engine
        else:
            if not self.url.database:
                raise ValueError("a SQLite hub needs a file path")
            self.path = Path(self.url.database)
            self._write_engine = self._sqlite_engine("BEGIN IMMEDIATE", 1)
            self._read_engine = self._sqlite_engine("BEGIN", readers)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="hub-db-write")
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="hub-db-read")
        self.closed = False

    def _sqlite_engine(self, begin_sql: str, pool: int) -> Engine:
        engine = create_engine(self.url, pool_size=pool, max_overflow=0,
                               connect_args={"timeout": 30.0, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def connect(dbapi_con: Any, _record: Any) -> None:
            dbapi_con.isolation_level = None  # the driver must not open transactions on its own
            for pragma in SQLITE_PRAGMAS:
                dbapi_con.execute(pragma)

        @event.listens_for(engine, "begin")
        def begin(conn: Connection) -> None:
            conn.exec_driver_sql(begin_sql)

        return engine

    @property
    def backend(self) -> str:
        return "postgresql" if self.is_pg else "sqlite"

    def describe(self) -> str:
        return redact(self.url.render_as_string(hide_password=False))

    # --- running transactions ---------------------------------------------------------------

    def read_sync(self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(conn, …)`` in one read transaction (a consistent view) and return its result."""
        with self._guard(), self._read_engine.connect() as conn:
            if self.is_pg:
                conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            with conn.begin():
                return fn(conn, *args, **kwargs)

    def write_sync(self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(conn, …)`` in one write transaction: committed if it returns, rolled back if it raises."""
        with self._guard(), self._write_engine.begin() as conn:
            return fn(conn, *args, **kwargs)

    async def read(self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, lambda: self.read_sync(fn, *args, **kwargs))

    async def write(self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer, lambda: self.write_sync(fn, *args, **kwargs))

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        if self.closed:
            raise StorageUnavailable("the hub store is closed")
        try:
            yield
        except OperationalError as exc:
            raise StorageUnavailable(_short(exc)) from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise StorageUnavailable(_short(exc)) from exc
            raise

    @contextlib.contextmanager
    def connect_sync(self) -> Iterator[Connection]:
        """A raw connection (migrations, backups); the caller manages transactions."""
        with self._guard(), self._write_engine.connect() as conn:
            yield conn

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        self._write_engine.dispose()
        if self._read_engine is not self._write_engine:
            self._read_engine.dispose()

    # --- where the two engines differ ---------------------------------------------------------

    def lock_change_log(self, conn: Connection) -> None:
        """Before appending to the change log: on PostgreSQL, serialise appenders so seqs
        commit in order (SQLite has one writer anyway). Held until the transaction ends."""
        if self.is_pg and not conn.info.get("change_log_locked"):
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CHANGE_LOG_LOCK})
            conn.info["change_log_locked"] = True

    def minute(self, column: str) -> str:
        """SQL for the whole minute (epoch minutes) of an epoch-seconds column."""
        return f"CAST(FLOOR({column} / 60) AS BIGINT)" if self.is_pg else f"CAST({column} / 60 AS INTEGER)"


def _short(exc: BaseException) -> str:
    text_ = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text_[0][:300] if text_ else type(exc).__name__


def wait_for(db: Database, *, timeout_s: float = 30.0) -> None:
    """Block until the database answers (a PostgreSQL server still starting, or failing over)."""
    deadline = time.monotonic() + timeout_s
    delay = 0.05
    while True:
        try:
            db.read_sync(lambda c: c.execute(text("SELECT 1")).scalar())
            return
        except StorageUnavailable as exc:
            if time.monotonic() > deadline:
                raise StorageUnavailable(f"{db.describe()} does not answer: {exc}") from exc
            time.sleep(delay)
            delay = min(1.0, delay * 2)


def url_from_env(default: str) -> str:
    """``GATEHOUSE_DATABASE_URL`` overrides the data directory's database."""
    return os.environ.get("GATEHOUSE_DATABASE_URL") or default
