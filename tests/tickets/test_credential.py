"""The signed credential format: compact, QR-alphanumeric, verifiable offline, total to parse."""
from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
import segno
from hypothesis import given, settings
from hypothesis import strategies as st

from tickets import credential
from tickets.errors import CredentialError, ForgedCredential, MalformedCredential
from tickets.keys import KeyRing, SigningKey, generate_key

QR_ALNUM = set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")


def fields(key: SigningKey, **kw: object) -> credential.CredentialFields:
    base: dict[str, object] = dict(key_id=key.key_id, event_id=42, ticket_id=123456789, zone_id=3, policy_id=1,
                                   valid_from=1_780_000_000, valid_until=1_780_086_400, serial=2)
    base.update(kw)
    return credential.CredentialFields(**base)  # type: ignore[arg-type]


def test_issued_code_round_trips_with_every_field(key: SigningKey) -> None:
    f = fields(key)
    text = credential.issue(key, f)
    got = credential.read(text.encode(), KeyRing([key.verify_key]))
    assert isinstance(got, credential.SignedCredential)
    assert got.fields == f and got.code is None


def test_code_uses_only_qr_alphanumeric_characters_and_is_compact(key: SigningKey) -> None:
    text = credential.issue(key, fields(key))
    assert set(text) <= QR_ALNUM
    assert text.startswith("GH1:") and "=" not in text
    assert len(text) == 4 + 149  # 93 bytes of base32 without padding


def test_verifier_holds_several_keys_for_rotation(key: SigningKey, other_key: SigningKey) -> None:
    ring = KeyRing([key.verify_key, other_key.verify_key])
    for k in (key, other_key):
        got = credential.read(credential.issue(k, fields(k)).encode(), ring)
        assert isinstance(got, credential.SignedCredential) and got.fields.key_id == k.key_id


def test_code_signed_by_unknown_key_is_forged(key: SigningKey, other_key: SigningKey) -> None:
    text = credential.issue(other_key, fields(other_key))
    with pytest.raises(ForgedCredential, match="unknown key id"):
        credential.read(text.encode(), KeyRing([key.verify_key]))


def test_key_id_swapped_to_a_trusted_key_is_forged(key: SigningKey) -> None:
    impostor = generate_key(key.key_id)  # same id, different key
    text = credential.issue(impostor, fields(impostor))
    with pytest.raises(ForgedCredential, match="does not verify"):
        credential.read(text.encode(), KeyRing([key.verify_key]))


def test_lower_case_and_trailing_newline_from_a_scanner_are_accepted(key: SigningKey) -> None:
    text = credential.issue(key, fields(key)).lower() + "\r\n"
    assert isinstance(credential.read(text.encode(), KeyRing([key.verify_key])), credential.SignedCredential)


def test_rotating_code_is_parsed_apart_from_the_signed_part(key: SigningKey) -> None:
    text = credential.with_code(credential.issue(key, fields(key, rotating=True)), "ABCDEFGH")
    got = credential.read(text.encode(), KeyRing([key.verify_key]))
    assert isinstance(got, credential.SignedCredential)
    assert got.fields.rotating and got.code == "ABCDEFGH"


@pytest.mark.parametrize("text", ["100000042", "T000001", "ABC-123/4.5_6", "4006381333931"])
def test_plain_ticket_numbers_are_legacy_credentials(key: SigningKey, text: str) -> None:
    assert credential.read(text.encode(), KeyRing([key.verify_key])) == credential.LegacyNumber(text)


@pytest.mark.parametrize("text", ["a" * 65, "EVT*2026+SEAT/12=A", "k7dh nx2v", "=" + "A" * 115])
def test_other_printable_codes_are_foreign_codes_looked_up_by_barcode(key: SigningKey, text: str) -> None:
    assert credential.read(text.encode(), KeyRing([key.verify_key])) == credential.ForeignCode(text)


