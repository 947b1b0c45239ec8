"""A real gate agent process, enrolled with a real hub process, from outside only.

One hub and one gate (``gatehouse -vv gate run``, started with umask 0, scanner on a pty)
serve the whole module: the staff screen's refusals, the files it makes, what its log says
and does not say. Each test leaves the gate as it found it (refused requests change nothing).
"""
from __future__ import annotations

import base64
import json
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TIMEOUT_S
from tests.gate_agent.outside import GateProcess, Hub, make_gate, running, start_hub, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Hub, GateProcess]]:
    root = tmp_path_factory.mktemp("outside")
    hub = start_hub(root)
    with running(hub):
        hub.start()
        gate = make_gate(root, hub=hub, umask=0o000)
        with running(gate):
            gate.start()
            wait_for(lambda: gate.status()["mode"] == "ONLINE", "the gate ONLINE")
            yield hub, gate


@pytest.fixture
def gate(site: tuple[Hub, GateProcess]) -> GateProcess:
    return site[1]


def passages_settled(gate: GateProcess) -> None:
    """Wait until every admit has its passage outcome (the fan passed or the timeout ran out)."""
    def settled() -> bool:
        lane = gate.status()["lane"]
        return bool(lane["admitted"] == lane["passed"] + lane["not_passed"])

    wait_for(settled, "every admit's passage outcome")


def facts(gate: GateProcess) -> dict[str, Any]:
    """What a refused request must not change: decisions, admits, turnstile releases."""
    s = gate.status()
    return {"journal": s["journal_last_seq"], "lane": s["lane"], "turnstile": s["turnstile"]}


