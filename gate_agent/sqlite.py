"""The gate's one SQLite transaction helper (replica, journal, manifest).

Every gate store owns one aiosqlite connection in autocommit mode and writes through
:meth:`Transactions.write`: one transaction at a time per connection (a second ``BEGIN`` can
never land inside the first, whoever awaits what), ``BEGIN IMMEDIATE`` so the writer holds
the lock from the start, ``COMMIT`` when the block ends, and ``ROLLBACK`` when it raises —
cancellation included: a task cancelled while awaiting ``BEGIN`` or ``COMMIT`` leaves that
statement running in aiosqlite's thread, and the ``ROLLBACK`` queued behind it undoes it, so
the connection never stays inside a transaction.

(The hub's helper is :class:`hub.db.Database`: the hub runs whole transactions on threads
over SQLAlchemy, because it also runs on PostgreSQL; a gate is SQLite only.)
"""
from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

import aiosqlite


class Transactions:
    """The write transactions of one aiosqlite connection."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db
        self._lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[aiosqlite.Connection]:
        """``async with tx.write() as db:`` — committed if the block ends, rolled back if it raises."""
        async with self._lock:
            try:
                await self.db.execute("BEGIN IMMEDIATE")
                yield self.db
                await self.db.execute("COMMIT")
            except BaseException:
                await rollback(self.db)
                raise

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Cursor:
        """One statement as its own transaction (autocommit), never inside another's block."""
        async with self._lock:
            return await self.db.execute(sql, params)

    async def executemany(self, sql: str, params: Iterable[Sequence[Any]]) -> aiosqlite.Cursor:
        async with self._lock:
            return await self.db.executemany(sql, params)

    @property
    def busy(self) -> bool:
        return self._lock.locked()


async def rollback(db: aiosqlite.Connection) -> None:
    """Roll back after any failure, cancellation included ("no transaction" is fine)."""
    with contextlib.suppress(sqlite3.Error, ValueError):
        await db.execute("ROLLBACK")
