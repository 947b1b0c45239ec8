"""Key files on disk: private keys readable by their owner only.

The pure conversions live in :mod:`tickets.keys`; this module is the I/O around them.
A private key file is created with mode 0600 (never briefly wider) and refused on load if
group or others can read it, as ssh does.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

from tickets.errors import KeyFileError
from tickets.keys import (
    BadKey,
    KeyRing,
    SigningKey,
    VerifyKey,
    signing_key_from_pem,
    verify_key_from_pem,
)


def private_path(directory: Path, key_id: int) -> Path:
    return directory / f"event-key-{key_id}.pem"


def public_path(directory: Path, key_id: int) -> Path:
    return directory / f"event-key-{key_id}.pub.pem"


def save_signing_key(directory: Path, key: SigningKey) -> Path:
    """Write ``key`` (0600) and its public half (0644) into ``directory``; never overwrite."""
    directory.mkdir(parents=True, exist_ok=True)
    path = private_path(directory, key.key_id)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(str(path), "already exists; refusing to overwrite a signing key") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.to_pem())
        fh.flush()
        os.fsync(fh.fileno())
    pub = public_path(directory, key.key_id)
    pub.write_bytes(key.verify_key.to_pem())
    pub.chmod(0o644)
    return path


def load_signing_key(path: Path) -> SigningKey:
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyFileError(str(path), f"permissions {stat.filemode(mode)} are too open; run: chmod 600 {path}")
        return signing_key_from_pem(path.read_bytes())
    except OSError as exc:
        if isinstance(exc, KeyFileError):
            raise
        raise KeyFileError(str(path), exc.strerror or str(exc)) from exc
    except BadKey as exc:
        raise KeyFileError(str(path), str(exc)) from exc


def load_verify_key(path: Path) -> VerifyKey:
    try:
        return verify_key_from_pem(path.read_bytes())
    except OSError as exc:
        raise KeyFileError(str(path), exc.strerror or str(exc)) from exc
    except BadKey as exc:
        raise KeyFileError(str(path), str(exc)) from exc


def load_keyring(directory: Path) -> KeyRing:
    """Every public key in ``directory`` (``*.pub.pem``)."""
    return KeyRing(load_verify_key(p) for p in sorted(directory.glob("*.pub.pem")))
