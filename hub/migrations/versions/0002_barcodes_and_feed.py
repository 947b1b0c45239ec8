"""Barcodes apart from numbers, typed-number keys, change tokens, what gates report.

* ``tickets.barcode`` (secret, what a scanner reads; NULL: the number is the barcode) and
  ``tickets.barcode_key`` (hex of :func:`tickets.barcode.barcode_key`, unique: the import
  refuses two barcodes that fold alike);
* ``tickets.number_key``: the number as a steward types it (:func:`tickets.manifest.normalize_number`),
  indexed, so a typed number is found without a table scan on either engine;
* ``changes.token``: a random tag per change; a gate's cursor names (seq, token), so a hub
  whose log lost that change (restored, or failed over to a standby that lacked it) is noticed;
* ``gates.info``: what the gate last reported (versions, clock skew, hardware health).

Revision ID: 0002
Revises: 0001
"""
from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_SEPARATORS = re.compile(r"[\s\-./]+")  # as tickets.manifest.normalize_number


def _normalize(number: str) -> str:
    return _SEPARATORS.sub("", number).upper()


def upgrade() -> None:
    with op.batch_alter_table("tickets") as t:
        t.add_column(sa.Column("barcode", sa.Text))
        t.add_column(sa.Column("barcode_key", sa.Text))
        t.add_column(sa.Column("number_key", sa.Text, nullable=False, server_default=""))
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT ticket_id, number FROM tickets")).fetchall()
    for i in range(0, len(rows), 5000):
        conn.execute(sa.text("UPDATE tickets SET number_key = :k WHERE ticket_id = :i"),
                     [{"k": _normalize(n), "i": tid} for tid, n in rows[i:i + 5000]])
    op.create_index("tickets_by_number_key", "tickets", ["number_key"])
    op.create_index("tickets_by_barcode_key", "tickets", ["barcode_key"], unique=True,
                    sqlite_where=sa.text("barcode_key IS NOT NULL"),
                    postgresql_where=sa.text("barcode_key IS NOT NULL"))
    with op.batch_alter_table("changes") as t:
        t.add_column(sa.Column("token", sa.Text, nullable=False, server_default=""))
    with op.batch_alter_table("gates") as t:
        t.add_column(sa.Column("info", sa.Text, nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("gates") as t:
        t.drop_column("info")
    with op.batch_alter_table("changes") as t:
        t.drop_column("token")
    op.drop_index("tickets_by_barcode_key", "tickets")
    op.drop_index("tickets_by_number_key", "tickets")
    with op.batch_alter_table("tickets") as t:
        t.drop_column("number_key")
        t.drop_column("barcode_key")
        t.drop_column("barcode")
