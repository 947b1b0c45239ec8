"""The gate's language: one optional key of its configuration, checked by the doctor
(catalogue complete, a font on the kiosk with every letter of it)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import i18n
from gate_agent.config import config_from_dict
from gate_agent.doctor import _language
from gatehouse.venue import ROOT
from tests.conftest import TIMEOUT_S
from tickets.errors import ConfigError

BASE = {"gate_id": "north-1", "data_dir": "/tmp/g"}


def test_a_gate_speaks_english_unless_its_config_says_otherwise() -> None:
    assert config_from_dict(BASE, Path("/")).language == "en"
    assert config_from_dict({**BASE, "language": "kk-KZ"}, Path("/")).language == "kk"
    assert config_from_dict({**BASE, "language": "zh-Hans"}, Path("/")).language == "zh_Hans"


def test_a_language_with_no_catalogue_is_a_config_error_naming_the_choices() -> None:
    with pytest.raises(ConfigError, match="en, zh-Hans, ru or kk"):
        config_from_dict({**BASE, "language": "tlh"}, Path("/"))


def _fake_fc_list(tmp_path: Path, output: str) -> str:
    """A directory holding an ``fc-list`` that prints ``output`` (the fonts fontconfig knows)."""
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    tool = fake / "fc-list"
    tool.write_text(f"#!/bin/sh\nprintf '%s' '{output}'\n")
    tool.chmod(0o755)
    return str(fake)


def test_the_doctor_fails_a_chinese_screen_with_no_chinese_font_and_names_the_package(tmp_path: Path) -> None:
    config = tmp_path / "gate.toml"
    config.write_text(f'gate_id = "zh-1"\ndata_dir = "{tmp_path / "d"}"\nstatus_port = 0\nlanguage = "zh-Hans"\n')
    env = {**os.environ, "PATH": _fake_fc_list(tmp_path, "") + os.pathsep + os.environ.get("PATH", "")}
    done = subprocess.run([sys.executable, "-m", "gatehouse", "gate", "doctor", "--config", str(config), "--json"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S * 6)
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    assert checks["language"]["status"] == "ok" and "zh-Hans" in checks["language"]["detail"]
    assert checks["screen font"]["status"] == "fail"
    assert checks["screen font"]["fix"] == "sudo apt-get install fonts-noto-cjk"
    assert done.returncode != 0


def test_the_doctor_passes_a_font_with_every_letter_and_says_when_it_cannot_look(tmp_path: Path) -> None:
    kk = config_from_dict({**BASE, "language": "kk"}, Path("/"))
    path = _fake_fc_list(tmp_path, "DejaVu Sans,DejaVu Sans Condensed\nDejaVu Serif\n")
    language, font = _language(kk, {"PATH": path})
    assert language.status == "ok" and font.status == "ok" and "DejaVu Sans" in font.detail
    (tmp_path / "empty").mkdir()
    _language_check, font = _language(kk, {"PATH": str(tmp_path / "empty")})
    assert font.status == "info" and "not checked" in font.detail


def test_the_doctor_fails_a_catalogue_with_untranslated_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    ru = config_from_dict({**BASE, "language": "ru"}, Path("/"))
    full = i18n.catalogue("ru")
    monkeypatch.setattr(i18n, "catalogue", lambda code: {k: v for k, v in full.items() if k != "Scan a ticket"})
    language = _language(ru, {"PATH": ""})[0]
    assert language.status == "fail" and "'Scan a ticket'" in language.detail and "1 of" in language.detail
