"""The staff screen's service page shows the doctor's checks, in the system Chromium."""
from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import expect

from gate_agent.agent import GateAgent
from gate_agent.config import GateConfig
from tests.ui.conftest import browser  # noqa: F401 - the fixture

pytestmark = pytest.mark.browser


async def test_the_service_page_lists_every_check_with_its_fix(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    agent = GateAgent(GateConfig(gate_id="svc-1", data_dir=tmp_path, status_port=0))
    await agent.start()
    try:
        page = await browser.new_page()
        await page.goto(f"{agent.status_url}/service")
        await expect(page.locator('li[data-check="config"]')).to_contain_text("✔ config: valid")
        never = page.locator('li[data-check="replica age"]')
        await expect(never).to_have_class("fail")
        await expect(never.locator(".fix")).to_contain_text("fix:")
        await expect(page.locator("#summary")).to_contain_text("check(s) failed")
        assert await page.locator("#checks li").count() >= 10
    finally:
        await agent.stop()
