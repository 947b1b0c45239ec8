"""The gatehouse command: help for every role, and benchmarks that print one JSON object."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def gatehouse(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gatehouse", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)


def test_help_lists_every_role() -> None:
    out = gatehouse("--help").stdout
    for group in ("hub", "gate", "keys", "scanner", "turnstile", "bench", "demo"):
        assert group in out


def test_bench_decide_prints_one_flat_json_object_with_its_keys() -> None:
    proc = gatehouse("bench", "decide", "--tickets", "2000", "--scans", "300", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    for k in ("tickets", "decide_p50_us", "decide_p99_us", "decide_commit_p99_us", "scans_per_s"):
        assert k in result
    assert result["tickets"] == 2000
    assert all(not isinstance(v, dict | list) for v in result.values())


def test_keys_new_issue_and_inspect_round_trip(tmp_path: Path) -> None:
    assert gatehouse("keys", "new", "--dir", str(tmp_path), "--key-id", "9").returncode == 0
    issued = gatehouse("keys", "issue", "--key", str(tmp_path / "event-key-9.pem"), "--event", "1", "--ticket", "5")
    code = issued.stdout.strip()
    assert code.startswith("GH1:")
    assert gatehouse("keys", "inspect", "--dir", str(tmp_path), code).returncode == 0
    flipped = code[:-10] + ("B" if code[-10] != "B" else "C") + code[-9:]  # a signature character
    bad = gatehouse("keys", "inspect", "--dir", str(tmp_path), flipped)
    assert bad.returncode == 1 and ("FORGED" in bad.stderr or "MALFORMED" in bad.stderr)


def test_a_role_not_installed_names_the_extra_to_install() -> None:
    """A gate installed without the hub's stack: `gatehouse hub …` says which extra to install."""
    code = ("import sys; sys.modules['sqlalchemy'] = None; from gatehouse.cli import main; "
            "raise SystemExit(main(['hub', 'gates', '--data', '/nonexistent']))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "pip install 'gatehouse[hub]'" in done.stderr and "sqlalchemy" in done.stderr


def test_a_broken_import_of_our_own_code_is_an_error_not_unavailable() -> None:
    code = ("import sys; sys.modules['hub.store'] = None; from gatehouse.cli import main; "
            "raise SystemExit(main(['hub', 'gates', '--data', '/nonexistent']))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "ModuleNotFoundError" in done.stderr and "not installed" not in done.stderr
