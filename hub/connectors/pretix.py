"""pretix: tickets in, check-ins both ways, webhooks — over pretix's REST API (token auth).

What is read (``/api/v1/organizers/<org>/events/<event>/…``):

* ``orders/?include_canceled_positions=true&ordering=last_modified`` page by page (pretix
  serves at most 50 orders a page), with ``modified_since=<cursor>`` for incremental syncs.
  Each admission position becomes a ticket: number ``<order code>-<position id>`` (what is
  printed and typed), barcode = the position's secret, ``external_id`` ``pretix:<position pk>``,
  zone and policy from the operator's mapping. A position is *revoked* here unless its order
  is paid (or pending but marked valid) and the position is neither cancelled nor blocked —
  a refunded or cancelled order's signed secret must be refused, not admitted on its
  signature. Positions of unmapped products or of another date of a series are left out and
  counted by reason;
* ``revokedsecrets/`` — secrets pretix replaced (re-issued tickets): each becomes a revoked
  ticket row holding that secret, so the old code is REVOKED at gates though its signature
  still verifies. (A secret replaced while the hub watches is kept revoked by the importer
  itself, in the same transaction that gives the ticket its new secret; pretix's list adds
  those replaced before the first import);
* the event itself (``valid_keys.pretix_sig1``) for the gates' offline verification;
* check-ins on the configured list, which become entry state (a ticket checked in at
  pretix is refused as used at our gates).

What is written: ``checkinrpc/redeem/`` per admit, with our nonce (pretix ignores a repeat),
the admit's own time, ``type`` entry/exit and ``force`` for entries decided offline.

Webhooks: pretix signs nothing; it POSTs ``{"notification_id", "organizer", "event", "code",
"action"}`` to the target URL it was given. The hub therefore authenticates the call by a
secret only it and pretix know, carried as the password of HTTP Basic auth in that URL
(``https://pretix:SECRET@hub/api/v1/connectors/pretix/webhook`` — pretix's ``requests``
sends it as an ``Authorization`` header, so it never lands in an access log), checks the
organizer and event, and treats the call as a *trigger*: the order is read back from pretix's
API, never from the webhook body.
"""
from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from hub.connectors.base import (
    ConnectorError,
    ShopBatch,
    ShopCheckinRef,
    ShopConnector,
    ShopTicket,
    WebhookNotice,
    WebhookRefused,
)
from hub.connectors.mapping import product_for
from hub.importer import REPLACED_PREFIX
from hub.store.uploads import ClaimedUpload, UploadResult
from tickets.barcode import barcode_key

log = logging.getLogger(__name__)

#: pretix's largest page
PAGE_SIZE = 50
#: pretix check-in refusals that mean "the shop disagrees": a conflict for a supervisor
REFUSALS = frozenset({"already_redeemed", "canceled", "revoked", "unpaid", "blocked", "invalid_time", "product",
                      "rules", "ambiguous", "invalid", "error", "incomplete", "unapproved", "exchange"})


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()


