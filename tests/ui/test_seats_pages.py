"""The seats and readiness pages in the system Chromium against a real hub."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from hub.store import init_hub
from tests.hub.conftest import Hub, start_hub

TICKETS = b"number,holder,zone,seat\nA1,Ann,North,R1\nA2,Bob,North,R1\nA3,Cid,North,R2\n"


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    h = start_hub(tmp_path / "hub", init_hub(tmp_path / "hub", event_id=21, name="Page cup"))
    with h.client(h.admin) as c:
        c.post("/api/v1/tickets/import", content=TICKETS, headers={"Content-Type": "text/csv"}).raise_for_status()
    yield h
    h.stop()


async def test_a_double_sold_seat_is_listed_until_one_ticket_is_revoked(hub: Hub, browser: Any) -> None:
    page = await browser.new_page()
    page.on("dialog", lambda d: d.accept())
    await page.goto(f"{hub.url}/seats#token={hub.admin}")
    row = page.locator("#clashes tr")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("A1")
    await expect(row).to_contain_text("A2")
    await row.get_by_role("button", name="Revoke").nth(1).click()
    await expect(page.locator("#clashes tr")).to_have_count(0)
    with hub.client(hub.admin) as c:
        assert c.get("/api/v1/tickets/A2").json()["status"] == "revoked"


async def test_a_supervisor_waives_a_failing_line_on_the_readiness_page(hub: Hub, browser: Any) -> None:
    page = await browser.new_page()
    answers = iter(["Ada Byron", "stewards sort the seat at the door"])
    page.on("dialog", lambda d: d.accept(next(answers, "")))
    await page.goto(f"{hub.url}/readiness#token={hub.admin}")
    await expect(page.locator("#verdict")).to_contain_text("NOT READY")
    with hub.client(hub.admin) as c:
        zone = c.get("/api/v1/zones").json()[0]["zone_id"]
    line = page.locator(f'tr[data-key="zone:{zone}:seats"]')
    await expect(line).to_contain_text("A1")
    await line.get_by_role("button", name="Waive…").click()
    await expect(line).to_contain_text("waived by Ada Byron")
    with hub.client(hub.admin) as c:
        audit = c.get("/api/v1/audit", params={"action": "readiness_waiver"}).json()
        assert audit[0]["detail"]["supervisor"] == "Ada Byron"
