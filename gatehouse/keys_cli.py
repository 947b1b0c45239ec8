"""``gatehouse keys …``: event signing keys and single credentials, for operators and tests."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from hub.keyfiles import load_keyring, load_signing_key, save_signing_key
from tickets import credential
from tickets.errors import CredentialError
from tickets.keys import generate_key


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="keys_cmd", metavar="COMMAND")

    p = sub.add_parser("new", help="create a new Ed25519 event signing key (private file is mode 0600)")
    p.add_argument("--dir", type=Path, required=True, help="directory to write the key files into")
    p.add_argument("--key-id", type=int, default=None, help="key id 1..65535 (default: random)")
    p.set_defaults(func=_new)

    p = sub.add_parser("issue", help="print the QR text of a signed credential")
    p.add_argument("--key", type=Path, required=True, help="private key file")
    p.add_argument("--event", type=int, required=True)
    p.add_argument("--ticket", type=int, required=True)
    p.add_argument("--zone", type=int, default=1)
    p.add_argument("--policy", type=int, default=1)
    p.add_argument("--valid-hours", type=float, default=24.0)
    p.add_argument("--serial", type=int, default=0)
    p.set_defaults(func=_issue)

    p = sub.add_parser("inspect", help="parse and verify a scanned code against the public keys in a directory")
    p.add_argument("--dir", type=Path, required=True, help="directory holding *.pub.pem files")
    p.add_argument("code", help="the scanned text")
    p.set_defaults(func=_inspect)


def _new(args: argparse.Namespace) -> int:
    key = generate_key(args.key_id)
    path = save_signing_key(args.dir, key)
    print(f"key id {key.key_id}: {path}")
    return 0


def _issue(args: argparse.Namespace) -> int:
    key = load_signing_key(args.key)
    now = int(time.time())
    fields = credential.CredentialFields(
        key_id=key.key_id, event_id=args.event, ticket_id=args.ticket, zone_id=args.zone,
        policy_id=args.policy, valid_from=now - 3600, valid_until=now + int(args.valid_hours * 3600),
        serial=args.serial,
    )
    print(credential.issue(key, fields))
    return 0


def _inspect(args: argparse.Namespace) -> int:
    ring = load_keyring(args.dir)
    try:
        result = credential.read(args.code.encode(), ring)
    except CredentialError as exc:
        print(f"{exc.reason}: {exc.detail}", file=sys.stderr)
        return 1
    print(result)
    return 0
