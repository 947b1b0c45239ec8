"""A ticket's *barcode*: what a scanner reads from a shop's or a legacy ticket, kept secret.

A ticket has a *number* (what a steward types and the paper manifest prints) and, apart
from it, a *barcode* (the secret content of the printed or phone code). Anyone holding a
barcode can clone the ticket, so it never appears on a manifest, a staff screen, a log at
normal level or a viewer's API response — and gates do not hold it at all: the hub sends
them only :func:`barcode_key`, a keyed digest, and a gate hashes what it scans the same way.
A stolen gate's SD card therefore yields no usable codes.

The key folds letter case and surrounding white space, because scanners and keyboard
wedges report the same code in either case; the hub refuses an import in which two
barcodes fold to the same key.
"""
from __future__ import annotations

import hashlib

#: bytes of SHA-256 kept: 128 bits, far beyond any event's ticket count
KEY_BYTES = 16
_DOMAIN = b"gatehouse-barcode-v1:"


def fold(text: str) -> str:
    """The form two readings of one code share: surrounding white space removed, case folded."""
    return text.strip().casefold()


def barcode_key(text: str) -> bytes:
    """The digest a gate looks a scanned barcode up by (16 bytes)."""
    return hashlib.sha256(_DOMAIN + fold(text).encode("utf-8", "surrogatepass")).digest()[:KEY_BYTES]


#: A ticket admitted on a shop's signature before the hub sent it has no hub ticket id yet.
#: It is tracked under a *provisional* id derived from its barcode key, the same at every
#: gate, so a second scan anywhere in its zone is refused. The hub never issues ids in
#: [PROVISIONAL_ID_BASE, 2**63).
PROVISIONAL_ID_BASE = 2**62

#: The journal's ``raw`` for a code that is not a gatehouse credential: this prefix and the
#: barcode key in hex. The hub resolves the ticket by the key; the barcode is never stored.
JOURNAL_KEY_PREFIX = b"barcode_key:"
_GH1 = b"GH1:"


def provisional_ticket_id(key: bytes) -> int:
    """The id a ticket known only by its barcode key is tracked under (see above)."""
    return PROVISIONAL_ID_BASE + int.from_bytes(key[:8], "big") % PROVISIONAL_ID_BASE


def journal_raw(payload: bytes) -> bytes:
    """What the journal keeps of scanned bytes.

    A gatehouse credential (``GH1:…``) is kept as read: it is signed and names its ticket,
    and the hub's audit uses it. Any other code may be a shop's secret barcode, so only its
    key is kept (``barcode_key:<hex>``) — the journal, the hub's copy of it and its API
    must not become a way to read barcodes back.
    """
    if payload.strip(b" \t\r\n\x00")[:4].upper() == _GH1:
        return payload
    text = payload.decode("utf-8", errors="replace")
    return JOURNAL_KEY_PREFIX + barcode_key(text).hex().encode("ascii")
