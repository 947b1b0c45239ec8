"""The paper manifest's data: rows, check codes, typed-query parsing, sorting and steward PINs.

When a gate's replica cannot be trusted (MANIFEST mode) stewards look tickets up on a
printed manifest, or the same manifest on the gate screen, and key numbers in by hand. This
module holds the pure parts both sides share:

* :func:`check_code` — a 4-character code printed beside every ticket. A steward who types
  a number can confirm it against the code on the paper, or type the code plus the last
  few digits instead of a long number. The alphabet leaves out 0/O, 1/I/L and U (U/V), so a
  code read aloud in the rain cannot be mistaken for another one.
* :class:`ManifestRow` and the sort/group helpers the PDF, the CSV and the gate store use.
* :func:`parse_typed` — what a steward typed (a number, a code, a code plus last digits, a
  name) as a structured query.
* :func:`hash_pin` / :func:`verify_pin` — steward PINs are only ever stored as scrypt hashes
  with a per-steward salt; the hub hashes at enrolment and pushes the hash to the gates.

No I/O here, and no clock: callers pass times in.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

#: 30 symbols: digits 2-9 and letters without I, L, O, U (I/1/L, O/0, U/V look alike).
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 4
_CODE_SPACE = len(CODE_ALPHABET) ** CODE_LENGTH  # 810,000
_CODE_RE = re.compile(f"^[{CODE_ALPHABET}]{{{CODE_LENGTH}}}$")
_CODE_DIGITS_RE = re.compile(f"^([{CODE_ALPHABET}]{{{CODE_LENGTH}}})[ \\-/]*([0-9]{{1,6}})$")
#: characters a steward may type between groups of a number ("1000 0001", "1000-0001")
_SEPARATORS = re.compile(r"[\s\-./]+")


def check_code(event_id: int, number: str) -> str:
    """The 4-character check code for ticket ``number`` of event ``event_id``.

    Deterministic (BLAKE2b of event and number), so the hub, the printed manifest and the
    gate all compute the same code with no table. Not a secret and not a signature: it only
    guards against mistyped or misread numbers. Numbers are compared after
    :func:`normalize_number`, so ``"1000 0001"`` and ``"10000001"`` share a code.
    """
    digest = hashlib.blake2b(
        f"{int(event_id)}:{normalize_number(number)}".encode(), digest_size=8, person=b"gh-manifest"
    ).digest()
    value = int.from_bytes(digest, "big") % _CODE_SPACE
    out = []
    for _ in range(CODE_LENGTH):
        value, rem = divmod(value, len(CODE_ALPHABET))
        out.append(CODE_ALPHABET[rem])
    return "".join(reversed(out))


def normalize_number(number: str) -> str:
    """A ticket number as typed, without spaces/dashes/dots, upper case."""
    return _SEPARATORS.sub("", number).upper()


def normalize_code(code: str) -> str:
    """A typed check code, upper case, separators removed. Not corrected: 0/O, 1/I are refused."""
    return _SEPARATORS.sub("", code).upper()


def is_check_code(text: str) -> bool:
    return bool(_CODE_RE.match(normalize_code(text)))


class TicketState(StrEnum):
    """A ticket's status as printed: words, never only a colour."""

    VALID = "valid"
    REVOKED = "revoked"
    SUPERSEDED = "superseded"

    @property
    def printed(self) -> str:
        return _PRINTED[self]


_PRINTED = {
    TicketState.VALID: "",
    TicketState.REVOKED: "CANCELLED",
    TicketState.SUPERSEDED: "REPLACED",
}


@dataclass(frozen=True, slots=True)
class ManifestRow:
    """One ticket line of a gate's manifest."""

    ticket_id: int
    number: str
    check_code: str
    holder: str
    zone_id: int
    zone_name: str
    seat: str
    status: str = TicketState.VALID

    @property
    def admissible(self) -> bool:
        return self.status == TicketState.VALID

    def to_wire(self) -> dict[str, object]:
        return {
            "ticket_id": self.ticket_id, "number": self.number, "check_code": self.check_code,
            "holder": self.holder, "zone_id": self.zone_id, "zone_name": self.zone_name,
            "seat": self.seat, "status": str(self.status),
        }

    @classmethod
    def from_wire(cls, d: Mapping[str, object]) -> ManifestRow:
        """Inverse of :meth:`to_wire`; raises ValueError/KeyError/TypeError on bad input."""
        ticket_id = d["ticket_id"]
        zone_id = d["zone_id"]
        if isinstance(ticket_id, bool) or not isinstance(ticket_id, int):
            raise ValueError("ticket_id must be an integer")
        if isinstance(zone_id, bool) or not isinstance(zone_id, int):
            raise ValueError("zone_id must be an integer")
        number = str(d["number"])
        if not number:
            raise ValueError("number must not be empty")
        return cls(
            ticket_id=ticket_id, number=number, check_code=str(d["check_code"]),
            holder=str(d.get("holder", "")), zone_id=zone_id, zone_name=str(d.get("zone_name", "")),
            seat=str(d.get("seat", "")), status=str(TicketState(str(d.get("status", "valid")))),
        )


