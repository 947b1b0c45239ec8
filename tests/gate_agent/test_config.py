"""Gate configuration: the example file loads; bad values are refused with the key named."""
from __future__ import annotations

from pathlib import Path

import pytest

from gate_agent.config import config_from_dict, load_config
from tickets.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_example_config_loads() -> None:
    cfg = load_config(ROOT / "deploy/pi/gate.toml.example")
    assert cfg.gate_id == "north-1" and cfg.scanner["backend"] == "camera" and cfg.turnstile["backend"] == "gpio"
    assert cfg.journal_path.name == "journal.sqlite3"


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"data_dir": "/x"}, "gate_id"),
        ({"gate_id": "g", "data_dir": "/x", "passage_timeout_s": "8"}, "passage_timeout_s"),
        ({"gate_id": "g", "data_dir": "/x", "passage_timeout_s": 0}, "passage_timeout_s"),
        ({"gate_id": "g", "data_dir": "/x", "status_port": 70000}, "status_port"),
        ({"gate_id": "g", "data_dir": "/x", "scanner": {"port": "/dev/x"}}, "scanner.backend"),
        ({"gate_id": True, "data_dir": "/x"}, "gate_id"),
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
