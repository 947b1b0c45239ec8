"""The supervisor dashboard in headless Chromium against a real hub with real gates."""
from __future__ import annotations

import re
import time
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.ui.conftest import TIMEOUT_MS
from ui.venue import Venue, until

pytestmark = pytest.mark.browser

#: the brief: a mode change or an emergency shows on the dashboard within a second or two
LIVE_WITHIN_S = 2.0


async def open_dashboard(browser: Any, venue: Venue, token: str) -> Page:
    page = await browser.new_page(viewport={"width": 1440, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(f"{venue.url}/#token={token}")
    await expect(page.locator("#feed")).to_have_text("● LIVE")
    return page


async def test_login_form_refuses_a_bad_token_and_signs_a_viewer_in_without_supervisor_controls(
        venue: Venue, browser: Any) -> None:
    page = await browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(venue.url + "/dashboard")
    await expect(page.locator("#login")).to_be_visible()
    await page.fill("#token", "not-a-token")
    await page.click("#login-form button")
    await expect(page.locator("#login-error")).to_contain_text("unknown or revoked token")

    await page.fill("#token", venue.viewer)
    await page.click("#login-form button")
    await expect(page.locator("#login")).to_be_hidden()
    await expect(page.locator("#feed")).to_have_text("● LIVE")
    await expect(page.locator("#who")).to_contain_text("(viewer)")
    await expect(page.locator("#gates tbody tr")).to_have_count(2)
    # a viewer sees everything but can neither declare an emergency nor resolve conflicts
    await expect(page.locator("#emergency-all")).to_be_hidden()
    assert await page.locator("#gates button").count() == 0
    # the token lives in this tab's session storage only
    stored = await page.evaluate("sessionStorage.getItem('gatehouse.dashboard.token')")
    assert stored == venue.viewer


async def test_a_scan_at_a_gate_shows_in_the_dashboard_counters_live(venue: Venue, browser: Any) -> None:
    page = await open_dashboard(browser, venue, venue.viewer)
    assert "#token" not in page.url  # the fragment is dropped once read
    await expect(page.locator("#k-entries")).to_have_text("0")
    gate_id = next(iter(venue.gates))
    zone_ticket = 1  # ticket 1 is in the first stand, which the first gate serves
    decision = await venue.scan(gate_id, zone_ticket)
    assert decision["reason"] == "ADMIT"
    await expect(page.locator("#k-entries")).to_have_text("1")
    await expect(page.locator("#k-inside")).to_have_text("1")
    await expect(page.locator("#occupancy li").first).to_contain_text("1 / 400")
    # pushed over the live feed, not found by polling
    await expect(page.locator("#feed")).to_have_text("● LIVE")
    await venue.scan(gate_id, zone_ticket, walk=False)  # the same ticket again is refused
    await expect(page.locator("#refusals li").first).to_contain_text("ALREADY_USED")
    await expect(page.locator("#k-refused")).to_have_text("1")
    # a line per gate, then per stand (its label shows the current minute, which may have turned)
    await expect(page.locator("#chart polyline")).to_have_count(1)
    await expect(page.locator("#chart")).to_contain_text("North 1: ")
    await page.click("#by-zone")
    await expect(page.locator("#chart")).to_contain_text("North stand: ")


async def test_fire_alarm_at_a_gate_shows_emergency_on_the_dashboard_within_two_seconds(
        venue: Venue, browser: Any) -> None:
    page = await open_dashboard(browser, venue, venue.viewer)
    gate_id = next(iter(venue.gates))
    row = page.locator(f'#gates tr[data-gate="{gate_id}"]')
    await expect(row.locator(".mode")).to_have_text("ONLINE")
    await expect(page.locator("#emergency-banner")).to_be_hidden()

    started = time.monotonic()
    venue.gates[gate_id].turnstile.fire_alarm(True)
    await expect(row.locator(".mode")).to_have_text("EMERGENCY", timeout=LIVE_WITHIN_S * 1000)
    elapsed = time.monotonic() - started
    assert elapsed < LIVE_WITHIN_S
    await expect(page.locator("#emergency-banner")).to_be_visible()
    await expect(page.locator("#emergency-text")).to_contain_text("North 1")
    await expect(row.locator(".cause")).to_contain_text("fire")
    await expect(page.locator("#alerts li.alarm").first).to_contain_text("ALARM")
    await expect(page.locator("#alerts")).to_contain_text("Fire alarm")


async def test_supervisor_declares_an_emergency_at_one_gate_and_its_turnstile_frees_egress(
        venue: Venue, browser: Any) -> None:
    page = await open_dashboard(browser, venue, venue.supervisor)
    north, south = list(venue.gates)
    await page.locator(f'#gates tr[data-gate="{north}"] button', has_text="Emergency").click()
    await expect(page.locator("#confirm")).to_be_visible()
    await page.fill("#confirm-reason", "smoke in the north concourse")
    await page.click("#confirm-ok")

    gate = venue.gates[north]
    await until(lambda: gate.agent.ladder.mode.value == "EMERGENCY", "the gate in EMERGENCY")
    await until(lambda: gate.turnstile.free_egress, "the turnstile freed for egress")
    assert venue.gates[south].agent.ladder.mode.value == "ONLINE"  # only the gate named
    await expect(page.locator(f'#gates tr[data-gate="{north}"] .mode')).to_have_text("EMERGENCY")
    await expect(page.locator("#emergency-text")).to_contain_text("smoke in the north concourse")
    async with venue.client() as c:
        audit = (await c.get("/api/v1/audit", params={"action": "emergency_on"})).json()
    assert audit[0]["actor"] == "supervisor on duty" and audit[0]["target"] == north


async def test_cancelling_the_emergency_confirmation_sends_nothing(venue: Venue, browser: Any) -> None:
    page = await open_dashboard(browser, venue, venue.supervisor)
    await page.click("#emergency-all")
    await expect(page.locator("#confirm")).to_be_visible()
    await page.fill("#confirm-reason", "changed my mind")
    await page.get_by_role("button", name="Cancel").click()
    await expect(page.locator("#confirm")).to_be_hidden()
    async with venue.client() as c:
        assert (await c.get("/api/v1/emergency")).json()["active"] is False
    assert all(g.agent.ladder.mode.value == "ONLINE" for g in venue.gates.values())


async def test_a_double_admit_during_a_network_cut_appears_as_a_conflict_and_a_supervisor_resolves_it(
        north_pair: Venue, browser: Any) -> None:
    venue = north_pair
    page = await open_dashboard(browser, venue, venue.supervisor)
    await expect(page.locator("#conflicts")).to_contain_text("No open conflicts")
    first, second = list(venue.gates)
    await venue.cut(second)
    await expect(page.locator(f'#gates tr[data-gate="{second}"] .link')).to_have_text("○ not connected")
    assert (await venue.scan(first, 5))["reason"] == "ADMIT"
    assert (await venue.scan(second, 5))["reason"] == "ADMIT"  # offline: it cannot know
    await venue.reconnect(second)

    conflict = page.locator("#conflicts li.conflict")
    await expect(conflict).to_have_count(1)
    await expect(conflict).to_contain_text(re.compile("double admit", re.IGNORECASE))
    await expect(conflict.locator(".entry").nth(0)).to_contain_text(f"gate {first}")
    await expect(conflict.locator(".entry").nth(1)).to_contain_text(f"gate {second}")
    await expect(conflict.locator(".entry").nth(1)).to_contain_text("OFFLINE")
    await expect(page.locator("#k-conflicts")).to_have_text("1")

    await conflict.locator("input").fill("fan seen at both gates; one person, let in once, steward informed")
    await conflict.locator("button", has_text="Resolve").click()
    await expect(page.locator("#conflicts")).to_contain_text("No open conflicts")
    await expect(page.locator("#k-conflicts")).to_have_text("0")
    async with venue.client() as c:
        resolved = (await c.get("/api/v1/conflicts")).json()
    assert len(resolved) == 1 and resolved[0]["resolved_by"] == "supervisor on duty"
    assert resolved[0]["resolution"].startswith("fan seen at both gates")


async def test_without_the_live_feed_the_page_polls_and_still_shows_new_entries(venue: Venue, browser: Any) -> None:
    page = await browser.new_page(viewport={"width": 1440, "height": 900})

    async def refuse(ws: Any) -> None:  # a proxy that drops websockets: the feed never comes up
        await ws.close(code=1011, reason="proxy says no")

    await page.route_web_socket("**/ws/dashboard", refuse)
    await page.goto(f"{venue.url}/#token={venue.viewer}")
    await expect(page.locator("#feed")).to_have_text("◐ POLLING")
    await expect(page.locator("#k-entries")).to_have_text("0")
    await venue.scan(next(iter(venue.gates)), 1)
    await expect(page.locator("#k-entries")).to_have_text("1")  # found by polling /api/v1/dashboard
    await expect(page.locator("#feed")).to_have_text("◐ POLLING")


async def test_a_supervisor_ends_a_control_room_emergency_from_the_banner(venue: Venue, browser: Any) -> None:
    page = await open_dashboard(browser, venue, venue.supervisor)
    await page.click("#emergency-all")
    await page.fill("#confirm-reason", "evacuation drill")
    await page.click("#confirm-ok")
    await expect(page.locator("#emergency-banner")).to_be_visible()
    await expect(page.locator("#emergency-text")).to_contain_text("all gates")
    await until(lambda: all(g.agent.ladder.mode.value == "EMERGENCY" for g in venue.gates.values()),
                "every gate in EMERGENCY")

    await page.click("#emergency-end")
    await page.fill("#confirm-reason", "drill over")
    await page.click("#confirm-ok")
    # the fire contacts are closed, so each gate resets and the banner goes
    await until(lambda: all(g.agent.ladder.mode.value == "ONLINE" for g in venue.gates.values()), "gates reset")
    await expect(page.locator("#emergency-banner")).to_be_hidden()


async def test_the_paper_manifest_link_fetches_with_the_token_and_saves_the_file(venue: Venue, browser: Any) -> None:
    page = await open_dashboard(browser, venue, venue.viewer)
    gate_id = next(iter(venue.gates))
    seen: list[str | None] = []

    async def manifest(route: Any) -> None:  # stands in for the hub's manifest route
        seen.append(route.request.headers.get("authorization"))
        await route.fulfill(status=200, content_type="text/csv", body="number,holder\nT100000,Fan 1\n")

    await page.route(f"**/api/v1/gates/{gate_id}/manifest.csv", manifest)
    async with page.expect_download() as download:
        await page.locator(f'#gates tr[data-gate="{gate_id}"] a', has_text="CSV").click()
    saved = await (await download.value).path()
    assert seen == [f"Bearer {venue.viewer}"]
    assert "T100000,Fan 1" in saved.read_text()