def make_row(
    event_id: int, *, ticket_id: int, number: str, holder: str, zone_id: int, zone_name: str,
    seat: str, status: str = TicketState.VALID,
) -> ManifestRow:
    """A row with its check code computed (the one place codes are attached to rows)."""
    return ManifestRow(ticket_id, number, check_code(event_id, number), holder, zone_id, zone_name,
                       seat, str(TicketState(status)))


# --- sorting and grouping -------------------------------------------------------------------

_CHUNKS = re.compile(r"(\d+)")


def number_sort_key(number: str) -> tuple[tuple[int, int, str], ...]:
    """Natural order for ticket numbers: ``"A9" < "A10"``, ``"99" < "100"``.

    Each chunk becomes ``(kind, int, text)`` so digit and letter chunks never compare
    across types.
    """
    key: list[tuple[int, int, str]] = []
    for chunk in _CHUNKS.split(normalize_number(number)):
        if not chunk:
            continue
        if chunk.isdigit():
            key.append((0, int(chunk), chunk))
        else:
            key.append((1, 0, chunk))
    return tuple(key)


def sort_rows(rows: Iterable[ManifestRow]) -> list[ManifestRow]:
    """Rows in lookup order: by ticket number, naturally (then by ticket id, for ties)."""
    return sorted(rows, key=lambda r: (number_sort_key(r.number), r.ticket_id))


def rows_for_zones(rows: Iterable[ManifestRow], zone_ids: Iterable[int]) -> list[ManifestRow]:
    """The rows a gate's manifest holds: tickets of the zones that gate admits."""
    wanted = set(zone_ids)
    return [r for r in rows if r.zone_id in wanted]


@dataclass(frozen=True, slots=True)
class ZoneCount:
    zone_id: int
    zone_name: str
    valid: int
    not_admissible: int

    @property
    def total(self) -> int:
        return self.valid + self.not_admissible


def zone_counts(rows: Iterable[ManifestRow]) -> list[ZoneCount]:
    """Per zone: tickets that may enter and tickets printed only to be refused."""
    valid: Counter[int] = Counter()
    other: Counter[int] = Counter()
    names: dict[int, str] = {}
    for r in rows:
        names.setdefault(r.zone_id, r.zone_name)
        if r.admissible:
            valid[r.zone_id] += 1
        else:
            other[r.zone_id] += 1
    return [ZoneCount(z, names[z], valid[z], other[z]) for z in sorted(names)]


def paginate(rows: Sequence[ManifestRow], per_page: int) -> list[Sequence[ManifestRow]]:
    """Split sorted rows into pages of ``per_page`` lines."""
    if per_page < 1:
        raise ValueError("per_page must be at least 1")
    return [rows[i:i + per_page] for i in range(0, len(rows), per_page)]


def page_range(page: Sequence[ManifestRow]) -> str:
    """The phone-book range printed in a page header: ``"100000000 - 100000049"``."""
    if not page:
        return ""
    return f"{page[0].number} - {page[-1].number}"


# --- what a steward typed --------------------------------------------------------------------

class QueryKind(StrEnum):
    NUMBER = "number"  # an exact number (or a prefix of one, for browsing)
    CODE = "code"  # a check code alone
    CODE_DIGITS = "code_digits"  # a check code plus the last digits of the number
    NAME = "name"  # a holder name substring
    EMPTY = "empty"


@dataclass(frozen=True, slots=True)
class TypedQuery:
    kind: QueryKind
    text: str  # normalized: the number, the code or the name
    digits: str = ""  # for CODE_DIGITS: the trailing digits typed after the code


def parse_typed(typed: str) -> TypedQuery:
    """Classify a steward's input.

    * ``"K7QX"`` → the check code alone;
    * ``"K7QX 0049"`` / ``"K7QX0049"`` → check code plus the number's last digits;
    * digits (spaces and dashes allowed) → a ticket number;
    * anything with letters and a space, or only letters → a holder name;
    * other letter/digit mixes → a ticket number (some events have alphanumeric numbers).

    A 4-letter word such as ``"ANNA"`` is both a possible code and a name: it is treated
    as a code, and :meth:`gate_agent.manifest.ManifestStore.search` also tries it as a name.
    """
    stripped = typed.strip()
    if not stripped:
        return TypedQuery(QueryKind.EMPTY, "")
    compact = normalize_code(stripped)
    if _CODE_RE.match(compact):
        return TypedQuery(QueryKind.CODE, compact)
    m = _CODE_DIGITS_RE.match(stripped.upper())
    if m:
        return TypedQuery(QueryKind.CODE_DIGITS, m.group(1), m.group(2))
    if compact.isdigit():
        return TypedQuery(QueryKind.NUMBER, compact)
    if any(c.isalpha() for c in stripped) and (" " in stripped or stripped.replace("'", "").replace("-", "").isalpha()):
        return TypedQuery(QueryKind.NAME, " ".join(stripped.split()).casefold())
    return TypedQuery(QueryKind.NUMBER, compact)


