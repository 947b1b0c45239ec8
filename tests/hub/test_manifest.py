from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
import zlib
from pathlib import Path

import pytest

from hub import manifest as hub_manifest
from hub.manifest import (
    CSV_COLUMNS,
    ROWS_PER_PAGE,
    bench,
    render_manifest_csv,
    render_manifest_pdf,
    sample_rows,
)
from tickets.manifest import check_code, make_row

GENERATED = 1_780_000_000.0  # 2026-05-28 20:26:40 UTC
META = {"event_name": "Cup Final 2026", "gate_name": "G3", "generated_at": GENERATED, "hub_seq": 4242}

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")


def pdf_pages(data: bytes, tmp_path: Path) -> list[str]:
    path = tmp_path / "manifest.pdf"
    path.write_bytes(data)
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True).stdout
    pages = out.split("\f")
    return pages[:-1] if pages and not pages[-1].strip() else pages


@pytest.fixture(scope="module")
def rows_500() -> list:  # type: ignore[type-arg]
    rows = sample_rows(500)
    return list(reversed(rows))  # out of order on purpose: the renderer sorts


@pytest.fixture(scope="module")
def pages_500(rows_500: list, tmp_path_factory: pytest.TempPathFactory) -> list[str]:  # type: ignore[type-arg]
    return pdf_pages(render_manifest_pdf(rows_500, **META), tmp_path_factory.mktemp("pdf"))  # type: ignore[arg-type]


def test_every_page_carries_event_gate_generated_time_and_hub_seq(pages_500: list[str]) -> None:
    expected_pages = 1 + -(-500 // ROWS_PER_PAGE)
    assert len(pages_500) == expected_pages
    for text in pages_500:
        assert "Cup Final 2026" in text
        assert "GATE G3" in text
        assert "2026-05-28 20:26:40 UTC" in text
        assert "hub seq 4242" in text


def test_every_page_is_numbered_page_x_of_y(pages_500: list[str]) -> None:
    total = len(pages_500)
    for i, text in enumerate(pages_500, start=1):
        assert f"page {i} of {total}" in text


def test_rows_are_sorted_by_number_with_code_holder_zone_and_seat(pages_500: list[str]) -> None:
    numbers: list[int] = []
    for text in pages_500[1:]:
        numbers += [int(n) for n in re.findall(r"^\s*(1\d{8})\s", text, re.M)]
    assert numbers == sorted(numbers) == list(range(100_000_000, 100_000_500))
    line = next(ln for ln in pages_500[1].splitlines() if "100000001" in ln)
    assert check_code(2026, "100000001") in line
    assert "Jean-Baptiste Smith" in line
    assert "Zone 2" in line
    assert "Row 2 Seat 2" in line


def test_each_page_header_shows_the_range_of_numbers_on_it(pages_500: list[str]) -> None:
    for text in pages_500[1:]:
        m = re.search(r"Tickets (\d+) - (\d+)", text)
        assert m, text[:300]
        on_page = re.findall(r"^\s*(1\d{8})\s", text, re.M)
        assert (m.group(1), m.group(2)) == (on_page[0], on_page[-1])


def test_cancelled_tickets_say_so_in_words(pages_500: list[str]) -> None:
    # sample_rows revokes every 97th ticket from index 5: 100000005, 100000102, ...
    line = next(ln for ln in "".join(pages_500[1:]).splitlines() if "100000102" in ln)
    assert "CANCELLED" in line
    ok = next(ln for ln in "".join(pages_500[1:]).splitlines() if "100000103" in ln)
    assert "CANCELLED" not in ok


def test_summary_page_counts_zones_explains_use_and_has_signature_space(pages_500: list[str]) -> None:
    summary = pages_500[0]
    assert "Summary" in summary
    assert "500 tickets for gate G3" in summary
    assert re.search(r"Zone 1 East Stand \(1\)\s+124\s+1\s+125", summary)
    assert re.search(r"All zones\s+494\s+6\s+500", summary)  # 5, 102, 199, 296, 393, 490 revoked
    assert "How to use this manifest" in summary
    assert "Signature:" in summary and "Supervisor signature:" in summary


def _content(pdf: bytes) -> bytes:
    out = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            out.append(zlib.decompress(stream))
        except zlib.error:
            out.append(stream)
    return b"\n".join(out)


def _font_sizes(pdf: bytes) -> set[float]:
    return {float(s) for s in re.findall(rb"/F\d+\s+([\d.]+)\s+Tf", _content(pdf))}


def test_nothing_is_grey_or_coloured_so_a_1_bit_printer_prints_it_cleanly() -> None:
    content = _content(render_manifest_pdf(sample_rows(120), **META))  # type: ignore[arg-type]
    assert b"BT" in content
    assert not re.search(rb"\bre\s+f\b", content), "filled rectangles (grey bands) found"
    num = rb"(?<![\w.])(\d*\.?\d+)\s+"
    greys = re.findall(num + rb"[gG](?=\s)", content)
    assert all(float(g) == 0.0 for g in greys), greys
    assert not re.search(num * 3 + rb"(rg|RG)(?=\s)", content), "RGB colour found"
    assert not re.search(num * 4 + rb"[kK](?=\s)", content), "CMYK colour found"


def test_no_text_smaller_than_8pt_anywhere() -> None:
    sizes = _font_sizes(render_manifest_pdf(sample_rows(60), **META))  # type: ignore[arg-type]
    assert sizes, "no font size operators found"
    assert min(sizes) >= 8.0


def test_an_empty_manifest_still_renders_a_dated_summary(tmp_path: Path) -> None:
    pages = pdf_pages(render_manifest_pdf([], **META), tmp_path)  # type: ignore[arg-type]
    assert len(pages) == 1
    assert "0 tickets for gate G3" in pages[0] and "hub seq 4242" in pages[0]


def test_long_names_are_cut_to_their_column_not_overprinted(tmp_path: Path) -> None:
    long = "Maximiliana Alexandrina Wolfeschlegelsteinhausen-Bergerdorff the Third"
    rows = [make_row(1, ticket_id=1, number="5", holder=long, zone_id=1, zone_name="East", seat="Row 1 Seat 1")]
    pages = pdf_pages(render_manifest_pdf(rows, **META), tmp_path)  # type: ignore[arg-type]
    line = next(ln for ln in pages[1].splitlines() if re.match(r"\s*5\s", ln))
    assert "Maximiliana" in line and "the Third" not in line and "…" in line
    assert "East" in line and "Row 1 Seat 1" in line


def test_without_dejavu_fonts_core_fonts_render_latin_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub_manifest, "FONT_DIR", tmp_path / "no-fonts")
    rows = [make_row(1, ticket_id=1, number="7", holder="Zoë Łukasz", zone_id=1, zone_name="East", seat="")]
    pages = pdf_pages(render_manifest_pdf(rows, **META), tmp_path)  # type: ignore[arg-type]
    assert "Zoë" in pages[1]  # Latin-1 survives; Ł becomes '?', never a crash
    assert "page 2 of 2" in pages[1]


