"""Seats and readiness: shared-seat zones, re-seating batches, readiness waivers.

* ``zones.shared_seats``: 1 when a zone's seat labels are not unique places (standing,
  benches, boxes): two valid tickets with the same seat there are intended, not double-sold;
* index ``tickets_zone_seat`` on ``(zone_id, seat)``: the double-sold-seat check groups by it;
* ``reseat_batches``: one row per applied re-seating file (who, when, the file's SHA-256,
  counts and the change seqs it wrote), so a re-sent file is recognised and reported;
* ``readiness_waivers``: a named supervisor's waiver of one readiness check (by its stable
  key), until withdrawn; both are also in the audit log.

Revision ID: 0005
Revises: 0003 (the lead re-chains it after 0004 when merging)
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

REAL = sa.Float(precision=53)
BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("zones") as t:
        t.add_column(sa.Column("shared_seats", sa.Integer, nullable=False, server_default="0"))
    op.create_index("tickets_zone_seat", "tickets", ["zone_id", "seat"])
    op.create_table(
        "reseat_batches",
        sa.Column("batch_id", BIGINT, primary_key=True, autoincrement=True),
        sa.Column("digest", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False, server_default=""),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("at", REAL, nullable=False),
        sa.Column("lines", sa.Integer, nullable=False),
        sa.Column("moved", sa.Integer, nullable=False),
        sa.Column("unchanged", sa.Integer, nullable=False),
        sa.Column("refused", sa.Integer, nullable=False),
        sa.Column("partial", sa.Integer, nullable=False, server_default="0"),
        sa.Column("first_seq", BIGINT),
        sa.Column("last_seq", BIGINT),
        sqlite_autoincrement=True,
    )
    op.create_index("reseat_batches_digest", "reseat_batches", ["digest"])
    op.create_table(
        "readiness_waivers",
        sa.Column("waiver_id", BIGINT, primary_key=True, autoincrement=True),
        sa.Column("check_key", sa.Text, nullable=False),
        sa.Column("supervisor", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("at", REAL, nullable=False),
        sa.Column("withdrawn_at", REAL),
        sa.Column("withdrawn_by", sa.Text),
        sqlite_autoincrement=True,
    )
    op.create_index("readiness_waivers_key", "readiness_waivers", ["check_key"])


def downgrade() -> None:
    op.drop_index("readiness_waivers_key", "readiness_waivers")
    op.drop_table("readiness_waivers")
    op.drop_index("reseat_batches_digest", "reseat_batches")
    op.drop_table("reseat_batches")
    op.drop_index("tickets_zone_seat", "tickets")
    with op.batch_alter_table("zones") as t:
        t.drop_column("shared_seats")
