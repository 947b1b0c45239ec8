"""Issue 10, defect 9 (hub side): the hub's files are owner-only and its log and API keep
secrets to those who may see them.

Before: ``hub.db`` and backups were created 0644 (tokens' hashes, every holder's name, the
rotating secrets), a viewer token read whole signed credentials in ``/validations`` ``raw``,
and a ``-vv`` log carried bearer tokens. Here the hub runs under umask 0 — the worst a
service manager can hand it — and at ``-vv``.
"""
from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from gatehouse.venue import ROOT, TIMEOUT_S, HubProcess, free_port
from tests.faults.harness import EVENT, RawGate, hub_api, wait_for
from tests.gate_agent.outside import stop_process

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _umask0() -> None:
    os.umask(0)


def _gatehouse(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "gatehouse", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=TIMEOUT_S * 3, preexec_fn=_umask0)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_hub_files_are_owner_only_under_umask_0_and_secrets_stay_out_of_the_log_and_viewers_reach(
        tmp_path: Path) -> None:
    data = tmp_path / "hub"
    now = time.time()
    admin = _gatehouse("hub", "init", "--data", str(data), "--event", EVENT, "--valid-from", str(now - 3600),
                       "--valid-until", str(now + 86_400)).stdout.strip().splitlines()[0].strip()
    hub = HubProcess(data, free_port(), admin)
    log = tmp_path / "hub-vv.log"
    with open(log, "ab") as sink:
        hub.proc = subprocess.Popen([sys.executable, "-m", "gatehouse", "-vv", "hub", "serve", "--data", str(data),
                                     "--port", str(hub.port)], cwd=ROOT, stdout=sink, stderr=sink,
                                    preexec_fn=_umask0)
    raw = None
    try:
        wait_for(lambda: httpx.get(hub.url + "/healthz", timeout=2).status_code == 200, "the hub to serve")
        secrets = [admin]
        with hub_api(hub) as c:
            c.post("/api/v1/zones", json={"name": "North"}).raise_for_status()
            c.post("/api/v1/tickets/import?format=csv", content=b"number,zone\nN0001,North\n").raise_for_status()
            viewer = c.post("/api/v1/tokens", json={"name": "wall", "role": "viewer"}).json()["token"]
            secrets.append(viewer)
            credential = c.get("/api/v1/tickets/N0001/credential").json()["text"]
            raw = RawGate(hub, "North 1").connect()
            secrets.append(raw.token)
            raw.hello()
            entry = {"gate_id": raw.gate_id, "seq": 1, "at": time.time(), "kind": "scan", "nonce": "a1",
                     "reason": "ADMIT", "raw": base64.b64encode(credential.encode()).decode(), "direction": "in",
                     "mode": "ONLINE", "cursor": 0}
            raw.send({"type": "journal_batch", "entries": [entry]})
            raw.expect(lambda f: f["type"] == "journal_ack" and f["high_water"] == 1)
            c.post("/api/v1/backup", json={"name": "api-backup.db"}).raise_for_status()
            whole = c.get("/api/v1/validations", params={"gate_id": raw.gate_id}).json()[0]
            assert base64.b64decode(whole["raw"]).decode() == credential  # an admin sees what was scanned
        _gatehouse("hub", "backup", str(tmp_path / "cli-backup.db"), "--data", str(data))

        with httpx.Client(base_url=hub.url, headers={"Authorization": f"Bearer {viewer}"},
                          timeout=TIMEOUT_S) as v:
            seen = v.get("/api/v1/validations", params={"gate_id": raw.gate_id}).json()[0]
        assert seen["raw"] == "" and seen["raw_redacted"] is True, seen

        files = [data / "hub.db", data / "hub.db-wal", data / "hub.db-shm", data / "backups" / "api-backup.db",
                 tmp_path / "cli-backup.db"]
        modes = {str(p.relative_to(tmp_path)): oct(_mode(p)) for p in files if p.exists()}
        assert str(Path("hub") / "hub.db") in modes and str(Path("hub") / "hub.db-wal") in modes, modes
        assert all(m == oct(0o600) for m in modes.values()), modes
        assert not _mode(data) & 0o077, f"the data directory is open to others: {oct(_mode(data))}"
        for p in data.rglob("*"):
            if p.is_dir() or not p.name.endswith(".pub.pem"):  # a public key is public
                assert not _mode(p) & 0o077, f"{p} is open to others: {oct(_mode(p))}"

        text = log.read_text(errors="replace")
        assert "DEBUG" in text, "the hub did not log at -vv"
        assert f"gate {raw.gate_id} connected" in text, "the log does not cover the gate's websocket"
        leaked = [s[:6] + "…" for s in secrets if s in text]
        assert not leaked, f"tokens in the -vv log: {leaked}"
        assert credential not in text, "a scanned credential is in the log"
    finally:
        if raw is not None:
            raw.close()
        stop_process(hub.proc)
