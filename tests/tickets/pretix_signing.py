"""Make pretix_sig1 secrets the way pretix does, for pure tests (the real pretix is in tests/peers)."""
from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tickets.pretix import (
    PretixEvent,
    PretixProduct,
    PretixTicket,
    encode_ticket,
    public_key_to_pretix,
    wrap,
)

SIGNING_KEY = Ed25519PrivateKey.generate()
OTHER_KEY = Ed25519PrivateKey.generate()


def sign(ticket: PretixTicket, key: Ed25519PrivateKey = SIGNING_KEY) -> str:
    """The secret pretix's Sig1TicketSecretGenerator would print for ``ticket``."""
    payload = encode_ticket(ticket)
    return wrap(payload, key.sign(payload))


def event(*, products: dict[tuple[int, int | None], PretixProduct] | None = None,
          keys: tuple[Ed25519PrivateKey, ...] = (SIGNING_KEY,), **kw: object) -> PretixEvent:
    """Event info as the hub would send it, through the wire form (so from_wire is exercised)."""
    rows = products if products is not None else {(10, None): PretixProduct(1, 1), (11, 7): PretixProduct(2, 1)}
    wire = {
        "public_keys": [public_key_to_pretix(k.public_key()) for k in keys],
        "products": [{"item": i, "variation": v, "zone_id": p.zone_id, "policy_id": p.policy_id}
                     for (i, v), p in rows.items()],
        **kw,
    }
    return PretixEvent.from_wire(wire)
