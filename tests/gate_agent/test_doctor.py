"""``gatehouse gate doctor``: each check on real stores, a real hub, real GPIO (gpiozero's
MockFactory), the reference controller behind a pty, and the running agent's service page."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
from gpiozero import DigitalOutputDevice
from gpiozero.pins.mock import MockFactory, MockPin

from gate_agent.config import config_from_dict
from gate_agent.doctor import Report, run_checks
from gatehouse.venue import ROOT, Venue, eventually, free_port
from tests.conftest import TIMEOUT_S
from tests.firmware_bridge.controller_process import ControllerProcess

pytestmark = pytest.mark.slow


def by_name(report: Report | dict) -> dict[str, dict]:  # type: ignore[type-arg]
    checks = report["checks"] if isinstance(report, dict) else [c.__dict__ for c in report.checks]
    return {c["name"]: c for c in checks}


def doctor(*args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    import os

    env = dict(os.environ)
    if path is not None:
        env["PATH"] = path + os.pathsep + env.get("PATH", "")
    return subprocess.run([sys.executable, "-m", "gatehouse", "gate", "doctor", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT_S * 6)


@pytest.fixture
async def venue(tmp_path: Path) -> AsyncIterator[Venue]:
    v = await Venue.create(tmp_path, zones={"North": 100}, tickets_per_zone=5)
    try:
        yield v
    finally:
        await v.close()


async def test_a_running_enrolled_gate_reports_its_stores_and_hub_live_and_from_the_cli(
        venue: Venue, tmp_path: Path) -> None:
    port = free_port()
    gate = await venue.add_gate("North D", ["North"], status_port=port)
    await venue.online(gate)
    await eventually(lambda: gate.link is not None and gate.link.manifest_sync is not None
                     and gate.link.manifest_sync.refreshes > 0, what="the manifest")
    async with httpx.AsyncClient(timeout=TIMEOUT_S * 3) as c:
        assert gate.agent.screen is not None
        body = (await c.get(f"http://127.0.0.1:{port}/api/doctor",
                            headers={"X-Gate-Session": gate.agent.screen.session})).json()
        page = await c.get(f"http://127.0.0.1:{port}/service")
    assert page.status_code == 200 and "Service — gate" in page.text and "/static/service.js" in page.text
    checks = by_name(body)
    assert body["mode"] == "live" and body["gate_id"] == gate.gate_id
    for name in ("config", "replica schema", "replica integrity", "replica age", "journal backlog", "manifest",
                 "hub reachable", "gate token", "clock skew to hub", "turnstile", "fire contact", "scanner"):
        assert checks[name]["status"] == "ok", checks[name]
    assert checks["hub tls"]["status"] == "fail" and "not encrypted" in checks["hub tls"]["detail"]
    assert body["ok"] is False and body["failed_count"] == sum(c["status"] == "fail" for c in body["checks"])

    # The CLI finds the running agent and prints the same checks.
    config = tmp_path / "gate.toml"
    config.write_text(f'gate_id = "{gate.gate_id}"\ndata_dir = "{gate.agent.config.data_dir}"\n'
                      f'hub_url = "{venue.hub.url}"\nstatus_port = {port}\n', encoding="utf-8")
    # (from a thread: the agent answering it runs on this test's loop)
    done = await asyncio.to_thread(doctor, "--config", str(config), "--json")
    cli = json.loads(done.stdout)
    assert cli["mode"] == "live" and by_name(cli)["gate token"]["status"] == "ok"
    assert done.returncode == (0 if cli["ok"] else 1)
    text = await asyncio.to_thread(doctor, "--config", str(config))
    assert "✔ gate token: accepted" in text.stdout and "✖ hub tls" in text.stdout and "    fix: " in text.stdout

    # A revoked gate: the token check says so, with the fix.
    async with venue.hub.admin_client() as c:
        (await c.post(f"/api/v1/gates/{gate.gate_id}/revoke")).raise_for_status()
    standalone = json.loads((await asyncio.to_thread(doctor, "--config", str(config), "--json",
                                                     "--standalone")).stdout)
    token = by_name(standalone)["gate token"]
    assert standalone["mode"] == "standalone" and token["status"] == "fail"
    assert "enroll" in token["fix"]


def test_clock_check_reads_the_time_service(tmp_path: Path) -> None:
    config = tmp_path / "gate.toml"
    config.write_text(f'gate_id = "c-1"\ndata_dir = "{tmp_path / "d"}"\nstatus_port = 0\n')
    fake = tmp_path / "bin"
    fake.mkdir()
    tool = fake / "timedatectl"
    for answer, status in (("yes", "ok"), ("no", "fail")):
        tool.write_text(f"#!/bin/sh\necho {answer}\n")
        tool.chmod(0o755)
        report = json.loads(doctor("--config", str(config), "--json", path=str(fake)).stdout)
        assert by_name(report)["clock synchronised"]["status"] == status


def test_a_bad_config_is_a_failed_check_and_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "gate.toml"
    config.write_text('gate_id = "b"\ndata_dir = "d"\n[turnstile]\nbackend = "gpio"\nrelay_pin = 17\n')
    done = doctor("--config", str(config))
    assert done.returncode == 2
    assert "✖ config: turnstile.relay_pin: unknown key; did you mean relay_in?" in done.stdout


def gpio_config(tmp_path: Path, **over: object) -> object:
    turnstile = {"backend": "gpio", "relay_in": 17, "sensor_in": 27, "fire_contact": 22, **over}
    return config_from_dict({"gate_id": "g-1", "data_dir": str(tmp_path), "turnstile": turnstile})


class WiredPin(MockPin):
    """A mock pin with something wired to it: the level it reads survives the pull-up being set
    (gpiozero's MockPin drives itself high when a pull-up is configured)."""

    wired: ClassVar[dict[str, bool]] = {}

    def _set_pull(self, value: str) -> None:
        super()._set_pull(value)
        level = self.wired.get(self.info.name)
        if level is not None:
            self.drive_high() if level else self.drive_low()


async def test_gpio_pins_sensor_and_fire_contact_are_checked(tmp_path: Path) -> None:
    factory = MockFactory(pin_class=WiredPin)
    WiredPin.wired.clear()
    WiredPin.wired["GPIO22"] = False  # the NC fire contact is closed: pulled to ground
    checks = by_name(await run_checks(gpio_config(tmp_path), pin_factory=factory))  # type: ignore[arg-type]
    assert checks["gpio pins"]["status"] == "ok" and "relay_in=17" in checks["gpio pins"]["detail"]
    assert checks["passage sensor"]["status"] == "ok" and checks["fire contact"]["status"] == "ok"
    # The relay pin was claimed as an output held off: never driven high, so never a release.
    assert not any(st.state for st in factory.pin(17).states)

    WiredPin.wired["GPIO22"] = True  # contact open: alarm
    WiredPin.wired["GPIO27"] = False  # sensor active (to ground) with nobody there
    checks = by_name(await run_checks(gpio_config(tmp_path), pin_factory=factory))  # type: ignore[arg-type]
    assert checks["fire contact"]["status"] == "fail" and "OPEN" in checks["fire contact"]["detail"]
    assert checks["passage sensor"]["status"] == "fail"

    held = DigitalOutputDevice(17, pin_factory=factory)  # another process holds the relay pin
    try:
        checks = by_name(await run_checks(gpio_config(tmp_path), pin_factory=factory))  # type: ignore[arg-type]
    finally:
        held.close()
    assert checks["gpio pins"]["status"] == "fail" and "relay_in=17" in checks["gpio pins"]["detail"]


async def test_serial_controller_answers_and_reports_its_fire_contact(tmp_path: Path) -> None:
    controller = await ControllerProcess().start()
    try:
        cfg = config_from_dict({"gate_id": "s-1", "data_dir": str(tmp_path),
                                "turnstile": {"backend": "serial", "port": controller.port}})
        checks = by_name(await run_checks(cfg))
        assert checks["turnstile controller"]["status"] == "ok"
        assert checks["fire contact"]["status"] == "ok" and checks["passage sensor"]["status"] == "ok"
        await controller.send("fire open")
        checks = by_name(await run_checks(cfg))
        assert checks["fire contact"]["status"] == "fail"
    finally:
        await controller.stop()
    cfg = config_from_dict({"gate_id": "s-1", "data_dir": str(tmp_path),
                            "turnstile": {"backend": "serial", "port": str(tmp_path / "ttyACM9")}})
    checks = by_name(await run_checks(cfg))
    assert checks["turnstile controller"]["status"] == "fail" and checks["turnstile controller"]["fix"]


async def test_a_missing_serial_scanner_fails_with_the_fix(tmp_path: Path) -> None:
    cfg = config_from_dict({"gate_id": "s-2", "data_dir": str(tmp_path),
                            "scanner": {"backend": "serial", "port": str(tmp_path / "ttyUSB7")}})
    check = by_name(await run_checks(cfg))["scanner"]
    assert check["status"] == "fail" and "does not exist" in check["detail"] and "udev" in check["fix"]
