"""The staff screen's request checks, as pure functions (the real server is in test_gate_process)."""
from __future__ import annotations

import pytest

from gate_agent.status_server import ScreenSecurity


@pytest.fixture
def local() -> ScreenSecurity:
    return ScreenSecurity(bind_host="127.0.0.1", port=8081, session="s" * 43, hostname="gate7")


@pytest.mark.parametrize("host", ["127.0.0.1:8081", "localhost:8081", "LOCALHOST:8081", "[::1]:8081",
                                  "localhost.:8081"])
def test_the_gates_loopback_names_on_its_port_are_allowed(local: ScreenSecurity, host: str) -> None:
    assert local.check_host(host) is None


@pytest.mark.parametrize("host", [None, "", "evil.example", "evil.example:8081", "127.0.0.1:8082", "127.0.0.1",
                                  "gate7:8081", "10.0.0.7:8081", "127.0.0.1:8081@evil", "local host:8081",
                                  "[::1", "127.0.0.1:99999", "127.0.0.1:80x"])
def test_any_other_host_is_misdirected(local: ScreenSecurity, host: str | None) -> None:
    refusal = local.check_host(host)
    assert refusal is not None and refusal.status == 421 and refusal.code == "bad_host"


def test_a_gate_bound_to_every_interface_also_answers_to_its_own_name_and_ip_literals() -> None:
    lan = ScreenSecurity(bind_host="0.0.0.0", port=8081, hostname="gate7")
    for host in ("gate7:8081", "gate7.local:8081", "10.0.0.7:8081", "[fe80::1]:8081", "localhost:8081"):
        assert lan.check_host(host) is None, host
    for host in ("evil.example:8081", "gate7.evil.example:8081", "10.0.0.7:9000"):
        assert lan.check_host(host) is not None, host


def test_a_named_bind_host_is_allowed() -> None:
    named = ScreenSecurity(bind_host="gate-north-1.venue.lan", port=80)
    assert named.check_host("gate-north-1.venue.lan") is None  # port 80 left out of the Host
    assert named.check_host("gate-north-2.venue.lan") is not None


@pytest.mark.parametrize(("origin", "site", "mode", "ok"), [
    (None, None, None, True),  # curl, monitoring
    ("http://127.0.0.1:8081", "same-origin", "cors", True),  # the page's own fetch
    ("http://evil.example", "cross-site", "cors", False),
    ("null", "cross-site", "cors", False),  # a sandboxed frame, a file:// page
    ("http://127.0.0.1:9999", "same-site", "cors", False),  # another local service's page
    ("https://127.0.0.1:8081", "cross-site", "cors", False),
    (None, "cross-site", "no-cors", False),  # <img>, <script> from another site
    (None, "cross-site", "navigate", True),  # a link to the screen: renders, nothing else
])
def test_only_the_screens_own_origin_may_call(local: ScreenSecurity, origin: str | None, site: str | None,
                                              mode: str | None, ok: bool) -> None:
    refusal = local.check_origin("127.0.0.1:8081", origin, site, mode)
    assert (refusal is None) is ok
    if refusal is not None:
        assert refusal.status == 403 and refusal.code == "cross_origin"


@pytest.mark.parametrize(("content_type", "ok"), [
    ("application/json", True), ("application/json; charset=utf-8", True), ("Application/JSON", True),
    (None, False), ("text/plain", False), ("text/plain; application/json", False),
    ("application/x-www-form-urlencoded", False), ("multipart/form-data; boundary=x", False),
])
def test_state_changing_calls_take_json_only(local: ScreenSecurity, content_type: str | None, ok: bool) -> None:
    refusal = local.check_api("POST", content_type, local.session)
    assert (refusal is None) is ok
    if refusal is not None:
        assert refusal.status == 415


def test_every_api_call_needs_the_current_session(local: ScreenSecurity) -> None:
    assert local.check_api("GET", None, local.session) is None
    missing = local.check_api("GET", None, None)
    wrong = local.check_api("POST", "application/json", "s" * 42 + "t")
    assert missing is not None and (missing.status, missing.code) == (403, "session_required")
    assert wrong is not None and (wrong.status, wrong.code) == (403, "session_invalid")
    assert local.check_api("GET", None, "\udcff") is not None  # undecodable header bytes: refused, no error


def test_each_start_makes_a_new_session() -> None:
    a, b = (ScreenSecurity(bind_host="127.0.0.1", port=1) for _ in range(2))
    assert a.session != b.session and len(a.session) >= 40