# --- item 9: the staff screen ------------------------------------------------------------
ATTACKS = [
    # (what, headers, body as sent, expected status, expected code)
    ("a page on another site (fetch with JSON)", {"Origin": "http://evil.example"}, "json", 403, "cross_origin"),
    ("a cross-site sub-request", {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors"}, "json", 403,
     "cross_origin"),
    ("DNS rebinding (the attacker's name in Host)", {"Host": "evil.example"}, "json", 421, "bad_host"),
    ("DNS rebinding on the gate's port", {"Host": "evil.example:{port}"}, "json", 421, "bad_host"),
    ("a text/plain simple request", {"Content-Type": "text/plain"}, "raw", 415, "unsupported_media_type"),
    ("a form post", {"Content-Type": "application/x-www-form-urlencoded"}, "form", 415, "unsupported_media_type"),
    ("no session", {"X-Gate-Session": ""}, "json", 403, "session_required"),
    ("a wrong session", {"X-Gate-Session": "not-the-session"}, "json", 403, "session_invalid"),
]


@pytest.mark.parametrize(("what", "headers", "body", "status", "code"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_keyed_entry_from_anywhere_but_the_staff_screen_is_refused_and_the_turnstile_stays_locked(
        gate: GateProcess, what: str, headers: dict[str, str], body: str, status: int, code: str) -> None:
    before = facts(gate)
    refused_before = gate.status()["screen"]["refused"].get(code, 0)
    sent = {k: v.format(port=gate.port) for k, v in headers.items()}
    sent.setdefault("X-Gate-Session", gate.session())
    payload = '{"code": "N0001"}'
    with gate.api() as client:
        if body == "json":
            r = client.post("/api/keyed", content=payload, headers={"Content-Type": "application/json", **sent})
        elif body == "raw":
            r = client.post("/api/keyed", content=payload, headers=sent)
        else:
            r = client.post("/api/keyed", content="code=N0001", headers=sent)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code and r.json()["error"]["message"]
    after = gate.status()
    assert after["screen"]["refused"][code] == refused_before + 1  # counted
    assert facts(gate) == before  # nothing decided, nothing admitted, no release
    wait_for(lambda: f"refused POST /api/keyed from 127.0.0.1: {code} (HTTP {status})" in gate.log_text(),
             "the refusal in the gate's log")


def test_manifest_search_needs_the_screen_session(gate: GateProcess) -> None:
    with gate.api() as client:
        anyone = client.get("/api/manifest/search", params={"q": "Fan"})
        rebinding = client.get("/api/manifest/search", params={"q": "Fan"},
                               headers={"Host": "evil.example", "X-Gate-Session": gate.session()})
        kiosk = client.get("/api/manifest/search", params={"q": "N0003"}, headers={"X-Gate-Session": gate.session()})
    assert anyone.status_code == 403 and anyone.json()["error"]["code"] == "session_required"
    assert "Fan" not in anyone.text
    assert rebinding.status_code == 421 and "Fan" not in rebinding.text
    assert kiosk.status_code == 200 and "manifest_hub_seq" in kiosk.json()


def test_the_page_gives_the_session_to_the_kiosk_only_under_the_gates_own_name(gate: GateProcess) -> None:
    with gate.api() as client:
        kiosk = client.get("/")
        rebinding = client.get("/", headers={"Host": "evil.example"})
        framed = kiosk.headers
    token = re.search(r'<meta name="gate-session" content="([^"]+)">', kiosk.text)
    assert token is not None and token.group(1) == gate.session()
    assert rebinding.status_code == 421 and gate.session() not in rebinding.text
    assert framed["x-frame-options"] == "DENY" and "frame-ancestors 'none'" in framed["content-security-policy"]


def test_the_screen_session_admits_a_typed_ticket_and_unlocks(gate: GateProcess) -> None:
    """The control for the refusals above: the same request from the staff screen works."""
    before = gate.status()
    with gate.api({"X-Gate-Session": gate.session()}) as client:
        r = client.post("/api/keyed", json={"code": "N0002"})
    assert r.status_code == 200 and r.json()["reason"] == "ADMIT", r.text
    wait_for(lambda: gate.status()["turnstile"] != before["turnstile"], "the turnstile to release")
    assert gate.status()["lane"]["admitted"] == before["lane"]["admitted"] + 1
    passages_settled(gate)


LONE_SURROGATE = [  # item 8: each answered 500 before
    ("/api/keyed", '{"code": "\\ud800"}'),
    ("/api/manual-admit", '{"typed": "\\ud800", "steward_id": "st1", "pin": "2468"}'),
    ("/api/manual-admit", '{"typed": "N0001", "steward_id": "st1", "pin": "2468", "note": "\\ud800"}'),
    ("/api/manifest-mode", '{"on": true, "steward_id": "\\ud800", "pin": "2468"}'),
    ("/api/manifest/search?q=%ED%A0%80", None),
]


@pytest.mark.parametrize(("path", "body"), LONE_SURROGATE)
def test_a_lone_surrogate_is_a_bad_request_not_a_server_error(gate: GateProcess, path: str, body: str | None) -> None:
    before = facts(gate)
    with gate.api({"X-Gate-Session": gate.session()}) as client:
        r = (client.get(path) if body is None else
             client.post(path, content=body, headers={"Content-Type": "application/json"}))
    if body is None:  # bytes that are not UTF-8 in a query: decoded with U+FFFD, found nothing
        assert r.status_code == 200 and r.json()["matches"] == [], r.text
    else:
        assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request", r.text
        assert r.json()["error"]["fields"][0]["field"] in ("code", "typed", "note", "steward_id")
    assert facts(gate) == before


# --- item 9: files and log ---------------------------------------------------------------
def test_gate_files_are_owner_only_even_under_umask_0(gate: GateProcess) -> None:
    files = ["replica.sqlite3", "replica.sqlite3-wal", "replica.sqlite3-shm", "journal.sqlite3",
             "journal.sqlite3-wal", "journal.sqlite3-shm", "manifest.sqlite3", "manifest.sqlite3-wal",
             "manifest.sqlite3-shm", "gate-credentials.json", "event.json", "staff-screen.token"]
    modes = {name: oct(stat.S_IMODE((gate.data / name).stat().st_mode)) for name in files}
    assert modes == dict.fromkeys(files, oct(0o600))
    assert stat.S_IMODE(gate.data.stat().st_mode) == 0o700


def test_the_token_and_scanned_credentials_never_reach_the_log_even_at_debug(
        site: tuple[Hub, GateProcess]) -> None:
    hub, gate = site
    credential = json_field(hub.cli("ticket", "credential", "5"), "text")
    token = json_field((gate.data / "gate-credentials.json").read_text(), "token")
    before = gate.status()["journal_last_seq"]
    gate.scan(credential)
    wait_for(lambda: any(r["seq"] > before and r["ticket"] == "N0005" for r in gate.status()["recent"]),
             "the scan decided")
    passages_settled(gate)
    wait_for(lambda: gate.status()["sync"]["acked"] >= before + 1, "the scan uploaded to the hub")
    log = gate.log_text()
    assert "Authorization: [redacted]" in log  # websockets logged the handshake at -vv …
    assert token not in log  # … without the token
    assert "[redacted]" in log and "GH1:…[" in log  # the scan is there, redacted
    raw_b64 = base64.b64encode(credential.encode()).decode()
    for secret in (credential, credential[4:40], raw_b64[:40], gate.session()):
        assert secret not in log


def json_field(text: str, key: str) -> str:
    return str(json.loads(text)[key])


# --- item 14: one settled start-up, every line names the gate ----------------------------
def test_a_new_gate_settles_from_manifest_to_online_in_one_info_transition(gate: GateProcess) -> None:
    assert gate.mode_lines() == [("INFO", "OFFLINE → MANIFEST (replica never synced from the hub)"),
                                 ("INFO", "MANIFEST → ONLINE (connected)")]


def test_every_line_of_the_gate_log_names_the_gate(gate: GateProcess) -> None:
    lines = [line for line in gate.log_text().splitlines() if re.match(r"\d{4}-\d\d-\d\d ", line)]
    assert len(lines) > 20
    unnamed = [line for line in lines if f"[{gate.gate_id}] " not in line]
    assert unnamed == []


def test_scans_refused_in_manifest_mode_have_their_own_reason(tmp_path: Path) -> None:
    """A gate that never had a snapshot decides nothing: MANIFEST_MODE, not UNKNOWN."""
    gate = make_gate(tmp_path, name="never-synced")
    with running(gate):
        gate.start()
        assert gate.status()["mode"] == "MANIFEST"
        with gate.api({"X-Gate-Session": gate.session()}) as client:
            r = client.post("/api/keyed", json={"code": "N0001"})
        assert r.status_code == 200 and r.json()["reason"] == "MANIFEST_MODE", r.text


def test_looser_files_from_before_are_tightened_with_a_log_line(tmp_path: Path) -> None:
    gate = make_gate(tmp_path, name="old")
    for name in ("journal.sqlite3", "replica.sqlite3", "manifest.sqlite3"):
        subprocess.run([sys.executable, "-c", f"import sqlite3; sqlite3.connect({str(gate.data / name)!r}).close()"],
                       check=True, timeout=TIMEOUT_S)
        (gate.data / name).chmod(0o644)
    with running(gate):
        gate.start()
        for name in ("journal.sqlite3", "replica.sqlite3", "manifest.sqlite3"):
            assert stat.S_IMODE((gate.data / name).stat().st_mode) == 0o600
            assert f"{gate.data / name} was readable by others (mode 644); tightened to 600" in gate.log_text()


def test_schemathesis_finds_no_server_error_and_no_undocumented_answer(gate: GateProcess, tmp_path: Path) -> None:
    """Item 8: every route, every documented status, bounded examples, all checks."""
    cli = Path(sys.executable).with_name("schemathesis")
    result = subprocess.run(
        [str(cli), "run", f"{gate.url}/openapi.json", "--checks", "all", "--max-examples", "25", "--seed", "1",
         "--workers", "1", "--header", f"X-Gate-Session: {gate.session()}", "--request-timeout", str(TIMEOUT_S),
         "--report", "junit", "--report-dir", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT_S * 30)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout or " passed" in result.stdout, result.stdout[-3000:]
