"""Every page in every language, at the staff screen's two sizes, in headless Chromium against a
real hub and real gates: nothing overflows or is cut, the words come from the catalogues,
accessibility holds (axe-core), and the screens never mislead."""
from __future__ import annotations

import os
import time
from typing import Any

import pytest
from playwright.async_api import Page, expect

import i18n
from tests.ui.conftest import TIMEOUT_MS
from tickets.entry import EntryKind, JournalEntry, Passage
from tickets.model import Direction
from ui.venue import Venue, until

pytestmark = pytest.mark.browser

LANGS = ("en", "zh-Hans", "ru", "kk")
#: a 10" tablet and a 7" Raspberry Pi display
SIZES = ((1280, 800), (800, 480))
#: GATEHOUSE_SCREENSHOTS=docs/images saves what the tests see (one picture per page, language, size)
SHOTS = os.environ.get("GATEHOUSE_SCREENSHOTS")

#: Finds what a reader would miss: the page scrolling sideways, text cut by a box that hides
#: its overflow, an element reaching past the window (outside a scrolling table), and text
#: overlapping other text inside the chart. Returns one line per problem.
LAYOUT_PROBLEMS = """() => {
  const out = [];
  const W = window.innerWidth;
  const name = (e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") +
    (e.className && typeof e.className === "string" ? "." + e.className.trim().split(/\\s+/).join(".") : "");
  if (document.scrollingElement.scrollWidth > W + 1) out.push("page scrolls sideways: " + document.scrollingElement.scrollWidth + " > " + W);
  const scrollsInside = (e) => { for (let p = e.parentElement; p; p = p.parentElement) {
    const s = getComputedStyle(p); if (["auto", "scroll"].includes(s.overflowX)) return true; } return false; };
  for (const e of document.querySelectorAll("body *")) {
    const cs = getComputedStyle(e);
    if (cs.display === "none" || cs.visibility === "hidden" || !e.getClientRects().length) continue;
    if (e.closest("[hidden], dialog:not([open]), svg, .sr-only, details:not([open]) > :not(summary)")) continue;
    const hides = ["hidden", "clip"].includes(cs.overflowX) || ["hidden", "clip"].includes(cs.overflowY);
    if (hides && e.scrollWidth > e.clientWidth + 1 && !e.title) out.push("text cut in " + name(e) + ": " + (e.textContent || "").trim().slice(0, 60));
    const r = e.getBoundingClientRect();
    if (r.width && r.right > W + 1 && !scrollsInside(e)) out.push(name(e) + " reaches past the window: " + Math.round(r.right) + " > " + W);
  }
  const labels = [...document.querySelectorAll("#chart text.series")].map((t) => t.getBoundingClientRect());
  for (let i = 0; i < labels.length; i++) for (let j = i + 1; j < labels.length; j++) {
    const a = labels[i], b = labels[j];
    if (a.left < b.right && b.left < a.right && a.top < b.bottom - 1 && b.top < a.bottom - 1) out.push("chart labels overlap");
  }
  return out;
}"""


async def shot(page: Page, name: str) -> None:
    if SHOTS:
        await page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)


async def open_dashboard(browser: Any, venue: Venue, lang: str, size: tuple[int, int]) -> Page:
    page = await browser.new_page(viewport={"width": size[0], "height": size[1]})
    page.set_default_timeout(TIMEOUT_MS)
    await page.add_init_script(f"localStorage.setItem('gatehouse.dashboard.lang', '{lang}')")
    await page.goto(f"{venue.url}/#token={venue.supervisor}")
    await expect(page.locator("html")).to_have_attribute("lang", lang)
    await expect(page.locator("#feed")).to_have_class("feed live")
    await expect(page.locator("#forecast tbody tr")).to_have_count(2)
    return page


