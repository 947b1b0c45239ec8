"""The hub schema's versioned migrations (Alembic), for SQLite and PostgreSQL alike.

``gatehouse hub migrate`` (or any hub start) brings a database to :data:`HEAD`;
``gatehouse hub migrate --to REV`` goes down as well (every migration has a downgrade).
A database created before migrations existed (round-1 hubs: a ``meta.schema_version`` of 1
and no ``alembic_version`` table) is recognised and stamped at its revision first.
See docs/hub.md, "Schema migrations".
"""
from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
#: the revision a round-1 database (no alembic_version table) is at
LEGACY_REVISION = "0001"


def config(conn: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    if conn is not None:
        cfg.attributes["connection"] = conn
    return cfg


def head() -> str:
    rev = ScriptDirectory.from_config(config()).get_current_head()
    assert rev is not None
    return rev


def revisions() -> list[str]:
    """Every revision, oldest first."""
    return [s.revision for s in reversed(list(ScriptDirectory.from_config(config()).walk_revisions()))]


def current(conn: Connection) -> str | None:
    """The database's revision; ``LEGACY_REVISION`` for a round-1 database; None when empty."""
    rev = MigrationContext.configure(conn).get_current_revision()
    if rev is None and inspect(conn).has_table("meta"):
        return LEGACY_REVISION
    return rev


def upgrade(conn: Connection, target: str = "head") -> tuple[str | None, str]:
    """Bring the database at ``conn`` to ``target``; returns (from, to). ``conn`` commits itself."""
    before = current(conn)
    if before == LEGACY_REVISION and MigrationContext.configure(conn).get_current_revision() is None:
        log.warning("database predates schema migrations: stamping it at revision %s", LEGACY_REVISION)
        command.stamp(config(conn), LEGACY_REVISION)
    command.upgrade(config(conn), target)
    after = current(conn)
    assert after is not None
    if before != after:
        log.warning("hub schema migrated from %s to %s", before or "empty", after)
    return before, after


def downgrade(conn: Connection, target: str) -> tuple[str | None, str | None]:
    before = current(conn)
    command.downgrade(config(conn), target)
    return before, current(conn)


def is_newer_than_code(conn: Connection) -> bool:
    """True when the database carries a revision this code does not know (written by a newer hub)."""
    rev = current(conn)
    return rev is not None and rev not in revisions()


def table_names(conn: Connection) -> list[str]:
    return sorted(inspect(conn).get_table_names())


def lock(conn: Connection) -> None:
    """On PostgreSQL, one migrator at a time (several hub processes may start together)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_lock(7411)"))


def unlock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_unlock(7411)"))
