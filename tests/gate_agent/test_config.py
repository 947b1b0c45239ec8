"""Gate configuration: one validated model for gate, scanner and turnstile.

Every example shipped in the repo loads; every mistake is reported at once with its dotted
path and, for an unknown key, the closest valid one; ``gatehouse gate run`` refuses a bad
file at once (exit 2) and a gate that fails to start exits instead of hanging.
"""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from firmware_bridge.config import GpioTurnstileConfig, SerialTurnstileConfig
from gate_agent.config import (
    GateConfig,
    GateConfigError,
    check_config,
    config_from_dict,
    load_config,
)
from scanners.config import CameraScannerConfig, SerialScannerConfig
from tests.conftest import TIMEOUT_S
from tickets.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy/pi/gate.toml.example"
#: what deploy/pi/gate.toml.example said before its turnstile keys were fixed
OLD_EXAMPLE_TURNSTILE = """
[turnstile]
backend = "gpio"
relay_pin = 17
relay_mode = "pulse"
passage_pin = 27
fire_contact_pin = 22
green_led_pin = 5
"""


def shipped_examples() -> list[tuple[str, str]]:
    """Every gate config in the repo: ``*.toml.example`` files and ```toml blocks in docs."""
    found = [(str(p.relative_to(ROOT)), p.read_text(encoding="utf-8"))
             for p in sorted(ROOT.rglob("*.toml.example")) if ".venv" not in p.parts]
    for doc in [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]:
        for i, block in enumerate(re.findall(r"```toml\n(.*?)```", doc.read_text(encoding="utf-8"), re.S)):
            if "gate_id" in block:
                found.append((f"{doc.relative_to(ROOT)} block {i + 1}", block))
    return found


def test_the_repo_ships_a_gate_example() -> None:
    assert any(name.endswith("gate.toml.example") for name, _ in shipped_examples())


@pytest.mark.parametrize(("name", "text"), shipped_examples(), ids=[n for n, _ in shipped_examples()])
def test_every_example_config_shipped_in_the_repo_loads(name: str, text: str, tmp_path: Path) -> None:
    path = tmp_path / "gate.toml"
    path.write_text(text, encoding="utf-8")
    assert check_config(path) == [], name
    cfg = load_config(path)
    assert cfg.gate_id


def test_the_example_drives_the_gpio_lane_and_camera_it_documents() -> None:
    cfg = load_config(EXAMPLE)
    assert isinstance(cfg.turnstile, GpioTurnstileConfig) and isinstance(cfg.scanner, CameraScannerConfig)
    assert cfg.turnstile.pins() == {"relay_in": 17, "sensor_in": 27, "fire_contact": 22, "led_green": 5,
                                    "led_red": 6, "buzzer": 13, "manual_release": 26}
    assert cfg.scanner.budget_ms == 40 and cfg.journal_path.name == "journal.sqlite3"


def test_the_example_no_longer_claims_enroll_writes_it() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert "Written by `gatehouse gate enroll`" not in text
    assert "does NOT write this file" in text


def test_unknown_keys_are_refused_with_the_dotted_path_and_closest_valid_key(tmp_path: Path) -> None:
    path = tmp_path / "gate.toml"
    path.write_text('gate_id = "g"\ndata_dir = "d"\n' + OLD_EXAMPLE_TURNSTILE, encoding="utf-8")
    problems = {p.path: p.message for p in check_config(path)}
    assert problems["turnstile.relay_pin"] == "unknown key; did you mean relay_in?"
    assert problems["turnstile.green_led_pin"] == "unknown key; did you mean led_green?"
    assert problems["turnstile.fire_contact_pin"] == "unknown key; did you mean fire_contact?"
    assert problems["turnstile.relay_in"] == "is required"
    assert problems["turnstile.sensor_in"] == "is required"


def test_a_misspelt_backend_is_refused_with_the_closest_one() -> None:
    with pytest.raises(GateConfigError) as info:
        config_from_dict({"gate_id": "g", "data_dir": "/x", "scanner": {"backend": "camra"}})
    (problem,) = info.value.problems
    assert problem.path == "scanner.backend"
    assert "did you mean camera?" in problem.message and "one of" in problem.message


