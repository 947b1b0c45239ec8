"""Printable per-gate paper manifests (PDF with fpdf2) and the same data as CSV.

A manifest is what stewards use when a gate's replica cannot be trusted: every ticket a gate
admits, sorted by ticket number like a phone book, with its check code, holder, zone and seat
and a tick box per line. Every page repeats the event, the gate, when the manifest was
generated and the hub sequence number it reflects (so a steward can tell an old print from a
new one), the range of numbers on the page, and "page X of Y". Page 1 is a summary: counts
per zone, how to use the manifest, and a hand-over block for signatures.

Printed in black and white: no grey fills, nothing is told by colour alone (cancelled tickets say so in
words and their tick box is crossed out), nothing is smaller than 8 pt.

Speed: a 60,000-ticket manifest renders in seconds. Rows are drawn with plain
``FPDF.text`` calls at fixed positions (no ``cell``/``multi_cell`` layout), names are cut to
their column by a width table rather than by measuring every string, and fonts change only
twice per row. Rendering is CPU-bound: callers on the event loop run it in a worker thread
(``await asyncio.to_thread(render_manifest_pdf, ...)``).
"""
from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fpdf import FPDF

from tickets.manifest import (
    ManifestRow,
    TicketState,
    ZoneCount,
    make_row,
    page_range,
    paginate,
    rows_for_zones,
    sort_rows,
    zone_counts,
)
from tickets.model import TicketRecord, Zone

log = logging.getLogger(__name__)

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")

