"""Printable per-gate paper manifests (PDF with fpdf2) and the same data as CSV.

A manifest is what stewards use when a gate's replica cannot be trusted: every ticket a gate
admits, sorted by ticket number like a phone book, with its check code, holder, zone and seat
and a tick box per line. Every page repeats the event, the gate, when the manifest was
generated and the hub sequence number it reflects (so a steward can tell an old print from a
new one), the range of numbers on the page, and "page X of Y". Page 1 is a summary: counts
per zone, how to use the manifest, and a hand-over block for signatures.

Printed in black and white: no grey fills, nothing is told by colour alone (cancelled tickets say so in
words and their tick box is crossed out), nothing is smaller than 8 pt.

Languages: the labels and instructions come from the gettext catalogues (the event's
language, ``lang``), and holder names are printed in any script the ticket shop sent:
DejaVu Sans for Latin and Cyrillic (Kazakh ә ғ қ ң ө ұ ү һ і included), Noto Sans CJK SC
(Debian's ``fonts-noto-cjk``) for any text holding Chinese, Japanese or Korean characters.
fpdf2 embeds only the glyphs used (a subset), so the 20 MB CJK font costs a few hundred KB.

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
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fpdf import FPDF

import i18n
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
#: Debian's fonts-noto-cjk: a collection; face 2 is Noto Sans CJK SC (Simplified Chinese)
CJK_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
CJK_FONT_BOLD = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc")
CJK_FACE = 2
#: characters that need the CJK font (CJK punctuation, kana, ideographs, hangul, full-width forms)
_CJK = re.compile("[\u2e80-\u9fff\ua960-\ua97f\uac00-\ud7af\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef"
                  "\U00020000-\U0003ffff]")


_CJK_RUN = re.compile(_CJK.pattern + "+")


def needs_cjk(text: str) -> bool:
    return _CJK.search(text) is not None


def add_fonts(pdf: FPDF, *, cjk: bool) -> tuple[str, str | None]:
    """Add the fonts that print every language gatehouse speaks to ``pdf``: DejaVu Sans
    (regular and bold) as ``body`` for Latin and Cyrillic, and — only when ``cjk`` (parsing
    the 20 MB collection costs a second or two) and ``fonts-noto-cjk`` is installed — Noto
    Sans CJK SC as ``cjk``. Returns (body family, CJK family or None); the body family is
    core ``helvetica`` (Latin-1 only) when DejaVu is missing."""
    if not (FONT_DIR / "DejaVuSans.ttf").exists():
        log.warning("DejaVu fonts not found in %s; using core Helvetica/Courier", FONT_DIR)
        return "helvetica", None
    pdf.add_font("body", "", str(FONT_DIR / "DejaVuSans.ttf"))
    pdf.add_font("body", "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
    if not (cjk and CJK_FONT.exists()):
        return "body", None
    pdf.add_font("cjk", "", str(CJK_FONT), collection_font_number=CJK_FACE)
    pdf.add_font("cjk", "B", str(CJK_FONT_BOLD if CJK_FONT_BOLD.exists() else CJK_FONT),
                 collection_font_number=CJK_FACE)
    return "body", "cjk"


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

    def __init__(self, *, event_name: str, gate_name: str, generated: str, hub_seq: int, lang: str = "en",
                 cjk: bool = False) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.words = i18n.get(lang)
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
        self.cjk: str | None
        self.body, self.cjk = add_fonts(self, cjk=cjk)
        self.unicode = self.body == "body"
        if self.unicode:
            self.add_font("mono", "B", str(FONT_DIR / "DejaVuSansMono-Bold.ttf"))
            self.mono = "mono"
        else:  # core fonts: Latin-1 only, names are transliterated by _text()
            self.mono = "courier"
        #: texts that needed the CJK font when it is not installed (printed as "?"; logged and counted)
        self.unprintable = 0
        self.cjk_needed = cjk
        self._widths: dict[tuple[str, str, float], dict[str, float]] = {}
        title = self.words._("manifest for gate {gate}", gate=gate_name)
        self.set_title(f"{event_name} — {title}")
        self.set_creator("gatehouse")
        self.set_line_width(0.25)

    def _text(self, s: str) -> str:
        if self.unicode:
            if self.cjk is None and self.cjk_needed and needs_cjk(s):
                self.unprintable += 1
                return _CJK.sub("?", s)
            return s
        return s.encode("latin-1", "replace").decode("latin-1")

    def family_for(self, s: str) -> str:
        """The body font, or the CJK font for text holding CJK characters."""
        return self.cjk if self.cjk is not None and needs_cjk(s) else self.body

    def runs(self, s: str) -> list[tuple[str, str]]:
        """``s`` cut into (family, text) runs: CJK characters in the CJK font, the rest (Latin,
        Cyrillic with every Kazakh letter) in DejaVu, so a mixed line prints every glyph."""
        s = self._text(s)
        if self.cjk is None or not needs_cjk(s):
            return [(self.body, s)]
        out: list[tuple[str, str]] = []
        pos = 0
        for m in _CJK_RUN.finditer(s):
            if m.start() > pos:
                out.append((self.body, s[pos:m.start()]))
            out.append((self.cjk, m.group()))
            pos = m.end()
        if pos < len(s):
            out.append((self.body, s[pos:]))
        return out

    def width(self, family: str, style: str, size: float, text: str) -> float:
        """Width of ``text`` in a font, from glyph widths measured once per character."""
        cache = self._widths.setdefault((family, style, size), {})
        total = 0.0
        for ch in text:
            w = cache.get(ch)
            if w is None:
                self.set_font(family, style, size)
                w = cache[ch] = float(self.get_string_width(ch))
            total += w
        return total

    def runs_width(self, runs: list[tuple[str, str]], style: str, size: float) -> float:
        return sum(self.width(family, style, size, text) for family, text in runs)

    def write_at(self, x: float, y: float, s: str, style: str = "", size: float = BODY_PT,
                 max_w: float | None = None) -> None:
        """Text at a position, each run in the font its characters need, cut to ``max_w``."""
        runs = self.runs(s)
        if max_w is not None and self.runs_width(runs, style, size) > max_w:
            runs = self._cut(runs, style, size, max_w)
        for family, text in runs:
            self.set_font(family, style, size)
            self.text(x, y, text)
            if len(runs) > 1:
                x += self.width(family, style, size, text)

    def _cut(self, runs: list[tuple[str, str]], style: str, size: float, max_w: float) -> list[tuple[str, str]]:
        room = max_w - self.width(self.body, style, size, "…")
        out: list[tuple[str, str]] = []
        for family, text in runs:
            for i, ch in enumerate(text):
                room -= self.width(family, style, size, ch)
                if room < 0:
                    out.append((family, text[:i]))
                    out.append((self.body, "…"))
                    return out
            out.append((family, text))
        return out

    def cell_at(self, x: float, y: float, w: float, h: float, s: str, style: str = "", size: float = BODY_PT) -> None:
        """Right-aligned in a box of width ``w`` (its baseline like ``cell``'s)."""
        runs = self.runs(s)
        width = self.runs_width(runs, style, size)
        self.write_at(x + w - width, y + h / 2 + size * 0.3528 * 0.35, s, style, size)

    def page_of(self) -> str:
        w = self.words
        return w._("page {page} of {pages}", page=w.number(self.page_no()), pages=w.number(self.total_pages))

    def header(self) -> None:
        top = MARGIN
        w = self.words
        self.set_text_color(0)
        gate = w._("GATE {gate}", gate=self.gate_name)
        self.write_at(MARGIN, top + 4.5, f"{self.event_name}  —  {gate}", "B", 12)
        self.cell_at(PAGE_W - MARGIN - 50.0, top, 50.0, 6.0, self.page_of(), "B", 12)
        info = w._("Paper manifest · generated {time} · hub seq {seq}", time=self.generated, seq=self.hub_seq)
        self.write_at(MARGIN, top + 10.0, info)
        if self.page_numbers:
            self.cell_at(PAGE_W - MARGIN - 90.0, top + 6.8, 90.0, 4.5, w._("Tickets {range}", range=self.page_numbers),
                         "B")
        self.line(MARGIN, top + 12.0, PAGE_W - MARGIN, top + 12.0)
        if self.list_page:
            y = top + 17.5
            for x, label in ((MARGIN, w._("Tick")), (COL_NUMBER, w._("Ticket number")), (COL_CODE, w._("Code")),
                             (COL_HOLDER, w._("Holder")), (COL_ZONE, w._("Zone")), (COL_SEAT, w._("Seat")),
                             (COL_STATUS, w._("Status"))):
                self.write_at(x, y, label, "B", SMALL_PT)
            self.set_line_width(0.5)
            self.line(MARGIN, top + 19.5, PAGE_W - MARGIN, top + 19.5)
            self.set_line_width(0.25)

    def footer(self) -> None:
        w = self.words
        y = PAGE_H - MARGIN + 2.0
        gate = w._("gate {gate}", gate=self.gate_name)
        seq = w._("hub seq {seq}", seq=self.hub_seq)
        self.write_at(MARGIN, y, f"{self.event_name} · {gate} · {seq}", "", SMALL_PT)
        self.cell_at(PAGE_W - MARGIN - 50.0, y - 3.0, 50.0, 4.0, self.page_of(), "", SMALL_PT)


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
    w = pdf.words
    n = w.number
    y = MARGIN + 22.0
    pdf.write_at(MARGIN, y, w._("Summary"), "B", 16)
    y += 9.0
    pdf.write_at(MARGIN, y, w._("This manifest lists {n} tickets for gate {gate} on pages 2 to {last}, sorted by "
                                "ticket number.", n=n(rows_total), gate=pdf.gate_name, last=n(list_pages + 1)), "", 10)
    y += 10.0
    # counts per zone
    cols = (MARGIN, MARGIN + 80.0, MARGIN + 115.0, MARGIN + 160.0)
    for x, label in zip(cols, (w._("Zone"), w._("May enter"), w._("Cancelled/replaced"), w._("Total")), strict=True):
        pdf.write_at(x, y, label, "B", 10)
    pdf.line(MARGIN, y + 1.5, PAGE_W - MARGIN, y + 1.5)
    for c in counts:
        y += 6.0
        if y > PAGE_H - 165.0:  # very many zones: keep room for the instructions and hand-over
            pdf.write_at(MARGIN, y, w._("… and {n} more zones (see CSV)", n=n(len(counts) - counts.index(c))), "", 10)
            break
        pdf.write_at(cols[0], y, f"{c.zone_name} ({c.zone_id})", "", 10)
        pdf.write_at(cols[1], y, n(c.valid), "", 10)
        pdf.write_at(cols[2], y, n(c.not_admissible), "", 10)
        pdf.write_at(cols[3], y, n(c.total), "", 10)
    y += 2.0
    pdf.line(MARGIN, y, PAGE_W - MARGIN, y)
    y += 5.0
    pdf.write_at(cols[0], y, w._("All zones"), "B", 10)
    pdf.write_at(cols[1], y, n(sum(c.valid for c in counts)), "B", 10)
    pdf.write_at(cols[2], y, n(sum(c.not_admissible for c in counts)), "B", 10)
    pdf.write_at(cols[3], y, n(rows_total), "B", 10)
    y += 12.0
    pdf.write_at(MARGIN, y, w._("How to use this manifest"), "B", 12)
    steps = [
        w._("1. Use it only when the gate screen says MANIFEST, or a supervisor tells you to."),
        w._("2. Read the ticket number. Find it: pages are in number order; the top of each page"),
        w._("    shows the first and last number on that page."),
        w._("3. Check the 4-character code beside the number matches what you type or read."),
        w._("4. Status says CANCELLED or REPLACED (box crossed out)? Do NOT admit: send to the ticket office."),
        w._("5. Box already ticked? The ticket was used: do NOT admit, call a supervisor."),
        w._("6. Otherwise tick the box, then key the number (or code + last digits) and your PIN"),
        w._("    on the gate screen if it works. If the screen is dead, tick it, write the time beside it"),
        w._("    and use the release button: a supervisor enters paper ticks on the hub later."),
        w._("7. Not on the manifest? Do not admit on your own: call a supervisor (override with a note)."),
        w._("8. When the gate is back to normal, hand this manifest to your supervisor, signed below."),
    ]
    for line in steps:
        y += 5.6
        pdf.write_at(MARGIN, y, line, "", 10, max_w=PAGE_W - 2 * MARGIN)
    y += 12.0
    pdf.write_at(MARGIN, y, w._("Hand-over"), "B", 12)
    fields = [(w._("Steward name"), w._("Steward ID")), (w._("Signature"), w._("Time taken")),
              (w._("Tickets ticked on paper"), w._("Time returned")),
              (w._("Supervisor name"), w._("Supervisor signature"))]
    for left, right in fields:
        y += 11.0
        pdf.write_at(MARGIN, y, left + ":", "", 10)
        pdf.line(MARGIN + 45.0, y + 0.5, MARGIN + 95.0, y + 0.5)
        pdf.write_at(MARGIN + 100.0, y, right + ":", "", 10)
        pdf.line(MARGIN + 143.0, y + 0.5, PAGE_W - MARGIN, y + 0.5)
    if y > PAGE_H - MARGIN - FOOTER_H:  # the layout above guarantees room; never overprint the footer
        raise RuntimeError(f"manifest summary overflows its page (y={y:.1f} mm)")


def _list_pages(pdf: _ManifestPDF, rows: Sequence[ManifestRow]) -> int:
    fits = {family: (_Fitter(pdf, family, "", BODY_PT), _Fitter(pdf, family, "B", SMALL_PT))
            for family in {pdf.body, pdf.cjk} if family is not None}
    w = pdf.words
    printed = {TicketState.REVOKED: w._("CANCELLED"), TicketState.SUPERSEDED: w._("REPLACED")}
    status_family = pdf.family_for("".join(printed.values()))
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
            family = body
            pdf.set_font(body, "", BODY_PT)
            for x, value, width in ((COL_HOLDER, row.holder, W_HOLDER),
                                    (COL_ZONE, row.zone_name or str(row.zone_id), W_ZONE), (COL_SEAT, row.seat, W_SEAT)):
                if not value:
                    continue
                if pdf.cjk is not None and needs_cjk(value):
                    pdf.write_at(x, base, value, "", BODY_PT, max_w=width)  # script by script
                    family = ""
                    continue
                if family != body:
                    family = body
                    pdf.set_font(body, "", BODY_PT)
                pdf.text(x, base, fits[body][0].fit(t(value), width))
            if row.status != TicketState.VALID:
                # Crossed-out box and words: readable in black and white, never ticked by mistake.
                bx, by = COL_BOX, top + (ROW_H - BOX) / 2
                pdf.line(bx, by, bx + BOX, by + BOX)
                pdf.line(bx, by + BOX, bx + BOX, by)
                pdf.set_font(status_family, "B", SMALL_PT)
                label = printed.get(TicketState(row.status), TicketState(row.status).printed)
                pdf.text(COL_STATUS, base, fits[status_family][1].fit(label, W_STATUS))
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
    lang: str = "en",
) -> bytes:
    """Render one gate's manifest: a summary page, then the rows sorted by ticket number.

    ``rows`` may come in any order; they are sorted here. An empty manifest still renders
    (summary page saying so) so a gate with no tickets yet has a dated, sequenced print.
    ``lang`` is the event's language (labels and instructions; numbers as it writes them).
    The generation time stays ISO 8601 in UTC in every language: stewards compare prints by it.
    """
    ordered = sort_rows(rows)
    cjk = (needs_cjk(event_name + gate_name) or i18n.get(lang).code == "zh_Hans"
           or any(needs_cjk(r.holder) or needs_cjk(r.zone_name) or needs_cjk(r.seat) for r in ordered))
    pdf = _ManifestPDF(event_name=event_name, gate_name=gate_name, generated=_format_time(generated_at),
                       hub_seq=int(hub_seq), lang=lang, cjk=cjk)
    list_pages = -(-len(ordered) // ROWS_PER_PAGE)
    pdf.total_pages = 1 + list_pages
    _summary_page(pdf, zone_counts(ordered), len(ordered), list_pages)
    _list_pages(pdf, ordered)
    if pdf.page_no() != pdf.total_pages:  # the layout guarantees it; never print a wrong "of Y"
        raise RuntimeError(f"manifest has {pdf.page_no()} pages, headers say {pdf.total_pages}")
    if pdf.unprintable:
        log.warning("manifest for gate %s: %d texts hold CJK characters but %s is missing (printed as ?); "
                    "install fonts-noto-cjk", gate_name, pdf.unprintable, CJK_FONT)
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
    lang: str = "en",
) -> bytes:
    """The same manifest as CSV (UTF-8 with BOM, so spreadsheet programs read names right).

    The columns keep their stable English names in every language (``lang`` is accepted for
    symmetry with the PDF): scripts and spreadsheets read them by name."""
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
#: names as a club in Almaty or Shanghai sells them: Kazakh (ә ғ қ ң ө ұ ү һ і), Russian, Chinese
_KAZAKH = ("Әсел Қасымова", "Ғалым Нұрланұлы", "Айгүл Сәрсенбаева", "Ұлан Өтегенов", "Нұрсұлтан Жақыпов",
           "Гүлнәр Бейсенқызы", "Һадиша Әлиева", "Іңкәр Тоқтарова")
