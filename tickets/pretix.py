"""pretix signed tickets (``pretix_sig1``), verified offline, and the event data to decide them.

pretix, the ticket shop, can issue *signed* ticket secrets instead of random ones (event
setting ``ticket_secret_generator = pretix_sig1``) so that a scanner without the ticket list
can still tell a genuine ticket from a made-up one. The format, as pretix writes it
(``pretix/base/secrets.py``, ``Sig1TicketSecretGenerator``)::

    secret = reversed(base64(container))          # standard alphabet with + / =, reversed
    container = 0x01 | u16 len(payload) | u16 len(signature) | payload | signature   (big-endian)
    signature = Ed25519(payload)                  # the event's pretix_sig1 key, no domain tag
    payload = protobuf message Ticket {
        string seed = 1;                          # random, 9 characters
        int64 item = 2;  int64 variation = 3;  int64 subevent = 4;   # 0: none
        optional int64 validFromUnixTime = 5;  optional int64 validUntilUnixTime = 6;
    }

The text is reversed so that secrets do not all start with the same characters; the
event's public key is published by pretix's API as ``valid_keys.pretix_sig1`` (base64 of a
PEM ``SubjectPublicKeyInfo``).

**The protobuf payload is decoded by hand** (:func:`decode_ticket`), not with the
``protobuf`` library: it is one message of six scalar fields, and a forty-line decoder is
total by construction (every branch ends in a value or :class:`MalformedCredential`),
typed for mypy --strict, and keeps a C extension and generated code off the gates. A test
checks it against the ``protobuf`` library on every message that library writes, and
against random bytes. Unknown fields are skipped, as protobuf does, so a later pretix that
adds a field still verifies.

**Only one spelling is accepted.** base64 lets the last character carry unused bits; a
secret whose text is not exactly ``base64(container)`` is MALFORMED even though it decodes
to the same bytes, so a ticket cannot be presented twice under two spellings (two barcode
keys, two entry records).

:func:`read_signed` is total: for any text it returns a :class:`PretixTicket` or raises
:class:`~tickets.errors.MalformedCredential` / :class:`~tickets.errors.ForgedCredential`.
"""
from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tickets.errors import ConfigError, ForgedCredential, MalformedCredential

#: pretix's name for the scheme (the event setting ``ticket_secret_generator``)
SCHEME = "pretix_sig1"
VERSION = 0x01
HEADER_LEN = 5
SIG_LEN = 64
#: shortest text that can hold a header and a signature: base64 of 69 bytes
MIN_TEXT_LEN = 92
#: longer than any pretix_sig1 secret (about 116-130 characters); refuse early
MAX_TEXT_LEN = 512
_SHAPE = re.compile(r"={0,2}[A-Za-z0-9+/]+")

_INT64 = 2**63
_UINT64 = 2**64


@dataclass(frozen=True, slots=True)
class PretixTicket:
    """What a verified pretix_sig1 secret asserts. Ids are pretix's own; 0 means none."""

    seed: str
    item: int
    variation: int = 0
    subevent: int = 0
    #: Unix seconds, None when pretix set no validity of its own for the ticket
    valid_from: int | None = None
    valid_until: int | None = None


def is_sig1_shaped(text: str) -> bool:
    """Cheap test: could this text be a pretix_sig1 secret (alphabet and length only)?

    Used to route a code that is not in the replica to signature verification; anything
    else is an ordinary barcode. A tampered secret that still passes this test is
    refused MALFORMED or FORGED by :func:`read_signed`.
    """
    return MIN_TEXT_LEN <= len(text) <= MAX_TEXT_LEN and _SHAPE.fullmatch(text) is not None


