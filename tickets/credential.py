"""Ticket credentials: the signed QR format, rotating codes and legacy ticket numbers.

Signed QR text (RFC 4648 base32 without padding, upper case, so QR alphanumeric mode)::

    GH1:<base32(payload || signature)>             static
    GH1:<base32(payload || signature)>:<code>      rotating (payload flag ROTATING set)

``payload`` is 29 bytes, big-endian::

    version u8 | flags u8 | key_id u16 | event_id u32 | ticket_id u64 | zone_id u16 |
    policy_id u8 | valid_from u32 | valid_until u32 | serial u16

and the Ed25519 signature (64 bytes) covers ``b"GH1" + payload``. The ROTATING flag is
signed, so the code cannot be stripped off to pass a rotating ticket off as a static one.

Anything that does not start with ``GH1:`` and looks like a ticket number (printable
ASCII letters, digits and ``-_./``, 1–64 characters) is a legacy number; any other
printable ASCII text up to :data:`MAX_SCAN_LEN` is a :class:`ForeignCode` (a shop's own
barcode, e.g. a pretix signed secret with ``+/=``). Both are looked up in the replica by
their barcode key (:mod:`tickets.barcode`). Everything else is MALFORMED.

:func:`read` is total: for any bytes it returns a credential or raises
:class:`~tickets.errors.MalformedCredential` / :class:`~tickets.errors.ForgedCredential`.
"""
from __future__ import annotations

import base64
import binascii
import re
import struct
from dataclasses import dataclass

from tickets.errors import ForgedCredential, MalformedCredential
from tickets.keys import KeyRing, SigningKey

PREFIX = "GH1:"
FORMAT_VERSION = 1
FLAG_ROTATING = 0x01
KNOWN_FLAGS = FLAG_ROTATING
SIG_DOMAIN = b"GH1"
_PAYLOAD = struct.Struct(">BBHIQHBIIH")
PAYLOAD_LEN = _PAYLOAD.size  # 29
SIG_LEN = 64
BODY_LEN = PAYLOAD_LEN + SIG_LEN
MAX_SCAN_LEN = 512  # longer than any credential we issue; refuse early
_LEGACY = re.compile(r"[A-Za-z0-9\-_./]{1,64}")
_FOREIGN = re.compile(r"[\x21-\x7e][\x20-\x7e]*")
_CODE = re.compile(r"[A-Z2-7]{8}")


@dataclass(frozen=True, slots=True)
class CredentialFields:
    """What a signed credential asserts about a ticket."""

    key_id: int
    event_id: int
    ticket_id: int
    zone_id: int
    policy_id: int
    valid_from: int
    valid_until: int
    serial: int = 0
    rotating: bool = False

    def pack(self) -> bytes:
        flags = FLAG_ROTATING if self.rotating else 0
        try:
            return _PAYLOAD.pack(
                FORMAT_VERSION, flags, self.key_id, self.event_id, self.ticket_id, self.zone_id,
                self.policy_id, self.valid_from, self.valid_until, self.serial,
            )
        except struct.error as exc:
            raise ValueError(f"credential field out of range: {exc}") from exc


@dataclass(frozen=True, slots=True)
class SignedCredential:
    fields: CredentialFields
    code: str | None  # the rotating code, if one was shown


@dataclass(frozen=True, slots=True)
class LegacyNumber:
    """A ticket-number-shaped code: found by its barcode key, or by number for a ticket
    whose barcode is its number."""

    number: str

    @property
    def text(self) -> str:
        return self.number


@dataclass(frozen=True, slots=True)
class ForeignCode:
    """Any other printable code (a shop's barcode): found by its barcode key only."""

    text: str


Credential = SignedCredential | LegacyNumber | ForeignCode


def issue(key: SigningKey, fields: CredentialFields) -> str:
    """The static QR text for a ticket (for a rotating ticket: the part the phone holds)."""
    if fields.key_id != key.key_id:
        raise ValueError(f"fields name key {fields.key_id} but signing key is {key.key_id}")
    payload = fields.pack()
    body = payload + key.sign(SIG_DOMAIN + payload)
    return PREFIX + base64.b32encode(body).decode("ascii").rstrip("=")


def with_code(static_text: str, code: str) -> str:
    """The rotating QR text: the signed part plus the code for the current step."""
    return f"{static_text}:{code}"


def read(data: bytes, keyring: KeyRing) -> Credential:
    """Parse and verify scanned bytes. Total: never raises anything but CredentialError."""
    if len(data) > MAX_SCAN_LEN:
        raise MalformedCredential(f"{len(data)} bytes is longer than any ticket code")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise MalformedCredential("not ASCII text") from None
    text = text.strip(" \t\r\n\x00")
    if text[:4].upper() == PREFIX:
        return _read_signed(text[4:].upper(), keyring)
    if _LEGACY.fullmatch(text):
        return LegacyNumber(text)
    if _FOREIGN.fullmatch(text):
        return ForeignCode(text)
    raise MalformedCredential("neither a gatehouse QR nor a printable barcode")


def _read_signed(rest: str, keyring: KeyRing) -> SignedCredential:
    body_text, sep, code = rest.partition(":")
    if sep and not _CODE.fullmatch(code):
        raise MalformedCredential("rotating code is not 8 base32 characters")
    padded = body_text + "=" * (-len(body_text) % 8)
    try:
        body = base64.b32decode(padded, casefold=False)
    except (binascii.Error, ValueError):
        raise MalformedCredential("bad base32") from None
    if len(body) != BODY_LEN:
        raise MalformedCredential(f"body is {len(body)} bytes, expected {BODY_LEN}")
    if base64.b32encode(body).decode("ascii").rstrip("=") != body_text:
        # The last character carries a padding bit: only one spelling of a ticket is valid.
        raise MalformedCredential("non-canonical base32 (padding bits set)")
    payload, signature = body[:PAYLOAD_LEN], body[PAYLOAD_LEN:]
    version, flags, key_id, event_id, ticket_id, zone_id, policy_id, vfrom, vuntil, serial = _PAYLOAD.unpack(payload)
    if version != FORMAT_VERSION:
        raise MalformedCredential(f"format version {version} is not supported")
    if flags & ~KNOWN_FLAGS:
        raise MalformedCredential(f"unknown flags {flags:#x}")
    key = keyring.get(key_id)
    if key is None:
        raise ForgedCredential(f"signed with unknown key id {key_id}")
    if not key.verify(signature, SIG_DOMAIN + payload):
        raise ForgedCredential("signature does not verify")
    fields = CredentialFields(
        key_id=key_id, event_id=event_id, ticket_id=ticket_id, zone_id=zone_id, policy_id=policy_id,
        valid_from=vfrom, valid_until=vuntil, serial=serial, rotating=bool(flags & FLAG_ROTATING),
    )
    return SignedCredential(fields, code if sep else None)
