"""Key files: private keys are written 0600 and refused when readable by others."""
from __future__ import annotations

import stat
from pathlib import Path

import pytest

from hub.keyfiles import load_keyring, load_signing_key, save_signing_key
from tickets.errors import KeyFileError
from tickets.keys import generate_key


def test_private_key_file_is_owner_only_and_loads_back(tmp_path: Path) -> None:
    key = generate_key(12)
    path = save_signing_key(tmp_path, key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = load_signing_key(path)
    assert loaded.key_id == 12 and loaded.verify_key.raw() == key.verify_key.raw()


def test_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = save_signing_key(tmp_path, generate_key(3))
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match="too open"):
        load_signing_key(path)


def test_existing_key_is_never_overwritten(tmp_path: Path) -> None:
    save_signing_key(tmp_path, generate_key(3))
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        save_signing_key(tmp_path, generate_key(3))


def test_keyring_holds_every_public_key_in_the_directory(tmp_path: Path) -> None:
    for kid in (1, 2):
        save_signing_key(tmp_path, generate_key(kid))
    assert sorted(k.key_id for k in load_keyring(tmp_path)) == [1, 2]


def test_garbage_key_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "event-key-5.pem"
    path.write_bytes(b"not a key")
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match="gatehouse-key-id"):
        load_signing_key(path)
