"""The paper manifest in the event's language, with holder names in Chinese and Kazakh."""
from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from hub.manifest import CJK_FONT, render_manifest_pdf, sample_rows
from tickets.manifest import TicketState, make_row

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")
needs_cjk_font = pytest.mark.skipif(not CJK_FONT.exists(), reason="fonts-noto-cjk not installed (./run installs it)")

NAMES = ["王伟", "欧阳娜娜", "Әсел Қасымова", "Ғалым Нұрланұлы", "Һадиша Әлиева", "Іңкәр Тоқтарова", "Ұлан Өтегенов",
         "Анна Смирнова", "Jean-Baptiste Dupont-Lefèvre", "黄晓明 Huang", "Айгүл 李"]


def text_of(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "m.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True,
                          text=True).stdout


def rows() -> list:  # type: ignore[type-arg]
    out = [make_row(7, ticket_id=i + 1, number=f"T{100 + i}", holder=name, zone_id=1 + i % 2,
                    zone_name=("Солтүстік трибуна", "北看台")[i % 2], seat=f"Қатар {i} · 座 {i}",
                    status=TicketState.REVOKED if i == 3 else TicketState.VALID)
           for i, name in enumerate(NAMES)]
    return out


@needs_cjk_font
@pytest.mark.parametrize("lang", ["kk", "zh_Hans"])
def test_chinese_and_kazakh_holder_names_come_out_of_the_pdf_as_they_went_in(lang: str, tmp_path: Path) -> None:
    text = text_of(render_manifest_pdf(rows(), event_name="Кубок финалы · 杯赛决赛", gate_name="Солтүстік-1",
                                       generated_at=1_780_000_000, hub_seq=42, lang=lang), tmp_path)
    for name in NAMES:
        assert name in text, name
    assert "Солтүстік трибуна" in text and "北看台" in text
    assert "Кубок финалы · 杯赛决赛" in text


@needs_cjk_font
def test_labels_and_instructions_are_in_the_events_language(tmp_path: Path) -> None:
    kk = text_of(render_manifest_pdf(rows(), event_name="Кубок", gate_name="N1", generated_at=1_780_000_000,
                                     hub_seq=42, lang="kk"), tmp_path)
    assert "N1 КІРЕБЕРІСІ" in kk and "Тізімді қалай пайдалану керек" in kk and "ЖОЙЫЛҒАН" in kk
    assert "2 беттің 1-беті" in kk  # page 1 of 2
    zh = text_of(render_manifest_pdf(rows(), event_name="杯赛", gate_name="N1", generated_at=1_780_000_000,
                                     hub_seq=42, lang="zh_Hans"), tmp_path)
    assert "名单使用方法" in zh and "持票人" in zh and "已作废" in zh and "第 1 页，共 2 页" in zh
    ru = text_of(render_manifest_pdf(rows(), event_name="Кубок", gate_name="N1", generated_at=1_780_000_000,
                                     hub_seq=42, lang="ru"), tmp_path)
    assert "ВХОД N1" in ru and "Как пользоваться списком" in ru and "АННУЛИРОВАН" in ru
    # the generation time stays ISO 8601 UTC in every language: prints are compared by it
    for text in (kk, zh, ru):
        assert "2026-05-28 20:26:40 UTC" in text


def test_a_latin_only_manifest_does_not_load_the_cjk_font(tmp_path: Path) -> None:
    pdf = render_manifest_pdf(sample_rows(50), event_name="Cup", gate_name="G1", generated_at=0, hub_seq=1)
    assert b"NotoSansCJK" not in pdf


@pytest.mark.slow
@needs_cjk_font
def test_a_60000_row_chinese_kazakh_russian_manifest_renders_well_under_a_minute(tmp_path: Path) -> None:
    """The figure for docs/benchmarks.md is measured by the manifest bench; this guards the order
    of magnitude on a shared, busy machine (measured there: ~20-40 s)."""
    data = sample_rows(60_000, scripts="mixed")
    started = time.perf_counter()
    pdf = render_manifest_pdf(data, event_name="Кубок · 杯赛", gate_name="ALL", generated_at=0, hub_seq=1,
                              lang="kk")
    elapsed = time.perf_counter() - started
    assert elapsed < 90, elapsed
    (tmp_path / "big.pdf").write_bytes(pdf)
    last = subprocess.run(["pdftotext", "-f", "1278", "-l", "1278", str(tmp_path / "big.pdf"), "-"], check=True,
                          capture_output=True, text=True).stdout
    assert "100059999" in last
