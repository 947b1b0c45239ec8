"""What a ticket-shop connector must do, and the shop-neutral records it hands the hub.

A connector speaks one shop's API and nothing else: it never touches the hub database. The
hub's :class:`~hub.connectors.service.ConnectorService` drives it —

* :meth:`ShopConnector.initial_import` and :meth:`ShopConnector.changes_since` yield
  :class:`ShopBatch` pages (tickets, check-ins made at the shop, what was left out and why,
  and the cursor to resume from once the page is stored); the service writes each page
  through the hub's importer (idempotent, change log, revocations) before asking for the next,
  so a sync cut half-way resumes where it stopped;
* :meth:`ShopConnector.parse_webhook` turns the shop's notification into a
  :class:`WebhookNotice` (a trigger to sync at once: its content is never trusted as data);
* :meth:`ShopConnector.upload_checkin` sends one queued admit back to the shop and says what
  became of it (:class:`hub.store.uploads.UploadResult`).

A new shop is one module that subclasses :class:`ShopConnector` and registers its ``kind``
in :data:`hub.connectors.service.KINDS`.
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hub.errors import HubError
from hub.store.uploads import ClaimedUpload, UploadResult


class ConnectorError(HubError):
    """The shop could not be reached, or answered what the connector cannot use."""

    status = 502


class WebhookRefused(HubError):
    """A webhook call that is not from the shop (bad or missing secret) or not for this event."""

    status = 401


@dataclass(frozen=True, slots=True)
class ShopTicket:
    """One admission ticket as the hub imports it (the importer's row, see :mod:`hub.importer`)."""

    external_id: str  # stable across syncs: "<connector>:<shop id>"
    number: str  # what a steward types and paper shows (never the barcode)
    barcode: str  # the secret the scanner reads
    zone_id: int
    policy_id: int
    holder: str = ""
    status: str = "valid"  # or "revoked"
    valid_from: float | None = None
    valid_until: float | None = None

    def import_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {"external_id": self.external_id, "number": self.number, "barcode": self.barcode,
                               "zone": self.zone_id, "policy": self.policy_id, "holder": self.holder[:200],
                               "status": self.status}
        if self.valid_from is not None:
            row["valid_from"] = self.valid_from
        if self.valid_until is not None:
            row["valid_until"] = self.valid_until
        return row


@dataclass(frozen=True, slots=True)
class ShopCheckinRef:
    """A check-in the shop recorded (its own scanners): entry state for the ticket here."""

    ref: int  # the shop's check-in id
    external_id: str
    at: float
    direction: str = "in"
    detail: str = ""


@dataclass(slots=True)
class ShopBatch:
    """One page of a sync. ``skipped`` counts what was left out, by reason (never silent)."""

    tickets: list[ShopTicket] = field(default_factory=list)
    checkins: list[ShopCheckinRef] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    #: resume here after this page is stored (None: keep the previous cursor)
    cursor: str | None = None
    #: orders (or files) this page covered, for the status line
    records: int = 0
    #: order codes (or file names) in this page, so a webhook's code can be seen arriving
    refs: frozenset[str] = frozenset()
    #: whole files to import as they are, in the importer's own columns: ``(name, data)``
    files: list[tuple[str, bytes]] = field(default_factory=list)

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n


@dataclass(frozen=True, slots=True)
class WebhookNotice:
    """The shop says something changed (``ref``: e.g. an order code); sync now."""

    action: str
    ref: str = ""
    received_at: float = field(default_factory=time.time)


class ShopConnector(ABC):
    """One configured shop (see the module docstring)."""

    kind: ClassVar[str]

    def __init__(self, connector_id: str, config: Mapping[str, Any], secret: str | None,
                 mapping: Mapping[str, Any]) -> None:
        self.connector_id = connector_id
        self.config = dict(config)
        self.secret = secret
        self.mapping = dict(mapping)

    @abstractmethod
    def initial_import(self) -> AsyncIterator[ShopBatch]:
        """Every ticket the shop holds for the event, page by page."""

    @abstractmethod
    def changes_since(self, cursor: str | None) -> AsyncIterator[ShopBatch]:
        """What changed since ``cursor`` (None: everything), page by page."""

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookNotice:
        """Check and read a webhook call (the caller has authenticated it already)."""
        raise WebhookRefused(f"{self.kind} connectors take no webhooks", code="webhook_not_supported")

    async def upload_checkin(self, upload: ClaimedUpload, now: float) -> UploadResult:
        """Send one admit to the shop. The default: this shop takes no check-ins."""
        return UploadResult(upload.upload_id, "skipped", error=f"{self.kind} takes no check-ins")

    async def batch_stored(self, batch: ShopBatch, reports: list[dict[str, Any]]) -> None:
        """Called once a page is stored, with the import report of each of its parts."""
        return None

    async def event_info(self) -> dict[str, Any] | None:
        """The block gates read in the event info to admit this shop's signed tickets offline."""
        return None

    @property
    def uploads(self) -> bool:
        return False

    async def close(self) -> None:
        return None
