"""``gatehouse gate doctor``: what is wrong with this gate, each with the fix, before doors open.

Every check returns a :class:`Check`: ``ok`` (✔), ``fail`` (✖, with the fix) or ``info`` (–:
nothing to judge here, e.g. an SD card that does not report its wear). The doctor passes only
when no check fails.

Two ways to run the same checks:

* **standalone** (:func:`run_checks` with no agent; the gate agent stopped): the doctor opens
  the hardware itself — camera frames, the serial ports, the GPIO pins — and reads the stores
  read-only. A device the running agent holds could not be opened, so the CLI asks a running
  agent instead (below).
* **live** (:func:`run_checks` with the running :class:`~gate_agent.agent.GateAgent`): the
  hardware is judged from the agent's own scanner, turnstile and lane (nothing is re-opened),
  the stores likewise read-only. The staff screen's service page and ``GET /api/doctor``
  serve this, and ``gatehouse gate doctor`` uses it when the agent answers.
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email.utils
import json
import logging
import os
import shutil
import socket
import sqlite3
import ssl
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from firmware_bridge.config import GpioTurnstileConfig, SerialTurnstileConfig
from gate_agent.config import GateConfig
from scanners.config import CameraScannerConfig, HidScannerConfig, SerialScannerConfig

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from gate_agent.agent import GateAgent

#: limits the checks judge against
MIN_FREE_MB = 500
MAX_CLOCK_SKEW_S = 2.0
MIN_CERT_DAYS = 14
MAX_BACKLOG = 1000
CAMERA_SAMPLE_S = 2.0
MIN_CAMERA_FPS = 10.0
HTTP_TIMEOUT_S = 5.0
#: GPIO settings that drive something (claimed as outputs, held off)
OUTPUT_PINS = frozenset({"relay_in", "relay_out", "led_green", "led_red", "buzzer"})


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | fail | info
    detail: str
    fix: str = ""

    @property
    def ok(self) -> bool:
        return self.status != "fail"


def ok(name: str, detail: str) -> Check:
    return Check(name, "ok", detail)


def fail(name: str, detail: str, fix: str) -> Check:
    return Check(name, "fail", detail, fix)


def info(name: str, detail: str) -> Check:
    return Check(name, "info", detail)


@dataclass
class Report:
    gate_id: str
    checks: list[Check] = field(default_factory=list)
    mode: str = "standalone"

    @property
    def passed(self) -> bool:
        return all(c.ok for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {"gate_id": self.gate_id, "mode": self.mode, "ok": self.passed,
                "failed_count": sum(not c.ok for c in self.checks), "checks_count": len(self.checks),
                "checks": [asdict(c) for c in self.checks]}

    def render(self) -> str:
        lines = [f"gatehouse gate doctor — gate {self.gate_id} ({self.mode})"]
        for c in self.checks:
            mark = {"ok": "✔", "fail": "✖", "info": "–"}[c.status]
            lines.append(f"{mark} {c.name}: {c.detail}")
            if c.fix:
                lines.append(f"    fix: {c.fix}")
        failed = sum(not c.ok for c in self.checks)
        lines.append("all checks passed" if not failed else f"{failed} check{'s' if failed != 1 else ''} failed")
        return "\n".join(lines)


def report_from_dict(body: dict[str, Any]) -> Report:
    return Report(str(body["gate_id"]), [Check(**c) for c in body["checks"]], str(body.get("mode", "live")))


# --- the checks -----------------------------------------------------------------------------
Probe = Callable[[], Awaitable[Check | list[Check]]]


async def run_checks(config: GateConfig, *, agent: GateAgent | None = None, pin_factory: Any = None,
                     env: dict[str, str] | None = None) -> Report:
    """Every check for ``config``; with ``agent``, the hardware is judged from the running agent."""
    report = Report(config.gate_id, [ok("config", f"valid (scanner {config.scanner.backend}, "
                                              f"turnstile {config.turnstile.backend})")],
                    "live" if agent is not None else "standalone")
    probes: list[Probe] = [
        (lambda: _scanner_live(agent)) if agent is not None else (lambda: asyncio.to_thread(_scanner, config)),
        (lambda: _turnstile_live(agent)) if agent is not None else (lambda: _turnstile(config, pin_factory)),
        lambda: asyncio.to_thread(_language, config, env),
        lambda: asyncio.to_thread(_clock_sync, env),
        lambda: asyncio.to_thread(_disk, config),
        lambda: asyncio.to_thread(_sd_wear),
        lambda: asyncio.to_thread(_replica, config),
        lambda: asyncio.to_thread(_journal, config),
        lambda: asyncio.to_thread(_manifest, config),
        lambda: _hub(config),
    ]
    for probe in probes:
        try:
            result = await probe()
        except Exception as exc:  # a check that crashes is a failed check, never a crashed doctor
            result = fail(getattr(probe, "__name__", "check"), f"the check itself failed: {type(exc).__name__}: {exc}",
                          "report this with the gate's log")
        report.checks.extend(result if isinstance(result, list) else [result])
    return report


# scanner ------------------------------------------------------------------------------------
def _scanner(config: GateConfig) -> list[Check]:
    s = config.scanner
    if isinstance(s, CameraScannerConfig):
        return _camera(s)
    if isinstance(s, SerialScannerConfig):
        return [_serial_port("scanner", s.port, s.baud, "the scanner's USB cable and the udev rule "
                             "(deploy/pi/99-gatehouse.rules: /dev/gatehouse-scanner)")]
    if isinstance(s, HidScannerConfig):
        path = Path(s.device)
        if not path.exists():
            return [fail("scanner", f"{s.device} does not exist",
                         "plug the scanner in; find it with `ls -l /dev/input/by-id/`")]
        if not os.access(path, os.R_OK):
            return [fail("scanner", f"{s.device} is not readable by this user",
                         "add the gatehouse user to the input group (install.sh does it)")]
        return [ok("scanner", f"keyboard-wedge scanner at {s.device}")]
    return [info("scanner", "simulated scanner: nothing to check")]


def _camera(s: CameraScannerConfig) -> list[Check]:
    import cv2

    cap = cv2.VideoCapture(s.device)
    try:
        if not cap.isOpened():
            return [fail("camera", f"camera {s.device!r} does not open",
                         "check the ribbon/USB cable and `v4l2-ctl --list-devices`; the user needs the video group")]
        if s.size:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, s.size[0])
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, s.size[1])
        frames, shape, decoded = 0, None, None
        started = time.monotonic()
        while time.monotonic() - started < CAMERA_SAMPLE_S:
            got, frame = cap.read()
            if not got:
                break
            frames += 1
            shape = frame.shape
            if decoded is None and frames % 5 == 1:
                decoded = _decode_one(frame)
        elapsed = max(time.monotonic() - started, 1e-6)
    finally:
        cap.release()
    checks = []
    if frames == 0:
        return [fail("camera", f"camera {s.device!r} opens but delivers no frames",
                     "another process may hold it (stop the gate agent), or the camera is faulty")]
    fps = frames / elapsed
    size = f"{shape[1]}x{shape[0]}" if shape is not None else "?"
    want = f"{s.size[0]}x{s.size[1]}" if s.size else None
    if want and size != want:
        checks.append(fail("camera", f"{fps:.0f} frames/s at {size}, configured {want}",
                           "pick a size the camera supports (`v4l2-ctl --list-formats-ext`) or leave width/height out"))
    elif fps < MIN_CAMERA_FPS:
        checks.append(fail("camera", f"only {fps:.1f} frames/s at {size} (need {MIN_CAMERA_FPS:g})",
                           "lower the resolution, improve the light (long exposure), or use a USB3/CSI camera"))
    else:
        checks.append(ok("camera", f"{fps:.0f} frames/s at {size}"))
    checks.append(ok("camera decode", f"decoded {decoded!r}") if decoded else
                  info("camera decode", "no code seen: hold a ticket in front of the camera and run the doctor again"))
    return checks


def _decode_one(frame: Any) -> str | None:
    try:
        from scanners.decode import Cascade

        codes = Cascade().decode(frame).codes
    except Exception as exc:  # the camera line reports "no code read"; the log says why
        log.warning("doctor: decoding a camera frame failed: %r", exc, exc_info=True)
        return None
    return codes[0].payload.decode("utf-8", "replace") if codes else None


def _serial_port(name: str, port: str, baud: int, fix: str) -> Check:
    import serial

    if not port.startswith(("socket://", "rfc2217://", "loop://")) and not Path(port).exists():
        return fail(name, f"{port} does not exist", f"plug it in; check {fix}")
    try:
        ser = serial.serial_for_url(port, baudrate=baud, timeout=0.1, exclusive=True)
    except (serial.SerialException, OSError, ValueError) as exc:
        return fail(name, f"{port} does not open: {exc}",
                    "stop whatever holds it (the gate agent?); the user needs the dialout group")
    ser.close()
    return ok(name, f"{port} opens at {baud} baud")


async def _scanner_live(agent: GateAgent | None) -> Check:
    assert agent is not None
    health = getattr(agent._scanner, "health", None)
    state = getattr(health, "state", None) if health is not None else None
    cause = agent.ladder.facts.scanner_fault
    if cause:
        return fail("scanner", f"fault: {cause}", "check the scanner's cable and power; the gate is in MANIFEST mode")
    return ok("scanner", f"running ({state or 'no fault reported'})")


# turnstile ----------------------------------------------------------------------------------
async def _turnstile(config: GateConfig, pin_factory: Any) -> list[Check]:
    t = config.turnstile
    if isinstance(t, SerialTurnstileConfig):
        return await _serial_controller(t)
    if isinstance(t, GpioTurnstileConfig):
        return await asyncio.to_thread(_gpio, t, pin_factory)
    return [info("turnstile", "simulated turnstile: nothing to check")]


async def _serial_controller(t: SerialTurnstileConfig) -> list[Check]:
    from firmware_bridge.serial_backend import SerialTurnstile

    turnstile = SerialTurnstile(t)
    async with turnstile:
        if turnstile.faulted or turnstile.link.state != "ready":
            return [fail("turnstile controller", f"no answer on {t.port} (link {turnstile.link.state})",
                         "check the controller's power and USB cable (/dev/gatehouse-turnstile); stop the gate agent "
                         "if it is running")]
        state = await turnstile.query_state()
    if state is None:
        return [fail("turnstile controller", f"{t.port}: handshake done but no state report",
                     "update the controller firmware (firmware_bridge/firmware)")]
    checks = [ok("turnstile controller", f"answers on {t.port}, {state['passages_in']} passages in, "
                                          f"{state['passages_out']} out since its start")]
    checks.append(fail("fire contact", "OPEN: the lane is in free egress",
                       "check the fire panel; a cut wire reads as an alarm")
                  if state.get("fire_open") else ok("fire contact", "closed (idle)"))
    released = [d for d in ("in", "out") if state.get(f"released_{d}")]
    checks.append(fail("passage sensor", f"arm released ({', '.join(released)}) with no admit",
                       "lock it: restart the controller; check the mechanism") if released
                  else ok("passage sensor", "locked, idle"))
    return checks


def _gpio(t: GpioTurnstileConfig, pin_factory: Any) -> list[Check]:
    from gpiozero import Device, DigitalInputDevice, DigitalOutputDevice, GPIOZeroError

    checks: list[Check] = []
    if pin_factory is None:
        chips = sorted(Path("/dev").glob("gpiochip*"))
        if not chips:
            return [fail("gpio chip", "no /dev/gpiochip*: this is not a Raspberry Pi, or the GPIO driver is off",
                         "run the gate on the Pi; on Raspberry Pi OS the chip is always there")]
        unreadable = [str(c) for c in chips if not os.access(c, os.R_OK | os.W_OK)]
        if unreadable:
            return [fail("gpio chip", f"{', '.join(unreadable)} not accessible to this user",
                         "add the gatehouse user to the gpio group (install.sh does it) and log in again")]
        checks.append(ok("gpio chip", ", ".join(str(c) for c in chips)))
    devices: list[Any] = []
    try:
        claimed = []
        for key, pin in t.pins().items():
            try:
                if key in OUTPUT_PINS:
                    # Claimed as the backend claims it: an output held off. Never as an input,
                    # whose pull-up could energise a relay module and release the arm.
                    dev: Any = DigitalOutputDevice(pin, active_high=t.relay_active_high if key.startswith("relay")
                                                   else True, initial_value=False, pin_factory=pin_factory)
                else:
                    pull_up = t.sensor_active_low if key.startswith("sensor") else True
                    dev = DigitalInputDevice(pin, pull_up=pull_up, pin_factory=pin_factory)
                devices.append((key, dev))
            except GPIOZeroError as exc:
                claimed.append(f"{key}={pin} ({exc})")
        if claimed:
            checks.append(fail("gpio pins", "cannot claim " + "; ".join(claimed),
                               "another process holds them (stop the gate agent, check `gpioinfo`) or the pin "
                               "number is wrong"))
            return checks
        checks.append(ok("gpio pins", f"{len(devices)} pins free: " + ", ".join(f"{k}={p}" for k, p in t.pins().items())))
        by_key = dict(devices)
        sensor = by_key.get("sensor_in")
        if sensor is not None:
            checks.append(fail("passage sensor", "reads active with nobody in the lane",
                               "check the sensor wiring and sensor_active_low; clear the lane")
                          if sensor.is_active else ok("passage sensor", "idle"))
        fire = by_key.get("fire_contact")
        if fire is None:
            checks.append(info("fire contact", "not wired (no fire_contact pin): the lane has no fire-alarm input"))
        else:
            checks.append(ok("fire contact", "closed (idle)") if fire.is_active else
                          fail("fire contact", "OPEN: the gate will start in free egress",
                               "check the fire panel's contact and wiring (normally closed, to ground)"))
    finally:
        for _key, dev in devices:
            with contextlib.suppress(Exception):
                dev.close()
        if pin_factory is None:
            with contextlib.suppress(Exception):
                Device.pin_factory = None
    return checks


async def _turnstile_live(agent: GateAgent | None) -> list[Check]:
    assert agent is not None
    t = agent._turnstile
    checks = []
    if getattr(t, "faulted", False):
        checks.append(fail("turnstile", "the controller or mechanism reports a fault",
                           "check the controller's power and cable; see the gate log for the cause"))
    else:
        checks.append(ok("turnstile", f"{agent.config.turnstile.backend} backend answering"))
    checks.append(fail("fire contact", "emergency: free egress", "check the fire panel; reset from the control room")
                  if getattr(t, "emergency", False) else ok("fire contact", "no alarm"))
    return checks


# language -----------------------------------------------------------------------------------
#: what fontconfig calls each language (a font "covers" it when it has every letter)
FONT_LANGS = {"en": "en", "zh_Hans": "zh-cn", "ru": "ru", "kk": "kk"}
#: the Debian package that covers each language on the kiosk screen
FONT_PACKAGES = {"zh_Hans": "fonts-noto-cjk"}


def _language(config: GateConfig, env: dict[str, str] | None = None) -> list[Check]:
    """The staff screen's language: its catalogue is complete, and the kiosk has a font with
    every letter of it (otherwise Chinese or Kazakh letters show as empty boxes)."""
    import i18n

    code = config.language
    tag = i18n.tag_of(code)
    checks = []
    try:
        have = i18n.catalogue(code)
        template = i18n.template_ids()
    except (OSError, ValueError) as exc:
        return [fail("language", f"the {tag} catalogue cannot be read: {exc}",
                     "reinstall gatehouse: its i18n/ directory is incomplete")]
    missing = [m for m in template if m not in have] if code != i18n.DEFAULT else []
    if missing:
        checks.append(fail("language", f"{tag}: {len(missing)} of {len(template)} messages untranslated "
                                       f"(shown in English), e.g. {missing[0]!r}",
                           "install a gatehouse release whose catalogues are complete (the tests check them)"))
    else:
        checks.append(ok("language", f"{tag} ({i18n.NATIVE_NAMES[code]}): every screen message translated"))
    fc_list = shutil.which("fc-list", path=(env or os.environ).get("PATH"))
    if fc_list is None:
        checks.append(info("screen font", "fontconfig (fc-list) not installed: fonts not checked"))
        return checks
    try:
        out = subprocess.run([fc_list, f":lang={FONT_LANGS[code]}", "family"], capture_output=True, text=True,
                             timeout=10, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        checks.append(info("screen font", f"fc-list did not answer: {exc}"))
        return checks
    families = sorted({f.split(",")[0].strip() for f in out.stdout.splitlines() if f.strip()})
    if not families:
        package = FONT_PACKAGES.get(code, "fonts-dejavu-core")
        checks.append(fail("screen font", f"no installed font has every {tag} letter: the screen would show boxes",
                           f"sudo apt-get install {package}"))
    else:
        checks.append(ok("screen font", f"{len(families)} font famil{'y' if len(families) == 1 else 'ies'} with every "
                                        f"{tag} letter, e.g. {families[0]}"))
    return checks


# clock --------------------------------------------------------------------------------------
def _clock_sync(env: dict[str, str] | None = None) -> Check:
    tool = shutil.which("timedatectl")
    if tool:
        try:
            out = subprocess.run([tool, "show", "-p", "NTPSynchronized", "--value"], capture_output=True, text=True,
                                 timeout=5, env=env)
            value = out.stdout.strip()
            if value == "yes":
                return ok("clock synchronised", "NTP synchronised (timedatectl)")
            if value == "no":
                return fail("clock synchronised", "NTP not synchronised",
                            "enable a time source: `timedatectl set-ntp true` (or chrony) and check the network")
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.info("doctor: timedatectl gave no answer (%s); trying chrony and timesyncd", exc)
    chronyc = shutil.which("chronyc")
    if chronyc:
        try:
            out = subprocess.run([chronyc, "-n", "tracking"], capture_output=True, text=True, timeout=5)
            if "Normal" in out.stdout:
                return ok("clock synchronised", "chrony tracking a source")
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.info("doctor: chronyc gave no answer (%s); trying timesyncd", exc)
    if Path("/run/systemd/timesync/synchronized").exists():
        return ok("clock synchronised", "systemd-timesyncd synchronised")
    return fail("clock synchronised", "no synchronised time source found (timedatectl, chrony, timesyncd)",
                "install and enable one: `apt-get install systemd-timesyncd` or chrony")


# storage ------------------------------------------------------------------------------------
def _disk(config: GateConfig) -> Check:
    path = config.data_dir if config.data_dir.exists() else config.data_dir.parent
    usage = shutil.disk_usage(path)
    free_mb = usage.free / 2**20
    if free_mb < MIN_FREE_MB:
        return fail("disk space", f"{free_mb:.0f} MB free on {path} (need {MIN_FREE_MB})",
                    "free space: `journalctl --vacuum-size=50M`, remove old replica.sqlite3.aside-* files")
    return ok("disk space", f"{free_mb:.0f} MB free on {path} ({usage.free / usage.total:.0%})")


def _sd_wear() -> Check:
    for dev in sorted(Path("/sys/block").glob("mmcblk*")):
        life = dev / "device" / "life_time"
        eol = dev / "device" / "pre_eol_info"
        if life.exists():
            values = [int(v, 16) for v in life.read_text().split()]
            worst = max(values) if values else 0
            eol_v = int(eol.read_text().strip(), 16) if eol.exists() else 1
            if worst >= 0x09 or eol_v >= 0x02:
                return fail("sd card wear", f"{dev.name}: {worst * 10}% of its rated life used (pre-EOL {eol_v})",
                            "replace the card before the event (clone it: docs/operations.md)")
            return ok("sd card wear", f"{dev.name}: at most {worst * 10}% of rated life used")
        return info("sd card wear", f"{dev.name} does not report its wear (most SD cards do not); "
                                    "replace cards after a season (docs/operations.md)")
    return info("sd card wear", "no SD/eMMC card (mmcblk) on this machine")


def _ro(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)


def _replica(config: GateConfig) -> list[Check]:
    from gate_agent.replica import SCHEMA_VERSION

    path = config.replica_path
    if not path.exists():
        return [fail("replica", f"no replica at {path}",
                     "enrol the gate (`gatehouse gate enroll`) and start it online: the hub sends the replica")]
    try:
        with contextlib.closing(_ro(path)) as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            quick = db.execute("PRAGMA quick_check").fetchone()[0]
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            tickets = db.execute("SELECT count(*) FROM tickets").fetchone()[0]
    except sqlite3.Error as exc:
        return [fail("replica", f"unreadable: {exc}",
                     "set it aside and take a fresh one: `gatehouse gate rebuild-replica --config …`")]
    checks = []
    if version != SCHEMA_VERSION:
        checks.append(fail("replica schema", f"version {version}, this software uses {SCHEMA_VERSION}",
                           "older: start the gate (it migrates forward); newer: install the matching version or "
                           "`gatehouse gate rebuild-replica`"))
    else:
        checks.append(ok("replica schema", f"version {version}"))
    checks.append(ok("replica integrity", "quick_check ok") if quick == "ok" else
                  fail("replica integrity", f"quick_check: {quick}", "`gatehouse gate rebuild-replica --config …`"))
    synced = meta.get("synced_at")
    if synced is None:
        checks.append(fail("replica age", f"never synced from the hub ({tickets} tickets)",
                           "start the gate with the hub reachable; it stays in MANIFEST mode until then"))
    else:
        age = time.time() - float(synced)
        too_old = age > config.max_replica_age_s
        text = f"synced {_ago(age)} ago, {tickets} tickets, cursor {meta.get('cursor', 0)}"
        checks.append(fail("replica age", text + f" (limit {_ago(config.max_replica_age_s)})",
                           "connect the gate to the hub; it catches up by itself") if too_old else ok("replica age", text))
    return checks


def _journal(config: GateConfig) -> Check:
    path = config.journal_path
    if not path.exists():
        return info("journal backlog", "no journal yet (the gate has never run)")
    try:
        with contextlib.closing(_ro(path)) as db:
            last = db.execute("SELECT max(seq) FROM journal").fetchone()[0] or 0
            acked = dict(db.execute("SELECT key, value FROM journal_meta").fetchall()).get("acked_seq", 0)
            quick = db.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.Error as exc:
        return fail("journal", f"unreadable: {exc}", "keep the file for the hub (copy it off the card) and call support")
    if quick != "ok":
        return fail("journal", f"quick_check: {quick}", "copy the file off the card before anything else; call support")
    backlog = int(last) - int(acked)
    text = f"{backlog} entries not yet confirmed by the hub (last seq {last})"
    return fail("journal backlog", text, "connect the gate to the hub; it uploads by itself") \
        if backlog > MAX_BACKLOG else ok("journal backlog", text)


def _manifest(config: GateConfig) -> Check:
    path = config.data_dir / "manifest.sqlite3"
    if not path.exists():
        return fail("manifest", "no manifest on the gate", "start the gate online: it pulls the manifest from the hub")
    try:
        with contextlib.closing(_ro(path)) as db:
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.Error as exc:
        return fail("manifest", f"unreadable: {exc}", "delete manifest.sqlite3; the gate pulls a new one online")
    if "hub_seq" not in meta:
        return fail("manifest", "never received from the hub",
                    "start the gate online; check that the gate has zones assigned on the hub")
    age = time.time() - float(meta.get("generated_at", 0))
    return ok("manifest", f"{meta.get('rows', 0)} rows at hub seq {meta['hub_seq']}, generated {_ago(age)} ago")


# hub ----------------------------------------------------------------------------------------
async def _hub(config: GateConfig) -> list[Check]:
    import httpx

    from gate_agent.sync_link import GateCredentials

    creds = GateCredentials.load(config.credentials_path)
    url = (config.hub_url or (creds.hub_url if creds else "")).rstrip("/")
    if url.endswith("/ws/gate"):
        url = url[: -len("/ws/gate")]
    url = url.replace("wss://", "https://", 1).replace("ws://", "http://", 1)
    if not url:
        return [fail("hub", "no hub address (hub_url) and the gate is not enrolled",
                     "set hub_url in gate.toml and run `gatehouse gate enroll --hub URL --token=TOKEN`")]
    checks: list[Check] = []
    verify: Any = True
    if config.ca_file is not None:
        if not config.ca_file.exists():
            return [fail("hub tls", f"ca_file {config.ca_file} does not exist", "copy the hub's CA certificate there")]
        verify = ssl.create_default_context(cafile=str(config.ca_file))
    try:
        async with httpx.AsyncClient(verify=verify, timeout=HTTP_TIMEOUT_S) as client:
            sent = time.time()
            r = await client.get(url + "/healthz")
            received = time.time()
    except httpx.ConnectError as exc:
        text = str(exc)
        if "CERTIFICATE" in text.upper() or isinstance(exc.__cause__, ssl.SSLError):
            return [fail("hub tls", f"{url}: certificate not accepted: {text}",
                         "set ca_file to the hub's CA (pinned), or renew the hub's certificate")]
        return [fail("hub reachable", f"{url}: {text}", "check the network cable/Wi-Fi, the hub's address and "
                     "that the hub runs (`systemctl status gatehouse-hub` on the hub)")]
    except httpx.HTTPError as exc:
        return [fail("hub reachable", f"{url}: {type(exc).__name__}: {exc}", "check the network and the hub")]
    checks.append(ok("hub reachable", f"{url} answered {r.status_code} in {(received - sent) * 1000:.0f} ms")
                  if r.status_code == 200 else
                  fail("hub reachable", f"{url}/healthz answered {r.status_code}", "check the hub's log"))
    checks.append(await asyncio.to_thread(_tls, url, config))
    date = r.headers.get("date")
    if date:
        # The Date header is whole seconds and uvicorn refreshes it once a second: the hub's
        # clock was in [date, date + 2) when it answered. Take the middle: ±1 s resolution.
        hub_time = email.utils.parsedate_to_datetime(date).timestamp() + 1.0
        skew = hub_time - (sent + received) / 2
        checks.append(ok("clock skew to hub", f"{skew:+.0f} s (±1 s)") if abs(skew) <= MAX_CLOCK_SKEW_S + 1 else
                      fail("clock skew to hub", f"{skew:+.0f} s (±1 s)", "synchronise this gate's clock (and the "
                           "hub's) with NTP: decisions on validity windows and rotating codes depend on it"))
    else:
        checks.append(info("clock skew to hub", "the hub sent no Date header"))
    if creds is None:
        checks.append(fail("gate token", "the gate is not enrolled (no gate-credentials.json)",
                           "`gatehouse gate enroll --hub URL --token=TOKEN --data-dir DATA_DIR`"))
        return checks
    try:
        async with httpx.AsyncClient(verify=verify, timeout=HTTP_TIMEOUT_S,
                                     headers={"Authorization": f"Bearer {creds.token}"}) as client:
            r = await client.get(f"{url}/api/v1/gates/{creds.gate_id}/journal/high-water")
    except httpx.HTTPError as exc:
        checks.append(fail("gate token", f"not checked: {exc}", "check the network and the hub"))
        return checks
    if r.status_code == 200:
        checks.append(ok("gate token", f"accepted for gate {creds.gate_id} (hub holds seq {r.json().get('high_water')})"))
    else:
        checks.append(fail("gate token", f"refused for gate {creds.gate_id} (HTTP {r.status_code})",
                           "the hub does not know this gate or revoked it: get a new enrolment token from the "
                           "control room and run `gatehouse gate enroll` again"))
    return checks


def _tls(url: str, config: GateConfig) -> Check:
    parts = urlsplit(url)
    if parts.scheme != "https":
        return fail("hub tls", f"{url} is not encrypted",
                    "use https:// with the hub's certificate (http:// only on a closed test network)")
    ctx = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
    host, port = parts.hostname or "", parts.port or 443
    with socket.create_connection((host, port), timeout=HTTP_TIMEOUT_S) as raw, \
            ctx.wrap_socket(raw, server_hostname=host) as tls:
        cert = tls.getpeercert() or {}
    not_after = dt.datetime.fromtimestamp(ssl.cert_time_to_seconds(str(cert["notAfter"])), dt.UTC)
    days = (not_after - dt.datetime.now(dt.UTC)).days
    pinned = f"pinned to {config.ca_file}" if config.ca_file else "public CA (not pinned)"
    if days < MIN_CERT_DAYS:
        return fail("hub tls", f"certificate expires in {days} days ({not_after:%Y-%m-%d})",
                    "renew the hub's certificate before the event")
    return ok("hub tls", f"valid until {not_after:%Y-%m-%d} ({days} days), {pinned}")


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def dumps(report: Report) -> str:
    return json.dumps(report.as_dict(), ensure_ascii=False)
