"""The gate staff screen (served by the gate agent itself) in headless Chromium."""
from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.ui.conftest import TIMEOUT_MS
from tickets.entry import EntryKind
from ui.venue import Venue, until

pytestmark = pytest.mark.browser


async def open_screen(browser: Any, url: str) -> Page:
    page = await browser.new_page(viewport={"width": 1024, "height": 768})
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(url)
    await expect(page.locator("#mode")).to_have_text("ONLINE")
    return page


async def test_staff_screen_shows_go_for_a_valid_ticket_and_stop_when_it_is_shown_again(
        venue: Venue, browser: Any) -> None:
    gate_id = next(iter(venue.gates))
    page = await open_screen(browser, venue.gates[gate_id].screen_url)
    await venue.scan(gate_id, 1)
    verdict = page.locator("#verdict")
    await expect(verdict).to_have_class("admit")
    await expect(verdict.locator(".word")).to_have_text("GO")
    await expect(page.locator("#admitted")).to_have_text("1")

    await venue.scan(gate_id, 1, walk=False)
    await expect(verdict).to_have_class("refuse")
    await expect(verdict.locator(".word")).to_have_text("STOP")
    await expect(verdict.locator(".ticket")).to_contain_text("ALREADY_USED")
    await expect(page.locator("#refused")).to_have_text("1")


async def test_staff_screen_switches_to_the_manifest_when_the_scanner_fails_and_a_manual_admit_works(
        venue: Venue, browser: Any) -> None:
    gate_id = next(iter(venue.gates))
    gate = venue.gates[gate_id]
    assert await venue.seed_manifest(gate_id, steward_id="st7", pin="2468") > 0
    page = await open_screen(browser, gate.screen_url)
    await expect(page.locator("#manifest")).to_be_hidden()

    gate.scanner.fault("camera unplugged")
    await expect(page.locator("#mode")).to_have_text("MANIFEST")
    await expect(page.locator("#manifest")).to_be_visible()
    await expect(page.locator("#cause")).to_contain_text("camera unplugged")

    await page.fill("#mq", "T100002")  # ticket 3, in the stand of the first gate
    await page.click("#msearch button")
    await expect(page.locator("#mresults li").first).to_contain_text("Fan 3")
    await page.locator("#mresults li").first.click()
    await expect(page.locator("#mtyped")).to_have_value("T100002")

    await page.fill("#msteward", "st7")
    await page.fill("#mpin", "0000")
    await page.click("#madmit button")
    await expect(page.locator("#verdict .word")).to_have_text("STOP")  # wrong PIN: refused
    await page.fill("#mpin", "2468")
    await page.click("#madmit button")
    await expect(page.locator("#verdict .word")).to_have_text("GO")
    await expect(page.locator("#mtyped")).to_have_value("")

    assert gate.agent.journal is not None
    manual = [e for e in await gate.agent.journal.all_entries() if e.kind is EntryKind.MANUAL and e.reason == "ADMIT"]
    assert [(e.staff_id, e.ticket_number) for e in manual] == [("st7", "T100002")]
    await until(lambda: gate.turnstile.released is not None or gate.turnstile.action_names().count("release") > 0,
                "the turnstile released for the manual admit")
