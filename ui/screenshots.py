"""``python -m ui.screenshots OUTDIR``: screenshots of the dashboard and the gate screen.

Starts a small venue (a real hub and four real gate agents on 127.0.0.1, see
:mod:`ui.venue`), replays 45 minutes of arrivals at the gates (the gates' clock runs behind
and catches up), adds the things a control room must see — refusals, a forced passage, a
scanner fault that puts a gate in MANIFEST mode, a double admit during a network cut — and
saves with the system Chromium, in every language (English without a suffix, the others as
``-zh-Hans``, ``-ru``, ``-kk``):

* ``dashboard.png``: the supervisor dashboard, kick-off 25 minutes away;
* ``gate-screen.png``: a gate's staff screen just after an admit (``-800`` on a 7" 800×480 display);
* ``gate-manifest.png``: the staff screen of the gate in MANIFEST mode, a search done;
* ``fan.png``: a fan's rotating ticket on a phone.
"""
from __future__ import annotations

import argparse
import asyncio
import math
import random
import sys
import tempfile
import time
from pathlib import Path

from playwright.async_api import Browser, async_playwright

from tickets.model import Direction
from ui.venue import Venue, start_venue, until

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ZONES = (("North stand", 320), ("South stand", 260), ("East stand", 180))
GATES = (("North 1", "North stand"), ("North 2", "North stand"), ("South 1", "South stand"),
         ("East 1", "East stand"))
REPLAY_MIN = 45
#: North stand tickets kept out of the replay (ticket i+1 is in zone i % 3)
DOUBLE_ADMIT, SCREEN_ADMIT = 1, 4
#: North stand tickets admitted at the gate screen, one per language and size
SCREEN_TICKETS = (7, 10, 13, 16, 19, 22, 25, 28)
RESERVED = {DOUBLE_ADMIT, SCREEN_ADMIT, *SCREEN_TICKETS}
LANGS = ("en", "zh-Hans", "ru", "kk")


async def launch(p: object) -> Browser:
    return await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)  # type: ignore[attr-defined,no-any-return]


async def traffic(venue: Venue, rng: random.Random) -> None:
    """Arrivals building up towards kick-off, with the usual refusals mixed in."""
    ids = {gid: [] for gid in venue.gates}  # type: dict[str, list[int]]
    zone_of = {gid: venue.zones[zone] for (_n, zone), gid in zip(GATES, venue.gates, strict=True)}
    zone_ids = sorted(venue.zones.values())
    tickets = 600
    by_zone = {z: [i + 1 for i in range(tickets) if zone_ids[i % len(zone_ids)] == z and i + 1 not in RESERVED]
               for z in zone_ids}
    for z in by_zone:
        rng.shuffle(by_zone[z])
    used: list[tuple[str, int]] = []
    for minute in range(REPLAY_MIN, -1, -1):
        venue.clock.offset = -60.0 * minute
        t = (REPLAY_MIN - minute) / REPLAY_MIN
        intensity = 0.4 + 3.2 * math.exp(-((t - 0.7) ** 2) / 0.05)
        for gid in venue.gates:
            zone = zone_of[gid]
            share = 0.6 if sum(1 for g in zone_of.values() if g == zone) > 1 else 1.0
            for _ in range(max(0, round(rng.gauss(intensity * share, 0.6)))):
                if not by_zone[zone]:
                    break
                tid = by_zone[zone].pop()
                await venue.scan(gid, tid)
                ids[gid].append(tid)
                used.append((gid, tid))
            r = rng.random()
            if r < 0.25 and used:
                await venue.scan(gid, rng.choice(used)[1], walk=False)  # ALREADY_USED or WRONG_GATE
            elif r < 0.32:
                await venue.scan(gid, raw=f"T9{rng.randrange(10**5):05d}".encode(), walk=False)  # UNKNOWN
            elif r < 0.36 and by_zone[zone]:
                text = bytearray((await venue.credential(by_zone[zone][-1])).encode())
                text[40] = ord("A") if text[40] != ord("A") else ord("B")
                await venue.scan(gid, raw=bytes(text), walk=False)  # FORGED
    venue.clock.offset = 0.0


