"""Ticket-shop connectors: one module per shop behind :class:`hub.connectors.base.ShopConnector`.

* :mod:`hub.connectors.pretix` — pretix's REST API: import with paging, ``modified_since``
  sync, revoked secrets, check-ins both ways, webhooks;
* :mod:`hub.connectors.csvdrop` — a folder watched for CSV files (the simplest shop);
* :mod:`hub.connectors.mapping` — the operator's product → zone/policy mapping file;
* :mod:`hub.connectors.service` — what a serving hub runs: sync loops, the upload queue.
"""