async def prepared(venue: Venue) -> str:
    """Kick-off in 20 minutes, a scan or two and a rotating ticket for the fan page."""
    async with venue.client() as c:
        r = await c.put("/api/v1/event/settings", json={"kickoff_at": time.time() + 1200})
        r.raise_for_status()
        r = await c.post("/api/v1/tickets/import?format=csv", headers={"content-type": "text/csv"},
                         content="number,zone,holder,seat,rotating\nR1,North stand,Әсел Қасымова 王伟,Қатар 12 · 座 7,true\n")
        r.raise_for_status()
        found = (await c.get("/api/v1/tickets", params={"number": "R1"})).json()
        cred = (await c.get(f"/api/v1/tickets/{found[0]['ticket_id']}/credential")).json()
    gate_id = next(iter(venue.gates))
    await venue.scan(gate_id, 1)
    await venue.scan(gate_id, 1, walk=False)
    return str(cred["fan_page"])


async def test_every_page_in_every_language_fits_the_tablet_and_the_pi_display(venue: Venue, browser: Any) -> None:
    fan_page = await prepared(venue)
    gate_id = next(iter(venue.gates))
    problems: list[str] = []
    for lang in LANGS:
        words = i18n.get(lang)
        for size in SIZES:
            tag = f"{lang} {size[0]}x{size[1]}"
            page = await open_dashboard(browser, venue, lang, size)
            await expect(page.locator("#kpis .label").first).to_have_text(words._("Entries (event)"))
            await expect(page.locator("#feed")).to_contain_text(words._("LIVE"))
            problems += [f"dashboard {tag}: {p}" for p in await page.evaluate(LAYOUT_PROBLEMS)]
            await shot(page, f"dashboard-{lang}-{size[0]}")
            await page.close()

            screen = await browser.new_page(viewport={"width": size[0], "height": size[1]})
            await screen.goto(venue.gates[gate_id].screen_url + f"?lang={lang}")
            await expect(screen.locator("#mode")).to_have_text(words._("ONLINE"))
            await venue.scan(gate_id, 1, walk=False)
            await expect(screen.locator("#verdict .word")).to_have_text(words._("STOP"))
            await expect(screen.locator("#verdict .message")).to_have_text(words.reason("ALREADY_USED"))
            problems += [f"gate screen {tag}: {p}" for p in await screen.evaluate(LAYOUT_PROBLEMS)]
            await shot(screen, f"gate-screen-{lang}-{size[0]}")
            await screen.close()

            fan = await browser.new_page(viewport={"width": size[0] // 2, "height": size[1]})
            await fan.goto(venue.url + fan_page + f"?lang={lang}")
            await expect(fan.locator("body")).to_contain_text(words._("Seat"))
            await expect(fan.locator("body")).to_contain_text("Әсел Қасымова 王伟")
            problems += [f"fan page {tag}: {p}" for p in await fan.evaluate(LAYOUT_PROBLEMS)]
            await fan.close()
    assert not problems, "\n".join(problems)


async def test_the_layout_check_finds_cut_text_and_a_page_wider_than_the_window(venue: Venue, browser: Any) -> None:
    page = await browser.new_page(viewport={"width": 800, "height": 480})
    await page.goto(venue.url + "/dashboard")
    assert await page.evaluate(LAYOUT_PROBLEMS) == []
    await page.evaluate("""() => {
      const cut = document.createElement("div");
      cut.style.cssText = "width: 100px; overflow: hidden; white-space: nowrap";
      cut.textContent = "Гүлнәр Бейсенқызы, Нұрсұлтан Жақыпов, 欧阳娜娜";
      const wide = document.createElement("div");
      wide.style.width = "1400px";
      wide.textContent = "wide";
      document.body.append(cut, wide);
    }""")
    found = "\n".join(await page.evaluate(LAYOUT_PROBLEMS))
    assert "text cut in div" in found and "page scrolls sideways" in found and "reaches past the window" in found


async def test_the_dashboard_language_is_switched_in_the_page_and_remembered(venue: Venue, browser: Any) -> None:
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    await page.goto(f"{venue.url}/#token={venue.supervisor}")
    await expect(page.locator("#gates-card h2")).to_have_text("Gates")  # this browser asks for English
    await page.select_option("#lang", "kk")
    await expect(page.locator("html")).to_have_attribute("lang", "kk")
    await expect(page.locator("#gates-card h2")).to_have_text("Кіреберістер")
    await expect(page.locator(f'#gates tr[data-gate="{next(iter(venue.gates))}"] .mode')).to_have_text("ЖЕЛІДЕ")
    await page.reload()
    await expect(page.locator("#gates-card h2")).to_have_text("Кіреберістер")  # remembered in this browser
    other = await (await browser.new_context(locale="ru-RU")).new_page()
    await other.goto(f"{venue.url}/#token={venue.viewer}")
    await expect(other.locator("#gates-card h2")).to_have_text("Входы")  # a new browser: its own language


async def test_go_and_stop_are_told_by_icon_and_word_and_readable_from_two_metres(venue: Venue, browser: Any) -> None:
    gate_id = next(iter(venue.gates))
    page = await browser.new_page(viewport={"width": 800, "height": 480})
    await page.goto(venue.gates[gate_id].screen_url)
    await expect(page.locator("#mode")).to_have_text("ONLINE")
    await venue.scan(gate_id, 13)  # a North stand ticket at the North gate
    await expect(page.locator("#verdict .icon")).to_have_text("✔")
    await expect(page.locator("#verdict .word")).to_have_text("GO")
    sizes = await page.evaluate("""() => ["word", "message"].map((c) =>
        parseFloat(getComputedStyle(document.querySelector("#verdict ." + c)).fontSize))""")
    # 2 m away a capital about 1 cm tall is read at a glance: 56 px and more on a 7" 800x480 screen
    assert sizes[0] >= 56 and sizes[1] >= 24, sizes
    solid = await page.evaluate("getComputedStyle(document.querySelector('#verdict')).borderTopStyle")
    await venue.scan(gate_id, 13, walk=False)
    await expect(page.locator("#verdict .icon")).to_have_text("✖")
    dashed = await page.evaluate("getComputedStyle(document.querySelector('#verdict')).borderTopStyle")
    assert (solid, dashed) == ("solid", "dashed")  # a grey-scale photo still tells them apart


@pytest.mark.parametrize("lang", ["en", "kk"])
async def test_no_serious_or_critical_accessibility_violations_on_any_page(venue: Venue, browser: Any,
                                                                          lang: str) -> None:
    from axe_playwright_python.async_playwright import Axe

    fan_page = await prepared(venue)
    axe = Axe()
    found: list[str] = []
    pages = []
    dash = await open_dashboard(browser, venue, lang, (1280, 800))
    pages.append(("dashboard", dash))
    login = await browser.new_page()
    await login.goto(venue.url + "/dashboard")
    await expect(login.locator("#login")).to_be_visible()
    pages.append(("sign-in", login))
    screen = await browser.new_page(viewport={"width": 800, "height": 480})
    await screen.goto(venue.gates[next(iter(venue.gates))].screen_url + f"?lang={lang}")
    await expect(screen.locator("#mode")).to_have_text(i18n.get(lang)._("ONLINE"))
    pages.append(("gate screen", screen))
    fan = await browser.new_page(viewport={"width": 400, "height": 800})
    await fan.goto(venue.url + fan_page + f"?lang={lang}")
    pages.append(("fan page", fan))
    for name, page in pages:
        results = await axe.run(page)
        for v in results.response["violations"]:
            if v["impact"] in ("serious", "critical"):
                found.append(f"{name}: {v['id']} ({v['impact']}): {v['help']} — "
                             + "; ".join(n["target"][0] for n in v["nodes"][:3]))
    assert not found, "\n".join(found)


async def test_api_docs_render_with_no_network(venue: Venue, browser: Any) -> None:
    context = await browser.new_context()
    outside: list[str] = []

    async def only_the_hub(route: Any) -> None:
        if route.request.url.startswith(venue.url):
            await route.continue_()
        else:
            outside.append(route.request.url)
            await route.abort()

    await context.route("**/*", only_the_hub)
    page = await context.new_page()
    await page.goto(venue.url + "/docs")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("gatehouse hub")
    await expect(page.locator(".opblock-tag-section").first).to_be_visible()
    assert outside == []


async def test_the_badge_says_live_while_data_flows_and_no_data_when_it_stops(venue: Venue, browser: Any) -> None:
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    held: list[Any] = []

    async def hold(ws: Any) -> None:  # a proxy that accepts the websocket and never answers
        held.append(ws)

    await page.route_web_socket("**/ws/dashboard", hold)
    await page.goto(f"{venue.url}/#token={venue.viewer}")
    # the feed never says hello, yet data flows by polling: the badge says so, never CONNECTING
    await expect(page.locator("#feed")).to_have_text("◐ POLLING")
    await venue.scan(next(iter(venue.gates)), 1)
    await expect(page.locator("#k-entries")).to_have_text("1")
    await expect(page.locator("#feed")).not_to_contain_text("CONNECTING")


async def test_entries_and_inside_now_reconcile_with_admits_waiting_at_the_turnstile(
        venue: Venue, browser: Any) -> None:
    page = await open_dashboard(browser, venue, "en", (1280, 800))
    gate_id = next(iter(venue.gates))
    gate = venue.gates[gate_id]
    assert (await venue.scan(gate_id, 3, walk=False))["reason"] == "ADMIT"  # the fan has not walked through yet
    await venue.synced(gate_id)
    await expect(page.locator("#k-entries")).to_have_text("1")
    await expect(page.locator("#k-pending")).to_have_text("waiting at a turnstile: 1")
    await expect(page.locator(f'#gates tr[data-gate="{gate_id}"] .sub')).to_contain_text("waiting at a turnstile: 1")
    gate.turnstile.walk_through(Direction.IN)
    await until(lambda: gate.agent.lane is not None and gate.agent.lane.counters.get("passed", 0) >= 1, "the passage")
    await venue.synced(gate_id)
    await expect(page.locator("#k-pending")).to_have_text("waiting at a turnstile: 0")
    await expect(page.locator("#k-inside")).to_have_text("1")


async def test_repeated_alerts_are_grouped_and_several_zero_lines_share_one_chart_label(
        venue: Venue, browser: Any) -> None:
    # both gates admitted someone five minutes ago and nobody since: both lines end on 0
    for gate_id, ticket in zip(venue.gates, (15, 16), strict=True):
        venue.clock.offset = -300.0
        await venue.scan(gate_id, ticket)
        venue.clock.offset = 0.0
        await venue.synced(gate_id)
    page = await open_dashboard(browser, venue, "en", (1280, 800))
    alerts = [{"source": "test", "gate_id": "north-1", "seq": i, "at": time.time() - 60 + i, "severity": "warn",
               "title": "Scanner fault", "title_id": "Scanner fault", "title_args": {}, "text": "camera"}
              for i in range(6)]
    await page.evaluate("(list) => { for (const a of list) addAlert(a); }", alerts)
    grouped = page.locator("#alerts li.alert", has_text="Scanner fault")
    await expect(grouped).to_have_count(1)
    await expect(grouped).to_contain_text("×6")
    # the same mode change from many gates at start-up: one line naming them
    flood = [{"source": "test", "gate_id": f"east-{i}", "seq": 1, "at": time.time() - 30 + i, "severity": "warn",
              "title": "Mode OFFLINE", "title_id": "Mode {mode}", "title_args": {"mode": "OFFLINE"},
              "text": "MANIFEST → OFFLINE: link lost in the test"} for i in range(1, 6)]
    await page.evaluate("(list) => { for (const a of list) addAlert(a); }", flood)
    line = page.locator("#alerts li.alert", has_text="east-")
    await expect(line).to_have_count(1)
    await expect(line).to_contain_text("east-5, east-4, east-3 +2 more · Mode OFFLINE")
    await expect(line).to_contain_text("×5")
    # two gates with nothing in the last minute end on the same value: one label, not two on top of each other
    await expect(page.locator("#chart polyline")).to_have_count(2)
    await expect(page.locator("#chart text.series")).to_have_count(1)
    await expect(page.locator("#chart text.series")).to_contain_text("North 1, South 1: 0")
    assert await page.evaluate(LAYOUT_PROBLEMS) == []


async def test_a_zone_late_for_kick_off_is_flagged_on_the_dashboard_with_what_to_do(venue: Venue, browser: Any) -> None:
    async with venue.client() as c:
        # kick-off in two minutes; 60 tickets each for North and South, one lane each
        r = await c.put("/api/v1/event/settings", json={"kickoff_at": time.time() + 120})
        r.raise_for_status()
    gate_id = next(iter(venue.gates))
    for ticket in (1, 3, 5, 7, 9, 11):  # North stand tickets (odd ids) through its gate, at full speed
        await venue.scan(gate_id, ticket)
    await venue.synced(gate_id)
    page = await open_dashboard(browser, venue, "ru", (1280, 800))
    north = page.locator("#forecast tbody tr", has_text="North stand")
    await expect(north).to_have_class("alert-row")
    await expect(north).to_contain_text("ОПОЗДАНИЕ")
    await expect(north).to_contain_text("откройте ещё проходов")
    async with venue.client(venue.viewer) as c:
        zone = next(z for z in (await c.get("/api/v1/forecast")).json()["zones"] if z["name"] == "North stand")
    assert zone["alert"] and zone["arrived"] == 6 and zone["not_arrived"] == 57 - 6


async def test_a_snapshot_arriving_from_the_hub_shows_rows_and_share_on_the_staff_screen(
        venue: Venue, browser: Any) -> None:
    gate = venue.gates[next(iter(venue.gates))]
    owner = gate.agent.sync_owner
    assert owner is not None
    page = await browser.new_page(viewport={"width": 800, "height": 480})
    await page.goto(gate.screen_url + "?lang=ru")
    await expect(page.locator("#snapshot")).to_be_hidden()
    owner.snapshot_progress = (250_000, 1_000_000)  # what the sync owner records between two batches
    try:
        await expect(page.locator("#snapshot")).to_be_visible()
        await expect(page.locator("#snapshot .snap-text")).to_contain_text("250\u00a0000 из 1\u00a0000\u00a0000 (25\u00a0%)")
        assert await page.locator("#snap-bar").get_attribute("value") == "25"
    finally:
        owner.snapshot_progress = None
    await expect(page.locator("#snapshot")).to_be_hidden()


async def test_an_admit_whose_passage_never_came_is_a_translated_conflict_and_not_counted_inside(
        venue: Venue, browser: Any) -> None:
    # A lane whose agent journaled an admit five minutes ago and then dropped off the network:
    # it posts its journal as any gate does, with its own token.
    north = venue.zones["North stand"]
    async with venue.client() as c:
        r = await c.post("/api/v1/gates", json={"name": "North 9", "zones": [north]})
        r.raise_for_status()
        r = await c.post("/api/v1/enroll", json={"token": r.json()["enrolment_token"]})
        r.raise_for_status()
    gate_id, token = r.json()["gate_id"], r.json()["token"]
    admit = JournalEntry(gate_id, 1, time.time() - 300, EntryKind.SCAN, reason="ADMIT", ticket_id=41, zone_id=north)
    async with venue.client(token) as lane:
        (await lane.post(f"/api/v1/gates/{gate_id}/journal", json={"entries": [admit.to_wire()]})).raise_for_status()
        page = await open_dashboard(browser, venue, "ru", (1280, 800))
        ru = i18n.get("ru")
        # the hub expires it (its house-keeping runs every few seconds) and raises it for a human
        conflict = page.locator("#conflicts li.conflict")
        await expect(conflict).to_contain_text(ru._("passage unknown"))
        await expect(conflict).to_contain_text(ru._("The gate never reported whether the fan passed the turnstile "
                                                    "(gate restarted, or its journal has not arrived); not counted "
                                                    "inside until it does."))
        await expect(conflict.locator(".entry")).to_have_count(1)  # one admit, shown once
        await expect(page.locator("#k-unconfirmed")).to_have_text(ru._("passage never reported: {n}", n=1))
        await expect(page.locator("#occupancy .bar-note")).to_have_text(ru._("passage never reported: {n}", n=1))
        await expect(page.locator("#k-inside")).to_have_text("0")
        assert await page.evaluate(LAYOUT_PROBLEMS) == []
        # the lane comes back and reports the passage: counted inside, the conflict closes itself
        passed = JournalEntry(gate_id, 2, time.time(), EntryKind.PASSAGE, reason="ADMIT", ticket_id=41, zone_id=north,
                              passage=Passage.PASSED, ref_seq=1)
        (await lane.post(f"/api/v1/gates/{gate_id}/journal", json={"entries": [passed.to_wire()]})).raise_for_status()
    await expect(page.locator("#k-inside")).to_have_text("1")
    await expect(page.locator("#k-unconfirmed")).to_be_hidden()
    await expect(page.locator("#conflicts li.conflict")).to_have_count(0)


# ---- the seats and readiness pages -----------------------------------------------------------
#: a zone named in Kazakh and Chinese, over capacity, with one seat sold twice
MIXED_ZONE = "Солтүстік трибуна 北看台"


async def with_a_clash_and_a_waiver(venue: Venue) -> int:
    """A double-sold seat in a small zone no gate admits; the zone's seat line waived by a named supervisor."""
    async with venue.client() as c:
        r = await c.post("/api/v1/zones", json={"name": MIXED_ZONE, "capacity": 1})
        r.raise_for_status()
        zone = int(r.json()["zone_id"])
        r = await c.post("/api/v1/tickets/import?format=csv", headers={"content-type": "text/csv"},
                         content=f"number,zone,holder,seat\nD1,{MIXED_ZONE},Әсел Қасымова,Қатар 3 · 座 9\n"
                                 f"D2,{MIXED_ZONE},王伟,Қатар 3 · 座 9\n")
        r.raise_for_status()
        r = await c.post("/api/v1/readiness/waivers", json={"check": f"zone:{zone}:seats", "supervisor": "Ғалым Нұрланұлы",
                                                            "reason": "стюардтар есік алдында шешеді"})
        r.raise_for_status()
    return zone


async def open_ops_page(browser: Any, venue: Venue, path: str, lang: str, size: tuple[int, int]) -> Page:
    page = await browser.new_page(viewport={"width": size[0], "height": size[1]})
    page.set_default_timeout(TIMEOUT_MS)
    await page.add_init_script(f"localStorage.setItem('gatehouse.dashboard.lang', '{lang}')")
    await page.goto(f"{venue.url}/{path}#token={venue.supervisor}")
    await expect(page.locator("html")).to_have_attribute("lang", lang)
    await expect(page.locator("#lang")).to_have_value(lang)
    return page


async def test_the_seats_and_readiness_pages_in_every_language_fit_the_tablet_and_the_pi_display(
        venue: Venue, browser: Any) -> None:
    zone = await with_a_clash_and_a_waiver(venue)
    problems: list[str] = []
    for lang in LANGS:
        words = i18n.get(lang)
        for size in SIZES:
            tag = f"{lang} {size[0]}x{size[1]}"
            page = await open_ops_page(browser, venue, "readiness", lang, size)
            await expect(page).to_have_title(words._("gatehouse — readiness"))
            await expect(page.locator("thead th").nth(3)).to_have_text(words._("What the hub knows"))
            capacity = page.locator(f'#lines tr[data-key="zone:{zone}:capacity"] td')
            await expect(capacity.nth(1)).to_have_text(words._("zone {name}", name=MIXED_ZONE))
            await expect(capacity.nth(2)).to_have_text(words._("capacity"))
            seats = page.locator(f'#lines tr[data-key="zone:{zone}:seats"]')
            await expect(seats).to_contain_text(words._("waived by {supervisor} ({actor}): {reason}",
                                                        supervisor="Ғалым Нұрланұлы", actor="admin",
                                                        reason="стюардтар есік алдында шешеді"))
            await expect(seats.get_by_role("button")).to_have_text(words._("Withdraw waiver"))
            await expect(page.locator("#verdict")).to_contain_text(words._("✖ NOT READY — {n} open").split(" — ")[0])
            problems += [f"readiness {tag}: {p}" for p in await page.evaluate(LAYOUT_PROBLEMS)]
            await shot(page, f"readiness-{lang}-{size[0]}")
            await page.close()

            page = await open_ops_page(browser, venue, "seats", lang, size)
            await expect(page).to_have_title(words._("gatehouse — seats"))
            await expect(page.locator("h2").first).to_contain_text(words._("Double-sold seats"))
            clash = page.locator("#clashes tr")
            await expect(clash).to_have_count(1)
            await expect(clash).to_contain_text("Қатар 3 · 座 9")
            await expect(clash.get_by_role("button", name=words._("Revoke"))).to_have_count(2)
            await expect(clash.get_by_role("button", name=words._("Zone has shared seats"))).to_have_count(1)
            await expect(page.locator("#over tr", has_text=MIXED_ZONE)).to_contain_text("1")
            await expect(page.locator("#reseat button")).to_have_text(words._("Send"))
            problems += [f"seats {tag}: {p}" for p in await page.evaluate(LAYOUT_PROBLEMS)]
            await shot(page, f"seats-{lang}-{size[0]}")
            await page.close()
    assert not problems, "\n".join(problems)


async def test_the_seats_and_readiness_pages_take_the_browsers_language_and_remember_a_choice(
        venue: Venue, browser: Any) -> None:
    kk = await browser.new_context(locale="kk-KZ")
    page = await kk.new_page()
    await page.goto(f"{venue.url}/readiness#token={venue.viewer}")
    await expect(page.locator("html")).to_have_attribute("lang", "kk")
    await expect(page.locator("#pdf")).to_have_text("Басып шығару (PDF)")
    context = await browser.new_context()  # asks for English
    page = await context.new_page()
    await page.goto(f"{venue.url}/seats#token={venue.supervisor}")
    await expect(page.locator("#reseat button")).to_have_text("Send")
    await page.select_option("#lang", "ru")
    await expect(page.locator("html")).to_have_attribute("lang", "ru")
    await expect(page.locator("#reseat button")).to_have_text("Отправить")
    await page.goto(f"{venue.url}/readiness")  # the same browser: the choice is remembered, here and on the dashboard
    await expect(page.locator("#pdf")).to_have_text("Печать (PDF)")
    await page.goto(f"{venue.url}/dashboard")
    await expect(page.locator("#gates-card h2")).to_have_text("Входы")


@pytest.mark.parametrize("lang", ["en", "kk"])
async def test_no_serious_or_critical_accessibility_violations_on_the_seats_and_readiness_pages(
        venue: Venue, browser: Any, lang: str) -> None:
    from axe_playwright_python.async_playwright import Axe

    await with_a_clash_and_a_waiver(venue)
    axe = Axe()
    found: list[str] = []
    for path in ("readiness", "seats"):
        page = await open_ops_page(browser, venue, path, lang, (1280, 800))
        await expect(page.locator("#lines tr, #clashes tr").first).to_be_visible()
        login = await browser.new_page()
        await login.add_init_script(f"localStorage.setItem('gatehouse.dashboard.lang', '{lang}')")
        await login.goto(f"{venue.url}/{path}")
        await expect(login.locator("#login")).to_be_visible()
        await expect(login.locator("html")).to_have_attribute("lang", lang)
        for name, p in ((path, page), (f"{path} sign-in", login)):
            results = await axe.run(p)
            for v in results.response["violations"]:
                if v["impact"] in ("serious", "critical"):
                    found.append(f"{name}: {v['id']} ({v['impact']}): {v['help']} — "
                                 + "; ".join(n["target"][0] for n in v["nodes"][:3]))
    assert not found, "\n".join(found)
