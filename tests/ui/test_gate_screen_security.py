"""The staff screen in a real browser: it still works, and another site cannot drive the gate.

The browser maps ``evil.example`` to 127.0.0.1 (``--host-resolver-rules``), which is what
DNS rebinding achieves: the attacker's page and the gate then share an origin as far as the
browser knows, and only the gate's Host check stands in the way.
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Page, expect

from tests.ui.conftest import HAVE_CHROMIUM, TIMEOUT_MS
from tickets.entry import EntryKind
from ui.screenshots import CHROMIUM, CHROMIUM_ARGS
from ui.venue import Venue, VenueGate, until

pytestmark = pytest.mark.browser


@pytest.fixture
async def rebinding_browser() -> AsyncIterator[Any]:
    if not HAVE_CHROMIUM:
        pytest.skip(f"{CHROMIUM} is not installed (./run test installs it)")
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM,
                                    args=[*CHROMIUM_ARGS, "--host-resolver-rules=MAP evil.example 127.0.0.1"])
        try:
            yield b
        finally:
            await b.close()


async def new_page(browser: Any, url: str) -> Page:
    page = await browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(url)
    return page


async def scans_of(gate: VenueGate, number: str) -> list[Any]:
    assert gate.agent.journal is not None
    return [e for e in await gate.agent.journal.all_entries() if e.kind is EntryKind.SCAN and e.ticket_number == number]


async def test_keyed_entry_and_manifest_search_work_from_the_kiosk(venue: Venue, rebinding_browser: Any) -> None:
    gate_id = next(iter(venue.gates))
    gate = venue.gates[gate_id]
    page = await new_page(rebinding_browser, gate.screen_url)
    await expect(page.locator("#mode")).to_have_text("ONLINE")
    await page.fill("#code", "T100004")
    await page.click("#keyed button")
    await expect(page.locator("#verdict .word")).to_have_text("GO")
    await until(lambda: gate.turnstile.released is not None, "the unlock for the typed ticket")

    assert await venue.seed_manifest(gate_id) > 0
    gate.scanner.fault("camera unplugged")
    await expect(page.locator("#manifest")).to_be_visible()
    await page.fill("#mq", "T100006")
    await page.click("#msearch button")
    await expect(page.locator("#mresults li").first).to_contain_text("Fan 7")  # the holder: it needs the session


async def test_a_page_on_another_site_cannot_admit_or_read_the_screen(venue: Venue, rebinding_browser: Any) -> None:
    gate = venue.gates[next(iter(venue.gates))]
    released_before = gate.turnstile.action_names().count("release")
    page = await new_page(rebinding_browser, venue.url + "/")  # another origin: the hub's port
    out = await page.evaluate("""async (gate) => {
        const body = JSON.stringify({ code: "T100008" });
        const out = {};
        try {  // the classic: a "simple" request, no preflight
            await fetch(gate + "/api/keyed", { method: "POST", mode: "no-cors", body,
                                               headers: { "content-type": "text/plain" } });
            out.simple = "sent";
        } catch (e) { out.simple = "blocked"; }
        try {  // JSON needs a preflight, which the gate never grants
            await fetch(gate + "/api/keyed", { method: "POST", body, headers: { "content-type": "application/json" } });
            out.json = "answered";
        } catch (e) { out.json = "blocked"; }
        try { out.page = await (await fetch(gate + "/")).text(); } catch (e) { out.page = "blocked"; }
        return out;
    }""", gate.screen_url)
    assert out["json"] == "blocked" and out["page"] == "blocked"  # the session never leaves the gate's origin
    await until(lambda: gate.agent.screen is not None and gate.agent.screen.refused["cross_origin"] >= 3,
                "the gate to refuse all three (the simple POST, the preflight, the page)")
    assert await scans_of(gate, "T100008") == []
    assert gate.turnstile.action_names().count("release") == released_before


async def test_dns_rebinding_gets_no_page_no_session_and_no_admit(venue: Venue, rebinding_browser: Any) -> None:
    gate = venue.gates[next(iter(venue.gates))]
    port = urlsplit(gate.screen_url).port
    page = await new_page(rebinding_browser, f"http://evil.example:{port}/")
    text = await page.content()
    assert "bad_host" in text and "gate-session" not in text
    assert gate.agent.screen is not None and gate.agent.screen.session not in text
    status = await page.evaluate("""async () => (await fetch("/api/keyed", { method: "POST",
        headers: { "content-type": "application/json" }, body: JSON.stringify({ code: "T100010" }) })).status""")
    assert status == 421
    assert await scans_of(gate, "T100010") == []
