"""`gatehouse demo` (the README's first command) runs a venue and fans get decisions."""
from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port_block(n: int) -> int:
    """A first port with n free ports after it (best effort)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + n < 65535 and all(_free(base + i) for i in range(n)):
            return base
    raise RuntimeError("no free port block")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.slow
def test_demo_runs_a_hub_gates_and_fans_then_stops_cleanly(tmp_path: Path) -> None:
    base = free_port_block(6)
    proc = subprocess.run(
        [sys.executable, "-m", "gatehouse", "demo", "--data", str(tmp_path / "demo"), "--port", str(base),
         "--gate-port", str(base + 1), "--gates-per-zone", "1", "--tickets-per-zone", "30", "--duration", "6"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"http://127.0.0.1:{base}/#token=" in proc.stderr
    decided = re.search(r"(\d+) decisions: (.*)", proc.stderr)
    assert decided is not None and int(decided.group(1)) > 0 and "ADMIT" in decided.group(2)
    assert "Traceback" not in proc.stderr
