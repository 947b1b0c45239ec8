"""Creating a hub, finding its database, backups and restores (both engines).

A hub's *data directory* holds its signing keys and, for SQLite, ``hub.db``. A hub on
PostgreSQL names its database in ``DATA/hub.toml`` (``database = "postgresql+psycopg://…"``,
written by ``gatehouse hub init --db URL``, mode 0600); ``GATEHOUSE_DATABASE_URL`` overrides
both. Several hub processes share one data directory (or a copy of its ``keys/``).
"""
from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from hub.db import Database, redact, sqlite_url, url_from_env
from hub.errors import BadInput, Conflict, NotFound, NotInitialised
from hub.keyfiles import save_signing_key
from hub.records import policy_row
from hub.schema import DEFAULT_POLICIES
from hub.store.base import (
    DB_NAME,
    KEYS_DIR,
    Principal,
    StoreCore,
    append_changes,
    audit,
    db_path,
    execute,
    hash_token,
    meta_set,
    new_token,
    one,
    rows,
)
from tickets.keys import generate_key

CONFIG_NAME = "hub.toml"


def secure_file(path: Path) -> None:
    """Owner read/write only: the hub database holds token hashes, rotating secrets and barcodes."""
    for p in (path, Path(str(path) + "-wal"), Path(str(path) + "-shm")):
        if p.exists() and p.stat().st_mode & 0o077:
            os.chmod(p, 0o600)


