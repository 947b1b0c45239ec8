"""Operations: health, metrics, OpenAPI, online backup while serving, restore, and the CLI."""
from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from gatehouse.cli import main
from tests.hub.conftest import Hub, start_hub


def test_healthz_and_openapi_are_served(hub: Hub) -> None:
    with hub.client() as c:
        h = c.get("/healthz").json()
        assert h["status"] == "ok" and h["hub_epoch"]
        paths = c.get("/openapi.json").json()["paths"]
        assert "/api/v1/gates/{gate_id}/journal" in paths and "/api/v1/tickets/import" in paths
        r = c.get("/no/such/route")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_metrics_report_ingest_and_conflicts(hub: Hub, admin: httpx.Client) -> None:
    admin.post("/api/v1/tickets/import", content=b"number,zone\nMET-1,North\n")
    gate = admin.post("/api/v1/gates", json={"name": "Metrics"}).json()
    with hub.client() as anon:
        token = anon.post("/api/v1/enroll", json={"token": gate["enrolment_token"]}).json()["token"]
    with hub.client(token) as g:
        entry = {"gate_id": gate["gate_id"], "seq": 1, "at": 1.0, "kind": "scan", "nonce": "n1", "reason": "UNKNOWN"}
        assert g.post(f"/api/v1/gates/{gate['gate_id']}/journal", json=[entry]).status_code == 200
    with hub.client() as c:
        text = c.get("/metrics").text
    values = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
              if line and not line.startswith("#")}
    assert values["gatehouse_hub_ingested_entries_total"] >= 1
    assert values["gatehouse_hub_gates_connected"] >= 1
    assert "gatehouse_hub_conflicts_open" in values and "gatehouse_hub_ingest_queue" in values


def test_an_online_backup_restores_into_a_hub_that_serves_it(hub: Hub, admin: httpx.Client,
                                                             tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    admin.post("/api/v1/tickets/import", content=b"number,zone\nBK-1,North\n")
    r = admin.post("/api/v1/backup", json={"name": "before-kickoff.db"})
    assert r.status_code == 200, r.text
    path = Path(r.json()["path"])
    assert path.parent == hub.data / "backups" and path.stat().st_size > 0
    assert admin.post("/api/v1/backup", json={"name": "../escape.db"}).json()["error"]["code"] == "bad_name"
    epoch = admin.get("/healthz").json()["hub_epoch"]
    # restore into a fresh directory holding a copy of the keys, and serve it
    target = tmp_path / "restored"
    (target / "keys").mkdir(parents=True)
    for f in (hub.data / "keys").iterdir():
        (target / "keys" / f.name).write_bytes(f.read_bytes())
        (target / "keys" / f.name).chmod(f.stat().st_mode)
    assert main(["hub", "restore", "--data", str(target), str(path)]) == 0
    restored = json.loads(capsys.readouterr().out)
    h2 = start_hub(target, hub.admin)
    try:
        with h2.client(hub.admin) as c:
            assert c.get("/healthz").json()["hub_epoch"] == restored["hub_epoch"] != epoch
            assert [t["number"] for t in c.get("/api/v1/tickets", params={"number": "BK-"}).json()] == ["BK-1"]
    finally:
        h2.stop()


def test_cli_init_import_enrol_backup(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "venue"
    assert main(["hub", "init", "--data", str(data), "--event", "42", "--name", "Derby"]) == 0
    admin_token = capsys.readouterr().out.strip()
    assert len(admin_token) > 30
    assert main(["hub", "init", "--data", str(data), "--event", "42"]) == 1
    assert "already_initialised" in capsys.readouterr().err
    csv = tmp_path / "t.csv"
    csv.write_text("number,zone,holder\nC-1,Home,A\nC-2,Away,B\nC 3,Home,C\n")
    assert main(["hub", "import", "--data", str(data), str(csv)]) == 3  # exit 3: some rows refused
    out = capsys.readouterr()
    assert json.loads(out.out)["created"] == 2 and f"{csv}:4:" in out.err
    assert main(["hub", "enroll-gate", "--data", str(data), "North 1", "--zones", "Home"]) == 0
    assert len(capsys.readouterr().out.strip()) > 20
    assert main(["hub", "gates", "--data", str(data)]) == 0
    assert "north-1" in capsys.readouterr().out
    assert main(["hub", "enroll-gate", "--data", str(data), "X", "--zones", "Nowhere"]) == 1
    assert "zone_not_found" in capsys.readouterr().err
    assert main(["hub", "revoke-gate", "--data", str(data), "north-1"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "revoked"
    assert main(["hub", "token", "--data", str(data), "--role", "viewer", "--name", "wall"]) == 0
    capsys.readouterr()
    assert main(["hub", "backup", "--data", str(data), str(tmp_path / "b.db")]) == 0
    assert json.loads(capsys.readouterr().out)["bytes"] > 0
    assert main(["hub", "ticket", "--data", str(data), "revoke", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "revoked"
    assert main(["hub", "gates", "--data", str(tmp_path / "nothing")]) == 1
    assert "not_initialised" in capsys.readouterr().err