def test_csv_holds_the_same_rows_sorted_with_identity_on_every_line(rows_500: list) -> None:  # type: ignore[type-arg]
    data = render_manifest_csv(rows_500, **META)  # type: ignore[arg-type]
    assert data.startswith(b"\xef\xbb\xbf")
    records = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert tuple(records[0]) == CSV_COLUMNS
    assert len(records) == 500
    assert [r["number"] for r in records] == [str(100_000_000 + i) for i in range(500)]
    first = records[1]
    assert first["check_code"] == check_code(2026, "100000001")
    assert first["holder"] == "Jean-Baptiste Smith"
    assert (first["gate"], first["hub_seq"], first["generated_at"]) == ("G3", "4242", "2026-05-28 20:26:40 UTC")
    assert records[102]["status"] == "revoked"


def test_csv_defuses_spreadsheet_formulas_in_names() -> None:
    rows = [make_row(1, ticket_id=1, number="1", holder="=HYPERLINK(\"http://x\")", zone_id=1, zone_name="Z",
                     seat="+1")]
    records = list(csv.DictReader(io.StringIO(render_manifest_csv(rows, **META).decode("utf-8-sig"))))  # type: ignore[arg-type]
    assert records[0]["holder"].startswith("'=")
    assert records[0]["seat"] == "'+1"


def test_the_manifest_bench_renders_every_row_and_reports_its_rate() -> None:
    # The rate itself is the benchmark's to measure (`gatehouse bench manifest`, docs/benchmarks.md),
    # not a timed test's: here, that every row is rendered and the figures are reported.
    result = bench(3000)
    assert result["rows_count"] == 3000
    assert result["pages_count"] == 1 + -(-3000 // ROWS_PER_PAGE)
    assert result["rows_per_s"] > 0, result
    assert set(result) >= {"pdf_s", "csv_s", "pdf_mb", "csv_mb", "all_gates_pdf_s"}


def test_rows_for_gate_takes_the_zones_that_gate_admits_and_keeps_cancelled_tickets() -> None:
    from tickets.model import TicketRecord, TicketStatus, Zone

    zones = {1: Zone(1, "East", frozenset({"G1", "G2"})), 2: Zone(2, "West", frozenset({"G3"}))}
    records = [TicketRecord(1, "A1", 1, 1, 0.0, 1.0, holder="Ann", seat="R1"),
               TicketRecord(2, "A2", 2, 1, 0.0, 1.0),
               TicketRecord(3, "A3", 1, 1, 0.0, 1.0, status=TicketStatus.REVOKED)]
    rows = hub_manifest.rows_for_gate(records, zones, event_id=9, gate_id="G2")
    assert [(r.ticket_id, r.zone_name, r.status) for r in rows] == [(1, "East", "valid"), (3, "East", "revoked")]
    assert rows[0].check_code == check_code(9, "A1") and (rows[0].holder, rows[0].seat) == ("Ann", "R1")
    assert hub_manifest.rows_for_gate(records, zones, event_id=9, gate_id="G9") == []


def test_many_zones_keep_the_summary_to_one_page_with_instructions_and_signatures(tmp_path: Path) -> None:
    rows = [make_row(1, ticket_id=i, number=str(1000 + i), holder="", zone_id=i, zone_name=f"Block {i}", seat="")
            for i in range(1, 61)]
    pages = pdf_pages(render_manifest_pdf(rows, **META), tmp_path)  # type: ignore[arg-type]
    assert len(pages) == 3 and "page 1 of 3" in pages[0]
    assert "more zones (see CSV)" in pages[0]
    assert "How to use this manifest" in pages[0] and "Supervisor signature:" in pages[0]
