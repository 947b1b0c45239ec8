"""The readiness report as one A4 page to print and sign (fpdf2, like the manifests).

One page whatever the venue's size: every ✖ and every waived line is printed with what to do
(or who waived it); the lines that pass are summed up per zone and per gate ("✔ 38 of 40
gates pass every check") — a 200-gate venue would otherwise need twenty pages that nobody
signs. If even the ✖ lines do not fit, the page says how many more there are and where to
read them. The page ends with the verdict and a signature block.

Zone, gate and event names and waiver texts print in any script, with the paper manifest's
fonts (:func:`hub.manifest.add_fonts`): DejaVu Sans for Latin and Cyrillic (every Kazakh
letter), Noto Sans CJK SC for Chinese — loaded only when some text holds it, and used glyph
by glyph on mixed lines (fpdf2's fallback fonts).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from fpdf import FPDF

from hub.manifest import CJK_FONT, add_fonts, needs_cjk
from hub.readiness import Line, Report

log = logging.getLogger(__name__)

#: the y (mm) below which the signature block is drawn
SIGN_Y = 245.0


def _texts(report: Report) -> Iterator[str]:
    """Every text from the hub's data that the page may print."""
    yield report.event_name
    for ln in report.lines:
        yield from (ln.subject, ln.check, ln.detail, ln.action)
        if ln.waiver is not None:
            yield from (str(ln.waiver.get("supervisor", "")), str(ln.waiver.get("actor", "")),
                        str(ln.waiver.get("reason", "")))


def render_readiness_pdf(report: Report) -> bytes:
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_margins(15, 15, 15)
    cjk_needed = any(needs_cjk(s) for s in _texts(report))
    family, cjk = add_fonts(pdf, cjk=cjk_needed)
    unicode_font = family == "body"
    if cjk is not None:
        pdf.set_fallback_fonts([cjk])
    elif cjk_needed and unicode_font:
        log.warning("readiness PDF: some names hold Chinese characters but %s is missing (printed as ?); "
                    "install fonts-noto-cjk", CJK_FONT)

    def text(s: str) -> str:
        if unicode_font:
            return s if cjk is not None or not cjk_needed else "".join("?" if needs_cjk(c) else c for c in s)
        s = s.replace("✔", "OK").replace("✖", "X").replace("→", "->")
        return s.encode("latin-1", errors="replace").decode("latin-1")

    pdf.add_page()
    pdf.set_title(f"Readiness {report.event_name}")
    pdf.set_font(family, "B", 16)
    pdf.cell(0, 8, text(f"Readiness: {report.event_name or 'Event'} ({report.event_id})"), new_x="LMARGIN",
             new_y="NEXT")
    pdf.set_font(family, "", 9)
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(report.at))
    pdf.cell(0, 5, text(f"Generated {when} at hub seq {report.hub_seq}. {len(report.lines)} checks: "
                        f"{len(report.lines) - report.failing - report.waived} pass, {report.waived} waived, "
                        f"{report.failing} open."), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font(family, "B", 22)
    if report.ready:
        pdf.set_text_color(0, 110, 40)
        pdf.cell(0, 12, text("✔ READY"), new_x="LMARGIN", new_y="NEXT")
    else:
        pdf.set_text_color(180, 0, 0)
        pdf.cell(0, 12, text(f"✖ NOT READY: {report.failing} open"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    pdf.ln(1)

    for scope, title in (("zone", "Zones"), ("gate", "Gates")):
        mine = [ln for ln in report.lines if ln.scope == scope]
        subjects = sorted({ln.subject for ln in mine})
        clean = [s for s in subjects if all(ln.status == "ok" for ln in mine if ln.subject == s)]
        pdf.set_font(family, "B", 11)
        pdf.cell(0, 6, text(f"{title}: {len(clean)} of {len(subjects)} pass every check"), new_x="LMARGIN",
                 new_y="NEXT")
        if scope == "zone":  # tickets against capacity, every zone, in one paragraph
            pdf.set_font(family, "", 7)
            pdf.multi_cell(0, 3.5, text(" · ".join(f"{ln.subject.removeprefix('zone ')}: {ln.detail}"
                                                   for ln in mine if ln.check == "capacity")[:3000]),
                           new_x="LMARGIN", new_y="NEXT")
        shown = 0
        attention = [ln for ln in mine if ln.status != "ok"]
        for ln in attention:
            if pdf.get_y() > SIGN_Y - (40 if scope == "zone" else 12):
                break
            _line(pdf, family, text, ln)
            shown += 1
        if shown < len(attention):
            pdf.set_font(family, "B", 8)
            pdf.cell(0, 4, text(f"… and {len(attention) - shown} more lines that need attention: run "
                                "`gatehouse hub readiness` or open the readiness page"), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)

    pdf.set_y(SIGN_Y)
    pdf.set_font(family, "B", 10)
    pdf.cell(0, 6, text("Checked and signed before the doors open"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, "", 9)
    for label in ("Supervisor (name)", "Signature", "Date and time"):
        pdf.cell(45, 10, text(label + ":"))
        y = pdf.get_y() + 8
        pdf.line(pdf.get_x(), y, 195, y)
        pdf.ln(10)
    return bytes(pdf.output())


def _line(pdf: FPDF, family: str, text: object, ln: Line) -> None:
    render = text  # a callable mapping text for the font in use
    assert callable(render)
    pdf.set_font(family, "B", 8)
    mark = "✖" if ln.status == "fail" else "✔ waived"
    pdf.multi_cell(0, 4, render(f"{mark}  {ln.subject} — {ln.check}: {ln.detail}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, "", 7)
    if ln.status == "fail" and ln.action:
        pdf.set_x(pdf.l_margin + 6)
        pdf.multi_cell(0, 3.5, render(f"→ {ln.action}"), new_x="LMARGIN", new_y="NEXT")
    if ln.waiver is not None:
        w = ln.waiver
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(float(w["at"])))
        pdf.set_x(pdf.l_margin + 6)
        pdf.multi_cell(0, 3.5, render(f"waived by {w['supervisor']} ({w['actor']}, {when}): {w['reason']}"),
                       new_x="LMARGIN", new_y="NEXT")
