"""The gate's language is one optional key of its configuration."""
from __future__ import annotations

from pathlib import Path

import pytest

from gate_agent.config import config_from_dict
from tickets.errors import ConfigError

BASE = {"gate_id": "north-1", "data_dir": "/tmp/g"}


def test_a_gate_speaks_english_unless_its_config_says_otherwise() -> None:
    assert config_from_dict(BASE, Path("/")).language == "en"
    assert config_from_dict({**BASE, "language": "kk-KZ"}, Path("/")).language == "kk"
    assert config_from_dict({**BASE, "language": "zh-Hans"}, Path("/")).language == "zh_Hans"


def test_a_language_with_no_catalogue_is_a_config_error_naming_the_choices() -> None:
    with pytest.raises(ConfigError, match="en, zh-Hans, ru or kk"):
        config_from_dict({**BASE, "language": "tlh"}, Path("/"))
