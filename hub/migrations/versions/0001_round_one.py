"""The schema of the first hub (before migrations): one row per ticket, change, gate, entry.

Revision ID: 0001
Revises:
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

REAL = sa.Float(precision=53)
#: integer keys: BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite
BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table("meta", sa.Column("key", sa.Text, primary_key=True), sa.Column("value", sa.Text, nullable=False))
    op.create_table(
        "zones",
        sa.Column("zone_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.Text, nullable=False, unique=True),
        sa.Column("capacity", sa.Integer),
        sa.Column("seq", BIGINT, nullable=False, server_default="0"),
        sa.CheckConstraint("zone_id BETWEEN 1 AND 65535", name="zone_id_range"),
    )
    op.create_table(
        "policies",
        sa.Column("policy_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("wait_s", REAL, nullable=False, server_default="600"),
        sa.Column("max_entries", sa.Integer),
        sa.Column("seq", BIGINT, nullable=False, server_default="0"),
        sa.CheckConstraint("policy_id BETWEEN 1 AND 255", name="policy_id_range"),
    )
    op.create_table(
        "tickets",
        sa.Column("ticket_id", BIGINT, primary_key=True, autoincrement=False),
        sa.Column("number", sa.Text, nullable=False, unique=True),
        sa.Column("external_id", sa.Text, nullable=False, unique=True),
        sa.Column("holder", sa.Text, nullable=False, server_default=""),
        sa.Column("seat", sa.Text, nullable=False, server_default=""),
        sa.Column("zone_id", sa.Integer, nullable=False),
        sa.Column("policy_id", sa.Integer, nullable=False),
        sa.Column("valid_from", REAL, nullable=False),
        sa.Column("valid_until", REAL, nullable=False),
        sa.Column("serial", sa.Integer, nullable=False, server_default="0"),
        sa.Column("status", sa.Text, nullable=False, server_default="valid"),
        sa.Column("rotating_secret", sa.LargeBinary),
        sa.Column("opaque", sa.Text, unique=True),
        sa.Column("seq", BIGINT, nullable=False, server_default="0"),
    )
    op.create_index("tickets_holder", "tickets", ["holder"])
    op.create_index("tickets_seat", "tickets", ["seat"])
    op.create_table(
        "changes",
        sa.Column("seq", BIGINT, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("ref", BIGINT, nullable=False),
        sa.Column("row", sa.Text, nullable=False),
        sa.Column("at", REAL, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "gates",
        sa.Column("gate_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("zones", sa.Text, nullable=False, server_default="[]"),
        sa.Column("status", sa.Text, nullable=False, server_default="pending"),
        sa.Column("token_hash", sa.Text, unique=True),
        sa.Column("enroll_hash", sa.Text, unique=True),
        sa.Column("enroll_expires", REAL),
        sa.Column("high_water", BIGINT, nullable=False, server_default="0"),
        sa.Column("created_at", REAL, nullable=False),
        sa.Column("last_seen", REAL),
    )
    op.create_table(
        "journal",
        sa.Column("gate_id", sa.Text, nullable=False),
        sa.Column("seq", BIGINT, nullable=False),
        sa.Column("nonce", sa.Text, nullable=False),
        sa.Column("at", REAL, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("ticket_id", BIGINT),
        sa.Column("ticket_number", sa.Text),
        sa.Column("zone_id", sa.Integer),
        sa.Column("raw", sa.LargeBinary, nullable=False),
        sa.Column("direction", sa.Text, nullable=False),
        sa.Column("mode", sa.Text, nullable=False),
        sa.Column("cursor", BIGINT, nullable=False),
        sa.Column("passage", sa.Text, nullable=False),
        sa.Column("ref_seq", BIGINT),
        sa.Column("staff_id", sa.Text),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("received_at", REAL, nullable=False),
        sa.PrimaryKeyConstraint("gate_id", "seq"),
        sqlite_with_rowid=False,
    )
    op.create_index("journal_ticket", "journal", ["ticket_id", "at"])
    op.create_index("journal_at", "journal", ["at"])
    op.create_index("journal_passage", "journal", ["gate_id", "ref_seq"],
                    sqlite_where=sa.text("kind = 'passage'"), postgresql_where=sa.text("kind = 'passage'"))
    op.create_index("journal_number", "journal", ["ticket_number"],
                    sqlite_where=sa.text("ticket_id IS NULL"), postgresql_where=sa.text("ticket_id IS NULL"))
    op.create_index("journal_alerts", "journal", ["gate_id", "seq"],
                    sqlite_where=sa.text("kind IN ('mode', 'event')"),
                    postgresql_where=sa.text("kind IN ('mode', 'event')"))
    op.create_table(
        "journal_rejects",
        sa.Column("id", BIGINT, primary_key=True, autoincrement=True),
        sa.Column("gate_id", sa.Text, nullable=False),
        sa.Column("seq", BIGINT, nullable=False),
        sa.Column("nonce", sa.Text, nullable=False),
        sa.Column("entry", sa.Text, nullable=False),
        sa.Column("received_at", REAL, nullable=False),
        sa.UniqueConstraint("gate_id", "seq", "nonce"),
    )
    op.create_table(
        "conflicts",
        sa.Column("conflict_id", BIGINT, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("ticket_id", BIGINT),
        sa.Column("first_gate", sa.Text, nullable=False),
        sa.Column("first_seq", BIGINT, nullable=False),
        sa.Column("second_gate", sa.Text, nullable=False),
        sa.Column("second_seq", BIGINT, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("created_at", REAL, nullable=False),
        sa.Column("resolved_at", REAL),
        sa.Column("resolved_by", sa.Text),
        sa.Column("resolution", sa.Text),
        sa.UniqueConstraint("kind", "first_gate", "first_seq", "second_gate", "second_seq"),
    )
    op.create_table(
        "tokens",
        sa.Column("token_hash", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("created_at", REAL, nullable=False),
        sa.Column("revoked_at", REAL),
    )
    op.create_table(
        "audit",
        sa.Column("id", BIGINT, primary_key=True, autoincrement=True),
        sa.Column("at", REAL, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_table(
        "stewards",
        sa.Column("steward_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("pin_hash", sa.Text, nullable=False),
        sa.Column("created_at", REAL, nullable=False),
        sa.Column("updated_at", REAL, nullable=False),
    )
    op.create_table(
        "backups",
        sa.Column("id", BIGINT, primary_key=True, autoincrement=True),
        sa.Column("at", REAL, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("high_waters", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in ("backups", "stewards", "audit", "tokens", "conflicts", "journal_rejects", "journal", "gates",
                  "changes", "tickets", "policies", "zones", "meta"):
        op.drop_table(table)