def fold_name(name: str) -> str:
    """A holder name folded for substring search (case and spacing)."""
    return " ".join(name.split()).casefold()


# --- steward PINs ----------------------------------------------------------------------------

#: scrypt cost: about 30-60 ms on a desktop core, a few hundred on a Raspberry Pi 4 — slow
#: enough to make guessing a stolen hash costly, fast enough for an admit at a gate.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
PIN_MIN_DIGITS = 4
PIN_MAX_DIGITS = 12


@dataclass(frozen=True, slots=True)
class PinHash:
    """A steward PIN as stored: never the PIN itself."""

    salt: bytes
    digest: bytes
    n: int = SCRYPT_N
    r: int = SCRYPT_R
    p: int = SCRYPT_P

    def to_wire(self) -> dict[str, object]:
        return {"salt": self.salt.hex(), "digest": self.digest.hex(), "n": self.n, "r": self.r, "p": self.p}

    @classmethod
    def from_wire(cls, d: Mapping[str, object]) -> PinHash:
        n, r, p = d.get("n", SCRYPT_N), d.get("r", SCRYPT_R), d.get("p", SCRYPT_P)
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (n, r, p)):
            raise ValueError("scrypt parameters must be positive integers")
        assert isinstance(n, int) and isinstance(r, int) and isinstance(p, int)
        return cls(bytes.fromhex(str(d["salt"])), bytes.fromhex(str(d["digest"])), n, r, p)


def validate_pin(pin: str) -> None:
    """Raise ValueError unless ``pin`` is 4-12 digits (what a gate keypad can enter)."""
    if not (pin.isascii() and pin.isdigit() and PIN_MIN_DIGITS <= len(pin) <= PIN_MAX_DIGITS):
        raise ValueError(f"a PIN is {PIN_MIN_DIGITS} to {PIN_MAX_DIGITS} digits")


def hash_pin(pin: str, *, salt: bytes | None = None, n: int = SCRYPT_N, r: int = SCRYPT_R,
             p: int = SCRYPT_P) -> PinHash:
    """Hash a new PIN with scrypt and a fresh 16-byte salt."""
    validate_pin(pin)
    salt = secrets.token_bytes(16) if salt is None else salt
    digest = hashlib.scrypt(pin.encode(), salt=salt, n=n, r=r, p=p, dklen=32, maxmem=2**26)
    return PinHash(salt, digest, n, r, p)


def verify_pin(pin: str, stored: PinHash) -> bool:
    """True if ``pin`` matches; constant-time comparison. A malformed PIN never matches."""
    if not (pin.isascii() and pin.isdigit() and PIN_MIN_DIGITS <= len(pin) <= PIN_MAX_DIGITS):
        return False
    digest = hashlib.scrypt(pin.encode(), salt=stored.salt, n=stored.n, r=stored.r, p=stored.p,
                            dklen=len(stored.digest), maxmem=2**26)
    return hmac.compare_digest(digest, stored.digest)


# --- refusals of a manual admit ------------------------------------------------------------

class ManualRefusal(StrEnum):
    """Why a steward's manual admit was refused, when no ticket reason fits.

    Ticket refusals use the ordinary :class:`tickets.reasons.Reason` codes (UNKNOWN,
    ALREADY_USED, REVOKED, SUPERSEDED, GATE_CLOSED); these cover the steward's side. Stable
    codes: they are journaled and synced like reasons — never rename one, only add.
    """

    PIN_REFUSED = "PIN_REFUSED"  # unknown steward or wrong PIN (deliberately not told apart)
    STEWARD_LOCKED = "STEWARD_LOCKED"  # too many wrong PINs: locked for a while
    AMBIGUOUS = "AMBIGUOUS"  # the typed code matches several tickets: type more digits
    NOTE_REQUIRED = "NOTE_REQUIRED"  # an override of a not-found ticket needs a note

    @property
    def message(self) -> str:
        return _REFUSAL_MESSAGES[self]


_REFUSAL_MESSAGES = {
    ManualRefusal.PIN_REFUSED: "Steward ID or PIN not accepted — try again",
    ManualRefusal.STEWARD_LOCKED: "Too many wrong PINs — ask a supervisor",
    ManualRefusal.AMBIGUOUS: "Several tickets match — type the full number",
    ManualRefusal.NOTE_REQUIRED: "Not on the manifest — an override needs a note",
}
