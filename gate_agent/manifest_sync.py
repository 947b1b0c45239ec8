"""Pulling this gate's manifest and the stewards from the hub, beside everything else.

The manifest is what a steward searches when the replica cannot be trusted (MANIFEST mode),
so the gate keeps the latest one locally (:class:`gate_agent.manifest.ManifestStore`, its
own SQLite file). :class:`ManifestSync` fetches it over HTTPS with the gate's token from
``GET /api/v1/gates/{gate_id}/manifest.json``:

* each time the sync link comes online, and then every ``manifest_refresh_s`` (gate
  config, default 300 s) while it stays online;
* pages are staged (:meth:`ManifestStore.stage_rows`) and swapped in whole
  (:meth:`ManifestStore.commit_staged`): a search never sees half a manifest; later pages
  name the first page's ``hub_seq`` so they come from the same version, and if the hub no
  longer holds that version the download starts again;
* the steward list (ids, names, scrypt PIN hashes) is replaced on every fetch, so a steward
  added or removed on the hub reaches the gate at the next refresh;
* a manifest whose ``hub_seq`` and row count the gate already holds is not downloaded again.

Failures (hub unreachable, bad JSON, a refused token) are logged and retried after
``retry_s``; the gate keeps the manifest it has. Nothing here touches the decision path.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from gate_agent.manifest import ManifestStore
from tickets.errors import GatehouseError
from tickets.manifest import ManifestRow, PinHash

log = logging.getLogger(__name__)

#: rows asked for per request (the hub caps it at 20,000)
PAGE_ROWS = 5000
#: seconds for one HTTP request to the hub
REQUEST_TIMEOUT_S = 30.0
#: a failed fetch is tried again after this long (or the refresh interval, if shorter)
RETRY_S = 30.0
#: how often a download may find its version gone before it waits for the next try
MAX_RESTARTS = 3


class ManifestFetchError(GatehouseError, RuntimeError):
    """The hub's manifest could not be fetched or was not usable; the old one is kept."""


@dataclass(frozen=True, slots=True)
class FetchResult:
    hub_seq: int
    rows: int
    stewards: int
    downloaded: bool  # False when the gate already held this version


def _manifest_url(hub_url: str, gate_id: str) -> str:
    base = hub_url.rstrip("/")
    if base.endswith("/ws/gate"):  # a hub_url written as the websocket address
        base = base[: -len("/ws/gate")]
    if base.startswith("wss://"):
        base = "https://" + base[len("wss://"):]
    elif base.startswith("ws://"):
        base = "http://" + base[len("ws://"):]
    return f"{base}/api/v1/gates/{gate_id}/manifest.json"


def _stewards(doc: Mapping[str, Any]) -> list[tuple[str, str, PinHash]]:
    raw = doc.get("stewards")
    if not isinstance(raw, list):
        raise ManifestFetchError("the first manifest page carries no steward list")
    out = []
    for item in raw:
        if not isinstance(item, list) or len(item) != 3 or not isinstance(item[2], dict):
            raise ManifestFetchError(f"bad steward entry {item!r:.80}")
        out.append((str(item[0]), str(item[1]), PinHash.from_wire(item[2])))
    return out