def read_signed(text: str, keys: Iterable[Ed25519PublicKey]) -> PretixTicket:
    """Unwrap, verify and decode a pretix_sig1 secret. Total: raises only CredentialError."""
    if len(text) > MAX_TEXT_LEN:
        raise MalformedCredential(f"{len(text)} characters is longer than any pretix secret")
    forward = text[::-1]
    try:
        raw = base64.b64decode(forward.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise MalformedCredential("pretix secret is not base64") from None
    if base64.b64encode(raw).decode("ascii") != forward:
        raise MalformedCredential("non-canonical base64 (padding bits set)")
    if len(raw) < HEADER_LEN:
        raise MalformedCredential(f"pretix secret of {len(raw)} bytes has no header")
    if raw[0] != VERSION:
        raise MalformedCredential(f"pretix secret version {raw[0]} is not supported")
    payload_len = int.from_bytes(raw[1:3], "big")
    sig_len = int.from_bytes(raw[3:5], "big")
    if sig_len != SIG_LEN:
        raise MalformedCredential(f"signature of {sig_len} bytes, Ed25519 has {SIG_LEN}")
    if HEADER_LEN + payload_len + sig_len != len(raw):
        raise MalformedCredential(
            f"lengths {payload_len}+{sig_len} do not match the {len(raw) - HEADER_LEN} bytes present")
    payload = raw[HEADER_LEN:HEADER_LEN + payload_len]
    signature = raw[HEADER_LEN + payload_len:]
    if not _verifies(signature, payload, keys):
        raise ForgedCredential("pretix signature does not verify with the event's pretix keys")
    return decode_ticket(payload)


def _verifies(signature: bytes, payload: bytes, keys: Iterable[Ed25519PublicKey]) -> bool:
    for key in keys:
        try:
            key.verify(signature, payload)
        except InvalidSignature:
            continue
        return True
    return False


# --------------------------------------------------------------------------- protobuf
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
#: field number → (name, wire type) of the Ticket message
_FIELDS: dict[int, tuple[str, int]] = {
    1: ("seed", _LEN),
    2: ("item", _VARINT),
    3: ("variation", _VARINT),
    4: ("subevent", _VARINT),
    5: ("valid_from", _VARINT),
    6: ("valid_until", _VARINT),
}


def decode_ticket(payload: bytes) -> PretixTicket:
    """Decode the protobuf Ticket message. Total: raises only MalformedCredential."""
    values: dict[str, Any] = {}
    pos = 0
    end = len(payload)
    while pos < end:
        tag, pos = _varint(payload, pos)
        number, wire = tag >> 3, tag & 7
        if number == 0 or number >= 2**29:
            raise MalformedCredential(f"protobuf field number {number} is invalid")
        if wire == _VARINT:
            value, pos = _varint(payload, pos)
            item: Any = value - _UINT64 if value >= _INT64 else value
        elif wire == _LEN:
            size, pos = _varint(payload, pos)
            if size > end - pos:
                raise MalformedCredential("protobuf field runs past the payload")
            item = payload[pos:pos + size]
            pos += size
        elif wire in (_I64, _I32):
            size = 8 if wire == _I64 else 4
            if size > end - pos:
                raise MalformedCredential("protobuf field runs past the payload")
            item = None
            pos += size
        else:  # groups (3, 4) and the unused wire types 6 and 7
            raise MalformedCredential(f"protobuf wire type {wire} is not used by pretix")
        known = _FIELDS.get(number)
        if known is None:
            continue  # an unknown field: skipped, as protobuf does
        name, expected = known
        if wire != expected:
            raise MalformedCredential(f"protobuf field {name} has wire type {wire}, expected {expected}")
        if name == "seed":
            try:
                item = bytes(item).decode("utf-8")
            except UnicodeDecodeError:
                raise MalformedCredential("seed is not UTF-8") from None
        values[name] = item  # the last occurrence wins, as in protobuf
    return PretixTicket(
        seed=values.get("seed", ""),
        item=values.get("item", 0),
        variation=values.get("variation", 0),
        subevent=values.get("subevent", 0),
        # pretix writes 0 for "no validity of its own" (``_encode_time(None)``)
        valid_from=values.get("valid_from") or None,
        valid_until=values.get("valid_until") or None,
    )


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = 0
    for shift in range(0, 70, 7):
        if pos >= len(data):
            raise MalformedCredential("protobuf varint runs past the payload")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if result >= _UINT64:
                raise MalformedCredential("protobuf varint exceeds 64 bits")
            return result, pos
    raise MalformedCredential("protobuf varint longer than 10 bytes")


def encode_ticket(ticket: PretixTicket) -> bytes:
    """The protobuf bytes pretix would write for ``ticket`` (for tests and the venue harness)."""
    out = bytearray()

    def varint(value: int) -> None:
        value %= _UINT64
        while True:
            byte = value & 0x7F
            value >>= 7
            out.append(byte | (0x80 if value else 0))
            if not value:
                return

    seed = ticket.seed.encode("utf-8")
    if seed:
        varint(1 << 3 | _LEN)
        varint(len(seed))
        out += seed
    for number, value, optional in ((2, ticket.item, False), (3, ticket.variation, False),
                                    (4, ticket.subevent, False), (5, ticket.valid_from, True),
                                    (6, ticket.valid_until, True)):
        if value is None or (value == 0 and not optional):
            continue
        varint(number << 3 | _VARINT)
        varint(value)
    return bytes(out)


def wrap(payload: bytes, signature: bytes) -> str:
    """The secret text for a payload and its signature, as pretix builds it."""
    container = bytes([VERSION]) + len(payload).to_bytes(2, "big") + len(signature).to_bytes(2, "big")
    return base64.b64encode(container + payload + signature).decode("ascii")[::-1]


# --------------------------------------------------------------------------- event data
@dataclass(frozen=True, slots=True)
class PretixProduct:
    """Where a pretix product admits: a gatehouse zone and entry policy."""

    zone_id: int
    policy_id: int


@dataclass(frozen=True, slots=True)
class PretixEvent:
    """What a gate needs to decide pretix signed tickets that are not in its replica yet.

    Sent by the hub in the gate's event info (``"pretix"``, see :meth:`from_wire`).
    ``products`` maps ``(item, variation)`` to a zone and entry policy; the key
    ``(item, None)`` covers every variation of the item that has no entry of its own. A
    product with no entry admits nowhere on its signature alone (a parking ticket or a
    voucher must not open a turnstile).
    """

    public_keys: tuple[Ed25519PublicKey, ...]
    products: Mapping[tuple[int, int | None], PretixProduct] = field(default_factory=dict)
    #: for an event series: the pretix subevent (date) this event is; None: not a series
    subevent: int | None = None
    #: validity for tickets whose secret carries none (Unix seconds); None: unbounded
    valid_from: float | None = None
    valid_until: float | None = None
    #: the key texts as pretix gave them, kept so the event info can be written back
    key_texts: tuple[str, ...] = ()

    def product(self, item: int, variation: int) -> PretixProduct | None:
        exact = self.products.get((item, variation or None))
        return exact if exact is not None else self.products.get((item, None))

    @classmethod
    def from_wire(cls, data: object) -> PretixEvent:
        """Build from the hub's event info. Raises ConfigError naming the bad field."""
        d = _mapping(data, "pretix")
        texts = d.get("public_keys", [])
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise ConfigError("pretix.public_keys", "expected a list of strings")
        keys = tuple(public_key_from_pretix(t, f"pretix.public_keys[{i}]") for i, t in enumerate(texts))
        rows = d.get("products", [])
        if not isinstance(rows, list):
            raise ConfigError("pretix.products", "expected a list")
        products: dict[tuple[int, int | None], PretixProduct] = {}
        for i, row in enumerate(rows):
            where = f"pretix.products[{i}]"
            r = _mapping(row, where)
            item = _int_field(r, "item", where, minimum=1)
            variation = _opt_int_field(r, "variation", where, minimum=1)
            if (item, variation) in products:
                raise ConfigError(where, f"item {item} variation {variation} is mapped twice")
            products[(item, variation)] = PretixProduct(_int_field(r, "zone_id", where),
                                                        _int_field(r, "policy_id", where))
        return cls(
            public_keys=keys,
            products=products,
            subevent=_opt_int_field(d, "subevent", "pretix", minimum=1),
            valid_from=_opt_num_field(d, "valid_from", "pretix"),
            valid_until=_opt_num_field(d, "valid_until", "pretix"),
            key_texts=tuple(texts),
        )

    def to_wire(self) -> dict[str, Any]:
        return {
            "public_keys": list(self.key_texts),
            "products": [{"item": item, "variation": variation, "zone_id": p.zone_id, "policy_id": p.policy_id}
                         for (item, variation), p in sorted(self.products.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0))],
            "subevent": self.subevent,
            "valid_from": self.valid_from,
            "valid_until": self.valid_until,
        }


