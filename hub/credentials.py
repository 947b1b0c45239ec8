"""Issuing and rendering ticket credentials: the signed QR text, a PNG, a printable PDF.

The text is :func:`tickets.credential.issue` over the ticket's current row, so a ticket's
credential changes exactly when its serial does (upgrade, transfer): the old one is then
refused as SUPERSEDED. Rendering is CPU work; the API runs it on a worker thread.
"""
from __future__ import annotations

import io
from typing import Any

import segno
from fpdf import FPDF

from tickets import credential
from tickets.keys import SigningKey

_QR_SCALE = 8


def credential_text(key: SigningKey, event_id: int, ticket: dict[str, Any]) -> str:
    """The static signed QR text for a ticket row (for a rotating ticket: the part the phone holds)."""
    fields = credential.CredentialFields(
        key_id=key.key_id,
        event_id=event_id,
        ticket_id=int(ticket["ticket_id"]),
        zone_id=int(ticket["zone_id"]),
        policy_id=int(ticket["policy_id"]),
        valid_from=int(ticket["valid_from"]),
        valid_until=int(ticket["valid_until"]),
        serial=int(ticket["serial"]),
        rotating=ticket.get("rotating_secret") is not None,
    )
    return credential.issue(key, fields)


def qr_png(text: str, scale: int = _QR_SCALE) -> bytes:
    """A PNG of the QR code. Error level M; upper-case base32 keeps it in alphanumeric mode."""
    buf = io.BytesIO()
    segno.make(text, error="m", micro=False).save(buf, kind="png", scale=scale, border=4)
    return buf.getvalue()


def qr_svg(text: str, scale: int = 4) -> str:
    buf = io.BytesIO()
    segno.make(text, error="m", micro=False).save(buf, kind="svg", scale=scale, border=4, xmldecl=False)
    return buf.getvalue().decode("utf-8")


def _latin1(text: str) -> str:
    # the PDF core fonts are Latin-1; replace what they cannot show rather than fail
    return text.encode("latin-1", errors="replace").decode("latin-1")


def ticket_pdf(text: str, ticket: dict[str, Any], *, event_name: str, zone_name: str) -> bytes:
    """A one-page A6 printable ticket: event, holder, zone, seat, number and the QR."""
    pdf = FPDF(orientation="P", unit="mm", format=(105, 148))  # A6
    pdf.set_auto_page_break(False)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(0, 8, _latin1(event_name or "Event ticket"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    for label, value in (("Holder", ticket.get("holder") or "-"), ("Zone", zone_name),
                         ("Seat", ticket.get("seat") or "-"), ("Ticket", ticket["number"])):
        pdf.cell(0, 5, _latin1(f"{label}: {value}"), new_x="LMARGIN", new_y="NEXT")
    png = qr_png(text, scale=6)
    pdf.image(io.BytesIO(png), x=17, y=40, w=70, h=70)
    pdf.set_y(115)
    pdf.set_font("Helvetica", "", 7)
    pdf.multi_cell(0, 3, _latin1(f"Revision {ticket['serial']}. Any earlier print of this ticket is no longer valid."))
    return bytes(pdf.output())