def database_url(data_dir: Path) -> str:
    """The database of the hub in ``data_dir``: the environment, then ``hub.toml``, then ``hub.db``."""
    default = sqlite_url(db_path(data_dir))
    conf = data_dir / CONFIG_NAME
    if conf.exists():
        try:
            doc = tomllib.loads(conf.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise BadInput(f"{conf}: not valid TOML: {exc}", code="bad_config") from None
        unknown = sorted(set(doc) - {"database"})
        if unknown:
            raise BadInput(f"{conf}: unknown keys {unknown}; the only key is 'database'", code="bad_config")
        if isinstance(doc.get("database"), str) and doc["database"]:
            default = doc["database"]
    return url_from_env(default)


def is_initialised(data_dir: Path, db: Database) -> bool:
    from hub import migrations

    def probe(conn: Connection) -> bool:
        return migrations.current(conn) is not None and one(conn, "SELECT value FROM meta WHERE key = 'event_id'") \
            is not None
    if not db.is_pg and not db_path(data_dir).exists():
        return False
    try:
        return db.read_sync(probe)
    except Exception:
        return False


def migrate(db: Database, target: str = "head") -> tuple[str | None, str]:
    """Bring the database to ``target`` (one migrator at a time on PostgreSQL)."""
    from hub import migrations

    with db.connect_sync() as conn:
        if migrations.is_newer_than_code(conn):
            raise Conflict(f"the database is at schema revision {migrations.current(conn)}, newer than this hub"
                           f" knows ({migrations.head()}); run the newer hub or migrate it down with it",
                           code="schema_too_new")
        migrations.lock(conn)
        try:
            return migrations.upgrade(conn, target)
        finally:
            migrations.unlock(conn)
            conn.commit()


def init_hub(
    data_dir: Path, *, event_id: int, name: str = "", key_id: int | None = None,
    valid_from: float | None = None, valid_until: float | None = None,
    allow_admit_on_signature: bool = True, clock: Callable[[], float] = time.time,
    database: str | None = None,
) -> str:
    """Create the data dir, database, event signing key and an admin token; return the token.

    ``database``: a PostgreSQL URL (recorded in ``hub.toml``); default SQLite in ``hub.db``.
    Refuses an already initialised hub (never overwrites keys or data).
    """
    if not 1 <= event_id <= 0xFFFFFFFF:
        raise BadInput("event id must be 1..4294967295")
    data_dir.mkdir(parents=True, exist_ok=True)
    if database:
        conf = data_dir / CONFIG_NAME
        if conf.exists():
            raise Conflict(f"{conf} exists; refusing to overwrite", code="already_initialised")
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(f"database = {json.dumps(database)}\n")
    url = database_url(data_dir)
    db = Database(url, readers=1)
    try:
        if is_initialised(data_dir, db):
            raise Conflict(f"{data_dir} already holds a hub ({redact(url)}); refusing to overwrite",
                           code="already_initialised")
        if not db.is_pg:
            old_umask = os.umask(0o077)
            try:
                migrate(db)
            finally:
                os.umask(old_umask)
            secure_file(db_path(data_dir))
        else:
            migrate(db)
        key = generate_key(key_id)
        save_signing_key(data_dir / KEYS_DIR, key)
        now = clock()
        token = new_token()

        def tx(conn: Connection) -> None:
            meta = {
                "schema_version": "2",
                "event_id": str(event_id),
                "event_name": name,
                "signing_key_id": str(key.key_id),
                "hub_epoch": secrets.token_hex(8),
                "allow_admit_on_signature": "1" if allow_admit_on_signature else "0",
                "default_valid_from": str(valid_from if valid_from is not None else now - 3600),
                "default_valid_until": str(valid_until if valid_until is not None else now + 7 * 86400),
                "created_at": str(now),
            }
            for k, v in meta.items():
                meta_set(conn, k, v)
            seqs = append_changes(db, conn, [("policy", pid, policy_row(pid, pname, 600.0, None))
                                             for pid, pname in DEFAULT_POLICIES], now)
            execute(conn, "INSERT INTO policies (policy_id, name, wait_s, seq) VALUES (:p, :n, 600, :s)",
                    [{"p": pid, "n": pname, "s": s} for (pid, pname), s in zip(DEFAULT_POLICIES, seqs, strict=True)])
            execute(conn, "INSERT INTO tokens (token_hash, name, role, created_at) VALUES (:h, 'admin', 'admin', :at)",
                    {"h": hash_token(token), "at": now})
            audit(conn, Principal("cli", "admin"), "init", str(event_id), {"key_id": key.key_id, "name": name}, now)
        db.write_sync(tx)
    finally:
        db.close()
    return token


def open_database(data_dir: Path, *, readers: int = 4) -> Database:
    """The data directory's database, migrated to this code's schema; refuses an uninitialised one."""
    url = database_url(data_dir)
    db = Database(url, readers=readers)
    try:
        if not is_initialised(data_dir, db):
            if not db.is_pg and not db_path(data_dir).exists():
                raise NotInitialised(f"{data_dir} holds no hub; run: gatehouse hub init --data {data_dir}")
            raise NotInitialised(f"{redact(url)} holds no hub; run: gatehouse hub init --data {data_dir}")
        migrate(db)
        if db.path is not None:
            secure_file(db.path)
    except BaseException:
        db.close()
        raise
    return db


# --- backups ---------------------------------------------------------------------------------


class BackupMixin(StoreCore):
    async def backup(self, actor: Principal, dest: Path) -> dict[str, Any]:
        """Online backup; the hub keeps serving meanwhile. SQLite: the backup API into a file.
        PostgreSQL: ``pg_dump`` (custom format) of one snapshot.

        Records each gate's high water *as contained in the backup*: a gate may drop journal
        entries up to that mark (see ``backed_up_high_water``).
        """
        high_waters, size = await asyncio.to_thread(_backup_to, self.db, dest)
        now = self._now()

        def tx(conn: Connection) -> None:
            execute(conn, "INSERT INTO backups (at, path, high_waters) VALUES (:at, :p, :h)",
                    {"at": now, "p": str(dest), "h": json.dumps(high_waters)})
            audit(conn, actor, "backup", str(dest), {"gates": len(high_waters), "bytes": size}, now)
        await self.db.write(tx)
        return {"path": str(dest), "at": now, "high_waters": high_waters, "bytes": size}


def _backup_to(db: Database, dest: Path) -> tuple[dict[str, int], int]:
    if dest.exists():
        raise Conflict(f"{dest} exists; refusing to overwrite a backup", code="backup_exists")
    hws = _pg_backup(db, dest) if db.is_pg else _sqlite_backup(db, dest)
    return hws, dest.stat().st_size


def _sqlite_backup(db: Database, dest: Path) -> dict[str, int]:
    assert db.path is not None
    tmp = dest.with_name(dest.name + ".partial")
    dest.parent.mkdir(parents=True, exist_ok=True)
    old_umask = os.umask(0o077)
    try:
        src = sqlite3.connect(db.path, timeout=30.0)
        dst = sqlite3.connect(tmp)
        try:
            src.backup(dst, pages=4096)
            hws = {g: int(h) for g, h in dst.execute("SELECT gate_id, high_water FROM gates").fetchall()}
            dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            dst.close()
            src.close()
    finally:
        os.umask(old_umask)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, dest)
    return hws


def pg_bin(name: str) -> str:
    """A PostgreSQL client tool (pg_dump, pg_restore) from PATH or Debian's versioned directory."""
    found = shutil.which(name)
    if found:
        return found
    import glob

    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not candidates:
        raise NotFound(f"{name} is not installed (Debian package postgresql-client)", code="tool_missing")
    return candidates[-1]


