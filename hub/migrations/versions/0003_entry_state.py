"""Each ticket's entry state as the hub knows it, and admits still waiting for their passage.

* ``entry_state``: entries, inside, last entry/exit, the gate of the last admit, and
  ``state_seq`` (the change seq of the last entry event folded in), so snapshots carry entry
  state and a new or rebuilt gate refuses a used ticket as the others do;
* ``pending_admits``: admits whose passage (passed / not passed) has not arrived; the hub
  expires them after the passage timeout plus a margin and raises a conflict for a human.

Both are filled from the journal already stored (an upgrade in the middle of an event keeps
every entry so far).

Revision ID: 0003
Revises: 0002
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

REAL = sa.Float(precision=53)
BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_ADMIT = "kind IN ('scan', 'manual') AND reason IN ('ADMIT', 'ADMIT_REENTRY', 'ADMIT_ON_SIGNATURE')"


def upgrade() -> None:
    op.create_table(
        "entry_state",
        sa.Column("ticket_id", BIGINT, primary_key=True, autoincrement=False),
        sa.Column("entries", sa.Integer, nullable=False, server_default="0"),
        sa.Column("inside", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_entry_at", REAL),
        sa.Column("last_exit_at", REAL),
        sa.Column("last_gate", sa.Text),
        sa.Column("state_seq", BIGINT, nullable=False, server_default="0"),
    )
    op.create_table(
        "pending_admits",
        sa.Column("gate_id", sa.Text, nullable=False),
        sa.Column("seq", BIGINT, nullable=False),
        sa.Column("ticket_id", BIGINT),
        sa.Column("zone_id", sa.Integer),
        sa.Column("at", REAL, nullable=False),
        sa.Column("expired_at", REAL),
        sa.PrimaryKeyConstraint("gate_id", "seq"),
    )
    op.create_index("pending_admits_at", "pending_admits", ["at"])
    conn = op.get_bind()
    # Replay every stored admit and exit (an admit that did not pass consumed nothing).
    rows = conn.execute(sa.text(
        f"SELECT j.ticket_id, j.gate_id, j.at, j.direction FROM journal j WHERE j.ticket_id IS NOT NULL"
        f" AND {_ADMIT} AND NOT EXISTS (SELECT 1 FROM journal p WHERE p.gate_id = j.gate_id"
        " AND p.kind = 'passage' AND p.ref_seq = j.seq AND p.passage = 'not_passed')"
        " ORDER BY j.ticket_id, j.at")).fetchall()
    states: dict[int, dict[str, object]] = {}
    for tid, gate, at, direction in rows:
        s = states.setdefault(tid, {"ticket_id": tid, "entries": 0, "inside": 0, "last_entry_at": None,
                                    "last_exit_at": None, "last_gate": None, "state_seq": 0})
        if direction == "out":
            s.update(inside=0, last_exit_at=at)
        else:
            s.update(entries=int(s["entries"]) + 1, inside=1, last_entry_at=at, last_gate=gate)  # type: ignore[call-overload]
    if states:
        conn.execute(sa.text(
            "INSERT INTO entry_state (ticket_id, entries, inside, last_entry_at, last_exit_at, last_gate, state_seq)"
            " VALUES (:ticket_id, :entries, :inside, :last_entry_at, :last_exit_at, :last_gate, :state_seq)"),
            list(states.values()))
    conn.execute(sa.text(
        f"INSERT INTO pending_admits (gate_id, seq, ticket_id, zone_id, at) SELECT j.gate_id, j.seq, j.ticket_id,"
        f" j.zone_id, j.at FROM journal j WHERE j.kind = 'scan' AND {_ADMIT} AND NOT EXISTS (SELECT 1 FROM journal p"
        " WHERE p.gate_id = j.gate_id AND p.kind = 'passage' AND p.ref_seq = j.seq)"))


def downgrade() -> None:
    op.drop_index("pending_admits_at", "pending_admits")
    op.drop_table("pending_admits")
    op.drop_table("entry_state")