def public_key_from_pretix(text: str, where: str = "pretix.public_keys") -> Ed25519PublicKey:
    """An event key as pretix publishes it (``valid_keys.pretix_sig1``: base64 of a PEM)."""
    try:
        pem = base64.b64decode(text.encode("ascii"), validate=True)
        key = serialization.load_pem_public_key(pem)
    except (binascii.Error, ValueError, TypeError, UnicodeEncodeError, UnsupportedAlgorithm) as exc:
        raise ConfigError(where, f"not a pretix public key (base64 of a PEM): {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(where, f"pretix_sig1 keys are Ed25519, this is {type(key).__name__}")
    return key


def public_key_to_pretix(key: Ed25519PublicKey) -> str:
    """The inverse of :func:`public_key_from_pretix`."""
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(pem).decode("ascii")


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(where, f"expected an object, got {type(value).__name__}")
    return value


def _int_field(d: Mapping[str, Any], name: str, where: str, *, minimum: int | None = None) -> int:
    if name not in d:
        raise ConfigError(f"{where}.{name}", "missing")
    v = d[name]
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(f"{where}.{name}", f"expected an integer, got {v!r}")
    if minimum is not None and v < minimum:
        raise ConfigError(f"{where}.{name}", f"must be at least {minimum}, got {v}")
    return v


def _opt_int_field(d: Mapping[str, Any], name: str, where: str, *, minimum: int | None = None) -> int | None:
    if d.get(name) is None:
        return None
    return _int_field(d, name, where, minimum=minimum)


def _opt_num_field(d: Mapping[str, Any], name: str, where: str) -> float | None:
    v = d.get(name)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ConfigError(f"{where}.{name}", f"expected a number, got {v!r}")
    return float(v)
