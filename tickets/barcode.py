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
