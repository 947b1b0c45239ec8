"""Ed25519 event keys with ids, and the key ring a gate verifies with.

Several public keys may be valid at once (key rotation): every credential names the key id
it was signed with. This module converts keys to and from bytes; reading and writing key
files (with private-key permissions) is :mod:`hub.keyfiles`.
"""
from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from tickets.errors import GatehouseError

MAX_KEY_ID = 0xFFFF
KEY_ID_HEADER = "gatehouse-key-id:"


class BadKey(GatehouseError, ValueError):
    """Key material that cannot be used (bad PEM, wrong type, bad id)."""


@dataclass(frozen=True, slots=True)
class VerifyKey:
    key_id: int
    public: Ed25519PublicKey

    def verify(self, signature: bytes, data: bytes) -> bool:
        try:
            self.public.verify(signature, data)
        except InvalidSignature:
            return False
        return True

    def raw(self) -> bytes:
        return self.public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly form, as the hub sends keys to gates."""
        return {"key_id": self.key_id, "ed25519": base64.b64encode(self.raw()).decode("ascii")}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> VerifyKey:
        try:
            key_id = _check_key_id(data["key_id"])
            raw = base64.b64decode(str(data["ed25519"]), validate=True)
            return cls(key_id, Ed25519PublicKey.from_public_bytes(raw))
        except (KeyError, ValueError, TypeError) as exc:
            raise BadKey(f"bad public key record: {exc}") from exc

    def to_pem(self) -> bytes:
        pem = self.public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        return f"{KEY_ID_HEADER} {self.key_id}\n".encode() + pem


@dataclass(frozen=True, slots=True)
class SigningKey:
    key_id: int
    private: Ed25519PrivateKey

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)

    @property
    def verify_key(self) -> VerifyKey:
        return VerifyKey(self.key_id, self.private.public_key())

    def to_pem(self) -> bytes:
        pem = self.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return f"{KEY_ID_HEADER} {self.key_id}\n".encode() + pem


def generate_key(key_id: int | None = None) -> SigningKey:
    """A fresh Ed25519 key. Without an id, a random one in 1..65535."""
    kid = _check_key_id(key_id if key_id is not None else secrets.randbelow(MAX_KEY_ID) + 1)
    return SigningKey(kid, Ed25519PrivateKey.generate())


def signing_key_from_pem(data: bytes) -> SigningKey:
    kid, pem = _split_header(data)
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise BadKey(f"not a readable private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise BadKey("private key is not Ed25519")
    return SigningKey(kid, key)


def verify_key_from_pem(data: bytes) -> VerifyKey:
    kid, pem = _split_header(data)
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise BadKey(f"not a readable public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise BadKey("public key is not Ed25519")
    return VerifyKey(kid, key)


class KeyRing:
    """The public keys a gate accepts, by key id. Immutable once built."""

    __slots__ = ("_keys",)

    def __init__(self, keys: Iterable[VerifyKey] = ()) -> None:
        table: dict[int, VerifyKey] = {}
        for key in keys:
            if key.key_id in table and table[key.key_id].raw() != key.raw():
                raise BadKey(f"two different keys share key id {key.key_id}")
            table[key.key_id] = key
        self._keys = table

    def get(self, key_id: int) -> VerifyKey | None:
        return self._keys.get(key_id)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def __iter__(self) -> Iterator[VerifyKey]:
        return iter(self._keys.values())

    def __len__(self) -> int:
        return len(self._keys)

    def with_key(self, key: VerifyKey) -> KeyRing:
        return KeyRing([*self._keys.values(), key])

    def to_list(self) -> list[dict[str, object]]:
        return [k.to_dict() for k in self._keys.values()]

    @classmethod
    def from_list(cls, data: Iterable[Mapping[str, object]]) -> KeyRing:
        return cls(VerifyKey.from_dict(d) for d in data)


def _check_key_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_KEY_ID:
        raise BadKey(f"key id must be an integer 1..{MAX_KEY_ID}, not {value!r}")
    return value


def _split_header(data: bytes) -> tuple[int, bytes]:
    text = data.decode("ascii", errors="replace")
    first, _, rest = text.partition("\n")
    if not first.startswith(KEY_ID_HEADER):
        raise BadKey(f"key file must start with '{KEY_ID_HEADER} N'")
    try:
        kid = int(first[len(KEY_ID_HEADER):].strip())
    except ValueError as exc:
        raise BadKey(f"bad key id line: {first!r}") from exc
    return _check_key_id(kid), rest.encode("ascii")
