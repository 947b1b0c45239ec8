"""deploy/pi: every script passes shellcheck, every unit passes ``systemd-analyze verify``, and
the install script runs for real into a throwaway root, idempotently.

``./run test`` installs shellcheck and systemd (for systemd-analyze) on a fresh Debian; a test
skips (with the reason) only if the tool is truly missing.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import TIMEOUT_S

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "pi"
SCRIPTS = sorted([*DEPLOY.glob("*.sh"), ROOT / "run", ROOT / ".ci" / "run"])
UNITS = sorted(DEPLOY.glob("*.service"))


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (./run test installs it with apt-get; it could not here)")
    return path


def install(destdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DESTDIR": str(destdir)}
    return subprocess.run(["bash", str(DEPLOY / "install.sh"), *args], env=env, capture_output=True, text=True,
                          timeout=TIMEOUT_S * 12)


def tree(root: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under root (but the copied program) with its mode and content."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if p.is_file() and rel.parts[:2] != ("opt", "gatehouse"):
            out[str(rel)] = (p.stat().st_mode & 0o7777, p.read_bytes())
    return out


@pytest.mark.parametrize("script", SCRIPTS, ids=[str(s.relative_to(ROOT)) for s in SCRIPTS])
def test_every_shell_script_passes_shellcheck(script: Path) -> None:
    done = subprocess.run([need("shellcheck"), "--severity=style", str(script)], capture_output=True, text=True,
                          timeout=TIMEOUT_S * 3)
    assert done.returncode == 0, done.stdout


def test_the_scripts_are_executable() -> None:
    for script in SCRIPTS:
        assert os.access(script, os.X_OK), f"{script} is not executable"


def test_install_into_a_throwaway_root_lays_out_the_gate_and_is_idempotent(tmp_path: Path) -> None:
    root = tmp_path / "root"
    first = install(root)
    assert first.returncode == 0, first.stderr
    files = tree(root)
    assert files["etc/gatehouse/gate.toml"][1] == (DEPLOY / "gate.toml.example").read_bytes()
    assert files["etc/gatehouse/gate.toml"][0] == 0o640
    for name in ("etc/systemd/system/gatehouse-gate.service", "etc/systemd/system/gatehouse-kiosk.service",
                 "etc/udev/rules.d/99-gatehouse.rules", "etc/systemd/journald.conf.d/gatehouse.conf"):
        assert name in files, name
    assert (root / "var/lib/gatehouse").is_dir() and (root / "var/lib/gatehouse").stat().st_mode & 0o777 == 0o750
    assert (root / "opt/gatehouse/gate_agent/agent.py").is_file()
    assert not (root / "opt/gatehouse/.git").exists() and not (root / "opt/gatehouse/.venv").exists()

    # An operator edits the config; a second run (an upgrade) keeps it and changes nothing else.
    edited = b'gate_id = "north-7"\ndata_dir = "/var/lib/gatehouse"\n'
    (root / "etc/gatehouse/gate.toml").write_bytes(edited)
    second = install(root)
    assert second.returncode == 0, second.stderr
    assert "keeping the existing" in second.stdout
    again = tree(root)
    assert again["etc/gatehouse/gate.toml"][1] == edited
    assert {k: v for k, v in again.items() if k != "etc/gatehouse/gate.toml"} == \
        {k: v for k, v in files.items() if k != "etc/gatehouse/gate.toml"}


def test_install_for_the_hub_into_a_throwaway_root(tmp_path: Path) -> None:
    done = install(tmp_path / "root", "--hub")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "root/etc/systemd/system/gatehouse-hub.service").is_file()
    assert (tmp_path / "root/var/backups/gatehouse").is_dir()
    assert not (tmp_path / "root/etc/gatehouse/gate.toml").exists()


def test_install_refuses_an_unknown_option(tmp_path: Path) -> None:
    done = install(tmp_path / "root", "--gate")
    assert done.returncode == 2 and "unknown option" in done.stderr


def test_readonly_root_script_writes_the_data_mount_once(tmp_path: Path) -> None:
    root = tmp_path / "root"
    env = {**os.environ, "DESTDIR": str(root)}
    for _ in range(2):
        done = subprocess.run(["bash", str(DEPLOY / "readonly-root.sh"), "--data-device", "/dev/sda1"], env=env,
                              capture_output=True, text=True, timeout=TIMEOUT_S * 3)
        assert done.returncode == 0, done.stderr
    lines = [ln for ln in (root / "etc/fstab").read_text().splitlines() if ln.strip()]
    assert lines == ["LABEL=gatehouse-data /var/lib/gatehouse ext4 "
                     "defaults,noatime,nodev,nosuid,errors=remount-ro,commit=5 0 2"]


def verify_root(tmp_path: Path) -> Path:
    """A root holding the installed units and the system's own units (for their targets).

    The install does not build the virtualenv in a DESTDIR (a venv is not relocatable) nor
    install Chromium: their entry points are placeholders here, since verify checks that each
    ExecStart program exists.
    """
    root = tmp_path / "root"
    assert install(root).returncode == 0
    assert install(root, "--hub").returncode == 0
    system_units = Path("/usr/lib/systemd")
    if not (system_units / "system" / "sysinit.target").exists():
        pytest.skip("this machine has no systemd unit files to verify against (install the systemd package)")
    shutil.copytree(system_units, root / "usr/lib/systemd", symlinks=True)
    for program in ("opt/gatehouse/.venv/bin/gatehouse", "usr/bin/chromium"):
        path = root / program
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    return root


def analyze(root: Path, *units: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([need("systemd-analyze"), "verify", f"--root={root}", *units], capture_output=True,
                          text=True, timeout=TIMEOUT_S * 3)


def test_every_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    need("systemd-analyze")
    root = verify_root(tmp_path)
    units = [f"/etc/systemd/system/{u.name}" for u in UNITS]
    done = analyze(root, *units)
    complaints = [ln for ln in (done.stdout + done.stderr).splitlines() if "gatehouse" in ln]
    assert done.returncode == 0 and complaints == [], done.stderr


def test_unit_verification_catches_a_mistake(tmp_path: Path) -> None:
    need("systemd-analyze")
    root = verify_root(tmp_path)
    unit = root / "etc/systemd/system/gatehouse-gate.service"
    unit.write_text(unit.read_text().replace("WatchdogSec=", "WatchdogSecs="))
    done = analyze(root, "/etc/systemd/system/gatehouse-gate.service")
    assert "Unknown key 'WatchdogSecs'" in done.stderr


def test_the_gate_unit_is_a_notify_service_with_a_watchdog() -> None:
    text = (DEPLOY / "gatehouse-gate.service").read_text()
    assert "Type=notify" in text and "WatchdogSec=" in text and "Restart=always" in text
