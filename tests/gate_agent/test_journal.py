"""The journal: durable before the unlock, append-only, pruned only after a hub backup."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from gate_agent.journal import Journal
from tickets.entry import EntryKind, Passage


async def test_entries_get_consecutive_seqs_and_random_nonces(tmp_path: Path) -> None:
    j = await Journal.open(tmp_path / "j.sqlite3", "G1")
    a = await j.append(EntryKind.SCAN, reason="ADMIT", ticket_id=1, raw=b"x", passage=Passage.PENDING)
    b = await j.append(EntryKind.SCAN, reason="UNKNOWN", raw=b"y")
    assert (a.seq, b.seq) == (1, 2) and a.nonce != b.nonce
    assert [e.seq for e in await j.entries_after(0)] == [1, 2]
    assert await j.get(1) == a
    await j.close()


async def test_journal_runs_in_wal_with_full_sync(tmp_path: Path) -> None:
    j = await Journal.open(tmp_path / "j.sqlite3", "G1")
    await j.append(EntryKind.SCAN, reason="ADMIT")
    conn = sqlite3.connect(tmp_path / "j.sqlite3")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    await j.close()


async def test_rows_cannot_be_updated_or_deleted_before_a_backup(tmp_path: Path) -> None:
    j = await Journal.open(tmp_path / "j.sqlite3", "G1")
    await j.append(EntryKind.SCAN, reason="ADMIT")
    conn = sqlite3.connect(tmp_path / "j.sqlite3")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE journal SET reason = 'UNKNOWN'")
    with pytest.raises(sqlite3.DatabaseError, match="backup"):
        conn.execute("DELETE FROM journal")
    conn.close()
    await j.close()


async def test_prune_removes_only_what_the_hub_acked_and_backed_up(tmp_path: Path) -> None:
    j = await Journal.open(tmp_path / "j.sqlite3", "G1")
    for _ in range(10):
        await j.append(EntryKind.SCAN, reason="ADMIT")
    await j.set_acked(6)
    assert await j.prune(backed_up_seq=8) == 6  # never past the ack
    assert [e.seq for e in await j.entries_after(0)] == [7, 8, 9, 10]
    await j.close()
    j = await Journal.open(tmp_path / "j.sqlite3", "G1")
    assert (await j.append(EntryKind.SCAN)).seq == 11  # seq never reused after a prune
    await j.close()


async def test_ack_may_go_down_when_the_hub_was_restored(tmp_path: Path) -> None:
    j = await Journal.open(tmp_path / "j.sqlite3", "G1")
    for _ in range(5):
        await j.append(EntryKind.SCAN)
    await j.set_acked(5)
    await j.set_acked(2)
    assert await j.acked_seq() == 2 and await j.backlog() == 3
    await j.close()


_WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from gate_agent.journal import Journal
    from tickets.entry import EntryKind

    async def main():
        j = await Journal.open(Path(sys.argv[1]), "G1")
        n = 0
        while True:
            e = await j.append(EntryKind.SCAN, reason="ADMIT", ticket_id=n, raw=b"payload")
            # Only after the append returned may the gate act: report the seq as "acted on".
            print(e.seq, flush=True)
            n += 1

    asyncio.run(main())
    """
)


def test_kill_9_mid_burst_loses_no_entry_that_was_acted_on(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[2])
    assert proc.stdout is not None
    acted: list[int] = []
    deadline = time.monotonic() + 30
    while len(acted) < 300 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        acted.append(int(line))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(acted) >= 300, "writer did not start"
    conn = sqlite3.connect(path)
    seqs = [r[0] for r in conn.execute("SELECT seq FROM journal ORDER BY seq")]
    conn.close()
    assert set(acted) <= set(seqs)
    assert seqs == list(range(1, len(seqs) + 1))  # no gaps
