"""An operator's view: the `gatehouse` command in their language, through real processes only."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
CSV = """number,zone,holder,seat
K1001,Солтүстік,Әсел Қасымова,A1
K1002,Солтүстік,王伟,A2
K1003,Солтүстік,Ұлан Өтегенов,A3
"""


def gh(*args: str, lang_env: str | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GATEHOUSE_LANG", "LANG", "LC_ALL", "LC_MESSAGES")}
    if lang_env:
        env["GATEHOUSE_LANG"] = lang_env
    return subprocess.run([sys.executable, "-m", "gatehouse", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, input=stdin, timeout=120)


@pytest.fixture
def hub(tmp_path: Path) -> Path:
    data = tmp_path / "hub"
    r = gh("hub", "init", "--data", str(data), "--event", "7", "--name", "Кубок финалы")
    assert r.returncode == 0, r.stderr
    assert gh("hub", "zone", "Солтүстік", "--capacity", "500", "--data", str(data)).returncode == 0
    (tmp_path / "t.csv").write_text(CSV, encoding="utf-8")
    r = gh("hub", "import", str(tmp_path / "t.csv"), "--data", str(data))
    assert r.returncode == 0, r.stderr
    for name in ("Солтүстік-1", "Солтүстік-2"):
        assert gh("hub", "enroll-gate", name, "--zones", "Солтүстік", "--data", str(data)).returncode == 0
    return data


def test_hub_errors_and_messages_in_the_chosen_language_with_the_detail_kept(hub: Path) -> None:
    r = gh("--lang", "ru", "hub", "assign-zones", "nope", "Нет-такой", "--data", str(hub))
    assert r.returncode == 1
    assert "Такой зоны нет" in r.stderr and "Нет-такой" in r.stderr
    r = gh("hub", "assign-zones", "nope", "Жоқ", "--data", str(hub), lang_env="kk")
    assert "Мұндай аймақ жоқ" in r.stderr
    r = gh("hub", "init", "--data", str(hub), "--event", "7", lang_env="zh-Hans")
    assert r.returncode == 1 and "此目录已有中心" in r.stderr


def test_an_unknown_language_is_refused_with_the_choices(hub: Path) -> None:
    r = gh("--lang", "tlh", "hub", "gates", "--data", str(hub))
    assert r.returncode == 2 and "en, zh-Hans, ru, kk" in r.stderr


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")
def test_event_language_and_kick_off_drive_the_manifests_and_the_forecast(hub: Path, tmp_path: Path) -> None:
    r = gh("hub", "event", "--kickoff", "2026-05-28T20:00+05:00", "--language", "kk", "--data", str(hub))
    assert r.returncode == 0, r.stderr
    settings = json.loads(r.stdout)
    assert settings["language"] == "kk" and settings["kickoff_at"] == 1_779_980_400.0
    r = gh("hub", "event", "--kickoff", "20:00", "--data", str(hub))
    assert r.returncode == 1 and "bad_kickoff" in r.stderr  # a clock time without a date and offset is refused

    out = tmp_path / "manifests"
    r = gh("--lang", "ru", "hub", "manifest", "--all", "--dir", str(out), "--data", str(hub))
    assert r.returncode == 0, r.stderr
    files = json.loads(r.stdout)["files"]
    assert len(files) == 2 and all(f["rows"] == 3 for f in files)
    assert "вход" in r.stderr and "билетов: 3" in r.stderr  # the CLI's progress speaks Russian
    text = subprocess.run(["pdftotext", "-layout", files[0]["path"], "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "Тізімді қалай пайдалану керек" in text  # the manifest speaks the event's language
    for name in ("Әсел Қасымова", "王伟", "Ұлан Өтегенов"):
        assert name in text

    r = gh("hub", "forecast", "--json", "--data", str(hub))
    assert r.returncode == 0, r.stderr
    forecast = json.loads(r.stdout)
    zone = forecast["zones"][0]
    # the gates are registered but have not enrolled yet: no lane is open
    assert forecast["kickoff_at"] == 1_779_980_400.0 and zone["tickets"] == 3 and zone["lanes"] == 0
    r = gh("--lang", "kk", "hub", "forecast", "--data", str(hub))
    assert "Солтүстік" in r.stdout and "келгендер 0" in r.stdout
