"""pretix signed secrets (pretix_sig1): format, verification, total parsing, event info."""
from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickets import pretix
from tickets.errors import ConfigError, CredentialError, ForgedCredential, MalformedCredential
from tickets.pretix import PretixProduct, PretixTicket

from .pretix_signing import OTHER_KEY, SIGNING_KEY, event, sign

KEYS = (SIGNING_KEY.public_key(),)
TICKET = PretixTicket(seed="Ab3dE5gH9", item=10, variation=0, subevent=0)
VALID = sign(TICKET)


def test_a_signed_secret_verifies_and_gives_back_what_pretix_put_in() -> None:
    t = PretixTicket(seed="x7Yq2LmN0", item=12, variation=34, subevent=5, valid_from=1_780_000_000,
                     valid_until=1_780_100_000)
    assert pretix.read_signed(sign(t), KEYS) == t


def test_a_secret_looks_like_pretix_prints_it() -> None:
    # 9-character seed, two ids, pretix's explicit zero validity: the 116-character secrets pretix shows
    payload = pretix.encode_ticket(PretixTicket("Ab3dE5gH9", 10, 0, 0, valid_from=0, valid_until=0))
    text = pretix.wrap(payload, SIGNING_KEY.sign(payload))
    assert len(text) == 116 and pretix.is_sig1_shaped(text)
    assert set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
    # zero validity is pretix's "none" (its _encode_time(None) is 0)
    got = pretix.read_signed(text, KEYS)
    assert (got.valid_from, got.valid_until) == (None, None)


def test_any_of_several_event_keys_verifies() -> None:
    assert pretix.read_signed(VALID, (OTHER_KEY.public_key(), *KEYS)) == TICKET


def test_a_secret_signed_with_another_key_is_forged() -> None:
    with pytest.raises(ForgedCredential):
        pretix.read_signed(sign(TICKET, OTHER_KEY), KEYS)


def test_a_changed_product_is_forged() -> None:
    body = bytearray(base64.b64decode(VALID[::-1]))
    assert body[5:7] == b"\x0a\x09"  # seed field header
    body[5 + 2 + 9 + 1] ^= 0x01  # the item id
    tampered = base64.b64encode(bytes(body)).decode()[::-1]
    with pytest.raises(ForgedCredential):
        pretix.read_signed(tampered, KEYS)


def test_a_second_spelling_of_the_same_bytes_is_malformed() -> None:
    # base64's last character carries unused bits; flipping one gives the same bytes
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    forward = VALID[::-1]
    stripped = forward.rstrip("=")
    last = alphabet.index(stripped[-1])
    twin = (stripped[:-1] + alphabet[last ^ 1] + forward[len(stripped):])[::-1]
    assert base64.b64decode(twin[::-1]) == base64.b64decode(VALID[::-1])
    with pytest.raises(MalformedCredential, match="non-canonical"):
        pretix.read_signed(twin, KEYS)


@pytest.mark.parametrize(("change", "match"), [
    (lambda b: b"\x02" + b[1:], "version"),
    (lambda b: b[:3] + b"\x00\x40" + b[5:] + b"\x00", "lengths"),
    (lambda b: b[:3] + b"\x00\x20" + b[5:], "signature of 32"),
    (lambda b: b[:4], "header"),
])
def test_a_broken_container_is_malformed(change, match: str) -> None:  # type: ignore[no-untyped-def]
    body = base64.b64decode(VALID[::-1])
    with pytest.raises(MalformedCredential, match=match):
        pretix.read_signed(base64.b64encode(change(body)).decode()[::-1], KEYS)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=700))
def test_reading_any_text_never_raises_anything_but_a_credential_error(text: str) -> None:
    try:
        pretix.read_signed(text, KEYS)
    except CredentialError as exc:
        assert exc.reason in ("MALFORMED", "FORGED")


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(VALID) - 1))
def test_every_truncation_of_a_secret_is_refused(cut: int) -> None:
    with pytest.raises(CredentialError):
        pretix.read_signed(VALID[:cut], KEYS)
    with pytest.raises(CredentialError):
        pretix.read_signed(VALID[cut + 1:], KEYS)


