"""``gatehouse hub connect …``, ``connectors``, ``uploads`` and ``sync``: connectors from the command line.

``connect pretix`` checks everything before it stores anything — the mapping file (every
problem with its line and key), that pretix answers with this token, that the event and
check-in list exist, that every mapped product and variation exists in pretix — then
stores the connector (the token in the hub database only; it is never printed or logged),
creates the zones the mapping names, runs the initial import and prints what it imported.
The serving hub (any process) picks the connector up within seconds and keeps it in sync.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hub.errors import BadInput
from hub.store import HubStore, Principal
from hub.store.base import new_token


def register(sub: Any, data_default: Path, guard: Callable[[Callable[[argparse.Namespace], int]],
                                                              Callable[[argparse.Namespace], int]]) -> None:
    def data_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data", type=Path, default=data_default,
                       help="the hub's data directory (default: $GATEHOUSE_HUB_DATA or ./hub-data)")

    connect = sub.add_parser("connect", help="connect a ticket shop (pretix, csvdrop) and run its initial import",
                             description="connect a ticket shop and run its initial import (docs/connectors.md)")
    kinds = connect.add_subparsers(dest="connector_kind", metavar="SHOP", required=True)
    p = kinds.add_parser("pretix", help="a pretix event (REST API token, check-in list, product mapping)")
    data_arg(p)
    p.add_argument("--url", required=True, help="pretix's address, e.g. https://pretix.eu")
    p.add_argument("--token", required=True,
                   help="a pretix API token of a team with the event's order and check-in permissions;"
                        " '-' reads it from the first line of stdin (keeps it out of the shell history)")
    p.add_argument("--organizer", required=True, help="the organizer's short form (slug)")
    p.add_argument("--event", required=True, help="the event's short form (slug)")
    p.add_argument("--checkin-list", type=int, required=True, help="the id of the check-in list gates report to")
    p.add_argument("--mapping", type=Path, required=True, help="products → zones and policies (TOML, see docs)")
    p.add_argument("--no-uploads", action="store_true", help="do not send gate check-ins back to pretix")
    p.add_argument("--poll-s", type=float, default=10.0, help="incremental sync interval without webhooks (s)")
    p.add_argument("--retry-max-s", type=float, default=60.0, help="longest wait between retries when pretix is down")
    p.add_argument("--new-webhook-secret", action="store_true", help="replace the webhook secret (pretix must be told)")
    p.add_argument("--hub-url", default="https://HUB", help="this hub's address as pretix reaches it (for the"
                                                             " webhook URL printed)")
    p.add_argument("--skip-import", action="store_true", help="store the connector; the serving hub imports")
    p.set_defaults(func=guard(_connect_pretix))

    p = kinds.add_parser("csvdrop", help="a folder watched for CSV/JSON ticket files")
    data_arg(p)
    p.add_argument("--dir", type=Path, required=True, help="the drop folder (done/ and failed/ are made inside)")
    p.add_argument("--poll-s", type=float, default=5.0, help="how often the folder is looked at (s)")
    p.set_defaults(func=guard(_connect_csvdrop))

    p = sub.add_parser("connectors", help="connectors: last sync, errors, upload queue",
                       description="every connector: last sync, last error, left-out rows, upload queue counts")
    data_arg(p)
    p.set_defaults(func=guard(_connectors))

    p = sub.add_parser("uploads", help="the check-in upload queue of a connector (refused ones with reasons)",
                       description="the queue of check-ins going back to the shop")
    data_arg(p)
    p.add_argument("connector", nargs="?", default="pretix")
    p.add_argument("--status", choices=("pending", "claimed", "done", "refused", "skipped"), default=None)
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=guard(_uploads))

    p = sub.add_parser("sync", help="sync a connector now from this command (full with --full)",
                       description="sync a connector now (the serving hub also syncs on its own)")
    data_arg(p)
    p.add_argument("connector")
    p.add_argument("--full", action="store_true", help="from the start, not from the cursor")
    p.set_defaults(func=guard(_sync))


def _actor() -> Principal:
    from hub.cli import CLI

    return CLI


def _run(data: Path, fn: Callable[[HubStore], Any]) -> Any:
    async def go() -> Any:
        store = await HubStore.open(data)
        try:
            return await fn(store)
        finally:
            await store.close()
    return asyncio.run(go())


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _check_products(mapping: Any, items: list[dict[str, Any]], name: str) -> None:
    by_id = {int(i["id"]): i for i in items}
    problems = []
    for n, row in enumerate(mapping.products):
        item = by_id.get(row.item)
        if item is None:
            problems.append(f"{name}: products[{n}].item: pretix has no product {row.item}")
            continue
        variations = {int(v["id"]) for v in item.get("variations") or []}
        if row.variation is not None and row.variation not in variations:
            problems.append(f"{name}: products[{n}].variation: product {row.item} has no variation {row.variation}"
                            f" (it has: {sorted(variations) or 'none'})")
    if problems:
        listing = "; ".join(f"{i['id']} {_name(i)}" + (f" (variations {[v['id'] for v in i.get('variations') or []]})"
                                                     if i.get("variations") else "") for i in items)
        raise BadInput("mapping does not match pretix:\n  " + "\n  ".join(problems) + f"\n  pretix's products: {listing}",
                       code="bad_mapping")


def _name(item: dict[str, Any]) -> str:
    name = item.get("name")
    if isinstance(name, dict):
        return str(next(iter(name.values()), ""))
    return str(name or "")


def _connect_pretix(args: argparse.Namespace) -> int:
    from hub.connectors.mapping import load_mapping, resolve
    from hub.connectors.pretix import PretixConnector
    from hub.connectors.service import sync_connector

    token = sys.stdin.readline().strip() if args.token == "-" else args.token
    if not token:
        raise BadInput("the pretix API token is empty", code="bad_token")
    mapping_file = load_mapping(args.mapping)
    config = {"url": args.url.rstrip("/"), "organizer": args.organizer, "event": args.event,
              "checkin_list": args.checkin_list, "uploads": not args.no_uploads, "poll_s": args.poll_s,
              "retry_max_s": args.retry_max_s}

    async def go(store: HubStore) -> dict[str, Any]:
        probe = PretixConnector("pretix", config, token, {})
        try:
            found = await probe.check()
        finally:
            await probe.close()
        _check_products(mapping_file, found["items"], str(args.mapping))
        zones = await store.zones()
        by_name = {z["name"].casefold(): z["zone_id"] for z in zones}
        for row in mapping_file.products:
            if isinstance(row.zone, str) and row.zone.casefold() not in by_name:
                z = await store.upsert_zone(_actor(), row.zone)
                by_name[row.zone.casefold()] = z["zone_id"]
                _say(f"zone {row.zone!r} created (id {z['zone_id']})")
        policies = await store.policies()
        resolved = resolve(mapping_file, by_name, set(by_name.values()),
                           {p["name"].lower(): p["policy_id"] for p in policies}, {p["policy_id"] for p in policies},
                           str(args.mapping))
        existing = {r.connector_id: r for r in await store.connectors()}
        secret = new_token(24) if args.new_webhook_secret or "pretix" not in existing else None
        await store.save_connector(_actor(), "pretix", "pretix", config, secret=token, mapping=resolved,
                                   webhook_secret=secret, uploads=not args.no_uploads)
        if secret is not None:
            url = args.hub_url.rstrip("/")
            scheme, _, host = url.partition("://")
            _say("webhook: in pretix (Organizer → Settings → Webhooks) add this target URL, all order events:")
            _say(f"  {scheme}://pretix:{secret}@{host}/api/v1/connectors/pretix/webhook")
            _say("  (the secret is shown only now; --new-webhook-secret makes a new one)")
        connector = PretixConnector("pretix", config, token, resolved)
        try:
            if args.skip_import:
                info = await connector.event_info()
                await store.set_connector_state("pretix", pretix_event=info)
                return {"connector": "pretix", "imported": None, "signed_keys": len(info["public_keys"]) if info else 0}

            def progress(r: Any) -> None:
                _say(f"  {r.records} orders read, {r.created} tickets created, {r.updated} updated")
            report = await sync_connector(store, connector, full=True, progress=progress)
            info = await connector.event_info()
        finally:
            await connector.close()
        return {"connector": "pretix", "event": found["event"].get("slug"), "checkin_list": found["checkin_list"]["name"],
                "signed_keys": len(info["public_keys"]) if info else 0, "import": report.to_json()}

    out = _run(args.data, go)
    print(json.dumps(out))
    imported = out.get("import") or {}
    for reason, n in (imported.get("skipped") or {}).items():
        _say(f"left out: {n} × {reason}")
    for e in imported.get("errors") or []:
        _say(f"refused: {e}")
    return 0 if not imported.get("row_errors") else 3


def _connect_csvdrop(args: argparse.Namespace) -> int:
    folder = args.dir.resolve()
    if not folder.is_dir():
        raise BadInput(f"{folder} is not a folder", code="drop_folder_missing")
    config = {"dir": str(folder), "poll_s": args.poll_s, "uploads": False}

    async def go(store: HubStore) -> dict[str, Any]:
        await store.save_connector(_actor(), "csvdrop", "csvdrop", config, secret=None, mapping={}, uploads=False)
        return {"connector": "csvdrop", "dir": str(folder)}
    print(json.dumps(_run(args.data, go)))
    return 0


def _connectors(args: argparse.Namespace) -> int:
    async def go(store: HubStore) -> list[dict[str, Any]]:
        counts = await store.upload_counts()
        out = []
        for rec in await store.connectors():
            d = rec.public()
            d["uploads_queue"] = counts.get(rec.connector_id, {})
            out.append(d)
        return out
    for d in _run(args.data, go):
        print(json.dumps(d))
    return 0


def _uploads(args: argparse.Namespace) -> int:
    async def go(store: HubStore) -> list[dict[str, Any]]:
        await store.connector(args.connector)
        return await store.uploads(args.connector, status=args.status, limit=args.limit)
    for row in _run(args.data, go):
        print(json.dumps(row))
    return 0


def _sync(args: argparse.Namespace) -> int:
    from hub.connectors.service import build, sync_connector

    async def go(store: HubStore) -> dict[str, Any]:
        connector = build(await store.connector(args.connector))
        try:
            return (await sync_connector(store, connector, full=args.full)).to_json()
        finally:
            await connector.close()
    print(json.dumps(_run(args.data, go)))
    return 0