_RUSSIAN = ("Анна Смирнова", "Дмитрий Волков", "Екатерина Кузнецова-Ильина", "Юрий Щербаков")
_CHINESE = ("王伟", "李娜", "张敏", "刘洋", "陈静", "欧阳娜娜", "司马相如", "黄晓明")


def _holder(i: int, scripts: str) -> str:
    if scripts == "mixed":
        pool = (_KAZAKH, _RUSSIAN, _CHINESE)[i % 3]
        return pool[(i // 3) % len(pool)]
    return f"{_FIRST[i % len(_FIRST)]} {_LAST[(i // 7) % len(_LAST)]}"


def sample_rows(count: int, *, event_id: int = 2026, zones: int = 4, revoked_every: int = 97,
                scripts: str = "latin") -> list[ManifestRow]:
    """Deterministic rows with realistic names (accents, long double-barrelled names; with
    ``scripts="mixed"`` a third each Kazakh, Russian and Chinese)."""
    out = []
    for i in range(count):
        z = i % zones + 1
        out.append(make_row(
            event_id, ticket_id=i + 1, number=str(100_000_000 + i),
            holder=_holder(i, scripts),
            zone_id=z, zone_name=f"Zone {z} {'North East South West'.split()[z % 4]} Stand",
            seat=f"Row {i % 40 + 1} Seat {i % 31 + 1}",
            status=TicketState.REVOKED if revoked_every and i % revoked_every == 5 else TicketState.VALID,
        ))
    return out


def bench(rows_count: int, *, zones: int = 4, gates_per_zone: int = 2, lang: str = "en",
          scripts: str = "latin") -> dict[str, Any]:
    """Time manifests for a ``rows_count``-ticket event (one flat dict, units in the keys).

    Two figures: one manifest holding every ticket (a gate that admits all zones: the
    largest single document), and every gate's manifest for the event, with ``zones`` zones
    each admitted at ``gates_per_zone`` gates (each gate's manifest holds its zone only).
    """
    rows = sample_rows(rows_count, zones=zones, scripts=scripts)
    meta: dict[str, Any] = {"event_name": "Bench Cup Final", "generated_at": time.time(), "hub_seq": 123_456,
                            "lang": lang}
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
        "lang": lang,
        "scripts": scripts,
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