@pytest.mark.parametrize(
    "data",
    [b"", b"   ", b"\xff\xfe", b"GH1:", b"GH1:!!!!", b"GH1:AAAA", "Ticket №1".encode(), b"a\x01b", b"x" * 10_000,
     b"GH1:" + b"A" * 149 + b":abc"],
)
def test_garbage_is_malformed(key: SigningKey, data: bytes) -> None:
    with pytest.raises(MalformedCredential):
        credential.read(data, KeyRing([key.verify_key]))


def test_only_the_canonical_spelling_of_a_code_is_accepted(key: SigningKey) -> None:
    text = credential.issue(key, fields(key))
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    value = last.index(text[-1])
    twin = text[:-1] + last[value ^ 1]  # differs only in the final padding bit
    with pytest.raises(MalformedCredential, match="non-canonical"):
        credential.read(twin.encode(), KeyRing([key.verify_key]))


def test_unknown_format_version_is_malformed(key: SigningKey) -> None:
    import base64
    body = bytearray(base64.b32decode(credential.issue(key, fields(key))[4:] + "==="))
    body[0] = 9
    text = "GH1:" + base64.b32encode(bytes(body)).decode().rstrip("=")
    with pytest.raises(MalformedCredential, match="version"):
        credential.read(text.encode(), KeyRing([key.verify_key]))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_reading_random_bytes_never_raises_anything_but_a_credential_error(data: bytes) -> None:
    ring = KeyRing([_KEY.verify_key])
    try:
        credential.read(data, ring)
    except CredentialError as exc:
        assert exc.reason in ("MALFORMED", "FORGED")


_KEY = generate_key(99)
_VALID = credential.issue(_KEY, credential.CredentialFields(99, 42, 5, 1, 1, 0, 2**32 - 1, 0)).encode()


@settings(max_examples=300, deadline=None)
@given(st.integers(4, len(_VALID) - 1))
def test_every_truncation_of_a_valid_code_is_refused(cut: int) -> None:
    # Shorter than the "GH1:" prefix it is just a (non-existent) ticket number.
    with pytest.raises(CredentialError):
        credential.read(_VALID[:cut], KeyRing([_KEY.verify_key]))


@settings(max_examples=500, deadline=None)
@given(st.integers(4 * 8, len(_VALID) * 8 - 1))
def test_every_bit_flip_of_a_valid_code_is_refused(bit: int) -> None:
    data = bytearray(_VALID)
    data[bit // 8] ^= 1 << (bit % 8)
    try:
        got = credential.read(bytes(data), KeyRing([_KEY.verify_key]))
    except CredentialError:
        return
    # Flipping the case bit of a letter gives the same base32 text: the very same credential.
    assert bytes(data).upper() == _VALID and isinstance(got, credential.SignedCredential)


def _qr_image(text: str) -> np.ndarray:
    buf = io.BytesIO()
    segno.make(text, error="m", micro=False).save(buf, kind="png", scale=6, border=4)
    arr = np.frombuffer(buf.getvalue(), dtype=np.uint8)
    return cv2.imdecode(arr, cv2.IMREAD_GRAYSCALE)


def test_qr_image_uses_alphanumeric_mode(key: SigningKey) -> None:
    qr = segno.make(credential.issue(key, fields(key)), error="m", micro=False)
    assert qr.mode == "alphanumeric"
    assert qr.version <= 8


def test_qr_image_round_trips_through_pyzbar(key: SigningKey) -> None:
    from pyzbar import pyzbar

    text = credential.issue(key, fields(key))
    decoded = pyzbar.decode(_qr_image(text))
    assert [d.data for d in decoded] == [text.encode()]
    assert isinstance(credential.read(decoded[0].data, KeyRing([key.verify_key])), credential.SignedCredential)


def test_qr_image_round_trips_through_opencv(key: SigningKey) -> None:
    text = credential.issue(key, fields(key))
    data, _points, _ = cv2.QRCodeDetector().detectAndDecode(_qr_image(text))
    assert data == text
