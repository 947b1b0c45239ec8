"""The fan's rotating ticket page: the JS code matches tickets/rotating.py, the JS QR decodes,
and the page keeps producing the right code offline in a real browser."""
from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
import zxingcpp

from tests.hub.conftest import TIMEOUT_S, Hub
from tickets.rotating import STEP_S, code_for, step_at

STATIC = Path(__file__).resolve().parents[2] / "ui" / "static"
NODE = shutil.which("node")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")


def _node(script: str) -> str:
    assert NODE is not None
    out = subprocess.run([NODE, "-e", script], capture_output=True, text=True, timeout=TIMEOUT_S, check=True,
                         cwd=STATIC)
    return out.stdout


@needs_node
def test_rotating_js_computes_the_same_codes_as_python() -> None:
    rng = np.random.default_rng(7)
    cases = [(bytes(range(20)), 0), (bytes(range(20)), -5), (b"\xff" * 20, 2**40 + 3)]
    cases += [(secrets.token_bytes(20), int(s)) for s in rng.integers(-2**31, 2**45, size=40)]
    cases.append((secrets.token_bytes(100), 123456))  # keys longer than a block are hashed first
    vectors = [[base64.b64encode(k).decode(), s] for k, s in cases]
    script = ("var r = require('./rotating.js'); var v = " + json.dumps(vectors) + ";"
              "console.log(JSON.stringify(v.map(function (x) { return r.codeFor(r.fromBase64(x[0]), x[1]); })));")
    assert json.loads(_node(script)) == [code_for(k, s) for k, s in cases]


@needs_node
def test_the_js_qr_encoder_draws_a_code_that_decodes_to_the_ticket_text() -> None:
    text = "GH1:" + base64.b32encode(secrets.token_bytes(93)).decode().rstrip("=") + ":ABCDEFGH"
    script = ("var q = require('./qrcode.js'); var c = new q.QRCode(-1, q.ErrorCorrectLevel.M);"
              f"c.addData({json.dumps(text)}); c.make(); var n = c.getModuleCount(), rows = [];"
              "for (var r = 0; r < n; r++) { var s = ''; for (var k = 0; k < n; k++) s += c.isDark(r, k) ? '1' : '0';"
              " rows.push(s); } console.log(rows.join('\\n'));")
    rows = _node(script).split()
    matrix = np.array([[0 if ch == "1" else 255 for ch in row] for row in rows], np.uint8)
    image = np.pad(matrix, 4, constant_values=255).repeat(6, axis=0).repeat(6, axis=1)
    decoded = zxingcpp.read_barcodes(image)
    assert [d.text for d in decoded] == [text]


def _rotating_ticket(admin: httpx.Client, number: str) -> dict:  # type: ignore[type-arg]
    r = admin.post("/api/v1/tickets/import", content=f"number,zone,holder,rotating\n{number},North,Fan,yes\n".encode())
    assert r.status_code == 200 and r.json()["created"] == 1, r.text
    t = admin.get("/api/v1/tickets", params={"number": number}).json()[0]
    return admin.get(f"/api/v1/tickets/{t['ticket_id']}/credential").json()  # type: ignore[no-any-return]


def test_the_page_is_served_for_a_valid_ticket_and_refused_otherwise(hub: Hub, admin: httpx.Client) -> None:
    cred = _rotating_ticket(admin, "FAN-1")
    assert cred["rotating"] and cred["fan_page"].startswith("/t/")
    with hub.client() as anon:
        page = anon.get(cred["fan_page"])
        assert page.status_code == 200 and cred["text"] in page.text and "GatehouseRotating" in page.text
        assert anon.get("/t/no-such-page").status_code == 404
        assert anon.get("/static/rotating.js").status_code == 200
    tid = cred["ticket_id"]
    admin.post(f"/api/v1/tickets/{tid}/transfer", json={"holder": "Someone Else"})
    with hub.client() as anon:
        assert anon.get(cred["fan_page"]).status_code == 404  # the old holder's page is gone


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_the_page_shows_the_current_code_and_keeps_rotating_offline(hub: Hub, admin: httpx.Client) -> None:
    from playwright.sync_api import sync_playwright

    cred = _rotating_ticket(admin, "FAN-2")
    fan = admin.get("/api/v1/fan/" + cred["fan_page"].rsplit("/", 1)[1]).json()
    secret = base64.b64decode(fan["secret"])
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"] if os.geteuid() == 0 else [])
        try:
            context = browser.new_context(viewport={"width": 390, "height": 844})
            page = context.new_page()
            page.clock.install(time=time.time())
            page.goto(hub.url + cred["fan_page"], timeout=TIMEOUT_S * 1000)

            def shown() -> tuple[str, str]:
                text = page.locator("#qr").get_attribute("data-text") or ""
                png = page.locator("#qr").screenshot()
                image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
                return text, zxingcpp.read_barcodes(image)[0].text

            text, decoded = shown()
            now = page.evaluate("Date.now() / 1000")
            assert decoded == text == f"{cred['text']}:{code_for(secret, step_at(now))}"
            context.set_offline(True)
            page.clock.run_for(STEP_S * 1000 * 3)
            text2, decoded2 = shown()
            now2 = page.evaluate("Date.now() / 1000")
            assert decoded2 == text2 == f"{cred['text']}:{code_for(secret, step_at(now2))}"
            assert text2 != text
        finally:
            browser.close()
