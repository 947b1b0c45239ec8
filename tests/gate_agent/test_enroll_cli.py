"""``gatehouse gate enroll`` takes any token the hub prints, including one that starts with '-'.

About 1 in 40 url-safe tokens starts with '-', which argparse reads as an option. The token can
be given as ``--token=TOKEN``, or read from a file or standard input (``--token-file -``).
These run the real CLI against an address where no hub listens: getting as far as "cannot
reach the hub" proves the token was accepted.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gatehouse.venue import ROOT, free_port
from tests.conftest import TIMEOUT_S

DASH_TOKEN = "-aWp3sT0kenThatStartsWithADash"


def enroll(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    hub = f"http://127.0.0.1:{free_port()}"
    return subprocess.run([sys.executable, "-m", "gatehouse", "gate", "enroll", "--hub", hub, *args],
                          cwd=ROOT, capture_output=True, text=True, input=stdin, timeout=TIMEOUT_S * 3)


def test_a_token_starting_with_a_dash_is_accepted_as_token_equals(tmp_path: Path) -> None:
    done = enroll(f"--token={DASH_TOKEN}", "--data-dir", str(tmp_path))
    assert done.returncode == 1 and "cannot reach the hub" in done.stderr, done.stderr


def test_a_token_is_read_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(DASH_TOKEN + "\n")
    done = enroll("--token-file", str(tmp_path / "token"), "--data-dir", str(tmp_path / "d"))
    assert done.returncode == 1 and "cannot reach the hub" in done.stderr, done.stderr


def test_a_token_is_read_from_standard_input(tmp_path: Path) -> None:
    done = enroll("--token-file", "-", "--data-dir", str(tmp_path), stdin=DASH_TOKEN + "\n")
    assert done.returncode == 1 and "cannot reach the hub" in done.stderr, done.stderr


def test_no_token_or_an_empty_one_is_refused_with_how_to_give_it(tmp_path: Path) -> None:
    done = enroll("--data-dir", str(tmp_path))
    assert done.returncode == 2 and "--token=TOKEN" in done.stderr
    done = enroll("--token-file", "-", "--data-dir", str(tmp_path), stdin="\n")
    assert done.returncode == 2 and "empty" in done.stderr


def test_the_help_tells_how_to_pass_a_dash_token() -> None:
    done = subprocess.run([sys.executable, "-m", "gatehouse", "gate", "enroll", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=TIMEOUT_S * 3)
    assert "--token=TOKEN" in done.stdout and "--token-file" in done.stdout
