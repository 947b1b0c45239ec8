"""The hub's store: one venue's database (SQLite or PostgreSQL) behind async methods.

:class:`HubStore` is composed of one mixin per concern — :mod:`~hub.store.event` (meta, keys,
tokens, commands), :mod:`~hub.store.zones`, :mod:`~hub.store.tickets`,
:mod:`~hub.store.changes` (the change log as gates read it), :mod:`~hub.store.gates`,
:mod:`~hub.store.ingest` (journal storage and the conflict rules), :mod:`~hub.store.reports`,
:mod:`~hub.store.setup` (creation, migrations, backups) and :mod:`~hub.store.paper` — and every
one of them runs its transactions through :class:`hub.db.Database`, the one transaction helper.

Every write that gates or other hub processes must hear of appends to the change log
(:func:`hub.store.base.append_changes`); :mod:`hub.feed` watches it. Nothing is pushed from a
request handler.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hub.db import Database
from hub.importer import ImportReport, import_tickets
from hub.store.base import (
    ADMIT_REASONS,
    CLI,
    DB_NAME,
    ENROLL_TTL_S,
    GATE_KINDS,
    KEYS_DIR,
    ROLES,
    Change,
    IngestResult,
    Principal,
    Snapshot,
    db_path,
    hash_token,
    new_token,
    slug,
)
from hub.store.changes import ChangesMixin
from hub.store.event import EventMixin
from hub.store.gates import GatesMixin
from hub.store.ingest import GROUP_COMMIT_MAX, PENDING_EXPIRY_S, IngestMixin
from hub.store.paper import GateManifest, PaperMixin, PaperTickIn
from hub.store.reports import ReportsMixin
from hub.store.setup import BackupMixin, database_url, init_hub, migrate, open_database, restore_hub
from hub.store.tickets import TicketsMixin
from hub.store.zones import ZonesMixin


class HubStore(EventMixin, ZonesMixin, TicketsMixin, ChangesMixin, GatesMixin, IngestMixin, ReportsMixin,
               BackupMixin, PaperMixin):
    """Async access to one venue's hub database. Open with :meth:`open`, close with :meth:`close`."""

    def __init__(self, data_dir: Path, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self.data_dir = data_dir
        self.db = db
        self.clock = clock
        self.path = db.path  # the SQLite file, or None on PostgreSQL
        self.changed_event = asyncio.Event()
        self.ingest_listeners: list[Callable[[IngestResult], Any]] = []
        self._ingest_q = asyncio.Queue()
        self._ingest_task = None
        self._ingest_busy = 0
        self._signing_key = None
        self._keyring = None
        self._epoch = None

    @classmethod
    async def open(cls, data_dir: Path, *, clock: Callable[[], float] = time.time, readers: int = 4) -> HubStore:
        """Open (and migrate) the hub in ``data_dir``; raises NotInitialised for an empty one."""
        db = await asyncio.to_thread(open_database, data_dir, readers=readers)
        return cls(data_dir, db, clock=clock)

    async def close(self) -> None:
        if self._ingest_task is not None:
            self._ingest_task.cancel()
            try:
                await self._ingest_task
            except asyncio.CancelledError:
                pass
            self._ingest_task = None
        await asyncio.to_thread(self.db.close)

    async def import_tickets(self, actor: Principal, data: bytes, fmt: str, *, name: str = "") -> ImportReport:
        """Import a CSV/JSON/JSONL file (see :mod:`hub.importer`); off the event loop, chunk by chunk."""
        report = await asyncio.to_thread(import_tickets, self.db, data, fmt, clock=self.clock)
        self._poke()
        await self.record_audit(actor, "import", name or "body",
                                {k: v for k, v in report.to_json().items() if k != "errors"})
        return report

    async def changed(self) -> None:
        """Tell this process's feed that changes were committed (kept for callers of the old API)."""
        self._poke()


__all__ = [
    "ADMIT_REASONS", "CLI", "DB_NAME", "ENROLL_TTL_S", "GATE_KINDS", "GROUP_COMMIT_MAX", "KEYS_DIR",
    "PENDING_EXPIRY_S", "ROLES", "Change", "GateManifest", "HubStore", "IngestResult", "PaperTickIn", "Principal",
    "Snapshot", "database_url", "db_path", "hash_token", "init_hub", "migrate", "new_token", "open_database",
    "restore_hub", "slug",
]