def epoch(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class PretixConnector(ShopConnector):
    kind = "pretix"

    def __init__(self, connector_id: str, config: Mapping[str, Any], secret: str | None,
                 mapping: Mapping[str, Any], *, client: httpx.AsyncClient | None = None) -> None:
        super().__init__(connector_id, config, secret, mapping)
        self.url = str(config["url"]).rstrip("/")
        self.organizer = str(config["organizer"])
        self.event = str(config["event"])
        self.checkin_list = int(config["checkin_list"])
        self.base = f"{self.url}/api/v1/organizers/{self.organizer}"
        self._client = client

    @property
    def client(self) -> httpx.AsyncClient:
        """Made on first use (reading a webhook needs none)."""
        if self._client is None:
            self._client = httpx.AsyncClient(headers={"Authorization": f"Token {self.secret}"},
                                             timeout=float(self.config.get("timeout_s", 30.0)))
        return self._client

    @property
    def uploads(self) -> bool:
        return bool(self.config.get("uploads", True))

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # --- reading ------------------------------------------------------------------------------

    async def get(self, path_or_url: str, params: dict[str, Any] | None = None) -> Any:
        url = path_or_url if path_or_url.startswith("http") else self.base + path_or_url
        try:
            r = await self.client.get(url, params=params)
        except httpx.HTTPError as exc:
            raise ConnectorError(f"pretix at {self.url} cannot be reached: {type(exc).__name__}: {exc}",
                                 code="shop_unreachable") from None
        if r.status_code in (401, 403):
            raise ConnectorError(f"pretix refused the API token (HTTP {r.status_code}) for {url.split('?')[0]}",
                                 code="shop_auth")
        if r.status_code == 404:
            raise ConnectorError(f"pretix has no {url.split('?')[0]} (HTTP 404): check organizer, event and list",
                                 code="shop_not_found")
        if r.status_code >= 400:
            raise ConnectorError(f"pretix answered HTTP {r.status_code} for {url.split('?')[0]}: {r.text[:200]}",
                                 code="shop_error")
        try:
            return r.json()
        except ValueError:
            raise ConnectorError(f"pretix answered {url.split('?')[0]} with something that is not JSON",
                                 code="shop_error") from None

    async def pages(self, path: str, params: dict[str, Any]) -> AsyncIterator[list[dict[str, Any]]]:
        body = await self.get(path, {**params, "page_size": PAGE_SIZE})
        while True:
            yield list(body.get("results", []))
            nxt = body.get("next")
            if not nxt:
                return
            body = await self.get(nxt)

    async def check(self) -> dict[str, Any]:
        """Reach pretix and return the event, its products and the check-in list (for ``connect``)."""
        event = await self.get(f"/events/{self.event}/")
        items = []
        async for page in self.pages(f"/events/{self.event}/items/", {}):
            items += page
        clist = await self.get(f"/events/{self.event}/checkinlists/{self.checkin_list}/")
        return {"event": event, "items": items, "checkin_list": clist}

    async def event_info(self) -> dict[str, Any] | None:
        event = await self.get(f"/events/{self.event}/")
        keys = list((event.get("valid_keys") or {}).get("pretix_sig1") or [])
        if not self.mapping.get("admit_on_signature", True):
            keys = []
        return {
            "public_keys": keys,
            "products": [{"item": p["item"], "variation": p["variation"], "zone_id": p["zone_id"],
                          "policy_id": p["policy_id"]} for p in self.mapping.get("products", [])],
            "subevent": self.mapping.get("subevent"),
            "valid_from": self.mapping.get("valid_from"),
            "valid_until": self.mapping.get("valid_until"),
        }

    def initial_import(self) -> AsyncIterator[ShopBatch]:
        return self.changes_since(None)

    async def changes_since(self, cursor: str | None) -> AsyncIterator[ShopBatch]:
        params: dict[str, Any] = {"include_canceled_positions": "true", "ordering": "last_modified"}
        if cursor:
            params["modified_since"] = cursor
        async for orders in self.pages(f"/events/{self.event}/orders/", params):
            batch = ShopBatch(records=len(orders), refs=frozenset(str(o.get("code")) for o in orders))
            for order in orders:
                self._order(order, batch)
            modified = [str(o["last_modified"]) for o in orders if o.get("last_modified")]
            if modified:
                batch.cursor = max(modified, key=lambda t: epoch(t) or 0.0)
            yield batch
        # secrets pretix replaced or revoked: always read whole (a small list; a row per re-issue)
        revoked = ShopBatch()
        async for page in self.pages(f"/events/{self.event}/revokedsecrets/", {"ordering": "created"}):
            for r in page:
                revoked.tickets.append(self._revoked(r))
        if revoked.tickets:
            yield revoked

    def _order(self, order: dict[str, Any], batch: ShopBatch) -> None:
        status = order.get("status")
        order_valid = status == "p" or (status == "n" and bool(order.get("valid_if_pending"))
                                        and not order.get("require_approval"))
        for pos in order.get("positions") or []:
            product = product_for(self.mapping, int(pos["item"]), pos.get("variation"))
            if product is None:
                batch.skip(f"item {pos['item']} variation {pos.get('variation')} is not mapped to a zone")
                continue
            sub = self.mapping.get("subevent")
            if sub is not None and pos.get("subevent") != sub:
                batch.skip(f"subevent {pos.get('subevent')} is another date than this hub's ({sub})")
                continue
            secret = str(pos.get("secret") or "")
            if not secret:
                batch.skip("position without a secret")
                continue
            valid = order_valid and not pos.get("canceled") and not pos.get("blocked")
            ext = f"{self.connector_id}:{pos['id']}"
            batch.tickets.append(ShopTicket(
                external_id=ext, number=f"{order['code']}-{pos['positionid']}", barcode=secret,
                zone_id=int(product["zone_id"]), policy_id=int(product["policy_id"]),
                holder=str(pos.get("attendee_name") or ""), status="valid" if valid else "revoked",
                valid_from=epoch(pos.get("valid_from")) or self.mapping.get("valid_from"),
                valid_until=epoch(pos.get("valid_until")) or self.mapping.get("valid_until")))
            for ci in pos.get("checkins") or []:
                if int(ci.get("list", 0)) != self.checkin_list or ci.get("auto_checked_in"):
                    continue
                at = epoch(ci.get("datetime"))
                if at is None:
                    continue
                batch.checkins.append(ShopCheckinRef(
                    ref=int(ci["id"]), external_id=ext, at=at, direction="out" if ci.get("type") == "exit" else "in",
                    detail=f"checked in at pretix (list {self.checkin_list}, gate {ci.get('gate') or '-'},"
                           f" device {ci.get('device_id') or ci.get('device') or '-'})"))

    def _revoked(self, r: dict[str, Any]) -> ShopTicket:
        """A secret pretix revoked, as the same tombstone the importer keeps for a replaced
        barcode (so a secret replaced while the hub watched is not imported twice)."""
        zone = self.mapping["products"][0]
        key = barcode_key(str(r["secret"])).hex()
        return ShopTicket(external_id=REPLACED_PREFIX + key, number=f"REVOKED-{key[:12]}", barcode=str(r["secret"]),
                          zone_id=int(zone["zone_id"]), policy_id=int(zone["policy_id"]), status="revoked")

    # --- webhooks -------------------------------------------------------------------------------

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookNotice:
        try:
            data = json.loads(body)
        except ValueError:
            raise WebhookRefused("webhook body is not JSON", code="bad_webhook") from None
        if not isinstance(data, dict):
            raise WebhookRefused("webhook body is not a JSON object", code="bad_webhook")
        if data.get("organizer") != self.organizer or data.get("event") not in (self.event, None):
            raise WebhookRefused(f"webhook for {data.get('organizer')}/{data.get('event')}, this hub is connected to"
                                 f" {self.organizer}/{self.event}", code="webhook_other_event")
        return WebhookNotice(action=str(data.get("action", ""))[:100], ref=str(data.get("code", ""))[:32])

    # --- check-ins back to pretix ---------------------------------------------------------------

    async def upload_checkin(self, upload: ClaimedUpload, now: float) -> UploadResult:
        if upload.barcode is None:
            raise AssertionError("the service uploads only admits of known tickets")
        body = {"secret": upload.barcode, "lists": [self.checkin_list], "source_type": "barcode",
                "type": "exit" if upload.direction == "out" else "entry", "nonce": upload.idempotency_key,
                "datetime": iso(upload.at), "force": upload.forced, "ignore_unpaid": False,
                "questions_supported": False}
        try:
            r = await self.client.post(f"{self.base}/checkinrpc/redeem/", json=body)
        except httpx.HTTPError as exc:
            raise ConnectorError(f"pretix at {self.url} cannot be reached: {type(exc).__name__}",
                                 code="shop_unreachable") from None
        try:
            answer = r.json()
        except ValueError:
            answer = {}
        if r.status_code == 201 and answer.get("status") == "ok":
            return UploadResult(upload.upload_id, "done", shop_ref=self._checkin_ref(answer, upload))
        if r.status_code in (400, 404) and isinstance(answer, dict) and answer.get("status") in (
                "error", "incomplete", "exchange"):
            reason = str(answer.get("reason") or answer.get("status"))
            explanation = str(answer.get("reason_explanation") or "")
            return UploadResult(upload.upload_id, "refused", error=reason + (f": {explanation}" if explanation else ""),
                                detail={"shop_reason": reason, "shop_status": answer.get("status")})
        if r.status_code in (401, 403):
            raise ConnectorError(f"pretix refused the API token for check-ins (HTTP {r.status_code})",
                                 code="shop_auth")
        raise ConnectorError(f"pretix answered the check-in with HTTP {r.status_code}: {str(answer or r.text)[:200]}",
                             code="shop_error")

    def _checkin_ref(self, answer: dict[str, Any], upload: ClaimedUpload) -> str | None:
        """pretix's id of the check-in just made (matched by list, type and time), so the next
        sync knows it as ours and does not count it a second time."""
        want = "exit" if upload.direction == "out" else "entry"
        best: tuple[float, str] | None = None
        for ci in (answer.get("position") or {}).get("checkins") or []:
            at = epoch(ci.get("datetime"))
            if at is None or int(ci.get("list", 0)) != self.checkin_list or ci.get("type", "entry") != want:
                continue
            gap = abs(at - upload.at)
            if gap < 0.5 and (best is None or gap < best[0]):
                best = (gap, str(ci["id"]))
        return best[1] if best else None