async def incidents(venue: Venue) -> dict[str, str]:
    gids = list(venue.gates)
    north1, north2, south1, east1 = gids
    # a double admit: North 2 cut off from the hub admits a ticket North 1 admitted meanwhile
    await venue.cut(north2)
    await venue.scan(north1, DOUBLE_ADMIT)
    await venue.scan(north2, DOUBLE_ADMIT)
    await venue.reconnect(north2)
    # someone pushes through the locked arm at South 1
    venue.gates[south1].turnstile.force(Direction.IN)
    # East 1's camera dies: MANIFEST mode, staff use the paper (or on-screen) manifest
    await venue.seed_manifest(east1)
    venue.gates[east1].scanner.fault("camera: no frames for 5 s (USB reset)")
    await until(lambda: venue.gates[east1].agent.ladder.mode.value == "MANIFEST", "East 1 in MANIFEST")
    for gid in gids:
        await venue.synced(gid)
    return {"admit_gate": north1, "manifest_gate": east1}


def _name(base: str, lang: str, suffix: str = "") -> str:
    return f"{base}{suffix}.png" if lang == "en" else f"{base}-{lang}{suffix}.png"


async def shoot(out: Path) -> list[Path]:
    rng = random.Random(2026)
    with tempfile.TemporaryDirectory(prefix="gatehouse-shots-") as tmp:
        print("starting a hub and four gates…", file=sys.stderr)
        venue = await start_venue(Path(tmp), zones=ZONES, gates=GATES, tickets=600, event_name="Cup final 2026")
        try:
            print("replaying arrivals…", file=sys.stderr)
            await traffic(venue, rng)
            where = await incidents(venue)
            async with venue.client() as c:
                r = await c.put("/api/v1/event/settings", json={"kickoff_at": time.time() + 25 * 60})
                r.raise_for_status()
                r = await c.post("/api/v1/tickets/import?format=csv", headers={"content-type": "text/csv"},
                                 content="number,zone,holder,seat,rotating\nR1,North stand,Әсел Қасымова,N12 · 7,true\n")
                r.raise_for_status()
                found = (await c.get("/api/v1/tickets", params={"number": "R1"})).json()
                fan_page = (await c.get(f"/api/v1/tickets/{found[0]['ticket_id']}/credential")).json()["fan_page"]
            async with async_playwright() as p:
                browser = await launch(p)
                try:
                    saved = []
                    tickets = iter(SCREEN_TICKETS)
                    gate = venue.gates[where["admit_gate"]]
                    manifest_gate = venue.gates[where["manifest_gate"]]
                    for lang in LANGS:
                        page = await browser.new_page(viewport={"width": 1440, "height": 900})
                        await page.add_init_script(f"localStorage.setItem('gatehouse.dashboard.lang', '{lang}')")
                        await page.goto(f"{venue.url}/#token={venue.supervisor}")
                        await page.wait_for_selector("#feed.live")
                        await page.wait_for_selector("#conflicts li.conflict")
                        await page.wait_for_selector("#forecast tbody tr")
                        await page.wait_for_timeout(300)
                        saved.append(out / _name("dashboard", lang))
                        await page.screenshot(path=str(saved[-1]), full_page=True)
                        await page.close()

                        for size, suffix in (((1280, 800), ""), ((800, 480), "-800")):
                            screen = await browser.new_page(viewport={"width": size[0], "height": size[1]})
                            await screen.goto(gate.screen_url + f"?lang={lang}")
                            await venue.scan(gate.gate_id, next(tickets))
                            await screen.wait_for_selector("#verdict.admit")
                            saved.append(out / _name("gate-screen", lang, suffix))
                            await screen.screenshot(path=str(saved[-1]))
                            await screen.close()

                        screen = await browser.new_page(viewport={"width": 1280, "height": 800})
                        await screen.goto(manifest_gate.screen_url + f"?lang={lang}")
                        await screen.wait_for_selector("#manifest:not([hidden])")
                        await screen.fill("#mq", "Fan 1")
                        await screen.click("#msearch button")
                        await screen.wait_for_selector("#mresults li")
                        saved.append(out / _name("gate-manifest", lang))
                        await screen.screenshot(path=str(saved[-1]), full_page=True)
                        await screen.close()

                        phone = await browser.new_page(viewport={"width": 390, "height": 760})
                        await phone.goto(venue.url + fan_page + f"?lang={lang}")
                        await phone.wait_for_selector("#qr[data-text]")
                        saved.append(out / _name("fan", lang))
                        await phone.screenshot(path=str(saved[-1]))
                        await phone.close()
                finally:
                    await browser.close()
        finally:
            await venue.stop()
    return saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ui.screenshots", description=__doc__.split("\n\n")[0])
    parser.add_argument("outdir", type=Path, help="where to write the PNG files")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} not found: install chromium (./run test does)", file=sys.stderr)
        return 2
    args.outdir.mkdir(parents=True, exist_ok=True)
    for path in asyncio.run(shoot(args.outdir)):
        print(f"{path} ({path.stat().st_size // 1024} KB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
