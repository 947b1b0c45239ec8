"""Ticket-shop connectors and the durable queue of check-ins going back to the shop.

* ``connectors``: one row per configured shop connector (``pretix``, ``csvdrop``): its
  settings (JSON, no secrets), the shop's API token (``secret``; only the hub database holds
  it, as it holds every other secret), the SHA-256 of the webhook secret (the secret itself
  is shown once), the validated product mapping, the incremental-sync cursor and the last
  sync's outcome;
* ``checkin_uploads``: every admit (scan or manual) a connector must tell its shop about,
  keyed ``(connector_id, gate_id, seq)`` so re-ingesting a journal entry never queues it
  twice. A row is ``pending`` until a hub process claims it (``claimed``, with who and when,
  so a claim left by a dead process is taken over after a lease), then ``done``,
  ``refused`` (the shop said no: a hub conflict for a supervisor) or ``skipped`` (nothing to
  upload, with the reason). It survives the shop being down for hours and the hub restarting.

Revision ID: 0004
Revises: 0003
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

REAL = sa.Float(precision=53)
BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "connectors",
        sa.Column("connector_id", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("config", sa.Text, nullable=False, server_default="{}"),
        sa.Column("secret", sa.Text),
        sa.Column("webhook_secret_hash", sa.Text),
        sa.Column("mapping", sa.Text, nullable=False, server_default="{}"),
        sa.Column("cursor", sa.Text),
        sa.Column("status", sa.Text, nullable=False, server_default="{}"),
        sa.Column("uploads", sa.Integer, nullable=False, server_default="1"),
        sa.Column("enabled", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created_at", REAL, nullable=False),
        sa.Column("updated_at", REAL, nullable=False),
    )
    op.create_table(
        "checkin_uploads",
        sa.Column("upload_id", BIGINT, primary_key=True, autoincrement=True),
        sa.Column("connector_id", sa.Text, nullable=False),
        sa.Column("gate_id", sa.Text, nullable=False),
        sa.Column("seq", BIGINT, nullable=False),
        sa.Column("nonce", sa.Text, nullable=False),
        sa.Column("ticket_id", BIGINT),
        sa.Column("barcode_key", sa.Text),
        sa.Column("ticket_number", sa.Text),
        sa.Column("at", REAL, nullable=False),
        sa.Column("direction", sa.Text, nullable=False),
        sa.Column("forced", sa.Integer, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_at", REAL, nullable=False, server_default="0"),
        sa.Column("claimed_by", sa.Text),
        sa.Column("claimed_at", REAL),
        sa.Column("last_error", sa.Text),
        sa.Column("shop_ref", sa.Text),
        sa.Column("created_at", REAL, nullable=False),
        sa.Column("done_at", REAL),
        sa.UniqueConstraint("connector_id", "gate_id", "seq"),
        sqlite_autoincrement=True,
    )
    op.create_index("checkin_uploads_due", "checkin_uploads", ["status", "next_at"])
    op.create_index("checkin_uploads_ticket", "checkin_uploads", ["ticket_id"])
    op.create_index("checkin_uploads_shop_ref", "checkin_uploads", ["connector_id", "shop_ref"])


def downgrade() -> None:
    op.drop_index("checkin_uploads_shop_ref", "checkin_uploads")
    op.drop_index("checkin_uploads_ticket", "checkin_uploads")
    op.drop_index("checkin_uploads_due", "checkin_uploads")
    op.drop_table("checkin_uploads")
    op.drop_table("connectors")
