"""The printed readiness report keeps Chinese and Kazakh zone, gate and supervisor names (the manifest's fonts)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from hub.manifest import CJK_FONT
from hub.readiness import Line, Report
from hub.readiness_pdf import render_readiness_pdf

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")
needs_cjk_font = pytest.mark.skipif(not CJK_FONT.exists(), reason="fonts-noto-cjk not installed (./run installs it)")


def text_of(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "r.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True,
                          text=True).stdout


def report(north: str = "北看台", south: str = "Оңтүстік трибуна", gate: str = "Солтүстік-1",
           other_gate: str = "南门-2", supervisor: str = "Әсел Қасымова", event: str = "Кубок финалы · 杯赛决赛",
           seat: str = "座 7") -> Report:
    waiver = {"waiver_id": 1, "check": f"gate:{gate}:online", "supervisor": supervisor, "actor": "admin",
              "reason": "қолмен тексереміз", "at": 1_780_000_000.0}
    lines = (
        Line("zone:1:capacity", "zone", f"zone {north}", "capacity", True, "120 valid tickets for 200 places"),
        Line("zone:1:seats", "zone", f"zone {north}", "double-sold seats", False, f"1 seats sold twice: {seat} (T1, T2)",
             "revoke one ticket"),
        Line("zone:2:capacity", "zone", f"zone {south}", "capacity", False, "40 valid tickets, no capacity set",
             f"set it: gatehouse hub zone \"{south}\" --capacity N"),
        Line(f"gate:{gate}:online", "gate", f"gate {gate}", "online", False, "never connected", "check its network",
             waiver),
        Line(f"gate:{other_gate}:clock", "gate", f"gate {other_gate}", "clock", False, "+5.0 s against the hub",
             "synchronise the gate's clock"),
    )
    return Report(1_780_000_000.0, 7, event, 42, lines)


@needs_cjk_font
def test_chinese_and_kazakh_zone_gate_and_supervisor_names_come_out_as_they_went_in(tmp_path: Path) -> None:
    text = text_of(render_readiness_pdf(report()), tmp_path)
    for name in ("北看台", "Оңтүстік трибуна", "Солтүстік-1", "南门-2", "Әсел Қасымова", "қолмен тексереміз",
                 "座 7", "Кубок финалы · 杯赛决赛"):
        assert name in text, name
    assert "NOT READY: 3 open" in text and "Supervisor (name)" in text


def test_a_report_without_chinese_does_not_load_the_cjk_font(tmp_path: Path) -> None:
    pdf = render_readiness_pdf(report(north="Солтүстік трибуна", other_gate="Оңтүстік-2", event="Кубок финалы",
                                      seat="Қатар 7"))
    assert b"NotoSansCJK" not in pdf
    text = text_of(pdf, tmp_path)
    assert "Солтүстік трибуна" in text and "Оңтүстік-2" in text and "Әсел Қасымова" in text
