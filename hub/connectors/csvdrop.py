"""The simplest shop: a folder that a box office or an export job drops CSV files into.

Every ``*.csv`` (or ``*.json`` / ``*.jsonl``) file that appears in the folder is imported
with the hub's importer as it is (its columns: ``number``, ``barcode``, ``zone``, ``status``…,
see :mod:`hub.importer`), then moved to ``done/`` — or to ``failed/`` if any row was refused —
with ``<file>.report.json`` beside it listing every refused row with its line and reason.
A file is only taken once it has stopped growing (a writer still copying it is left for the
next look), and a file whose name starts with ``.`` is ignored (write to ``.name.csv``, then
rename: the usual atomic drop). Re-dropping a file is harmless: the import is idempotent.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from hub.connectors.base import ConnectorError, ShopBatch, ShopConnector

log = logging.getLogger(__name__)

PATTERNS = ("*.csv", "*.json", "*.jsonl")
#: a file must be unchanged this long before it is read
SETTLE_S = 1.0


class CsvDropConnector(ShopConnector):
    kind = "csvdrop"

    @property
    def folder(self) -> Path:
        return Path(self.config["dir"])

    def initial_import(self) -> AsyncIterator[ShopBatch]:
        return self.changes_since(None)

    async def changes_since(self, cursor: str | None) -> AsyncIterator[ShopBatch]:
        if not self.folder.is_dir():
            raise ConnectorError(f"the drop folder {self.folder} does not exist", code="drop_folder_missing")
        settle = float(self.config.get("settle_s", SETTLE_S))
        now = time.time()
        ready = []
        for pattern in PATTERNS:
            for path in self.folder.glob(pattern):
                if path.name.startswith(".") or not path.is_file():
                    continue
                st = path.stat()
                if now - st.st_mtime < settle:
                    continue  # still being written: next look
                ready.append((st.st_mtime, path))
        for _mtime, path in sorted(ready):
            data = await asyncio.to_thread(path.read_bytes)
            yield ShopBatch(files=[(path.name, data)], records=1, refs=frozenset({path.name}))

    async def batch_stored(self, batch: ShopBatch, reports: list[dict[str, Any]]) -> None:
        for (name, _data), report in zip(batch.files, reports, strict=True):
            src = self.folder / name
            failed = bool(report.get("error_count")) or "error" in report
            dest_dir = self.folder / ("failed" if failed else "done")
            dest_dir.mkdir(exist_ok=True)
            dest = dest_dir / name
            if dest.exists():
                dest = dest_dir / f"{int(time.time())}-{name}"
            (dest_dir / f"{dest.name}.report.json").write_text(json.dumps(report, indent=1) + "\n")
            try:
                os.replace(src, dest)
            except OSError as exc:
                log.error("csvdrop: %s imported but could not be moved to %s: %s", name, dest_dir, exc)
            if failed:
                log.warning("csvdrop: %s: %s rows refused; see %s", name, report.get("error_count", "all"),
                            dest_dir / f"{dest.name}.report.json")