def test_every_problem_in_a_file_is_reported_at_once() -> None:
    with pytest.raises(GateConfigError) as info:
        config_from_dict({"gate_id": "", "data_dir": "/x", "passage_timout_s": 8, "status_port": "8081",
                          "turnstile": {"backend": "serial", "port": "/dev/x", "baudrate": "fast"},
                          "scanner": {"backend": "serial"}})
    paths = {p.path for p in info.value.problems}
    assert paths == {"gate_id", "passage_timout_s", "status_port", "turnstile.baudrate", "scanner.port"}
    assert isinstance(info.value, ConfigError)  # one error tree: callers may catch the root's kind
    assert "did you mean passage_timeout_s?" in str(info.value)


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"data_dir": "/x"}, "gate_id"),
        ({"gate_id": "g", "data_dir": "/x", "passage_timeout_s": "8"}, "passage_timeout_s"),
        ({"gate_id": "g", "data_dir": "/x", "passage_timeout_s": 0}, "passage_timeout_s"),
        ({"gate_id": "g", "data_dir": "/x", "status_port": 70000}, "status_port"),
        ({"gate_id": "g", "data_dir": "/x", "scanner": {"port": "/dev/x"}}, "scanner.backend"),
        ({"gate_id": True, "data_dir": "/x"}, "gate_id"),
        ({"gate_id": "g", "data_dir": "/x", "hub_url": "hub:8443"}, "hub_url"),
        ({"gate_id": "g", "data_dir": "/x", "protocol": "2-1"}, "protocol"),
        ({"gate_id": "g", "data_dir": "/x", "turnstile": {"backend": "gpio", "relay_in": 17, "sensor_in": 17}},
         "turnstile"),
        ({"gate_id": "g", "data_dir": "/x", "turnstile": {"backend": "gpio", "relay_in": True, "sensor_in": 2}},
         "turnstile.relay_in"),
        ({"gate_id": "g", "data_dir": "/x", "turnstile": {"backend": "serial", "port": "/dev/x",
                                                           "heartbeat_s": 2, "silence_s": 1}}, "turnstile.silence_s"),
        ({"gate_id": "g", "data_dir": "/x", "scanner": {"backend": "camera", "width": 640}}, "scanner.width"),
    ],
)
def test_bad_config_names_the_key(data: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict(data)
    assert info.value.key == key


def test_unreadable_toml_is_a_config_error(tmp_path: Path) -> None:
    p = tmp_path / "gate.toml"
    p.write_text("gate_id = [unclosed")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(p)


def test_relative_paths_are_taken_from_the_config_file(tmp_path: Path) -> None:
    p = tmp_path / "gate.toml"
    p.write_text('gate_id = "g"\ndata_dir = "data"\nca_file = "ca.pem"\nprotocol = "1-2"\n')
    cfg = load_config(p)
    assert cfg.data_dir == tmp_path / "data" and cfg.ca_file == tmp_path / "ca.pem" and cfg.protocol == (1, 2)


def test_the_composed_model_holds_each_packages_own_settings() -> None:
    cfg = config_from_dict({"gate_id": "g", "data_dir": "/x",
                            "scanner": {"backend": "serial", "port": "/dev/s", "terminator": "crlf"},
                            "turnstile": {"backend": "serial", "port": "/dev/t"}})
    assert isinstance(cfg.scanner, SerialScannerConfig) and cfg.scanner.terminator == "CRLF"
    assert isinstance(cfg.turnstile, SerialTurnstileConfig) and cfg.turnstile.baudrate == 115200
    assert GateConfig(gate_id="g", data_dir=Path("/x")).turnstile.backend == "sim"  # built in code (tests, venue)


# --- from outside: the CLI, as an operator runs it -----------------------------------------
def gatehouse(*args: str, timeout: float = TIMEOUT_S * 3) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gatehouse", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def old_example(tmp_path: Path) -> Path:
    text = EXAMPLE.read_text(encoding="utf-8")
    text = text[:text.index("[turnstile]")] + OLD_EXAMPLE_TURNSTILE
    path = tmp_path / "gate.toml"
    path.write_text(text.replace("/var/lib/gatehouse", str(tmp_path / "data")), encoding="utf-8")
    return path


def test_gate_run_with_a_bad_config_exits_2_at_once_naming_every_problem(tmp_path: Path) -> None:
    done = gatehouse("gate", "run", "--config", str(old_example(tmp_path)), timeout=TIMEOUT_S * 2)
    assert done.returncode == 2, done.stderr
    assert "turnstile.relay_pin: unknown key; did you mean relay_in?" in done.stderr
    assert "turnstile.relay_in: is required" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "data").exists(), "nothing may be opened before the config is valid"


def test_gate_run_that_cannot_start_its_hardware_exits_instead_of_hanging(tmp_path: Path) -> None:
    # A valid GPIO config on a machine without GPIO: the stores are open by the time the
    # turnstile fails. They used to keep the process alive for ever.
    path = tmp_path / "gate.toml"
    path.write_text(EXAMPLE.read_text(encoding="utf-8").replace("/var/lib/gatehouse", str(tmp_path / "data"))
                    .replace('ca_file = "/etc/gatehouse/hub-ca.pem"', ""), encoding="utf-8")
    done = gatehouse("gate", "run", "--config", str(path), timeout=TIMEOUT_S * 3)
    assert done.returncode == 1
    assert "cannot start" in done.stderr and "gpio" in done.stderr


def test_check_config_lists_every_problem_and_exits_2(tmp_path: Path) -> None:
    done = gatehouse("gate", "check-config", str(old_example(tmp_path)))
    assert done.returncode == 2
    listed = [line for line in done.stderr.splitlines() if line.strip().startswith("✖")]
    assert len(listed) == len(check_config(old_example(tmp_path))) >= 6


def test_check_config_passes_the_shipped_example() -> None:
    done = gatehouse("gate", "check-config", str(EXAMPLE))
    assert done.returncode == 0, done.stderr
    assert "valid" in done.stdout and "turnstile gpio" in done.stdout


def test_check_config_on_a_missing_file_exits_2(tmp_path: Path) -> None:
    done = gatehouse("gate", "check-config", str(tmp_path / "nope.toml"))
    assert done.returncode == 2 and "config file not found" in done.stderr


def test_the_toml_example_is_plain_toml() -> None:
    tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
