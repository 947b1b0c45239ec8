"""``./run test`` installs every system tool the suite needs, so nothing skips on a fresh machine."""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _path_without(tmp: Path, *missing: str) -> str:
    """A PATH like this machine's, minus ``missing``, as a non-root user (``id -u`` says 1000)."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    for directory in ("/usr/local/bin", "/usr/bin", "/bin"):
        for tool in Path(directory).iterdir() if Path(directory).is_dir() else ():
            link = bin_dir / tool.name
            if tool.name not in missing and tool.name != "id" and not link.exists():
                link.symlink_to(tool)
    fake_id = bin_dir / "id"
    fake_id.write_text("#!/bin/sh\necho 1000\n")
    fake_id.chmod(0o755)
    return f"{bin_dir}:/usr/sbin:/sbin"


def test_run_test_asks_for_poppler_utils_when_pdftotext_is_missing(tmp_path: Path) -> None:
    """The manifest PDF tests skip without pdftotext: on a fresh machine ./run must install it."""
    env = {**os.environ, "PATH": _path_without(tmp_path, "pdftotext"), "GATEHOUSE_VENV": str(tmp_path / "venv")}
    # Its own process group: if ./run went on to build a virtualenv, all of it is stopped.
    proc = subprocess.Popen(["bash", str(ROOT / "run"), "test", "--collect-only"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 1, stderr
    apt_line = next(line for line in stderr.splitlines() if "apt-get install" in line)
    assert "poppler-utils" in apt_line.split()
    assert not (tmp_path / "venv").exists()  # it stopped before doing anything else