@settings(max_examples=800, deadline=None)
@given(st.integers(0, len(VALID) * 8 - 1))
def test_every_bit_flip_of_a_secret_is_refused(bit: int) -> None:
    data = bytearray(VALID.encode("ascii"))
    data[bit // 8] ^= 1 << (bit % 8)
    text = data.decode("latin-1")
    with pytest.raises(CredentialError) as info:
        pretix.read_signed(text, KEYS)
    assert info.value.reason in ("MALFORMED", "FORGED")


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_decoding_any_payload_gives_a_ticket_or_malformed(data: bytes) -> None:
    try:
        got = pretix.decode_ticket(data)
    except MalformedCredential:
        return
    assert isinstance(got, PretixTicket)


_TICKETS = st.builds(
    PretixTicket,
    seed=st.text(max_size=20),
    item=st.integers(-(2**63), 2**63 - 1),
    variation=st.integers(-(2**63), 2**63 - 1),
    subevent=st.integers(-(2**63), 2**63 - 1),
    valid_from=st.none() | st.integers(-(2**63), 2**63 - 1).filter(bool),
    valid_until=st.none() | st.integers(-(2**63), 2**63 - 1).filter(bool),
)


def _reference_class():  # type: ignore[no-untyped-def]
    """pretix's Ticket message built from its .proto definition with the protobuf library."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    f = descriptor_pb2.FileDescriptorProto(name="pretix_sig1_test.proto", syntax="proto3")
    m = f.message_type.add(name="Ticket")
    t = descriptor_pb2.FieldDescriptorProto
    m.field.add(name="seed", number=1, type=t.TYPE_STRING, label=t.LABEL_OPTIONAL)
    for number, name in ((2, "item"), (3, "variation"), (4, "subevent")):
        m.field.add(name=name, number=number, type=t.TYPE_INT64, label=t.LABEL_OPTIONAL)
    for number, name in ((5, "validFromUnixTime"), (6, "validUntilUnixTime")):
        m.oneof_decl.add(name=f"_{name}")
        m.field.add(name=name, number=number, type=t.TYPE_INT64, label=t.LABEL_OPTIONAL,
                    oneof_index=len(m.oneof_decl) - 1, proto3_optional=True)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("Ticket"))


@settings(max_examples=300, deadline=None)
@given(_TICKETS)
def test_the_hand_decoder_agrees_with_the_protobuf_library(ticket: PretixTicket) -> None:
    Ticket = _reference_class()
    msg = Ticket(seed=ticket.seed, item=ticket.item, variation=ticket.variation, subevent=ticket.subevent)
    if ticket.valid_from is not None:
        msg.validFromUnixTime = ticket.valid_from
    if ticket.valid_until is not None:
        msg.validUntilUnixTime = ticket.valid_until
    wire = msg.SerializeToString()
    assert pretix.decode_ticket(wire) == ticket
    assert pretix.encode_ticket(ticket) == wire


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_whatever_the_hand_decoder_accepts_the_protobuf_library_reads_the_same(data: bytes) -> None:
    from google.protobuf.message import DecodeError

    try:
        ours = pretix.decode_ticket(data)
    except MalformedCredential:
        return
    msg = _reference_class()()
    try:
        msg.ParseFromString(data)
    except DecodeError:
        pytest.fail(f"hand decoder accepted {data!r}, protobuf did not")
    assert (ours.seed, ours.item, ours.variation, ours.subevent) == (msg.seed, msg.item, msg.variation, msg.subevent)
    assert ours.valid_from == (msg.validFromUnixTime or None)
    assert ours.valid_until == (msg.validUntilUnixTime or None)


def test_unknown_fields_are_skipped_so_a_later_pretix_still_verifies() -> None:
    payload = pretix.encode_ticket(TICKET) + b"\x38\x05" + b"\x42\x03abc" + b"\x4d\x00\x00\x00\x00"
    text = pretix.wrap(payload, SIGNING_KEY.sign(payload))
    assert pretix.read_signed(text, KEYS) == TICKET


def test_event_info_maps_a_variation_or_else_the_whole_item() -> None:
    info = event(products={(10, None): PretixProduct(1, 1), (10, 3): PretixProduct(2, 2)})
    assert info.product(10, 3) == PretixProduct(2, 2)
    assert info.product(10, 4) == PretixProduct(1, 1)
    assert info.product(10, 0) == PretixProduct(1, 1)
    assert info.product(99, 0) is None


def test_event_info_round_trips_through_its_wire_form() -> None:
    info = event(subevent=4, valid_from=1.0, valid_until=2.0)
    again = pretix.PretixEvent.from_wire(info.to_wire())
    assert again.to_wire() == info.to_wire() and again.products == info.products


@pytest.mark.parametrize(("wire", "key"), [
    ([], "pretix"),
    ({"public_keys": "abc"}, "pretix.public_keys"),
    ({"public_keys": ["bm90IGEga2V5"]}, "pretix.public_keys[0]"),
    ({"public_keys": [], "products": [{"item": 1, "zone_id": 1}]}, "pretix.products[0].policy_id"),
    ({"public_keys": [], "products": [{"item": 0, "zone_id": 1, "policy_id": 1}]}, "pretix.products[0].item"),
    ({"public_keys": [], "products": [{"item": 1, "zone_id": "1", "policy_id": 1}]}, "pretix.products[0].zone_id"),
    ({"public_keys": [], "products": [{"item": 1, "zone_id": 1, "policy_id": 1}] * 2}, "pretix.products[1]"),
    ({"public_keys": [], "subevent": "x"}, "pretix.subevent"),
    ({"public_keys": [], "valid_until": True}, "pretix.valid_until"),
])
def test_bad_event_info_names_the_field(wire: object, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        pretix.PretixEvent.from_wire(wire)
    assert info.value.key == key


def test_an_rsa_or_other_key_is_refused_as_a_pretix_key() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(ConfigError, match="Ed25519"):
        pretix.public_key_from_pretix(base64.b64encode(pem).decode())