# A4 portrait, millimetres.
PAGE_W = 210.0
PAGE_H = 297.0
MARGIN = 10.0
HEADER_H = 21.5  # title, info line, column heads
ROW_H = 5.2
FOOTER_H = 8.0
ROWS_PER_PAGE = int((PAGE_H - 2 * MARGIN - HEADER_H - FOOTER_H) // ROW_H)  # 47

#: column x positions (left edges) and widths, mm
COL_BOX = MARGIN + 1.5
COL_NUMBER = MARGIN + 8.0
COL_CODE = MARGIN + 36.0
COL_HOLDER = MARGIN + 49.0
COL_ZONE = MARGIN + 104.0
COL_SEAT = MARGIN + 141.0
COL_STATUS = MARGIN + 169.0
W_HOLDER = COL_ZONE - COL_HOLDER - 2.0
W_ZONE = COL_SEAT - COL_ZONE - 2.0
W_SEAT = COL_STATUS - COL_SEAT - 2.0
W_STATUS = PAGE_W - MARGIN - COL_STATUS
BOX = 3.6

BODY_PT = 9.0
NUMBER_PT = 10.0
SMALL_PT = 8.0  # the smallest text anywhere on the manifest
#: a rule under every GROUP-th line guides the eye across the page. Not grey bands: on a 1-bit
#: office printer grey is dithered into dots that blur small text (checked with pdftoppm -mono).
GROUP = 3


def _format_time(at: float | datetime) -> str:
    dt = at if isinstance(at, datetime) else datetime.fromtimestamp(float(at), tz=UTC)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class _ManifestPDF(FPDF):
    """An FPDF whose header and footer carry the manifest's identity on every page."""

    def __init__(self, *, event_name: str, gate_name: str, generated: str, hub_seq: int) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.event_name = event_name
        self.gate_name = gate_name
        self.generated = generated
        self.hub_seq = hub_seq
        self.page_numbers = ""  # the number range on the current page ("" on the summary)
        self.list_page = False
        self.set_auto_page_break(False)
        self.set_margins(MARGIN, MARGIN, MARGIN)
        # The page count is known before rendering (one summary page + fixed rows per page),
        # so it is printed directly: no alias substitution pass, no reserved-width gaps.
        self.alias_nb_pages(None)  # type: ignore[arg-type]
        self.total_pages = 0
        if (FONT_DIR / "DejaVuSans.ttf").exists():
            self.add_font("body", "", str(FONT_DIR / "DejaVuSans.ttf"))
            self.add_font("body", "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
            self.add_font("mono", "B", str(FONT_DIR / "DejaVuSansMono-Bold.ttf"))
            self.body, self.mono, self.unicode = "body", "mono", True
        else:  # core fonts: Latin-1 only, names are transliterated by _text()
            log.warning("DejaVu fonts not found in %s; using core Helvetica/Courier", FONT_DIR)
            self.body, self.mono, self.unicode = "helvetica", "courier", False
        self.set_title(f"{event_name} — manifest for gate {gate_name}")
        self.set_creator("gatehouse")
        self.set_line_width(0.25)

    def _text(self, s: str) -> str:
        if self.unicode:
            return s
        return s.encode("latin-1", "replace").decode("latin-1")

    def header(self) -> None:
        top = MARGIN
        self.set_text_color(0)
        self.set_font(self.body, "B", 12)
        self.text(MARGIN, top + 4.5, self._text(f"{self.event_name}  —  GATE {self.gate_name}"))
        self.set_xy(PAGE_W - MARGIN - 50.0, top)
        self.cell(50.0, 6.0, f"page {self.page_no()} of {self.total_pages}", align="R")
        self.set_font(self.body, "", BODY_PT)
        info = f"Paper manifest · generated {self.generated} · hub seq {self.hub_seq}"
        self.text(MARGIN, top + 10.0, self._text(info))
        if self.page_numbers:
            self.set_font(self.body, "B", BODY_PT)
            self.set_xy(PAGE_W - MARGIN - 90.0, top + 6.8)
            self.cell(90.0, 4.5, f"Tickets {self.page_numbers}", align="R")
        self.line(MARGIN, top + 12.0, PAGE_W - MARGIN, top + 12.0)
        if self.list_page:
            self.set_font(self.body, "B", SMALL_PT)
            y = top + 17.5
            self.text(MARGIN, y, "Tick")
            self.text(COL_NUMBER, y, "Ticket number")
            self.text(COL_CODE, y, "Code")
            self.text(COL_HOLDER, y, "Holder")
            self.text(COL_ZONE, y, "Zone")
            self.text(COL_SEAT, y, "Seat")
            self.text(COL_STATUS, y, "Status")
            self.set_line_width(0.5)
            self.line(MARGIN, top + 19.5, PAGE_W - MARGIN, top + 19.5)
            self.set_line_width(0.25)

    def footer(self) -> None:
        self.set_font(self.body, "", SMALL_PT)
        y = PAGE_H - MARGIN + 2.0
        self.text(MARGIN, y, self._text(f"{self.event_name} · gate {self.gate_name} · hub seq {self.hub_seq}"))
        self.set_xy(PAGE_W - MARGIN - 50.0, y - 3.0)
        self.cell(50.0, 4.0, f"page {self.page_no()} of {self.total_pages}", align="R")


class _Fitter:
    """Cuts text to a column width using the font's own glyph widths (cached per character)."""

    def __init__(self, pdf: _ManifestPDF, family: str, style: str, size: float) -> None:
        self.pdf = pdf
        pdf.set_font(family, style, size)
        self._widths: dict[str, float] = {}
        self._ellipsis = self._w("…" if pdf.unicode else "...")

    def _w(self, s: str) -> float:
        return float(self.pdf.get_string_width(s))

    def width(self, s: str) -> float:
        total = 0.0
        widths = self._widths
        for ch in s:
            w = widths.get(ch)
            if w is None:
                w = widths[ch] = self._w(ch)
            total += w
        return total

    def fit(self, s: str, max_w: float) -> str:
        if self.width(s) <= max_w:
            return s
        total = self._ellipsis
        for i, ch in enumerate(s):
            total += self.width(ch)
            if total > max_w:
                return s[:i].rstrip() + ("…" if self.pdf.unicode else "...")
        return s


def _summary_page(pdf: _ManifestPDF, counts: list[ZoneCount], rows_total: int, list_pages: int) -> None:
    pdf.page_numbers = ""
    pdf.list_page = False
    pdf.add_page()
    t = pdf._text
    y = MARGIN + 22.0
    pdf.set_font(pdf.body, "B", 16)
    pdf.text(MARGIN, y, "Summary")
    y += 9.0
    pdf.set_font(pdf.body, "", 10)
    pdf.text(MARGIN, y, t(f"This manifest lists {rows_total:,} tickets for gate {pdf.gate_name} on pages 2 to "
                          f"{list_pages + 1}, sorted by ticket number."))
    y += 10.0
    # counts per zone
    pdf.set_font(pdf.body, "B", 10)
    cols = (MARGIN, MARGIN + 80.0, MARGIN + 115.0, MARGIN + 160.0)
    for x, label in zip(cols, ("Zone", "May enter", "Cancelled/replaced", "Total"), strict=True):
        pdf.text(x, y, label)
    pdf.line(MARGIN, y + 1.5, PAGE_W - MARGIN, y + 1.5)
    pdf.set_font(pdf.body, "", 10)
    for c in counts:
        y += 6.0
        if y > PAGE_H - 165.0:  # very many zones: keep room for the instructions and hand-over
            pdf.text(MARGIN, y, t(f"… and {len(counts) - counts.index(c)} more zones (see CSV)"))
            break
        pdf.text(cols[0], y, t(f"{c.zone_name} ({c.zone_id})"))
        pdf.text(cols[1], y, f"{c.valid:,}")
        pdf.text(cols[2], y, f"{c.not_admissible:,}")
        pdf.text(cols[3], y, f"{c.total:,}")
    y += 2.0
    pdf.line(MARGIN, y, PAGE_W - MARGIN, y)
    y += 5.0
    pdf.set_font(pdf.body, "B", 10)
    pdf.text(cols[0], y, "All zones")
    pdf.text(cols[1], y, f"{sum(c.valid for c in counts):,}")
    pdf.text(cols[2], y, f"{sum(c.not_admissible for c in counts):,}")
    pdf.text(cols[3], y, f"{rows_total:,}")
    y += 12.0
    pdf.set_font(pdf.body, "B", 12)
    pdf.text(MARGIN, y, "How to use this manifest")
    pdf.set_font(pdf.body, "", 10)
    steps = [
        "1. Use it only when the gate screen says MANIFEST, or a supervisor tells you to.",
        "2. Read the ticket number. Find it: pages are in number order; the top of each page",
        "    shows the first and last number on that page.",
        "3. Check the 4-character code beside the number matches what you type or read.",
        "4. Status says CANCELLED or REPLACED (box crossed out)? Do NOT admit: send to the ticket office.",
        "5. Box already ticked? The ticket was used: do NOT admit, call a supervisor.",
        "6. Otherwise tick the box, then key the number (or code + last digits) and your PIN",
        "    on the gate screen if it works. If the screen is dead, tick it, write the time beside it",
        "    and use the release button: a supervisor enters paper ticks on the hub later.",
        "7. Not on the manifest? Do not admit on your own: call a supervisor (override with a note).",
        "8. When the gate is back to normal, hand this manifest to your supervisor, signed below.",
    ]
    for line in steps:
        y += 5.6
        pdf.text(MARGIN, y, t(line))
    y += 12.0
    pdf.set_font(pdf.body, "B", 12)
    pdf.text(MARGIN, y, "Hand-over")
    pdf.set_font(pdf.body, "", 10)
    fields = [("Steward name", "Steward ID"), ("Signature", "Time taken"), ("Tickets ticked on paper", "Time returned"),
              ("Supervisor name", "Supervisor signature")]
    for left, right in fields:
        y += 11.0
        pdf.text(MARGIN, y, left + ":")
        pdf.line(MARGIN + 45.0, y + 0.5, MARGIN + 95.0, y + 0.5)
        pdf.text(MARGIN + 100.0, y, right + ":")
        pdf.line(MARGIN + 143.0, y + 0.5, PAGE_W - MARGIN, y + 0.5)
    if y > PAGE_H - MARGIN - FOOTER_H:  # the layout above guarantees room; never overprint the footer
        raise RuntimeError(f"manifest summary overflows its page (y={y:.1f} mm)")


def _list_pages(pdf: _ManifestPDF, rows: Sequence[ManifestRow]) -> int:
    holder_fit = _Fitter(pdf, pdf.body, "", BODY_PT)
    small_fit = _Fitter(pdf, pdf.body, "", BODY_PT)
    status_fit = _Fitter(pdf, pdf.body, "B", SMALL_PT)
    t = pdf._text
    pages = paginate(rows, ROWS_PER_PAGE)
    first_y = MARGIN + HEADER_H
    body, mono = pdf.body, pdf.mono
    for page in pages:
        pdf.page_numbers = page_range(page)
        pdf.list_page = True
        pdf.add_page()
        for i, row in enumerate(page):
            top = first_y + i * ROW_H
            base = top + ROW_H - 1.4
            if i % GROUP == GROUP - 1 and i != len(page) - 1:
                pdf.line(MARGIN, top + ROW_H, PAGE_W - MARGIN, top + ROW_H)
            pdf.rect(COL_BOX, top + (ROW_H - BOX) / 2, BOX, BOX)
            pdf.set_font(mono, "B", NUMBER_PT)
            pdf.text(COL_NUMBER, base, t(row.number))
            pdf.text(COL_CODE, base, row.check_code)
            pdf.set_font(body, "", BODY_PT)
            if row.holder:
                pdf.text(COL_HOLDER, base, holder_fit.fit(t(row.holder), W_HOLDER))
            pdf.text(COL_ZONE, base, small_fit.fit(t(row.zone_name or str(row.zone_id)), W_ZONE))
            if row.seat:
                pdf.text(COL_SEAT, base, small_fit.fit(t(row.seat), W_SEAT))
            if row.status != TicketState.VALID:
                # Crossed-out box and words: readable in black and white, never ticked by mistake.
                bx, by = COL_BOX, top + (ROW_H - BOX) / 2
                pdf.line(bx, by, bx + BOX, by + BOX)
                pdf.line(bx, by + BOX, bx + BOX, by)
                pdf.set_font(body, "B", SMALL_PT)
                pdf.text(COL_STATUS, base, status_fit.fit(TicketState(row.status).printed, W_STATUS))
        # a rule under every page's last line closes the table
        pdf.line(MARGIN, first_y + len(page) * ROW_H, PAGE_W - MARGIN, first_y + len(page) * ROW_H)
    return len(pages)


def render_manifest_pdf(
    rows: Sequence[ManifestRow],
    *,
    event_name: str,
    gate_name: str,
    generated_at: float | datetime,
    hub_seq: int,
) -> bytes:
    """Render one gate's manifest: a summary page, then the rows sorted by ticket number.

    ``rows`` may come in any order; they are sorted here. An empty manifest still renders
    (summary page saying so) so a gate with no tickets yet has a dated, sequenced print.
    """
    ordered = sort_rows(rows)
    pdf = _ManifestPDF(event_name=event_name, gate_name=gate_name, generated=_format_time(generated_at),
                       hub_seq=int(hub_seq))
    list_pages = -(-len(ordered) // ROWS_PER_PAGE)
    pdf.total_pages = 1 + list_pages
    _summary_page(pdf, zone_counts(ordered), len(ordered), list_pages)
    _list_pages(pdf, ordered)
    if pdf.page_no() != pdf.total_pages:  # the layout guarantees it; never print a wrong "of Y"
        raise RuntimeError(f"manifest has {pdf.page_no()} pages, headers say {pdf.total_pages}")
    return bytes(pdf.output())


#: CSV columns, in order. The identity columns repeat on every row so any extract of the
#: file still says which gate, event and hub sequence it came from.
CSV_COLUMNS = ("number", "check_code", "holder", "zone_id", "zone_name", "seat", "status", "ticket_id",
               "event", "gate", "generated_at", "hub_seq")


def _csv_safe(value: str) -> str:
    """Defuse spreadsheet formulas in free text (holder names come from ticket buyers)."""
    if value and value[0] in "=+-@\t\r":
        return "'" + value
    return value


def render_manifest_csv(
    rows: Sequence[ManifestRow],
    *,
    event_name: str,
    gate_name: str,
    generated_at: float | datetime,
    hub_seq: int,
) -> bytes:
    """The same manifest as CSV (UTF-8 with BOM, so spreadsheet programs read names right)."""
    generated = _format_time(generated_at)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for r in sort_rows(rows):
        writer.writerow((r.number, r.check_code, _csv_safe(r.holder), r.zone_id, _csv_safe(r.zone_name),
                         _csv_safe(r.seat), r.status, r.ticket_id, _csv_safe(event_name), _csv_safe(gate_name),
                         generated, hub_seq))
    return buf.getvalue().encode("utf-8-sig")


# --- benchmark -----------------------------------------------------------------------------

_FIRST = ("Anna", "Jean-Baptiste", "Zoë", "Mohammed", "Łukasz", "Siobhán", "Kwame", "Yuki", "Björn", "María José")
_LAST = ("Smith", "Dupont-Lefèvre", "O'Connor", "Nowak", "García Márquez", "Okafor", "Tanaka", "Müller",
         "van der Berg", "Al-Hassan")


def sample_rows(count: int, *, event_id: int = 2026, zones: int = 4, revoked_every: int = 97) -> list[ManifestRow]:
    """Deterministic rows with realistic names (accents, long double-barrelled names)."""
    out = []
    for i in range(count):
        z = i % zones + 1
        out.append(make_row(
            event_id, ticket_id=i + 1, number=str(100_000_000 + i),
            holder=f"{_FIRST[i % len(_FIRST)]} {_LAST[(i // 7) % len(_LAST)]}",
            zone_id=z, zone_name=f"Zone {z} {'North East South West'.split()[z % 4]} Stand",
            seat=f"Row {i % 40 + 1} Seat {i % 31 + 1}",
            status=TicketState.REVOKED if revoked_every and i % revoked_every == 5 else TicketState.VALID,
        ))
    return out


def bench(rows_count: int, *, zones: int = 4, gates_per_zone: int = 2) -> dict[str, Any]:
    """Time manifests for a ``rows_count``-ticket event (one flat dict, units in the keys).

    Two figures: one manifest holding every ticket (a gate that admits all zones: the
    largest single document), and every gate's manifest for the event, with ``zones`` zones
    each admitted at ``gates_per_zone`` gates (each gate's manifest holds its zone only).
    """
    rows = sample_rows(rows_count, zones=zones)
    meta: dict[str, Any] = {"event_name": "Bench Cup Final", "generated_at": time.time(), "hub_seq": 123_456}
    t0 = time.perf_counter()
    pdf = render_manifest_pdf(rows, gate_name="ALL", **meta)
    t1 = time.perf_counter()
    data = render_manifest_csv(rows, gate_name="ALL", **meta)
    t2 = time.perf_counter()
    for z in range(1, zones + 1):
        zone_rows = rows_for_zones(rows, [z])
        for g in range(gates_per_zone):
            render_manifest_pdf(zone_rows, gate_name=f"G{(z - 1) * gates_per_zone + g + 1}", **meta)
    t3 = time.perf_counter()
    return {
        "rows_count": rows_count,
        "zones": zones,
        "gates_per_zone": gates_per_zone,
        "pages_count": 1 + -(-rows_count // ROWS_PER_PAGE),
        "pdf_s": round(t1 - t0, 3),
        "pdf_mb": round(len(pdf) / 1e6, 2),
        "csv_s": round(t2 - t1, 3),
        "csv_mb": round(len(data) / 1e6, 2),
        "rows_per_s": round(rows_count / (t1 - t0)) if t1 > t0 else 0,
        "all_gates_pdf_s": round(t3 - t2, 3),
    }


def rows_for_gate(
    records: Iterable[TicketRecord],
    zones: Mapping[int, Zone],
    *,
    event_id: int,
    gate_id: str,
) -> list[ManifestRow]:
    """Manifest rows for one gate: tickets of every zone whose ``gates`` include ``gate_id``.

    Revoked and superseded tickets stay on the manifest, marked, so a steward who finds the
    number knows to refuse it instead of treating it as "not found".
    """
    wanted = {z.zone_id: z for z in zones.values() if gate_id in z.gates}
    return [
        make_row(event_id, ticket_id=r.ticket_id, number=r.number, holder=r.holder, zone_id=r.zone_id,
                 zone_name=wanted[r.zone_id].name, seat=r.seat, status=str(r.status))
        for r in records if r.zone_id in wanted
    ]
