"""Owner-only files: created 0600 whatever the umask, looser ones tightened with a log line."""
from __future__ import annotations

import logging
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from gate_agent.files import private_file, write_private
from gate_agent.journal import Journal
from gate_agent.manifest import ManifestStore
from gate_agent.replica import Replica


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_0() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


async def test_gate_stores_and_their_wal_files_are_created_owner_only_under_umask_0(
        tmp_path: Path, umask_0: None) -> None:
    journal = await Journal.open(tmp_path / "data" / "journal.sqlite3", "G1")
    replica = await Replica.open(tmp_path / "data" / "replica.sqlite3")
    manifest = await ManifestStore.open(tmp_path / "data" / "manifest.sqlite3")
    try:
        from tickets.entry import EntryKind

        await journal.append(EntryKind.EVENT, mode="OFFLINE", cursor=0, detail="test: a write makes the WAL")
        names = sorted(p.name for p in (tmp_path / "data").iterdir())
        assert "journal.sqlite3-wal" in names and "replica.sqlite3-shm" in names
        assert {n: oct(mode(tmp_path / "data" / n)) for n in names} == dict.fromkeys(names, oct(0o600))
        assert mode(tmp_path / "data") == 0o700
    finally:
        await journal.close()
        await replica.close()
        await manifest.close()


def test_a_file_readable_by_others_is_tightened_with_a_log_line(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "replica.sqlite3"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    db.chmod(0o644)
    (tmp_path / "replica.sqlite3-wal").chmod(0o666)
    with caplog.at_level(logging.WARNING, logger="gate_agent.files"):
        private_file(db)
    conn.close()
    assert mode(db) == 0o600
    assert [r.getMessage() for r in caplog.records] == [
        f"{db} was readable by others (mode 644); tightened to 600",
        f"{db}-wal was readable by others (mode 666); tightened to 600",
        f"{db}-shm was readable by others (mode 644); tightened to 600"]
    caplog.clear()
    private_file(db)  # already private: nothing to say
    assert caplog.records == []


def test_write_private_replaces_a_looser_file_and_leaves_no_temp(tmp_path: Path, umask_0: None) -> None:
    target = tmp_path / "gate-credentials.json"
    target.write_text("old")
    target.chmod(0o644)
    (tmp_path / ".gate-credentials.json.tmp").write_text("stale temp, readable by all")
    write_private(target, '{"token": "t"}')
    assert target.read_text() == '{"token": "t"}' and mode(target) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gate-credentials.json"]