class ManifestSync:
    """The loop that keeps the gate's manifest and stewards current (see the module docstring)."""

    def __init__(self, store: ManifestStore, *, hub_url: str, gate_id: str, token: str,
                 ca_file: Path | None = None, refresh_s: float = 300.0, retry_s: float = RETRY_S,
                 page_rows: int = PAGE_ROWS) -> None:
        self.store = store
        self.url = _manifest_url(hub_url, gate_id)
        self.gate_id = gate_id
        self.token = token
        self.verify: str | bool = str(ca_file) if ca_file else True
        self.refresh_s = refresh_s
        self.retry_s = min(retry_s, refresh_s)
        self.page_rows = page_rows
        self.online = False
        self._online = asyncio.Event()
        self._kick = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: successful refreshes so far and the latest result (for status and tests)
        self.refreshes = 0
        self.failures = 0
        self.last: FetchResult | None = None
        self.last_error: str | None = None
        self._refreshed = asyncio.Condition()
        self._one_at_a_time = asyncio.Lock()  # two downloads would restart each other's staging

    # --- driving the loop ---------------------------------------------------------------
    def on_state(self, state: str) -> None:
        """Sync link state (``online``, ``offline``, …): fetch at once on each coming online."""
        online = state == "online"
        if online and not self.online:
            self._kick.set()
        self.online = online
        if online:
            self._online.set()
        else:
            self._online.clear()

    def kick(self) -> None:
        """Fetch now (the hub said the stewards or the manifest changed)."""
        self._kick.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="manifest-sync")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def wait_refreshed(self, count: int) -> FetchResult:
        """Wait until at least ``count`` refreshes have succeeded; returns the latest."""
        async with self._refreshed:
            await self._refreshed.wait_for(lambda: self.refreshes >= count)
        assert self.last is not None
        return self.last

    async def _run(self) -> None:
        while True:
            await self._online.wait()
            self._kick.clear()
            delay = self.refresh_s
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never let a bad fetch end the loop
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("manifest fetch failed (%s); keeping the manifest held, retrying in %.0f s",
                            self.last_error, self.retry_s)
                delay = self.retry_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), delay)

    # --- one fetch ------------------------------------------------------------------------
    async def refresh(self) -> FetchResult:
        """Fetch the manifest and stewards once; raises on failure (the old manifest stays)."""
        headers = {"Authorization": f"Bearer {self.token}"}
        async with self._one_at_a_time, httpx.AsyncClient(headers=headers, verify=self.verify,
                                                          timeout=REQUEST_TIMEOUT_S) as client:
            for _attempt in range(MAX_RESTARTS):
                result = await self._download(client)
                if result is not None:
                    break
            else:
                raise ManifestFetchError(f"the manifest changed {MAX_RESTARTS} times during download")
        self.refreshes += 1
        self.last = result
        self.last_error = None
        async with self._refreshed:
            self._refreshed.notify_all()
        if result.downloaded:
            log.info("manifest hub seq %s: %d rows, %d stewards", result.hub_seq, result.rows, result.stewards)
        return result

    async def _page(self, client: httpx.AsyncClient, params: dict[str, int]) -> dict[str, Any] | None:
        r = await client.get(self.url, params=params)
        if r.status_code == 409:
            return None  # the version being fetched is gone: start again
        if r.status_code != 200:
            try:
                err = r.json()["error"]
                what = f"{err['code']}: {err['message']}"
            except (ValueError, KeyError, TypeError):
                what = r.text[:200]
            raise ManifestFetchError(f"hub answered {r.status_code} ({what})")
        doc = r.json()
        if not isinstance(doc, dict) or not isinstance(doc.get("rows"), list):
            raise ManifestFetchError("manifest page is not {rows: [...]}")
        return doc

    async def _download(self, client: httpx.AsyncClient) -> FetchResult | None:
        first = await self._page(client, {"after": 0, "limit": self.page_rows})
        if first is None:
            return None
        hub_seq, total = int(first["hub_seq"]), int(first["total_rows"])
        generated_at = float(first["generated_at"])
        stewards = _stewards(first)
        held = await self.store.info()
        downloaded = not (held.hub_seq == hub_seq and held.rows == total)
        if downloaded:
            staged = 0
            doc: dict[str, Any] | None = first
            is_first = True
            while doc is not None:
                rows = [ManifestRow.from_wire(d) for d in doc["rows"]]
                staged = await self.store.stage_rows(hub_seq, rows, first=is_first)
                is_first = False
                after = doc.get("next_after")
                if after is None:
                    break
                doc = await self._page(client, {"after": int(after), "limit": self.page_rows, "seq": hub_seq})
                if doc is None:
                    return None
            if staged != total:
                raise ManifestFetchError(f"received {staged} rows of {total}")
            await self.store.commit_staged(hub_seq, generated_at, expected_rows=total)
        # Stewards last: a manifest that failed above leaves the steward list as it was too.
        await self.store.replace_stewards(stewards)
        return FetchResult(hub_seq, total, len(stewards), downloaded)

    def status(self) -> dict[str, Any]:
        return {"refreshes": self.refreshes, "failures": self.failures, "last_error": self.last_error,
                "hub_seq": self.last.hub_seq if self.last else None, "online": self.online}