def _libpq_args(db: Database) -> tuple[list[str], dict[str, str]]:
    url = db.url
    env = dict(os.environ)
    args = ["--dbname", url.set(drivername="postgresql").render_as_string(hide_password=False)]
    return args, env


def _pg_backup(db: Database, dest: Path) -> dict[str, int]:
    """pg_dump of one exported snapshot, with the gates' high waters read in that snapshot."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".partial")
    with db.connect_sync() as conn:
        conn.execute(text("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar()
        hws = {g: int(h) for g, h in conn.execute(text("SELECT gate_id, high_water FROM gates")).fetchall()}
        args, env = _libpq_args(db)
        old_umask = os.umask(0o077)
        try:
            proc = subprocess.run([pg_bin("pg_dump"), "--format=custom", f"--snapshot={snapshot}",
                                   "--file", str(tmp), *args], env=env, capture_output=True, text=True, timeout=3600)
        finally:
            os.umask(old_umask)
        conn.execute(text("COMMIT"))
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise BadInput(f"pg_dump failed: {proc.stderr.strip()[:500]}", code="backup_failed")
    os.replace(tmp, dest)
    return hws


def restore_hub(data_dir: Path, src: Path, *, clock: Callable[[], float] = time.time) -> dict[str, Any]:
    """Replace the hub database with a backup, and mark the hub restored (new epoch).

    The hub must be stopped. Gates then see a new ``hub_epoch`` and a high water below what
    they had seen acked, and re-send their journals from there.
    """
    if not src.is_file():
        raise NotFound(f"no backup file {src}", code="backup_not_found")
    url = database_url(data_dir)
    db = Database(url, readers=1)
    try:
        if db.is_pg:
            _pg_restore(db, src)
        else:
            _sqlite_restore(data_dir, src)
    finally:
        db.close()
    db = open_database(data_dir, readers=1)  # the backup may predate this code's schema: migrate it
    now = clock()
    epoch = secrets.token_hex(8)

    def tx(conn: Connection) -> None:
        meta_set(conn, "hub_epoch", epoch)
        meta_set(conn, "restored_at", str(now))
        meta_set(conn, "restored_from", str(src))
        audit(conn, Principal("cli", "admin"), "restore", str(src), {"hub_epoch": epoch}, now)
    try:
        db.write_sync(tx)
    finally:
        db.close()
    return {"hub_epoch": epoch, "restored_at": now, "from": str(src)}


def _sqlite_restore(data_dir: Path, src: Path) -> None:
    try:
        check = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
        try:
            ok = check.execute("PRAGMA integrity_check").fetchone()[0]
            event_row = check.execute("SELECT value FROM meta WHERE key = 'event_id'").fetchone()
        finally:
            check.close()
    except sqlite3.DatabaseError as exc:
        raise BadInput(f"{src} is not a hub backup: {exc}", code="bad_backup") from None
    if ok != "ok" or event_row is None:
        raise BadInput(f"{src} failed its integrity check: {ok}", code="bad_backup")
    data_dir.mkdir(parents=True, exist_ok=True)
    target = db_path(data_dir)
    for suffix in ("-wal", "-shm"):
        Path(str(target) + suffix).unlink(missing_ok=True)
    tmp = target.with_name(target.name + ".restoring")
    tmp.unlink(missing_ok=True)
    old_umask = os.umask(0o077)
    try:
        s = sqlite3.connect(src)
        d = sqlite3.connect(tmp)
        try:
            s.backup(d)
        finally:
            d.close()
            s.close()
    finally:
        os.umask(old_umask)
    os.replace(tmp, target)


def _pg_restore(db: Database, src: Path) -> None:
    args, env = _libpq_args(db)
    proc = subprocess.run([pg_bin("pg_restore"), "--list", str(src)], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise BadInput(f"{src} is not a PostgreSQL hub backup: {proc.stderr.strip()[:300]}", code="bad_backup")

    def drop_all(conn: Connection) -> None:
        for (name,) in rows(conn, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"):
            conn.execute(text(f'DROP TABLE IF EXISTS "{name}" CASCADE'))
    db.write_sync(drop_all)
    proc = subprocess.run([pg_bin("pg_restore"), "--no-owner", "--exit-on-error", *args, str(src)], env=env,
                          capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise BadInput(f"pg_restore failed: {proc.stderr.strip()[:500]}", code="restore_failed")


__all__ = ["CONFIG_NAME", "DB_NAME", "BackupMixin", "database_url", "init_hub", "migrate", "open_database",
           "restore_hub"]
